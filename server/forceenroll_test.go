package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// PRODUCT.md §3: under force_enroll a user without the factor a level
// needs enrolls now, with no skip. The enrollment page has no cancel
// control, but the cancel endpoint took a POST anyway and completed the
// request at the level reached: bob (password only) skipped the forced
// enrollment and got a 1fa code by posting to /login/{id}/cancel with
// the page's own CSRF token. Now the POST changes nothing: the
// enrollment page is shown again, and no code is issued until bob
// enrolls.
func TestForcedEnrollmentCannotBeCancelled(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("forced", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	link := p.url.String()
	p = b.login(p, "bob", bobPass)
	secret := totpSecretOn(p)
	if secret == "" || len(find(p.doc, hasAttr("data-action", "cancel"))) != 0 {
		t.Fatalf("bob was not offered a forced TOTP enrollment without a cancel control (status %d):\n%s", p.status, excerpt(p.body))
	}
	cancel := formRequest(p, p.form(t, hasAttr("data-factor", "totp")), nil)
	cancel.URL, _ = url.Parse(link + "/cancel")
	p = b.do(cancel)
	if p.loc != nil && strings.HasPrefix(p.loc.String(), rpCallback) {
		res := p.result(t)
		t.Fatalf("a posted cancel skipped the forced enrollment: the RP got code %t, error %q", res.code != "", res.err)
	}
	if p.status != http.StatusOK || totpSecretOn(p) != secret {
		t.Fatalf("after a posted cancel: status %d, want the enrollment page again:\n%s", p.status, excerpt(p.body))
	}
	// Enrolling goes on, and then the request completes.
	p, _ = b.shownRecoveryCodes(b.code(p, "totp", e.totpCode(secret)))
	if tk := r.mustExchange(a, p.result(t)); tk.claims.ACR != mfaACR {
		t.Fatalf("acr %q after enrolling, want %q", tk.claims.ACR, mfaACR)
	}
}
