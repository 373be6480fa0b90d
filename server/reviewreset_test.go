package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// Adversarial review of the self-service flows (issue 15).

// TestRecoveryLinkSecretNeverLogged: an administrator's recovery link is
// a bearer credential for an hour (it sets the password of an account
// that lost every factor). Opening it with a form the browser's cookie
// does not match (cookies cleared, another browser) answers a 403 error
// page, which logs its path with a reference id: that line must not
// carry the link's secret, which still works afterwards.
func TestRecoveryLinkSecretNeverLogged(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnvWith(t, envOptions{log: log, mutate: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:admin"}
			}
		}
	}})
	admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
	link := e.api("POST", "/api/v1/users/"+alice+"/recovery-link", admin, nil).want(t, "recovery link", 201, "").str("url")
	token := link[strings.LastIndex(link, "/")+1:]

	p := e.browser().get(link)
	other := e.browser()
	if got := other.action(p, "continue", nil); got.status != http.StatusForbidden {
		t.Fatalf("the link's form posted from another browser: %d, want 403", got.status)
	}
	if strings.Contains(buf.String(), token) {
		t.Fatalf("the recovery link's secret is in the log:\n%s", buf.String())
	}
	// It was a live secret: the link still opens.
	b := e.browser()
	if got := b.action(b.get(link), "continue", nil); !got.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("the link after the refused post: %d:\n%s", got.status, excerpt(got.body))
	}
	if strings.Contains(buf.String(), token) {
		t.Fatalf("the recovery link's secret is in the log:\n%s", buf.String())
	}
}

// TestRecoveryLinkEndsWithTheReset: an operator sent alice a recovery
// link, then (the first mail went astray, or she asked twice) another.
// Once she has set a new password with one of them, the other, still
// within its hour and never opened, must not reset her account again.
func TestRecoveryLinkEndsWithTheReset(t *testing.T) {
	e := apiEnv(t)
	admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
	first := e.api("POST", "/api/v1/users/"+alice+"/recovery-link", admin, nil).want(t, "first link", 201, "").str("url")
	second := e.api("POST", "/api/v1/users/"+alice+"/recovery-link", admin, nil).want(t, "second link", 201, "").str("url")

	b := e.browser()
	p := b.action(b.get(second), "continue", nil)
	if p = b.newPassword(p, newPass); p.status != http.StatusOK {
		t.Fatalf("new password through the second link: %d", p.status)
	}
	stray := e.browser()
	got := stray.action(stray.get(first), "continue", nil)
	if got.has(hasAttr("autocomplete", "new-password")) {
		got = stray.newPassword(got, "someone else's passphrase 7")
		t.Fatalf("an older recovery link reset the account again after the reset (status %d)", got.status)
	}
	if got.status != http.StatusGone {
		t.Fatalf("older link after the reset: %d, want 410", got.status)
	}
}

// TestResetStepUpPageSignsNobodyIn: a reset signs nobody in, so its
// second-factor page (after the emailed code) must not say "Signed in as
// alice" with a "Not you?" that signs out the browser's real session
// (of whoever else may be signed in on it).
func TestResetStepUpPageSignsNobodyIn(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	r := e.rp("spa", "")
	b := e.browser()
	p := startForgot(t, b, r.authURL(nil), "alice@example.com")
	p = b.code(p, "email", in.wait("alice@example.com", 0))
	if !codeForm(p, "totp") {
		t.Fatalf("after the email code: want the TOTP form:\n%s", excerpt(p.body))
	}
	if p.has(hasAttr("data-action", "not-you")) || strings.Contains(p.body, "Signed in as") {
		t.Fatalf("the reset's step-up page says someone is signed in:\n%s", excerpt(p.body))
	}
}
