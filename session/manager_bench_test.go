package session_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stepup-dev/stepup/session"
)

// BenchmarkManagerRead reads one session cookie again and again, as the
// requests of one step-up do (/authorize, the page, the post: about five
// reads of the same value, issue 18). It runs unchanged at a commit
// without the Manager's cache of verified cookies, for the comparison.
func BenchmarkManagerRead(b *testing.B) {
	m := session.NewManager(false, fuzzHashKey, fuzzBlockKey, 0)
	rec := httptest.NewRecorder()
	if err := m.Set(rec, session.NewID(), session.NewID()); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(rec.Result().Cookies()[0])
	b.ReportAllocs()
	for b.Loop() {
		if id, _ := m.Read(req); id == "" {
			b.Fatal("the cookie did not verify")
		}
	}
}
