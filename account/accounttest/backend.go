// Package accounttest is the conformance suite every account.Store must
// pass (Run), and the database that tests of other packages run against
// (NewURL, NewStore): a real PostgreSQL when STEPUP_TEST_POSTGRES_URL is
// set (CI sets it), with a schema of its own per test, and a SQLite file
// in the test's temporary directory otherwise — same test code either way.
package accounttest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/secrets"
)

// EnvPostgresURL names the environment variable that points the tests at
// a real PostgreSQL, e.g. postgres://stepup@127.0.0.1:5432/stepup_test.
const EnvPostgresURL = "STEPUP_TEST_POSTGRES_URL"

// RealPostgres reports whether the tests run on a real PostgreSQL.
func RealPostgres() bool { return os.Getenv(EnvPostgresURL) != "" }

// NewURL returns the URL of an empty database of t's own, removed when t
// ends: a schema on the PostgreSQL of EnvPostgresURL, else a SQLite file.
// Stores opened on it share its data, as instances of stepupd do.
func NewURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		return "sqlite:" + filepath.Join(t.TempDir(), "stepup.db")
	}
	schema := "t_" + randomHex(8)
	// sqlstore registered the "pgx" driver.
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("create schema on %s: %v", EnvPostgresURL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Keys returns a keyring of one fresh key.
func Keys(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Open opens a store on url with keys, closed when t ends.
func Open(t testing.TB, url string, keys *secrets.Keyring) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewStore returns a store on a database of its own, closed when t ends.
func NewStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	return Open(t, NewURL(t), Keys(t))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
