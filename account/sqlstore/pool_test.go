package sqlstore_test

import (
	"database/sql"
	"testing"

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
