package sqlstore_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/secrets"
	"github.com/stepup-dev/stepup/session"
)

func TestKeyring(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// PostgreSQL without keys: refused, naming the key.
	if _, err := sqlstore.Keyring("postgres://db/stepup", nil, log); err == nil || !strings.Contains(err.Error(), "secrets.encryption_keys") {
		t.Fatalf("PostgreSQL without keys: %v", err)
	}
	// Configured keys win, first seals.
	k1, k2 := secrets.NewKey(), secrets.NewKey()
	enc := base64.StdEncoding.EncodeToString
	ring, err := sqlstore.Keyring("postgres://db/stepup", []string{enc(k1), enc(k2)}, log)
	if err != nil || ring.SealingKeyID() != secrets.KeyID(k1) {
		t.Fatalf("configured keys: %v", err)
	}
	if _, err := sqlstore.Keyring("sqlite::memory:", []string{"nope"}, log); err == nil || !strings.Contains(err.Error(), "secrets.encryption_keys[0]") {
		t.Fatalf("a bad configured key: %v", err)
	}
	// In memory: a key of its own.
	if _, err := sqlstore.Keyring("sqlite::memory:", nil, log); err != nil {
		t.Fatal(err)
	}

	// A SQLite file: FILE.key, 0600, made once with a warning, then reused.
	db := filepath.Join(t.TempDir(), "stepup.db")
	first, err := sqlstore.Keyring("sqlite:"+db, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), db+".key") {
		t.Fatalf("no warning naming the key file:\n%s", logs.String())
	}
	second, err := sqlstore.Keyring("sqlite:"+db, nil, log)
	if err != nil || second.SealingKeyID() != first.SealingKeyID() {
		t.Fatalf("second start: %v, key %s vs %s", err, second.SealingKeyID(), first.SealingKeyID())
	}
	// What a first start sealed with the file's key opens after a restart.
	s := accounttest.Open(t, "sqlite:"+db, first)
	if _, err := s.SeedAccount(t.Context(), &session.Account{Subject: "s", Username: "u", TOTPSecret: totpSecret}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	again := accounttest.Open(t, "sqlite:"+db, second)
	if a, err := again.GetAccount(t.Context(), "s"); err != nil || a.TOTPSecret != totpSecret {
		t.Fatalf("after a restart: %+v, %v", a, err)
	}
}
