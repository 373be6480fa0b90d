package sqlstore_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/secrets"
	"github.com/stepup-dev/stepup/session"
)

const totpSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// dump returns every value of every row of the account tables, as text.
func dump(t *testing.T, s *sqlstore.Store) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"accounts", "recovery_codes", "passkeys", "shared_secrets"} {
		rows, err := s.DB().QueryContext(t.Context(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				out = append(out, fmt.Sprintf("%s.%s=%v", table, cols[i], v))
			}
		}
		rows.Close()
	}
	return out
}

// A dump of the database holds no usable TOTP secret: neither the base32
// text nor the raw key bytes, whichever way the secret got there.
func TestNoSecretAtRest(t *testing.T) {
	s := accounttest.NewStore(t)
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-seeded", Username: "alice", TOTPSecret: totpSecret})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-enrolled", Username: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTOTPSecret(ctx, b.Subject, totpSecret); err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(ctx, &account.Record{Account: session.Account{Subject: "sub-created", Username: "carol", TOTPSecret: totpSecret}, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	// A signing key, as server/op stores it.
	pem := []byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n")
	if _, err := s.InitSecret(ctx, "signing-key:ES256", pem); err != nil {
		t.Fatal(err)
	}
	raw, _ := base32.StdEncoding.DecodeString(totpSecret)
	rows := dump(t, s)
	sealed := 0
	for _, v := range rows {
		if strings.Contains(strings.ToUpper(v), totpSecret[:16]) || strings.Contains(v, string(raw)) {
			t.Errorf("raw row holds the secret: %s", v)
		}
		if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "MIGHAgEAMBMG") {
			t.Errorf("raw row holds the signing key: %s", v)
		}
		if strings.HasPrefix(v, "accounts.totp_secret=v1.") {
			sealed++
		}
	}
	if sealed != 3 || !slices.ContainsFunc(rows, func(v string) bool { return strings.HasPrefix(v, "shared_secrets.value=v1.") }) {
		t.Fatalf("%d sealed TOTP secrets in %v, want 3, and a sealed signing key", sealed, rows)
	}
	if got, err := s.LookupSecret(ctx, "signing-key:ES256"); err != nil || string(got) != string(pem) {
		t.Fatalf("LookupSecret = %q, %v", got, err)
	}
	// The store itself reads them back.
	for _, sub := range []string{a.Subject, b.Subject, c.Subject} {
		if got, err := s.GetAccount(ctx, sub); err != nil || got.TOTPSecret != totpSecret {
			t.Errorf("GetAccount(%s).TOTPSecret = %+v, %v", sub, got, err)
		}
	}
	// A sealed value copied to another account's row does not open there.
	if _, err := s.DB().ExecContext(ctx, `UPDATE accounts SET totp_secret = (SELECT totp_secret FROM accounts WHERE subject = 'sub-seeded') WHERE subject = 'sub-created'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, c.Subject); err == nil {
		t.Fatal("a TOTP secret copied from another row opened")
	}
}

// A new first key: values sealed under the old one still open, every
// write seals under the new one, Reseal catches up the rest, and after it
// the old key can go.
func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	url := accounttest.NewURL(t)
	oldKey, newKey := secrets.NewKey(), secrets.NewKey()
	ring := func(keys ...[]byte) *secrets.Keyring {
		k, err := secrets.NewKeyring(keys...)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	s1 := accounttest.Open(t, url, ring(oldKey))
	for _, u := range []string{"u1", "u2", "u3"} {
		if _, err := s1.SeedAccount(ctx, &session.Account{Subject: "sub-" + u, Username: u, TOTPSecret: totpSecret}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s1.InitSecret(ctx, "cookie-hash", []byte("cookie key")); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	s2 := accounttest.Open(t, url, ring(newKey, oldKey))
	if got, err := s2.GetAccount(ctx, "sub-u1"); err != nil || got.TOTPSecret != totpSecret {
		t.Fatalf("under the old key after rotation: %+v, %v", got, err)
	}
	// A write re-seals: an Update of u1, a new enrollment of u2.
	r, err := s2.Get(ctx, "sub-u1")
	if err != nil {
		t.Fatal(err)
	}
	r.Name = "renamed"
	if _, err := s2.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s2.SetTOTPSecret(ctx, "sub-u2", totpSecret); err != nil {
		t.Fatal(err)
	}
	newID := secrets.KeyID(newKey)
	sealedUnder := func() map[string]string {
		out := map[string]string{}
		rows, err := s2.DB().QueryContext(ctx, `SELECT subject, totp_secret FROM accounts`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var sub, v string
			if err := rows.Scan(&sub, &v); err != nil {
				t.Fatal(err)
			}
			out[sub] = strings.Split(v, ".")[1]
		}
		return out
	}
	got := sealedUnder()
	if got["sub-u1"] != newID || got["sub-u2"] != newID || got["sub-u3"] == newID {
		t.Fatalf("key ids after two writes = %v; want u1 and u2 under %s, u3 not yet", got, newID)
	}
	if n, err := s2.Reseal(ctx); err != nil || n != 2 {
		t.Fatalf("Reseal = %d, %v; want 2 (u3's TOTP secret, the cookie key)", n, err)
	}
	if got := sealedUnder(); got["sub-u3"] != newID {
		t.Fatalf("after Reseal: %v", got)
	}
	if n, err := s2.Reseal(ctx); err != nil || n != 0 {
		t.Fatalf("second Reseal = %d, %v; want 0", n, err)
	}
	s2.Close()

	s3 := accounttest.Open(t, url, ring(newKey))
	for _, u := range []string{"u1", "u2", "u3"} {
		if got, err := s3.GetAccount(ctx, "sub-"+u); err != nil || got.TOTPSecret != totpSecret {
			t.Fatalf("%s with the new key alone: %+v, %v", u, got, err)
		}
	}
	if v, err := s3.LookupSecret(ctx, "cookie-hash"); err != nil || string(v) != "cookie key" {
		t.Fatalf("shared secret with the new key alone: %q, %v", v, err)
	}
	// Without the key that sealed it, a secret is an error, never a
	// silently missing enrollment.
	s4 := accounttest.Open(t, url, ring(oldKey))
	if _, err := s4.GetAccount(ctx, "sub-u1"); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Fatalf("GetAccount without the key = %v, want ErrUnknownKey", err)
	}
}

// Migrations are applied once, whoever opens the database first, even
// several instances at once.
func TestMigrations(t *testing.T) {
	url := accounttest.NewURL(t)
	keys := accounttest.Keys(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{Keys: keys})
			if err == nil {
				_, err = s.SeedAccount(context.Background(), &session.Account{Subject: "s", Username: "u"})
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	applied, err := sqlstore.Migrate(t.Context(), url)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate on a migrated database = %v, %v; want nothing to do", applied, err)
	}
	fresh := accounttest.NewURL(t)
	if applied, err := sqlstore.Migrate(t.Context(), fresh); err != nil || len(applied) == 0 || applied[0] != 1 {
		t.Fatalf("Migrate on an empty database = %v, %v; want [1 …]", applied, err)
	}
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"postgres://u:p@db:5432/stepup", "postgresql://db/stepup?sslmode=disable", "sqlite:/var/lib/stepup/stepup.db", "sqlite:stepup.db", "sqlite::memory:"} {
		if err := sqlstore.CheckURL(ok); err != nil {
			t.Errorf("CheckURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "mysql://db/x", "sqlite:", "sqlite:/x.db?mode=ro", "stepup.db", "postgres://%zz"} {
		if err := sqlstore.CheckURL(bad); err == nil {
			t.Errorf("CheckURL(%q) = nil, want an error", bad)
		}
	}
	if f := sqlstore.SQLiteFile("sqlite:/a/b.db"); f != "/a/b.db" {
		t.Errorf("SQLiteFile = %q", f)
	}
	if f := sqlstore.SQLiteFile("sqlite::memory:"); f != "" {
		t.Errorf("SQLiteFile(memory) = %q", f)
	}
}

// The in-memory database the demo uses is one database, however many
// requests use it at once.
func TestMemory(t *testing.T) {
	s, err := sqlstore.Open(t.Context(), "sqlite::memory:", sqlstore.Options{Keys: accounttest.Keys(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.SeedAccount(context.Background(), &session.Account{Subject: fmt.Sprint("s", i), Username: fmt.Sprint("u", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		if _, err := s.AccountByUsername(t.Context(), fmt.Sprint("U", i)); err != nil {
			t.Fatal(err)
		}
	}
}
