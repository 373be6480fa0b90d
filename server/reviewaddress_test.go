package server_test

import (
	"net/http"
	"testing"
	"time"
)

// TestForgotPasswordAfterAddressChange: whoever reads bob's old mailbox
// started a reset for it; bob then moves his account to a new address
// (as someone who fears that mailbox would). The code sent to the old
// address must no longer reset his password, nor may a resend send
// another one there.
func TestForgotPasswordAfterAddressChange(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	r := e.rp("spa", "")
	attacker := e.browser()
	p := startForgot(t, attacker, r.authURL(nil), bobEmail)
	code := in.wait(bobEmail, 0)

	bob := e.browser()
	acc := bob.accountPage("bob", bobPass)
	const newAddr = "bob.new@example.com"
	cf := bob.emailForm(bob.action(acc, "change-email", nil), newAddr)
	if done := bob.code(cf, "email", in.wait(newAddr, 0)); bob.emailOf("bob") != newAddr {
		t.Fatalf("address change failed: %d at %s", done.status, done.url)
	}
	sent := in.count(bobEmail)

	got := attacker.code(p, "email", code)
	if got.has(hasAttr("autocomplete", "new-password")) {
		got = attacker.newPassword(got, newPass)
		t.Fatalf("the old address's code reset the password of the moved account (status %d)", got.status)
	}
	if got.status != http.StatusUnauthorized {
		t.Fatalf("old address's code after the change: %d, want 401 like any wrong code", got.status)
	}
	e.clock.Advance(2 * time.Minute) // past the resend cooldown
	attacker.action(p, "resend", nil)
	time.Sleep(100 * time.Millisecond) // mails go after the answer
	if in.count(bobEmail) != sent {
		t.Fatal("a reset code went to the account's former address")
	}
}
