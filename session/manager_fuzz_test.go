package session_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// The session cookie is the one piece of state a browser hands back, so
// whatever it holds is attacker-chosen. Manager.ID must map every value
// that it did not itself issue (with the instance's keys) to "" — no
// panic, no id — and map its own cookies back to their id.

var (
	fuzzHashKey  = bytes.Repeat([]byte{1}, 32)
	fuzzBlockKey = bytes.Repeat([]byte{2}, 32)
	// fuzzKey is the session key every cookie of these tests carries.
	fuzzKey = "k3y-0f-7h3-s3ss10n"
)

// cookieFor returns the cookie Set writes for id; nil when Set refuses
// it (securecookie bounds the encoded length).
func cookieFor(t *testing.T, m *session.Manager, id string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := m.Set(rec, id, fuzzKey); err != nil {
		if len(id) < 1000 {
			t.Fatalf("Set(%q): %v", id, err)
		}
		return nil
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("Set wrote %d cookies", len(cs))
	}
	return cs[0]
}

func idOf(m *session.Manager, name, value string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", name+"="+value)
	return m.ID(r)
}

// FuzzManagerID feeds arbitrary cookie values (and, through the Cookie
// header, arbitrary header syntax) to Manager.ID.
func FuzzManagerID(f *testing.F) {
	m := session.NewManager(true, fuzzHashKey, fuzzBlockKey, time.Hour)
	// The one id this manager ever issued. Its cookie differs in every
	// process (random IV), so the property names the id, not the value.
	const issued = "Yk5dnZBMn3DxTN0YXnPGrPrk8uTd4hYWKLbG7Lyh_4s"
	rec := httptest.NewRecorder()
	if err := m.Set(rec, issued, fuzzKey); err != nil {
		f.Fatal(err)
	}
	valid := rec.Result().Cookies()[0].Value
	if got := idOf(m, m.CookieName(), valid); got != issued {
		f.Fatalf("the issued cookie decodes to %q", got)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(strings.ToUpper(valid))
	f.Add("")
	f.Add("MTcwMDAwMDAwMHxhYmN8ZGVm") // base64("1700000000|abc|def"): securecookie's shape, no valid MAC
	f.Add("a|b|c")
	f.Add(`"quoted"`)
	f.Add("x; __Host-stepup=y")
	f.Fuzz(func(t *testing.T, value string) {
		// Only a cookie this manager issued decodes (possibly in another
		// spelling the HTTP or base64 layers forgive, such as quotes or
		// padding), and then to the id it was issued for.
		if id := idOf(m, m.CookieName(), value); id != "" && id != issued {
			t.Fatalf("cookie %q decoded to id %q", value, id)
		}
	})
}

// FuzzManagerRoundTrip: any id survives Set → ID on the same keys, and is
// refused by a manager with other keys (another deployment's cookie).
func FuzzManagerRoundTrip(f *testing.F) {
	m := session.NewManager(false, fuzzHashKey, fuzzBlockKey, time.Hour)
	other := session.NewManager(false, bytes.Repeat([]byte{3}, 32), fuzzBlockKey, time.Hour)
	f.Add(session.NewID())
	f.Add("")
	f.Add("id with spaces; and=semicolons")
	f.Add(strings.Repeat("x", 2000))
	f.Fuzz(func(t *testing.T, id string) {
		c := cookieFor(t, m, id)
		if c == nil {
			return
		}
		if got := idOf(m, c.Name, c.Value); got != id {
			t.Fatalf("Set(%q) → ID %q", id, got)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(c)
		if _, key := m.Read(r); key != fuzzKey {
			t.Fatalf("Set(%q) → key %q, want %q", id, key, fuzzKey)
		}
		if got := idOf(other, c.Name, c.Value); got != "" {
			t.Fatalf("a cookie signed with other keys decoded to %q", got)
		}
	})
}
