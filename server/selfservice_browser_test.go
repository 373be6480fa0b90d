package server_test

import (
	"fmt"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// Issue 15 item 8: the self-service pages driven by a real Chromium
// (registration, forgot password with each second factor, change email),
// with the hooks of PRODUCT.md §11 as a script would use them.

// typeAndSubmit fills the input sel and submits its form.
func (b *browserEnv) typeAndSubmit(sel, value string) {
	b.t.Helper()
	b.fill(sel, value)
	b.submitAndWait(sel)
}

// emailCode waits for the emailed-code form and answers it with the code
// the inbox got for to after its first n messages.
func (b *browserEnv) emailCode(in *inbox, to string, n int) {
	b.t.Helper()
	b.waitFor("the email code form", `!!document.querySelector('form[data-factor="email"] input[autocomplete="one-time-code"]')`)
	b.typeAndSubmit(`form[data-factor="email"] input[autocomplete="one-time-code"]`, in.wait(to, n))
}

// checkHere is checkAt for a page that answered a POST, which a reload
// would send again (another code, a cooldown): each width is checked
// without reloading.
func (b *browserEnv) checkHere(name string) {
	b.t.Helper()
	for _, w := range uxWidths {
		b.viewport(w)
		b.checkPage(name, w)
	}
	b.viewport(uxWidths[0])
}

func (b *browserEnv) newPassword(pw string) {
	b.t.Helper()
	b.waitFor("the new password form", `!!document.querySelector('input[autocomplete="new-password"]')`)
	b.typeAndSubmit(`input[autocomplete="new-password"]`, pw)
}

func TestBrowserRegistration(t *testing.T) {
	in := newInbox(t)
	b := newBrowserEnv(t, true, openRegistration(in))
	r, a := b.authorize(nil)
	b.onPath("/login/")
	b.click(`a[data-action="register"]`)
	b.onPath("/register")
	b.checkAt("register")
	b.typeAndSubmit(`input[autocomplete="email"]`, "hana@example.com")
	b.waitFor("the email code form", `!!document.querySelector('form[data-factor="email"]')`)
	b.checkHere("register-code")
	b.emailCode(in, "hana@example.com", 0)
	b.waitFor("the new password form", `!!document.querySelector('input[autocomplete="new-password"]')`)
	b.checkHere("register-password")
	// A common password is refused with the reason in an alert.
	b.typeAndSubmit(`input[autocomplete="new-password"]`, "password1")
	b.waitFor("the refusal", `!!document.querySelector('[role="alert"]') && !!document.querySelector('input[autocomplete="new-password"]')`)
	b.checkHere("register-password-refused")
	b.newPassword(newPass)
	b.atRP()
	wantClaims(t, r.mustExchange(a, b.cb.last(t)), oneFA, []string{"pwd"})
}

// TestBrowserForgotPassword: a reset asks, after the emailed code, for
// the account's strongest second factor: bob's passkey (through the
// virtual authenticator), alice's authenticator app, carol's phone. Each
// then signs in with the new password and completes the sign-in the
// reset began from.
func TestBrowserForgotPassword(t *testing.T) {
	in := newInbox(t)
	b := newBrowserEnv(t, true, withCodes(in, func(c *config.Config) {
		c.Users[len(c.Users)-1].Email = "carol@example.com"
	}))
	b.enrollOnAccount("bob", bobPass, "", "Laptop")
	for _, tc := range []struct {
		user, email, factor string
		answer              func()
	}{
		{"bob", bobEmail, "webauthn", func() {
			b.click(`form[data-factor="webauthn"] [data-action="passkey"]`)
		}},
		{"alice", "alice@example.com", "totp", func() {
			b.typeAndSubmit(`form[data-factor="totp"] input[autocomplete="one-time-code"]`, b.totpCode(aliceTOTP))
		}},
		{"carol", "carol@example.com", "sms", func() {
			b.typeAndSubmit(`form[data-factor="sms"] input[autocomplete="one-time-code"]`, in.last(carolPhone))
		}},
	} {
		b.clearCookies()
		r, a := b.authorize(nil)
		b.onPath("/login/")
		b.click(`a[data-action="forgot"]`)
		b.onPath("/reset")
		first := tc.factor == "webauthn"
		if first {
			b.checkAt("forgot")
		}
		n := in.count(tc.email)
		b.typeAndSubmit(`input[autocomplete="email"]`, tc.email)
		if first {
			b.waitFor("the email code form", `!!document.querySelector('form[data-factor="email"]')`)
			b.checkAt("reset-code")
		}
		b.emailCode(in, tc.email, n)
		b.onPath("/login/")
		b.waitFor(tc.factor+" form", fmt.Sprintf(`!!document.querySelector('form[data-factor=%q]')`, tc.factor))
		if first {
			b.checkAt("reset-passkey")
		}
		tc.answer()
		if first {
			b.waitFor("the new password form", `!!document.querySelector('input[autocomplete="new-password"]')`)
			b.checkAt("reset-password")
		}
		b.newPassword(newPass)
		b.waitFor("the done page", `!!document.querySelector('[data-action="continue"]')`)
		if first {
			b.checkHere("reset-done")
		}
		b.click(`[data-action="continue"]`)
		b.onPath("/login/")
		b.signIn(tc.user, newPass)
		b.atRP()
		wantClaims(t, r.mustExchange(a, b.cb.last(t)), oneFA, []string{"pwd"})
	}
}

func TestBrowserChangeEmail(t *testing.T) {
	in := newInbox(t)
	b := newBrowserEnv(t, true, withCodes(in))
	b.navigate(b.issuer + "/account")
	b.onPath("/login/")
	b.signIn("bob", bobPass)
	b.onPath("/account")
	b.click(`[data-action="change-email"]`)
	b.waitFor("the address form", `!!document.querySelector('input[autocomplete="email"]')`)
	b.checkHere("account-email")
	b.typeAndSubmit(`input[autocomplete="email"]`, "bob.new@example.com")
	b.waitFor("the email code form", `!!document.querySelector('form[data-factor="email"]')`)
	b.checkHere("account-email-code")
	b.emailCode(in, "bob.new@example.com", 0)
	b.onPath("/account")
	b.waitFor("the new address", `location.search.includes("done=address") && document.querySelector("[data-account-email]").textContent === "bob.new@example.com"`)
	if txt := in.waitNotice(bobEmail, 0); txt == "" {
		t.Fatal("the old address was not told")
	}
}
