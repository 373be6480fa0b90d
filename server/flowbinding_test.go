package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// davePass is the password of dave, who, like bob, has no second factor.
const davePass = "dave's own long password"

func withDave(cfg *config.Config) {
	cfg.Users = append(cfg.Users, config.User{Username: "dave", Password: davePass, Email: "dave@example.com"})
}

// totpSecretOn returns the TOTP secret an enrollment page shows, "" for
// none.
func totpSecretOn(p *page) string {
	nodes := find(p.doc, hasKey("data-totp-secret"))
	if len(nodes) != 1 {
		return ""
	}
	return strings.TrimSpace(textOf(nodes[0]))
}

// Issue 13 item 1, PRODUCT.md §13: a pending sign-in belongs to the
// browser that started it. The attacker (bob, no second factor) starts an
// MFA request, sees the TOTP secret offered to him, and sends the
// /login/{id} link to the victim (dave, no second factor either). The
// victim's browser gets an error page naming nothing of the flow, and
// cannot sign in on it or enroll the attacker's secret even with a valid
// CSRF token of its own; the attacker's flow still works in his browser.
func TestSignInLinkOpenedInAnotherBrowser(t *testing.T) {
	e := newEnv(t, withDave)
	attacker, victim, r := e.browser(), e.browser(), e.rp("forced", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR, "login_hint": "bob"})
	p := attacker.get(a.url)
	link := p.url.String()
	if !strings.Contains(link, "/login/") {
		t.Fatalf("authorize did not lead to a sign-in page: %s", link)
	}
	p = attacker.login(p, "bob", bobPass)
	secret := totpSecretOn(p)
	if secret == "" {
		t.Fatalf("bob was not offered TOTP enrollment (status %d):\n%s", p.status, excerpt(p.body))
	}

	// The victim opens the link: 403, the error page, nothing of the flow.
	vp := victim.get(link)
	if vp.status != http.StatusForbidden || !strings.Contains(vp.body, "started in another browser") {
		t.Fatalf("link in another browser: status %d, want 403 and the error page:\n%s", vp.status, excerpt(vp.body))
	}
	for _, leak := range []string{secret, "bob", "forced", "password", "csrf_token"} {
		if strings.Contains(vp.body, leak) {
			t.Errorf("the other browser's page shows %q:\n%s", leak, excerpt(vp.body))
		}
	}

	// A victim with a session cookie and a CSRF token of its own (from a
	// flow it started) still cannot use the attacker's flow.
	own := victim.get(r.authURL(map[string]string{"acr_values": mfaACR}).url)
	form := own.form(t, hasAttr("autocomplete", "current-password"))
	req := formRequest(own, form, map[string]string{"username": "dave", "password": davePass})
	req.URL, _ = url.Parse(link + "/password")
	vp = victim.do(req)
	if vp.status != http.StatusForbidden || strings.Contains(vp.body, secret) {
		t.Fatalf("password on another browser's flow: status %d, want 403:\n%s", vp.status, excerpt(vp.body))
	}
	enroll := formRequest(own, form, map[string]string{"code": e.totpCode(secret)})
	enroll.URL, _ = url.Parse(link + "/enroll/totp")
	if vp = victim.do(enroll); vp.status != http.StatusForbidden {
		t.Fatalf("TOTP enrollment on another browser's flow: status %d, want 403:\n%s", vp.status, excerpt(vp.body))
	}
	if acct, err := e.store().AccountByUsername(t.Context(), "dave"); err != nil || acct.TOTPSecret != "" {
		t.Fatalf("dave's TOTP secret is %q (err %v), want none", acct.TOTPSecret, err)
	}

	// The attacker's own browser goes on with the same flow.
	p, _ = attacker.shownRecoveryCodes(attacker.code(attacker.get(link), "totp", e.totpCode(secret)))
	tk := r.mustExchange(a, p.result(t))
	if tk.claims.ACR != mfaACR {
		t.Fatalf("acr %q, want %q", tk.claims.ACR, mfaACR)
	}
}

// Issue 13 item 1: an enrollment secret belongs to the subject it was
// shown to. bob is shown a secret; dave then signs in within the same
// flow (same browser). bob's secret is neither accepted from dave nor
// offered to him: dave gets a secret of his own.
func TestEnrollmentSecretBelongsToItsSubject(t *testing.T) {
	e := newEnv(t, withDave)
	b, r := e.browser(), e.rp("forced", "")
	p := b.get(r.authURL(map[string]string{"acr_values": mfaACR}).url)
	link := p.url.String()
	p = b.login(p, "bob", bobPass)
	bobs := totpSecretOn(p)
	if bobs == "" {
		t.Fatalf("bob was not offered TOTP enrollment:\n%s", excerpt(p.body))
	}

	// dave signs in within the flow (the password form's POST, sent from
	// the enrollment page with its CSRF token).
	form := p.form(t, hasAttr("data-factor", "totp"))
	signIn := formRequest(p, form, map[string]string{"username": "dave", "password": davePass})
	signIn.URL, _ = url.Parse(link + "/password")
	p = b.do(signIn)
	if got := totpSecretOn(p); got == "" || got == bobs {
		t.Fatalf("after dave signed in the enrollment page shows %q, want a secret that is not bob's %q:\n%s", got, bobs, excerpt(p.body))
	}
	daves := totpSecretOn(p)
	p = b.code(p, "totp", e.totpCode(bobs))
	if acct, err := e.store().AccountByUsername(t.Context(), "dave"); err != nil || acct.TOTPSecret == bobs {
		t.Fatalf("dave enrolled bob's secret (err %v)", err)
	}
	if got := totpSecretOn(p); got != daves || p.status != http.StatusUnauthorized {
		t.Fatalf("a code of bob's secret: status %d, secret %q; want 401 and dave's %q again", p.status, got, daves)
	}
}

// Sign-out ends the browser's pending sign-ins too. On a shared
// computer, alice starts a new sign-in (prompt=login, her username
// shown), abandons it and signs out; the next person opening that page
// from the history gets the other-browser error page, nothing of hers.
// Before, the flow-binding cookie outlived the sign-out, and the page
// still showed alice's username for up to 30 minutes.
func TestSignOutEndsPendingSignIns(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	p := b.get(r.authURL(map[string]string{"prompt": "login", "login_hint": "alice"}).url)
	link := p.url.String()
	if !strings.Contains(link, "/login/") || p.status != http.StatusOK || !strings.Contains(p.body, "alice") {
		t.Fatalf("prompt=login did not show alice's sign-in page (status %d, %s):\n%s", p.status, link, excerpt(p.body))
	}
	if p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {first.idToken}}.Encode()); p.status != http.StatusOK {
		t.Fatalf("end_session: %d\n%s", p.status, excerpt(p.body))
	}
	p = b.get(link)
	if p.status != http.StatusForbidden || strings.Contains(p.body, "alice") {
		t.Fatalf("the abandoned sign-in after sign-out: status %d, want 403 naming no one:\n%s", p.status, excerpt(p.body))
	}
}
