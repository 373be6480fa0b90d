package accounttest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// Run runs the conformance suite against the stores newStore returns.
// Subtests run in parallel, each with a store of its own; newStore must be
// safe to call concurrently and should close its store when t ends.
func Run(t *testing.T, newStore func(t *testing.T) account.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s account.Store)
	}{
		{"Ping", testPing},
		{"SeedCreatesOnly", testSeedCreatesOnly},
		{"SeedConcurrent", testSeedConcurrent},
		{"UniqueIgnoringCase", testUnique},
		{"AccountFields", testAccountFields},
		{"ReplacePasswordHash", testReplacePasswordHash},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeConcurrent", testRecoveryCodeConcurrent},
		{"Passkeys", testPasskeys},
		{"Locked", testLocked},
		{"CreateGetUpdate", testCreateGetUpdate},
		{"UpdateStaleVersion", testUpdateStale},
		{"UpdateConcurrentLosesNothing", testUpdateConcurrent},
		{"Delete", testDelete},
		{"SharedSecrets", testSharedSecrets},
		{"LookupOfValuesNoRowHolds", testLookupOfValuesNoRowHolds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

func newID() string { return randomHex(8) }

func seed(t *testing.T, s account.Store, a *session.Account) *session.Account {
	t.Helper()
	if a.Subject == "" {
		a.Subject = "sub-" + newID()
	}
	got, err := s.SeedAccount(t.Context(), a)
	if err != nil {
		t.Fatalf("SeedAccount(%s): %v", a.Username, err)
	}
	return got
}

func testPing(t *testing.T, s account.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// The configuration seeds accounts that do not exist yet and never
// overwrites one that does: a password, a phone or a TOTP secret changed
// at runtime stays.
func testSeedCreatesOnly(t *testing.T, s account.Store) {
	ctx := t.Context()
	name := "Alice-" + newID()
	first := &session.Account{
		Subject:      "sub-" + newID(),
		Username:     name,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA",
		Email:        name + "@example.com",
		Phone:        "+15550100",
		Name:         "Alice",
		TOTPSecret:   "JBSWY3DPEHPK3PXP",
		EmailMFA:     true,
	}
	got := seed(t, s, first)
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("seeded account = %+v\nwant %+v", got, first)
	}
	if err := s.SetPhone(ctx, first.Subject, "+15550199"); err != nil {
		t.Fatal(err)
	}
	again := &session.Account{Subject: "sub-" + newID(), Username: "ALICE-" + name[len("Alice-"):],
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$bmV3", Email: "other-" + name + "@example.com", Name: "Alice B."}
	got = seed(t, s, again)
	want := *first
	want.Phone = "+15550199"
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("after a second seed: %+v\nwant the stored account %+v", got, &want)
	}
	if _, err := s.GetAccount(ctx, again.Subject); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetAccount(subject of the second seed) = %v, want ErrNotFound", err)
	}
	for _, u := range []string{name, "alice-" + name[len("Alice-"):], "ALICE-" + name[len("Alice-"):]} {
		got, err := s.AccountByUsername(ctx, u)
		if err != nil || got.Subject != first.Subject {
			t.Fatalf("AccountByUsername(%q) = %+v, %v; want subject %s", u, got, err, first.Subject)
		}
	}
	if _, err := s.AccountByUsername(ctx, "nobody-"+newID()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("AccountByUsername(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccount(ctx, "sub-"+newID()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetAccount(unknown) = %v, want ErrNotFound", err)
	}
	r, err := s.Get(ctx, first.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Active || r.Version < 1 || r.CreatedAt.IsZero() || r.UpdatedAt.Before(r.CreatedAt) {
		t.Errorf("seeded record = active %v version %d created %v updated %v; want active, a version, times", r.Active, r.Version, r.CreatedAt, r.UpdatedAt)
	}
}

// Instances that start together seed the same users at once; they must
// agree on one subject per username.
func testSeedConcurrent(t *testing.T, s account.Store) {
	name := "bob-" + newID()
	const n = 8
	subs := make([]string, n)
	errs := make([]error, n)
	race(n, func(i int) {
		a, err := s.SeedAccount(t.Context(), &session.Account{Subject: "sub-" + newID(), Username: name, Email: name + "@example.com"})
		errs[i] = err
		if a != nil {
			subs[i] = a.Subject
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range subs {
		if subs[i] != subs[0] {
			t.Fatalf("concurrent SeedAccount returned subjects %v, want one", subs)
		}
	}
}

func testUnique(t *testing.T, s account.Store) {
	ctx := t.Context()
	id := newID()
	a := seed(t, s, &session.Account{Username: "Carol-" + id, Email: "Carol-" + id + "@Example.com"})
	for _, r := range []*account.Record{
		{Account: session.Account{Subject: "sub-" + newID(), Username: "cAROL-" + id}},
		{Account: session.Account{Subject: "sub-" + newID(), Username: "other-" + id, Email: "carol-" + id + "@example.COM"}},
		{Account: session.Account{Subject: a.Subject, Username: "third-" + id}},
	} {
		if _, err := s.Create(ctx, r); !errors.Is(err, account.ErrTaken) {
			t.Errorf("Create(%s, %s) = %v, want ErrTaken", r.Username, r.Email, err)
		}
	}
	// A seed under another username with a taken email creates nothing.
	if _, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-" + newID(), Username: "fourth-" + id, Email: "CAROL-" + id + "@example.com"}); !errors.Is(err, account.ErrTaken) {
		t.Errorf("SeedAccount with a taken email = %v, want ErrTaken", err)
	}
	// Many accounts may have no email; an empty email finds none of them.
	for range 2 {
		seed(t, s, &session.Account{Username: "noemail-" + newID()})
	}
	if _, err := s.AccountByEmail(ctx, ""); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("AccountByEmail(\"\") = %v, want ErrNotFound", err)
	}
	// The email finds its account, ignoring case; another finds none.
	if got, err := s.AccountByEmail(ctx, "cAROL-"+id+"@EXAMPLE.com"); err != nil || got.Subject != a.Subject {
		t.Errorf("AccountByEmail of Carol's email, other case = %+v, %v; want %s", got, err, a.Subject)
	}
	if _, err := s.AccountByEmail(ctx, "nobody-"+id+"@example.com"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("AccountByEmail of an unknown email = %v, want ErrNotFound", err)
	}
	// An update to a taken username or email fails and changes nothing.
	b, err := s.Create(ctx, &account.Record{Account: session.Account{Subject: "sub-" + newID(), Username: "dan-" + id}, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(r *account.Record){
		func(r *account.Record) { r.Username = "CAROL-" + id },
		func(r *account.Record) { r.Email = "carol-" + id + "@EXAMPLE.com" },
	} {
		r := *b
		change(&r)
		if _, err := s.Update(ctx, &r); !errors.Is(err, account.ErrTaken) {
			t.Errorf("Update to a taken name or email (%s, %s) = %v, want ErrTaken", r.Username, r.Email, err)
		}
	}
	if got, err := s.Get(ctx, b.Subject); err != nil || got.Username != b.Username || got.Version != b.Version {
		t.Errorf("after refused updates: %+v, %v; want it unchanged", got, err)
	}
}

func testAccountFields(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "erin-" + newID()})
	if a.TOTPSecret != "" || a.LastFactor != "" || a.EmailMFA || a.Phone != "" {
		t.Fatalf("fresh account = %+v", a)
	}
	for _, err := range []error{
		s.SetTOTPSecret(ctx, a.Subject, "JBSWY3DPEHPK3PXP"),
		s.SetLastFactor(ctx, a.Subject, authn.TOTP),
		s.SetEmailMFA(ctx, a.Subject, true),
		s.SetPhone(ctx, a.Subject, "+15555550100"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetAccount(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.LastFactor != authn.TOTP || !got.EmailMFA || got.Phone != "+15555550100" {
		t.Fatalf("account = %+v, want TOTP, last factor, email codes and phone set", got)
	}
	for _, err := range []error{
		s.SetTOTPSecret(ctx, a.Subject, ""),
		s.SetEmailMFA(ctx, a.Subject, false),
		s.SetPhone(ctx, a.Subject, ""),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.GetAccount(ctx, a.Subject); got == nil || got.TOTPSecret != "" || got.EmailMFA || got.Phone != "" {
		t.Fatalf("after clearing: %+v", got)
	}
	ghost := "sub-" + newID()
	for name, err := range map[string]error{
		"SetTOTPSecret": s.SetTOTPSecret(ctx, ghost, "JBSWY3DPEHPK3PXP"),
		"SetLastFactor": s.SetLastFactor(ctx, ghost, authn.SMS),
		"SetEmailMFA":   s.SetEmailMFA(ctx, ghost, true),
		"SetPhone":      s.SetPhone(ctx, ghost, "+15555550100"),
		"SetLocked":     s.SetLocked(ctx, ghost, true),
	} {
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s(unknown) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.GetAccount(ctx, ghost); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("writes to an unknown subject created an account: %v", err)
	}
}

func testReplacePasswordHash(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "hank-" + newID(), PasswordHash: "old"})
	before, err := s.Get(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, a.Subject, "stale", "x"); err != nil || ok {
		t.Fatalf("ReplacePasswordHash over another hash = %v, %v; want false", ok, err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, a.Subject, "old", "new"); err != nil || !ok {
		t.Fatalf("ReplacePasswordHash = %v, %v; want true", ok, err)
	}
	got, err := s.Get(ctx, a.Subject)
	if err != nil || got.PasswordHash != "new" || got.Version <= before.Version {
		t.Fatalf("after ReplacePasswordHash: %+v, %v; want the new hash and a new version", got, err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, "sub-"+newID(), "", "new"); err != nil || ok {
		t.Fatalf("ReplacePasswordHash(unknown) = %v, %v; want false", ok, err)
	}
}

func testRecoveryCodes(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "finn-" + newID()})
	if err := s.SetRecoveryCodes(ctx, a.Subject, []string{"h1", "h2", "h3"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountRecoveryCodes(ctx, a.Subject); err != nil || n != 3 {
		t.Fatalf("CountRecoveryCodes = %d, %v; want 3", n, err)
	}
	for _, c := range []struct {
		hash string
		want bool
	}{{"h2", true}, {"h2", false}, {"nope", false}, {"h1", true}} {
		if got, err := s.UseRecoveryCode(ctx, a.Subject, c.hash); err != nil || got != c.want {
			t.Errorf("UseRecoveryCode(%s) = %v, %v; want %v", c.hash, got, err, c.want)
		}
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || got.RecoveryCodes != 1 {
		t.Fatalf("GetAccount().RecoveryCodes = %+v, %v; want 1", got, err)
	}
	if err := s.SetRecoveryCodes(ctx, a.Subject, []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, a.Subject, "h3"); ok {
		t.Error("a code of the replaced set still worked")
	}
	other := seed(t, s, &session.Account{Username: "gus-" + newID()})
	if ok, _ := s.UseRecoveryCode(ctx, other.Subject, "n1"); ok {
		t.Error("another user's code hash worked")
	}
	ghost := "sub-" + newID()
	if err := s.SetRecoveryCodes(ctx, ghost, []string{"g"}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetRecoveryCodes(unknown) = %v, want ErrNotFound", err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, ghost); n != 0 {
		t.Errorf("an unknown subject has %d codes", n)
	}
}

func testRecoveryCodeConcurrent(t *testing.T, s account.Store) {
	a := seed(t, s, &session.Account{Username: "gina-" + newID()})
	if err := s.SetRecoveryCodes(t.Context(), a.Subject, []string{"only"}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	oks := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) { oks[i], errs[i] = s.UseRecoveryCode(t.Context(), a.Subject, "only") })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := count(oks); c != 1 {
		t.Fatalf("%d of %d concurrent uses of one recovery code succeeded, want 1", c, n)
	}
}

func testPasskeys(t *testing.T, s account.Store) {
	ctx := t.Context()
	binary := []byte{0, 1, 2, 0xfe, 0xff, '\n', 0, 'x'}
	pk := session.StoredPasskey{ID: "cred-b", Data: binary}
	if err := s.PutPasskey(ctx, "nobody-"+newID(), pk); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("PutPasskey on a missing account = %v, want ErrNotFound", err)
	}
	a := seed(t, s, &session.Account{Username: "pk-" + newID()})
	if len(a.Passkeys) != 0 {
		t.Fatalf("new account has passkeys %v", a.Passkeys)
	}
	if err := s.UpdatePasskey(ctx, a.Subject, pk); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("UpdatePasskey of a missing credential = %v, want ErrNotFound", err)
	}
	for _, p := range []session.StoredPasskey{pk, {ID: "cred-a", Data: []byte("a")}} {
		if err := s.PutPasskey(ctx, a.Subject, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpdatePasskey(ctx, a.Subject, session.StoredPasskey{ID: "cred-a", Data: []byte("a2")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAccount(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	want := []session.StoredPasskey{{ID: "cred-a", Data: []byte("a2")}, pk}
	if !reflect.DeepEqual(got.Passkeys, want) {
		t.Fatalf("passkeys = %v, want %v (sorted by id)", got.Passkeys, want)
	}
	if err := s.DeletePasskey(ctx, a.Subject, "cred-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePasskey(ctx, a.Subject, "cred-a"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("second DeletePasskey = %v, want ErrNotFound", err)
	}
	if err := s.UpdatePasskey(ctx, a.Subject, session.StoredPasskey{ID: "cred-a", Data: []byte("a3")}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("UpdatePasskey after delete = %v, want ErrNotFound", err)
	}
	if got, _ := s.GetAccount(ctx, a.Subject); got == nil || !reflect.DeepEqual(got.Passkeys, []session.StoredPasskey{pk}) {
		t.Fatalf("passkeys after delete = %v", got)
	}
}

func testLocked(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "locked-" + newID()})
	if err := s.SetLocked(ctx, a.Subject, true); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || !got.Locked {
		t.Fatalf("after SetLocked(true): %+v, %v", got, err)
	}
	if err := s.SetLocked(ctx, a.Subject, false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || got.Locked {
		t.Fatalf("after SetLocked(false): %+v, %v", got, err)
	}
}

func testCreateGetUpdate(t *testing.T, s account.Store) {
	ctx := t.Context()
	in := &account.Record{
		Account: session.Account{Subject: "sub-" + newID(), Username: "hal-" + newID(), Email: "hal@example.com",
			Name: "Hal", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA", TOTPSecret: "JBSWY3DPEHPK3PXP"},
		Active: true, ExternalID: "ext-1",
	}
	r, err := s.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 || r.Username != in.Username || r.TOTPSecret != in.TOTPSecret || r.ExternalID != "ext-1" || !r.Active {
		t.Fatalf("created %+v", r)
	}
	r.Name, r.Active, r.Email = "Hal B.", false, "hal@example.org"
	u, err := s.Update(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != r.Version+1 || u.Name != "Hal B." || u.Active || u.Email != "hal@example.org" || u.UpdatedAt.Before(r.UpdatedAt) {
		t.Fatalf("updated %+v", u)
	}
	// A factor change is a change of the account too.
	if err := s.SetPhone(ctx, u.Subject, "+15555550100"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, u.Subject); got == nil || got.Version <= u.Version {
		t.Fatalf("SetPhone left the version at %d", u.Version)
	}
}

// An update over a version someone else already changed fails, and the
// other's change stays.
func testUpdateStale(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "ivy-" + newID()})
	r1, err := s.Get(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	r2 := *r1
	r1.Name = "first admin"
	if _, err := s.Update(ctx, r1); err != nil {
		t.Fatal(err)
	}
	r2.Email = "second@example.com"
	if _, err := s.Update(ctx, &r2); !errors.Is(err, account.ErrConflict) {
		t.Fatalf("Update over a stale version = %v, want ErrConflict", err)
	}
	got, err := s.Get(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "first admin" || got.Email != "" {
		t.Fatalf("after the conflict: name %q email %q; want the first update only", got.Name, got.Email)
	}
	ghost := *got
	ghost.Subject = "sub-" + newID()
	if _, err := s.Update(ctx, &ghost); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Update of a missing account = %v, want ErrNotFound", err)
	}
}

// Writers that read, change and retry on ErrConflict never lose an update.
func testUpdateConcurrent(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "jay-" + newID()})
	const n = 8
	errs := make([]error, n)
	race(n, func(i int) {
		for {
			r, err := s.Get(ctx, a.Subject)
			if err != nil {
				errs[i] = err
				return
			}
			r.Name += fmt.Sprintf("[%d]", i)
			_, err = s.Update(ctx, r)
			if errors.Is(err, account.ErrConflict) {
				continue
			}
			errs[i] = err
			return
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if c := countSub(got.Name, fmt.Sprintf("[%d]", i)); c != 1 {
			t.Fatalf("name %q holds writer %d's change %d times, want once (a lost or doubled update)", got.Name, i, c)
		}
	}
}

func testDelete(t *testing.T, s account.Store) {
	ctx := t.Context()
	a := seed(t, s, &session.Account{Username: "kim-" + newID(), Email: "kim@example.com", TOTPSecret: "JBSWY3DPEHPK3PXP"})
	if err := s.SetRecoveryCodes(ctx, a.Subject, []string{"r1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPasskey(ctx, a.Subject, session.StoredPasskey{ID: "c", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, a.Subject); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetAccount after Delete = %v, want ErrNotFound", err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, a.Subject); n != 0 {
		t.Errorf("%d recovery codes outlived their account", n)
	}
	if err := s.Delete(ctx, a.Subject); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	// The username and the email are free again; the old factors do not
	// come back with a new account of the same subject.
	b := seed(t, s, &session.Account{Subject: a.Subject, Username: a.Username, Email: "kim@example.com"})
	if b.RecoveryCodes != 0 || len(b.Passkeys) != 0 || b.TOTPSecret != "" {
		t.Fatalf("a new account inherited factors: %+v", b)
	}
}

// Instances starting at once agree on one value per name; the first
// stored stays.
func testSharedSecrets(t *testing.T, s account.Store) {
	ctx := t.Context()
	name := "signing-key:" + newID()
	if _, err := s.LookupSecret(ctx, name); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("LookupSecret before any = %v, want ErrNotFound", err)
	}
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	race(n, func(i int) { got[i], errs[i] = s.InitSecret(ctx, name, []byte(fmt.Sprintf("value-%d\x00\xff", i))) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if string(got[i]) != string(got[0]) {
			t.Fatalf("concurrent InitSecret returned %q, want one value", got)
		}
	}
	if v, err := s.InitSecret(ctx, name, []byte("later")); err != nil || string(v) != string(got[0]) {
		t.Fatalf("a later InitSecret = %q, %v; want the first value", v, err)
	}
	if v, err := s.LookupSecret(ctx, name); err != nil || string(v) != string(got[0]) {
		t.Fatalf("LookupSecret = %q, %v", v, err)
	}

	sessiontest.CheckSwapSecret(t, s, name, got[0])
}

func race(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			f(i)
		}()
	}
	start.Done()
	done.Wait()
}

func count(oks []bool) int {
	n := 0
	for _, ok := range oks {
		if ok {
			n++
		}
	}
	return n
}

func countSub(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}

// A lookup by a value that no account can hold on every database (a NUL
// byte, invalid UTF-8: PostgreSQL's text refuses both) finds nothing, as
// on SQLite: anyone can type one in the login form, a login_hint or the
// reset form, and it must not answer 503 and report the store down
// (EventStoreDown) on PostgreSQL.
func testLookupOfValuesNoRowHolds(t *testing.T, s account.Store) {
	ctx := t.Context()
	seed(t, s, &session.Account{Username: "nul-" + newID(), Email: "nul@example.com"})
	for _, v := range []string{"alice\x00", "\x00", "nul@example.com\x00", "\xff\xfe", "a\xc3"} {
		if _, err := s.AccountByUsername(ctx, v); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("AccountByUsername(%q) = %v, want ErrNotFound", v, err)
		}
		if _, err := s.AccountByEmail(ctx, v); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("AccountByEmail(%q) = %v, want ErrNotFound", v, err)
		}
		if _, err := s.GetAccount(ctx, v); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetAccount(%q) = %v, want ErrNotFound", v, err)
		}
	}
}
