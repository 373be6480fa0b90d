package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/stepup-dev/stepup/account"
)

// Search implements account.Searcher: one count, one page of subjects,
// then the page's records in one query (a client paging through every
// user asks for 100 or 200 at a time: one query each was most of a
// page's cost, docs/benchmarks.md).
func (s *Store) Search(ctx context.Context, q account.Query) ([]*account.Record, int, error) {
	const op = "search accounts"
	count, page, args := searchQueries(q)
	var total int
	if err := s.db.QueryRowContext(ctx, s.d.rebind(count), args...).Scan(&total); err != nil {
		return nil, 0, s.fail(op, err)
	}
	if q.Limit <= 0 || q.Offset >= total {
		return nil, total, nil
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(page), args...)
	if err != nil {
		return nil, 0, s.fail(op, err)
	}
	var subs []string
	for rows.Next() {
		var sub string
		if err := rows.Scan(&sub); err != nil {
			rows.Close()
			return nil, 0, s.fail(op, err)
		}
		subs = append(subs, sub)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, s.fail(op, err)
	}
	if len(subs) == 0 {
		return nil, total, nil
	}
	marks := make([]string, len(subs))
	args = make([]any, len(subs))
	for i, sub := range subs {
		marks[i], args[i] = "$"+strconv.Itoa(i+1), sub
	}
	rows, err = s.db.QueryContext(ctx, s.d.rebind(fmt.Sprintf(selectRecord, "a.subject IN ("+strings.Join(marks, ", ")+")")), args...)
	if err != nil {
		return nil, 0, s.fail(op, err)
	}
	recs, err := s.scanRecords(op, rows)
	if err != nil {
		return nil, 0, err
	}
	bySub := make(map[string]*account.Record, len(recs))
	for _, r := range recs {
		bySub[r.Subject] = r
	}
	out := make([]*account.Record, 0, len(subs))
	for _, sub := range subs {
		if r := bySub[sub]; r != nil { // else deleted meanwhile
			out = append(out, r)
		}
	}
	return out, total, nil
}

// searchQueries returns Search's two queries ($n placeholders) and their
// arguments: the count of the matching accounts and the page of their
// subjects in creation order. Each filter has an index, and so has the
// order (migration 00003; the tests check the plans).
func searchQueries(q account.Query) (count, page string, args []any) {
	var where []string
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.Username != nil {
		add("username_key = ?", key(*q.Username))
	}
	if q.Email != nil {
		add("email_key = ?", key(*q.Email))
	}
	if q.ExternalID != nil {
		add("external_id = ?", *q.ExternalID)
	}
	if q.Active != nil {
		add("active = ?", *q.Active)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	count = "SELECT COUNT(*) FROM accounts" + cond
	page = "SELECT subject FROM accounts" + cond +
		" ORDER BY created_at, subject LIMIT " + strconv.Itoa(q.Limit) + " OFFSET " + strconv.Itoa(max(q.Offset, 0))
	return count, page, args
}
