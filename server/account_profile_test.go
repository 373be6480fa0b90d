package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// /account: change password and change email (PRODUCT.md §11, issue 15
// item 3).

// TestAccountChangePassword: bob changes his password on /account. A
// refused one re-renders with 400 and an alert; the accepted one ends his
// other sessions and every grant (this browser stays signed in), his
// address is told, and only the new password signs in. Five minutes
// later the change needs a fresh verification first.
func TestAccountChangePassword(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	r := e.rp("spa", "")
	other := e.browser()
	before := signIn(t, e, other, r, map[string]string{"scope": "openid profile offline_access"}, "bob", bobPass)

	b := e.browser()
	p := b.accountPage("bob", bobPass)
	if got := textOf(find(p.doc, hasKey("data-account-email"))[0]); got != bobEmail {
		t.Fatalf("data-account-email %q", got)
	}
	form := b.action(p, "change-password", nil)
	if form.status != http.StatusOK || !form.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("change password: %d:\n%s", form.status, excerpt(form.body))
	}
	for _, bad := range []string{"1234567", "Bob", bobEmail, "iloveyou123"} {
		wantAlert(t, b.newPassword(form, bad), http.StatusBadRequest, "new password "+bad)
	}
	done := b.newPassword(form, newPass)
	if done.url.Path != "/account" || done.url.Query().Get("done") != "password" || !done.has(hasAttr("role", "status")) {
		t.Fatalf("after the change: %d at %s:\n%s", done.status, done.url, excerpt(done.body))
	}
	wantTokensEnded(t, e, "after a password change", before)
	if p := other.get(e.issuer + "/account"); !strings.Contains(p.url.Path, "/login/") {
		t.Fatalf("the other browser is still signed in: %s", p.url)
	}
	if !strings.Contains(in.waitNotice(bobEmail, 0), "password") {
		t.Fatalf("notice: %q", in.text(bobEmail))
	}
	x := e.browser()
	wantAlert(t, x.login(x.get(r.authURL(nil).url), "bob", bobPass), http.StatusUnauthorized, "old password")
	signIn(t, e, e.browser(), r, nil, "bob", newPass)

	// Not fresh any more: the form sends the user to verify first.
	e.clock.Advance(6 * time.Minute)
	p = b.get(e.issuer + "/account")
	p = b.action(p, "change-password", nil)
	if !strings.Contains(p.url.Path, "/login/") || p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("a stale session changed the password form: at %s", p.url)
	}
}

// TestAccountChangeEmail: bob changes his address: a code goes to the new
// one (a wrong code changes nothing), then the address is his and the old
// one is told. An address of another account is refused after its code.
func TestAccountChangeEmail(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	b := e.browser()
	p := b.accountPage("bob", bobPass)
	form := b.action(p, "change-email", nil)
	if !form.has(hasAttr("autocomplete", "email")) {
		t.Fatalf("change email: %d:\n%s", form.status, excerpt(form.body))
	}
	wantAlert(t, b.emailForm(form, "not an address"), http.StatusBadRequest, "bad address")
	wantAlert(t, b.emailForm(form, bobEmail), http.StatusBadRequest, "same address")
	const newAddr = "bob.new@example.com"
	code := b.emailForm(form, newAddr)
	if !codeForm(code, "email") {
		t.Fatalf("want the email code form:\n%s", excerpt(code.body))
	}
	sent := in.wait(newAddr, 0)
	wantAlert(t, b.code(code, "email", wrongCode(sent)), http.StatusUnauthorized, "wrong code")
	if got := b.emailOf("bob"); got != bobEmail {
		t.Fatalf("a wrong code changed the address to %q", got)
	}
	p = b.code(code, "email", sent)
	if p.url.Query().Get("done") != "address" || b.emailOf("bob") != newAddr {
		t.Fatalf("after the code: at %s, address %q", p.url, b.emailOf("bob"))
	}
	if txt := in.waitNotice(bobEmail, 0); !strings.Contains(txt, "b•••@example.com") || strings.Contains(txt, newAddr) {
		t.Fatalf("notice to the old address: %q", txt)
	}

	// alice's address: the code goes there, and whoever has it learns
	// only then that it is taken.
	form = b.action(p, "change-email", nil)
	code = b.emailForm(form, "alice@example.com")
	wantAlert(t, b.code(code, "email", in.wait("alice@example.com", 0)), http.StatusConflict, "taken address")
	if b.emailOf("bob") != newAddr {
		t.Fatal("the address changed to a taken one")
	}
}

func (b *browser) emailOf(user string) string {
	b.t.Helper()
	a, err := b.e.store().AccountByUsername(b.t.Context(), user)
	if err != nil {
		b.t.Fatal(err)
	}
	return a.Email
}
