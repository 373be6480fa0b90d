package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/authn/passkey"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// The account security page without JavaScript: TOTP, recovery codes,
// sessions, and the fresh verification every change needs. (Passkeys on
// /account are driven by a real browser in passkey_browser_test.go.)

// accountPage signs user in through /account and returns the page.
func (b *browser) accountPage(user, pass string) *page {
	b.t.Helper()
	p := b.get(b.e.issuer + "/account")
	if !strings.Contains(p.url.Path, "/login/") {
		b.t.Fatalf("/account without a session: at %s, want the login page", p.url)
	}
	p = b.login(p, user, pass)
	if p.url.Path != "/account" || p.status != http.StatusOK {
		b.t.Fatalf("after signing in: status %d at %s, want /account:\n%s", p.status, p.url, excerpt(p.body))
	}
	return p
}

func (p *page) has(sel func(*html.Node) bool) bool { return len(find(p.doc, sel)) > 0 }

func hasKey(key string) func(*html.Node) bool {
	return func(n *html.Node) bool { _, ok := attr(n, key); return ok }
}

func (b *browser) action(p *page, action string, values map[string]string) *page {
	b.t.Helper()
	return b.submit(p, p.form(b.t, hasAttr("data-action", action)), values)
}

// TestAccountTOTPSetupAndFreshness: a user sets up TOTP on /account (QR
// code and data-totp-secret, confirmed by a code); once that is five
// minutes old, changing it again needs a new verification with both
// factors, after which the change goes through.
func TestAccountTOTPSetupAndFreshness(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	p := b.accountPage("bob", bobPass)
	if got := textOf(find(p.doc, hasKey("data-username"))[0]); got != "bob" {
		t.Fatalf("account page of %q, want bob", got)
	}
	p = b.action(p, "totp", nil)
	secrets := find(p.doc, hasKey("data-totp-secret"))
	if p.status != http.StatusOK || len(secrets) != 1 || len(find(p.doc, func(n *html.Node) bool {
		src, _ := attr(n, "src")
		return n.Data == "img" && strings.HasPrefix(src, "data:image/png;base64,")
	})) != 1 {
		t.Fatalf("TOTP setup page: status %d, %d secrets, want a QR image and one data-totp-secret:\n%s", p.status, len(secrets), excerpt(p.body))
	}
	secret := strings.TrimSpace(textOf(secrets[0]))
	bad := b.code(p, "totp", "000000")
	if bad.status != http.StatusUnauthorized || !bad.has(hasAttr("role", "alert")) {
		t.Fatalf("wrong code: status %d, want 401 with an alert", bad.status)
	}
	p = b.code(bad, "totp", e.totpCode(secret))
	if p.url.Path != "/account" || !strings.Contains(p.body, "An authenticator app is set up") {
		t.Fatalf("after confirming: at %s:\n%s", p.url, excerpt(p.body))
	}

	// The new factor works for a relying party's multi-factor step-up.
	r := e.rp("spa", "")
	e.clock.Advance(time.Minute) // a new TOTP time step
	a := r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "login"})
	p = b.get(a.url)
	p = b.login(p, "bob", bobPass)
	tk := r.mustExchange(a, b.code(p, "totp", e.totpCode(secret)).result(t))
	if tk.claims.ACR != mfaACR {
		t.Fatalf("step-up with the TOTP set up on /account: acr %q", tk.claims.ACR)
	}

	e.clock.Advance(6 * time.Minute)
	p = b.get(e.issuer + "/account")
	if !p.has(hasAttr("data-action", "verify")) {
		t.Fatal("a stale session's account page does not ask to confirm it's you")
	}
	p = b.action(p, "totp", nil)
	if !strings.Contains(p.url.Path, "/login/") || p.has(hasKey("data-totp-secret")) {
		t.Fatalf("changing TOTP with a stale session: at %s, want the sign-in pages", p.url)
	}
	p = b.login(p, "bob", bobPass)
	e.clock.Advance(time.Minute)
	p = b.code(p, "totp", e.totpCode(secret))
	if p.url.Path != "/account" || p.has(hasAttr("data-action", "verify")) {
		t.Fatalf("after verifying: at %s, want /account without the verify prompt:\n%s", p.url, excerpt(p.body))
	}
	if p = b.action(p, "totp", nil); !p.has(hasKey("data-totp-secret")) {
		t.Fatalf("after verifying, replacing TOTP still refused:\n%s", excerpt(p.body))
	}
}

// TestAccountRefusesLastSecondFactor: with a client floor at the
// multi-factor level, a user may not remove their only second factor; without
// one, they may.
func TestAccountRefusesLastSecondFactor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		want   int
	}{
		{"floor", nil, http.StatusConflict},
		{"mfa.login always", func(c *config.Config) { c.Clients = c.Clients[:2]; c.MFA.Login = "always" }, http.StatusConflict},
		{"no floor", func(c *config.Config) { c.Clients = c.Clients[:2] }, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mutate)
			b := e.browser()
			p := b.get(e.issuer + "/account")
			p = b.login(p, "alice", alicePass)
			mfaAtLogin := e.cfg.MFA.Login == "always"
			if mfaAtLogin {
				// mfa.login: always asks for the second factor to sign in,
				// which makes the session fresh enough for changes.
				p = b.code(p, "totp", e.totpCode(aliceTOTP))
			}
			p = b.action(p, "remove-totp", nil)
			if !mfaAtLogin {
				// A password alone is not fresh enough to change the
				// factors of a user who has a second one.
				if !strings.Contains(p.url.Path, "/login/") || len(find(p.doc, hasAttr("data-factor", "totp"))) == 0 {
					t.Fatalf("removing TOTP after a password-only sign-in: at %s, want the TOTP form", p.url)
				}
				e.clock.Advance(time.Minute)
				p = b.code(p, "totp", e.totpCode(aliceTOTP))
				p = b.action(p, "remove-totp", nil)
			}
			if p.status != tc.want {
				t.Fatalf("removing the only second factor: status %d at %s, want %d:\n%s", p.status, p.url, tc.want, excerpt(p.body))
			}
			acct, err := e.store().AccountByUsername(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			if removed := acct.TOTPSecret == ""; removed != (tc.want == http.StatusOK) {
				t.Fatalf("TOTP removed = %v, want %v", removed, tc.want == http.StatusOK)
			}
			if tc.want == http.StatusConflict && !p.has(hasAttr("role", "alert")) {
				t.Error("the refusal has no role=alert")
			}
		})
	}
}

// TestAccountSessions: a user sees their sessions and signs one out; the
// other browser is signed out. A POST without the CSRF token changes
// nothing.
func TestAccountSessions(t *testing.T) {
	e := newEnv(t, nil)
	other := e.browser()
	other.accountPage("bob", bobPass)
	b := e.browser()
	p := b.accountPage("bob", bobPass)
	revoke := find(p.doc, hasAttr("data-action", "revoke"))
	if len(revoke) != 2 || len(find(p.doc, hasKey("data-current"))) != 1 {
		t.Fatalf("%d sessions listed, want 2 with one current:\n%s", len(revoke), excerpt(p.body))
	}
	var target *html.Node
	for _, li := range find(p.doc, func(n *html.Node) bool { return n.Data == "li" }) {
		if _, cur := attr(li, "data-current"); !cur && len(find(li, hasAttr("data-action", "revoke"))) == 1 {
			target = find(li, func(n *html.Node) bool { return n.Data == "form" })[0]
		}
	}
	forged := formRequest(p, target, map[string]string{"csrf_token": "forged"})
	if got := b.do(forged); got.status != http.StatusForbidden {
		t.Fatalf("revoke with a forged CSRF token: status %d, want 403", got.status)
	}
	if q := other.get(e.issuer + "/account"); q.url.Path != "/account" {
		t.Fatal("a refused revoke signed the other browser out")
	}
	listed := p
	p = b.submit(listed, target, nil)
	if !strings.Contains(p.body, "The session was signed out") || len(find(p.doc, hasAttr("data-action", "revoke"))) != 1 {
		t.Fatalf("after revoking: %s", excerpt(p.body))
	}
	// The same form again: that session is gone, so nothing is said to be
	// signed out and the page still lists this one.
	if again := b.submit(listed, target, nil); again.status != http.StatusOK || strings.Contains(again.body, "The session was signed out") || len(find(again.doc, hasAttr("data-action", "revoke"))) != 1 {
		t.Fatalf("revoking a session already gone: status %d: %s", again.status, excerpt(again.body))
	}
	if q := other.get(e.issuer + "/account"); !strings.Contains(q.url.Path, "/login/") {
		t.Fatalf("the revoked browser still reaches /account (at %s)", q.url)
	}
	if q := b.get(e.issuer + "/account"); q.url.Path != "/account" {
		t.Fatal("revoking the other session signed this one out")
	}
}

// TestAccountRecoveryCodes: a fresh session makes a set of recovery codes
// on /account, shown once with a continue control; the page then counts
// them, and one of them works as a second factor.
func TestAccountRecoveryCodes(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	p := b.accountPage("alice", alicePass)
	p = b.action(p, "recovery-codes", nil)
	if !strings.Contains(p.url.Path, "/login/") {
		t.Fatalf("recovery codes after a password-only sign-in of a user with TOTP: at %s, want the TOTP form", p.url)
	}
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	p = b.action(p, "recovery-codes", nil)
	codes := find(p.doc, hasKey("data-recovery-code"))
	if len(codes) == 0 || !p.has(hasAttr("data-action", "continue")) {
		t.Fatalf("recovery codes page: %d codes:\n%s", len(codes), excerpt(p.body))
	}
	p = b.get(e.issuer + "/account")
	left := find(p.doc, hasKey("data-recovery-left"))
	if n, _ := attr(left[0], "data-recovery-left"); n != strconv.Itoa(len(codes)) {
		t.Fatalf("account page counts %s recovery codes, want %d", n, len(codes))
	}
	r := e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "login"})
	p = b.login(b.get(a.url), "alice", alicePass)
	p = b.get(p.url.String() + "?factor=recovery")
	tk := r.mustExchange(a, b.code(p, "recovery", textOf(codes[0])).result(t))
	if tk.claims.ACR != mfaACR {
		t.Fatalf("recovery code from /account: acr %q", tk.claims.ACR)
	}
}

// TestAccountPasskeyRenameRemove: passkeys are renamed and removed with
// plain forms on /account, after a fresh verification; the last second
// factor stays while a client floor needs one.
func TestAccountPasskeyRenameRemove(t *testing.T) {
	e := newEnvWith(t, envOptions{localhost: true})
	ctx := t.Context()
	st := e.store()
	alice, err := st.AccountByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	c := &passkey.Credential{
		WebAuthn:  webauthn.Credential{ID: []byte("credential-of-alice-0001"), PublicKey: []byte{0xa5, 0x01, 0x02}},
		Name:      "Old phone",
		UV:        true,
		CreatedAt: e.clock.Now(),
	}
	rec, _ := c.Encode()
	if err := st.PutPasskey(ctx, alice.Subject, session.StoredPasskey{ID: c.ID(), Data: rec}); err != nil {
		t.Fatal(err)
	}

	b := e.browser()
	p := b.accountPage("alice", alicePass)
	if names := find(p.doc, hasKey("data-passkey-name")); len(names) != 1 || textOf(names[0]) != "Old phone" {
		t.Fatalf("passkeys listed: %d:\n%s", len(names), excerpt(p.body))
	}
	rename := func(p *page, name string) *page {
		return b.submit(p, p.form(t, hasAttr("data-action", "rename")), map[string]string{"name": name})
	}
	p = rename(p, "Phone")
	// A password alone is not fresh enough: verify a second factor (the
	// passkey is offered first; the authenticator app beside it).
	if !strings.Contains(p.url.Path, "/login/") || !p.has(hasAttr("data-factor", "webauthn")) || !p.has(hasAttr("data-factor", "totp")) {
		t.Fatalf("renaming with a password-only session: at %s, want the step-up with webauthn and totp:\n%s", p.url, excerpt(p.body))
	}
	p = b.get(p.url.String() + "?factor=totp")
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	if p.url.Path != "/account" {
		t.Fatalf("after verifying: at %s", p.url)
	}
	p = rename(p, "  Work\tphone \x07")
	if !strings.Contains(p.body, "Your passkey was renamed") || textOf(find(p.doc, hasKey("data-passkey-name"))[0]) != "Work phone" {
		t.Fatalf("after renaming:\n%s", excerpt(p.body))
	}

	p = b.action(p, "remove", nil)
	if !strings.Contains(p.body, "The sign-in method was removed") || p.has(hasKey("data-passkey-name")) {
		t.Fatalf("after removing the passkey:\n%s", excerpt(p.body))
	}
	acct, err := st.AccountByUsername(ctx, "alice")
	if err != nil || len(acct.Passkeys) != 0 {
		t.Fatalf("passkeys stored after removal: %v, %v", acct.Passkeys, err)
	}
	// TOTP is now the only second factor, and the "floor" client needs one.
	if p = b.action(p, "remove-totp", nil); p.status != http.StatusConflict {
		t.Fatalf("removing the last second factor: status %d", p.status)
	}
}
