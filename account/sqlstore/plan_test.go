package sqlstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/session"
)

// Every list a SCIM client can ask for (PRODUCT.md §10: userName,
// externalId, emails.value, active, joined by and; or no filter) is
// answered from an index, never by reading and sorting the whole table:
// at 100k accounts a full scan per request is what a provisioning client
// polling with filters would cost (docs/benchmarks.md, issue 14). The
// plans are the database's own (EXPLAIN); on PostgreSQL with sequential
// scans and sorts priced out, so a small test table still shows whether
// an index can serve the query.
func TestSearchUsesIndexes(t *testing.T) {
	s := accounttest.NewStore(t)
	ctx := t.Context()
	for i := range 50 {
		if _, err := s.SeedAccount(ctx, &session.Account{Subject: fmt.Sprintf("sub-%d", i), Username: fmt.Sprintf("u%d", i),
			Email: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	str := func(v string) *string { return &v }
	yes := true
	for _, c := range []struct {
		name string
		q    account.Query
	}{
		{"no filter", account.Query{Offset: 20, Limit: 10}},
		{"userName eq", account.Query{Username: str("u7"), Limit: 100}},
		{"emails.value eq", account.Query{Email: str("u7@example.com"), Limit: 100}},
		{"externalId eq", account.Query{ExternalID: str("x"), Limit: 100}},
		{"active eq", account.Query{Active: &yes, Offset: 20, Limit: 10}},
		{"userName eq and active eq", account.Query{Username: str("u7"), Active: &yes, Limit: 100}},
		{"externalId eq and active eq", account.Query{ExternalID: str("x"), Active: &yes, Limit: 100}},
	} {
		count, page, args := s.SearchQueries(c.q)
		for _, q := range []string{count, page} {
			plan := explain(t, s, q, args)
			if bad := badPlan(s.Dialect(), plan); bad != "" {
				t.Errorf("%s: %s\n  %s\nplan:\n%s", c.name, bad, q, plan)
			}
		}
	}
}

func explain(t *testing.T, st *sqlstore.Store, q string, args []any) string {
	t.Helper()
	conn, err := st.DB().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prefix := "EXPLAIN QUERY PLAN "
	if st.Dialect() == "postgres" {
		prefix = "EXPLAIN "
		for _, set := range []string{"SET enable_seqscan = off", "SET enable_sort = off"} {
			if _, err := conn.ExecContext(t.Context(), set); err != nil {
				t.Fatal(err)
			}
		}
		defer conn.ExecContext(t.Context(), "RESET ALL") //nolint:errcheck // the connection is a test's
	}
	rows, err := conn.QueryContext(t.Context(), prefix+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1])) // SQLite: the detail column; PostgreSQL: the one column
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// badPlan names what makes a plan read the whole table, "" if nothing.
func badPlan(dialect, plan string) string {
	for _, l := range strings.Split(plan, "\n") {
		switch {
		case dialect == "sqlite" && strings.Contains(l, "SCAN accounts") && !strings.Contains(l, "USING"):
			return "a full table scan"
		case dialect == "sqlite" && strings.Contains(l, "TEMP B-TREE"):
			return "a sort of the rows"
		case dialect == "postgres" && strings.Contains(l, "Seq Scan"):
			return "a full table scan"
		case dialect == "postgres" && strings.Contains(strings.TrimSpace(l), "Sort"):
			return "a sort of the rows"
		}
	}
	return ""
}
