package server_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// setActive writes an account's active flag in the database, as an
// administrator (or stepupd import) does.
func (e *env) setActive(t *testing.T, username string, active bool) {
	t.Helper()
	s := e.accounts()
	a, err := s.AccountByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(t.Context(), a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	r.Active = active
	if _, err := s.Update(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

// PRODUCT.md §9: a disabled user who enters the right password sees 403
// "This account is disabled." (role="alert"); a wrong password stays a
// 401 as for anyone. A session of the user from before cannot complete a
// flow, and the refresh token issued before no longer works.
func TestDisabledAccount(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	tk := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "bob", bobPass)
	if tk.tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	e.setActive(t, "bob", false)

	// The session from before: the next authorization is refused.
	if p := b.get(r.authURL(nil).url); p.status != http.StatusForbidden || !strings.Contains(p.body, "This account is disabled.") {
		t.Fatalf("SSO with a disabled account: %d\n%s", p.status, excerpt(p.body))
	}
	// A new browser: wrong password 401 as for anyone; the right one 403.
	nb := e.browser()
	if p := nb.login(nb.get(r.authURL(nil).url), "bob", "not the password"); p.status != http.StatusUnauthorized || strings.Contains(p.body, "disabled") {
		t.Fatalf("wrong password for a disabled account: %d\n%s", p.status, excerpt(p.body))
	}
	p := nb.login(nb.get(r.authURL(nil).url), "bob", bobPass)
	if p.status != http.StatusForbidden || !p.has(hasAttr("role", "alert")) || !strings.Contains(p.body, "This account is disabled.") {
		t.Fatalf("right password for a disabled account: %d\n%s", p.status, excerpt(p.body))
	}
	// The refresh token from before.
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tk.tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a disabled user's refresh token still works")
	}

	// Enabled again: signing in works.
	e.setActive(t, "bob", true)
	signIn(t, e, e.browser(), r, nil, "bob", bobPass)
}
