package sqlstore_test

import (
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/session"
)

// Connections a burst of concurrent requests opened stay open for the
// next: database/sql's default of 2 idle connections made every busy
// instance open and close a connection (a PostgreSQL backend forked, a
// SQLite file opened with its pragmas) for most queries, which cost more
// CPU than the queries themselves (docs/benchmarks.md, issue 14).
func TestConnectionsAreKept(t *testing.T) {
	s := accounttest.NewStore(t)
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-1", Username: "alice", TOTPSecret: totpSecret})
	if err != nil {
		t.Fatal(err)
	}
	// 16 queries open at once need 16 connections.
	const n = 16
	var open []*sql.Rows
	for range n {
		rows, err := s.DB().QueryContext(ctx, "SELECT subject FROM accounts")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, rows)
	}
	for _, r := range open {
		r.Close()
	}
	if st := s.DB().Stats(); st.OpenConnections < n || st.MaxIdleClosed > 0 {
		t.Fatalf("after %d concurrent queries: %d connections open, %d closed as surplus idle; want all %d kept",
			n, st.OpenConnections, st.MaxIdleClosed, n)
	}
	// The store's own reads (prepared statements on SQLite) work on
	// every kept connection, and still see writes made meanwhile.
	for i := range 2 * n {
		if i == n {
			if err := s.SetLocked(ctx, a.Subject, true); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetAccount(ctx, a.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != "alice" || got.TOTPSecret != totpSecret || got.Locked != (i >= n) {
			t.Fatalf("read %d: %+v", i, got)
		}
	}
	if st := s.DB().Stats(); st.MaxIdleClosed > 0 {
		t.Fatalf("%d connections closed as surplus idle", st.MaxIdleClosed)
	}
}

// On PostgreSQL the account reads go through pgx itself on a connection
// of database/sql's pool (getRecordPgx): a pooled connection whose
// backend has ended (a restart, an administrator's pg_terminate_backend)
// is checked and replaced as for every other query, not handed to the
// read.
func TestAccountReadAfterBackendEnded(t *testing.T) {
	if !accounttest.RealPostgres() {
		t.Skip("PostgreSQL only (" + accounttest.EnvPostgresURL + ")")
	}
	s := accounttest.NewStore(t)
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-1", Username: "alice", TOTPSecret: totpSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	// The store's one pooled connection (it was used serially) loses
	// its backend, ended from another connection.
	if n := s.DB().Stats().OpenConnections; n != 1 {
		t.Fatalf("%d connections open after serial use, want 1", n)
	}
	var pid int
	if err := s.DB().QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", os.Getenv(accounttest.EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var ended bool
	if err := admin.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ended, err)
	}
	// pgx checks a pooled connection idle for more than a second.
	time.Sleep(1100 * time.Millisecond)
	got, err := s.GetAccount(ctx, a.Subject)
	if err != nil {
		t.Fatalf("read after its backend ended: %v", err)
	}
	if got.Username != "alice" || got.TOTPSecret != totpSecret {
		t.Fatalf("read after its backend ended: %+v", got)
	}
}
