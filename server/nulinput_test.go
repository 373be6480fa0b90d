package server_test

import (
	"net/http"
	"testing"
)

// A username no account can hold (a NUL byte, invalid UTF-8) is an
// unknown user: 401 like any other, on PostgreSQL as on SQLite. On
// PostgreSQL the lookup failed in the database (its text refuses both),
// so anyone could make the login form answer 503 and report the store
// down (EventStoreDown) at will.
func TestUnstorableUsernameIsAnUnknownUser(t *testing.T) {
	e := newEnv(t, nil)
	r := e.rp("spa", "")
	for _, user := range []string{"alice\x00", "\xff\xfe"} {
		b := e.browser()
		a := r.authURL(nil)
		p := b.login(b.get(a.url), user, "wrong password")
		if p.status != http.StatusUnauthorized {
			t.Errorf("sign-in as %q: status %d, want 401", user, p.status)
		}
	}
}
