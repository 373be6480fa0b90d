package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The TOTP page of a step-up renders from /authorize's decision
// (op.ShownStep), without reading the account again; its post reads the
// account and decides again. So an account disabled in the database, or
// whose TOTP was removed, between /authorize and the page still gets no
// code, though the page shows.
func TestStepUpPageFromAuthorizeFailsClosed(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(e *env)
		status int // of the TOTP post, 0 for any
	}{
		{"disabled", func(e *env) { e.setActive(t, "alice", false) }, http.StatusForbidden},
		{"TOTP removed", func(e *env) {
			if err := e.accounts().SetTOTPSecret(t.Context(), e.subject("alice"), ""); err != nil {
				t.Fatal(err)
			}
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			b, r := e.browser(), e.rp("bank", bankSecret)
			signIn(t, e, b, r, nil, "alice", alicePass)
			a := r.authURL(map[string]string{"acr_values": mfaACR})
			follow := b.c.CheckRedirect
			b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			first := b.get(a.url)
			b.c.CheckRedirect = follow
			if first.status != http.StatusFound || !strings.Contains(first.header.Get("Location"), "/login/") {
				t.Fatalf("/authorize: %d to %q, want 302 to the step-up page", first.status, first.header.Get("Location"))
			}
			c.change(e)
			p := b.get(first.header.Get("Location"))
			if len(find(p.doc, hasAttr("data-factor", "totp"))) == 0 {
				t.Fatalf("no TOTP form on the step-up page (%d):\n%s", p.status, excerpt(p.body))
			}
			e.clock.Advance(30 * time.Second)
			got := b.code(p, "totp", e.totpCode(aliceTOTP))
			if got.loc != nil && got.loc.Query().Get("code") != "" {
				t.Fatalf("%s between /authorize and the TOTP post: a code was issued", c.name)
			}
			if c.status != 0 && got.status != c.status {
				t.Errorf("TOTP post: %d, want %d\n%s", got.status, c.status, excerpt(got.body))
			}
		})
	}
}
