package sqlstore

import "github.com/stepup-dev/stepup/account"

// SearchQueries exposes Search's queries to the plan tests, with the
// placeholders of the store's database.
func (s *Store) SearchQueries(q account.Query) (count, page string, args []any) {
	count, page, args = searchQueries(q)
	return s.d.rebind(count), s.d.rebind(page), args
}
