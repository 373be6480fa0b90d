package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/config"
)

// shownRecoveryCodes returns the codes a page lists in data-recovery-code
// elements and follows its data-action="continue" control.
func (b *browser) shownRecoveryCodes(p *page) (*page, []string) {
	b.t.Helper()
	nodes := find(p.doc, func(n *html.Node) bool { _, ok := attr(n, "data-recovery-code"); return ok })
	if len(nodes) == 0 {
		b.t.Fatalf("no data-recovery-code on the page (status %d at %s):\n%s", p.status, p.url, excerpt(p.body))
	}
	var codes []string
	for _, n := range nodes {
		codes = append(codes, strings.TrimSpace(textOf(n)))
	}
	cont := find(p.doc, hasAttr("data-action", "continue"))
	if len(cont) != 1 {
		b.t.Fatalf("the recovery codes page has %d continue controls", len(cont))
	}
	href, _ := attr(cont[0], "href")
	u, err := p.url.Parse(href)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.get(u.String()), codes
}

// enrollTOTP completes the TOTP enrollment page p and the recovery codes
// page after it; it returns the page after both, the secret and the codes.
func (b *browser) enrollTOTP(p *page) (*page, string, []string) {
	b.t.Helper()
	secrets := find(p.doc, func(n *html.Node) bool { _, ok := attr(n, "data-totp-secret"); return ok })
	if len(secrets) != 1 {
		b.t.Fatalf("no data-totp-secret on the page (status %d):\n%s", p.status, excerpt(p.body))
	}
	secret := strings.TrimSpace(textOf(secrets[0]))
	p = b.code(p, "totp", b.e.totpCode(secret))
	p, codes := b.shownRecoveryCodes(p)
	return p, secret, codes
}

// PRODUCT.md §2, §5: recovery codes are shown once after the first
// enrollment, and each is a one-use factor with amr otp.
func TestRecoveryCodesAfterEnrollmentAndAsFactor(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("forced", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	p, _, codes := b.enrollTOTP(p)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(codes))
	}
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// A later step-up opens on TOTP and offers the recovery code.
	e.clock.Advance(time.Minute)
	b2 := e.browser()
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b2.login(b2.get(a.url), "bob", bobPass)
	if len(find(p.doc, func(n *html.Node) bool { return n.Data == "form" && hasAttr("data-factor", "totp")(n) })) != 1 {
		t.Fatalf("the step-up does not open on the TOTP form:\n%s", excerpt(p.body))
	}
	links := find(p.doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr("data-factor", "recovery")(n) })
	if len(links) != 1 {
		t.Fatalf("no data-factor=recovery link on the step-up page:\n%s", excerpt(p.body))
	}
	href, _ := attr(links[0], "href")
	u, _ := p.url.Parse(href)
	rp := b2.get(u.String())
	wantAlert(t, b2.code(rp, "recovery", "aaaa-bbbb-cccc"), http.StatusUnauthorized, "wrong recovery code")
	p = b2.code(rp, "recovery", strings.ToUpper(codes[0]))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// The same code again: one use each, a failure like a wrong one.
	b3 := e.browser()
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b3.login(b3.get(a.url), "bob", bobPass)
	rp = b3.get(p.url.String() + "?factor=recovery")
	wantAlert(t, b3.code(rp, "recovery", codes[0]), http.StatusUnauthorized, "reused recovery code")
	p = b3.code(rp, "recovery", codes[1])
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
	if acct, err := e.store().AccountByUsername(t.Context(), "bob"); err != nil || acct.RecoveryCodes != 8 {
		t.Fatalf("after two uses: %+v, %v; want 8 codes left", acct, err)
	}
}

// Recovery codes off in mfa.factors: none are made, none are accepted.
func TestRecoveryCodesDisabled(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MFA.Factors = []string{"totp"} })
	b, r := e.browser(), e.rp("forced", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	secrets := find(p.doc, func(n *html.Node) bool { _, ok := attr(n, "data-totp-secret"); return ok })
	if len(secrets) != 1 {
		t.Fatalf("no enrollment page")
	}
	p = b.code(p, "totp", e.totpCode(strings.TrimSpace(textOf(secrets[0]))))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
	if acct, _ := e.store().AccountByUsername(t.Context(), "bob"); acct.RecoveryCodes != 0 {
		t.Fatalf("%d recovery codes made with recovery off", acct.RecoveryCodes)
	}
}
