package server_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/config"
)

// Forgot password as a step-up (PRODUCT.md §11, issue 15 item 2).

const newPass = "a brand new passphrase 42"

// wait returns the code of the first message to to that arrives after
// the first n (reset and registration emails are sent after the answer).
func (in *inbox) wait(to string, n int) string {
	in.t.Helper()
	in.waitNotice(to, n)
	return in.last(to)
}

// waitNotice waits for a message beyond the first n to to, and returns
// its text.
func (in *inbox) waitNotice(to string, n int) string {
	in.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for in.count(to) <= n {
		if time.Now().After(deadline) {
			in.t.Fatalf("no message %d to %s", n+1, to)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return in.text(to)
}

// text returns the text of the latest message to to.
func (in *inbox) text(to string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := len(in.msgs) - 1; i >= 0; i-- {
		if in.msgs[i]["to"] == to {
			return in.msgs[i]["text"]
		}
	}
	return ""
}

// follow clicks the link carrying data-action=action.
func (b *browser) follow(p *page, action string) *page {
	b.t.Helper()
	links := find(p.doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr("data-action", action)(n) })
	if len(links) != 1 {
		b.t.Fatalf("no link data-action=%s (status %d at %s):\n%s", action, p.status, p.url, excerpt(p.body))
	}
	href, _ := attr(links[0], "href")
	u, _ := p.url.Parse(href)
	return b.get(u.String())
}

// emailForm submits the autocomplete=email form.
func (b *browser) emailForm(p *page, email string) *page {
	b.t.Helper()
	f := p.form(b.t, hasAttr("autocomplete", "email"))
	return b.submit(p, f, map[string]string{"email": email})
}

// newPassword submits the autocomplete=new-password form.
func (b *browser) newPassword(p *page, pw string) *page {
	b.t.Helper()
	f := p.form(b.t, hasAttr("autocomplete", "new-password"))
	return b.submit(p, f, map[string]string{"password": pw})
}

// startForgot opens the sign-in page of a, follows its forgot link and
// asks for a code for email.
func startForgot(t *testing.T, b *browser, a authReq, email string) *page {
	t.Helper()
	p := b.follow(b.get(a.url), "forgot")
	if p.status != http.StatusOK {
		t.Fatalf("forgot page: %d", p.status)
	}
	p = b.emailForm(p, email)
	if p.status != http.StatusOK || !codeForm(p, "email") {
		t.Fatalf("after the address: status %d, want the email code form:\n%s", p.status, excerpt(p.body))
	}
	return p
}

var flowIDs = regexp.MustCompile(`/(reset|login)/[A-Za-z0-9_-]{16,}`)

// TestForgotPasswordNoSecondFactor: bob (password only) resets his
// password from a sign-in page: an emailed code, then the new password
// (a common one refused with 400 and an alert). Every grant he had ends;
// the reset signs nobody in; the sign-in he came from goes on with the
// new password, at 1fa. The old password no longer works.
func TestForgotPasswordNoSecondFactor(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	r := e.rp("spa", "")
	before := signIn(t, e, e.browser(), r, map[string]string{"scope": "openid profile offline_access"}, "bob", bobPass)
	wantTokensLive(t, e, "before the reset", before)

	b := e.browser()
	a := r.authURL(nil)
	p := startForgot(t, b, a, "Bob@Example.com")
	code := in.wait(bobEmail, 0)
	wantAlert(t, b.code(p, "email", wrongCode(code)), http.StatusUnauthorized, "wrong reset code")
	p = b.code(p, "email", code)
	if p.status != http.StatusOK || !p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("after the code: status %d, want the new password form:\n%s", p.status, excerpt(p.body))
	}
	for _, bad := range []string{"password123", "bob", "short", bobEmail} {
		wantAlert(t, b.newPassword(p, bad), http.StatusBadRequest, "new password "+bad)
	}
	done := b.newPassword(p, newPass)
	if done.status != http.StatusOK || !done.has(hasAttr("data-action", "continue")) {
		t.Fatalf("after the new password: %d:\n%s", done.status, excerpt(done.body))
	}
	wantTokensEnded(t, e, "after the reset", before)
	// Nobody was signed in by the reset: the sign-in asks for the password.
	p = b.follow(done, "continue")
	if !p.has(hasAttr("autocomplete", "current-password")) {
		t.Fatalf("continuing after the reset: want the sign-in form:\n%s", excerpt(p.body))
	}
	wantAlert(t, b.login(p, "bob", bobPass), http.StatusUnauthorized, "old password")
	p = b.login(p, "bob", newPass)
	wantClaims(t, r.mustExchange(a, p.result(t)), oneFA, []string{"pwd"})

	// The reset is over: its code and its page are gone.
	if p := b.get(e.issuer + "/reset/" + strings.Split(done.url.Path, "/")[2]); p.status != http.StatusBadRequest {
		t.Fatalf("reset page after completion: %d", p.status)
	}
}

// TestForgotPasswordUnknownAddress: an address without an account gets
// the same pages and statuses as one with an account, no email, and no
// code that works.
func TestForgotPasswordUnknownAddress(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	r := e.rp("spa", "")
	known := startForgot(t, e.browser(), r.authURL(nil), bobEmail)
	b := e.browser()
	unknown := startForgot(t, b, r.authURL(nil), "nobody@example.com")
	norm := func(p *page) string {
		s := flowIDs.ReplaceAllString(p.body, "/$1/ID")
		s = regexp.MustCompile(`value="[^"]{20,}"`).ReplaceAllString(s, `value="TOKEN"`)
		return strings.ReplaceAll(s, "n•••@example.com", "b•••@example.com")
	}
	if known.status != unknown.status || norm(known) != norm(unknown) {
		t.Fatalf("pages differ:\nknown %d:\n%s\nunknown %d:\n%s", known.status, norm(known), unknown.status, norm(unknown))
	}
	in.wait(bobEmail, 0)
	// The step-up pages of the two resets show nothing before the emailed
	// code either: both go back to the code page.
	knownB := e.browser()
	known = startForgot(t, knownB, r.authURL(nil), bobEmail)
	for _, c := range []struct {
		b *browser
		p *page
	}{{knownB, known}, {b, unknown}} {
		id := strings.Split(c.p.url.Path, "/")[2]
		if p := c.b.get(e.issuer + "/login/" + id); p.url.Path != "/reset/"+id || !codeForm(p, "email") {
			t.Fatalf("the step-up page of a reset before its code: at %s:\n%s", p.url, excerpt(p.body))
		}
	}
	for _, c := range []string{"000000", "123456"} {
		wantAlert(t, b.code(unknown, "email", c), http.StatusUnauthorized, "code for an unknown address")
	}
	if in.count("nobody@example.com") != 0 {
		t.Fatal("an email went to an address without an account")
	}
	// A resend within the cooldown is refused alike.
	resend := b.action(unknown, "resend", nil)
	if resend.status != http.StatusTooManyRequests {
		t.Fatalf("resend within the cooldown: %d", resend.status)
	}
}

// TestForgotPasswordAsksTheStrongestFactor: alice (TOTP) must give an
// authenticator code after the emailed one, on the usual step-up form;
// carol (phone) a texted code. Recovery codes and skipping are not
// offered.
func TestForgotPasswordAsksTheStrongestFactor(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		c.Users[len(c.Users)-1].Email = "carol@example.com"
	}))
	r := e.rp("spa", "")
	for _, tc := range []struct {
		user, email, factor string
		code                func() string
	}{
		{"alice", "alice@example.com", "totp", func() string { return e.totpCode(aliceTOTP) }},
		{"carol", "carol@example.com", "sms", func() string { return in.last(carolPhone) }},
	} {
		b := e.browser()
		a := r.authURL(nil)
		p := startForgot(t, b, a, tc.email)
		p = b.code(p, "email", in.wait(tc.email, 0))
		if !codeForm(p, tc.factor) || p.has(hasAttr("autocomplete", "new-password")) {
			t.Fatalf("%s after the email code: want the %s form:\n%s", tc.user, tc.factor, excerpt(p.body))
		}
		if p.has(hasAttr("data-factor", "recovery")) || p.has(hasAttr("data-factor", "email")) {
			t.Fatalf("%s: other factors offered in a reset:\n%s", tc.user, excerpt(p.body))
		}
		// The new password cannot be set before the second factor.
		resetPath := strings.Replace(p.url.Path, "/login/", "/reset/", 1)
		skip := b.get(e.issuer + resetPath)
		if skip.has(hasAttr("autocomplete", "new-password")) {
			t.Fatalf("%s: the password form was shown before the second factor", tc.user)
		}
		wantAlert(t, b.code(p, tc.factor, "000000"), http.StatusUnauthorized, tc.user+" wrong second factor")
		p = b.code(p, tc.factor, tc.code())
		if !p.has(hasAttr("autocomplete", "new-password")) {
			t.Fatalf("%s after the %s code: want the new password form:\n%s", tc.user, tc.factor, excerpt(p.body))
		}
		p = b.newPassword(p, newPass)
		if p.status != http.StatusOK {
			t.Fatalf("%s: new password: %d", tc.user, p.status)
		}
		// The sign-in goes on from the start: password, then (alice asked
		// only 1fa) nothing more.
		p = b.login(b.follow(p, "continue"), tc.user, newPass)
		wantClaims(t, r.mustExchange(a, p.result(t)), oneFA, []string{"pwd"})
	}
}

// TestForgotPasswordLockout: wrong reset codes use the account's one
// failure budget: once it is spent, even the right code is refused
// (answered like any refused reset code, 401: see
// TestForgotPasswordLockedAccountLooksUnknown), and the password at
// sign-in with 429.
func TestForgotPasswordLockout(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.MFA.Lockout.MaxFailures = 3 }))
	r := e.rp("spa", "")
	b := e.browser()
	p := startForgot(t, b, r.authURL(nil), bobEmail)
	code := in.wait(bobEmail, 0)
	for range 3 {
		wantAlert(t, b.code(p, "email", wrongCode(code)), http.StatusUnauthorized, "wrong code")
	}
	after := b.code(p, "email", code)
	wantAlert(t, after, http.StatusUnauthorized, "right code after the budget")
	if !codeForm(after, "email") || after.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("the right code after the budget went on:\n%s", excerpt(after.body))
	}
	other := e.browser()
	wantAlert(t, other.login(other.get(r.authURL(nil).url), "bob", bobPass), http.StatusTooManyRequests, "sign-in after the budget")
}

// TestForgotPasswordLockedAccountLooksUnknown: bob's account is locked
// out by wrong passwords at sign-in (anyone can do that knowing his
// username). A reset for his address must still answer a code exactly
// as a reset for an address without an account does (401, the same
// page, no Retry-After), or the lockout tells that the address has an
// account; and the lockout still holds: even his right code does not go
// on. An unknown address whose own budget is spent answers alike.
func TestForgotPasswordLockedAccountLooksUnknown(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.MFA.Lockout.MaxFailures = 3 }))
	r := e.rp("spa", "")
	attacker := e.browser()
	for range 3 {
		attacker.login(attacker.get(r.authURL(nil).url), "bob", "not bobs password")
	}
	wantAlert(t, attacker.login(attacker.get(r.authURL(nil).url), "bob", bobPass), http.StatusTooManyRequests, "bob locked out")

	kb, ub := e.browser(), e.browser()
	known := startForgot(t, kb, r.authURL(nil), bobEmail)
	unknown := startForgot(t, ub, r.authURL(nil), "nobody@example.com")
	code := in.wait(bobEmail, 0)
	norm := func(p *page) string {
		s := flowIDs.ReplaceAllString(p.body, "/$1/ID")
		s = regexp.MustCompile(`value="[^"]{20,}"`).ReplaceAllString(s, `value="TOKEN"`)
		return strings.ReplaceAll(s, "n•••@example.com", "b•••@example.com")
	}
	same := func(what string, k, u *page) {
		t.Helper()
		wantAlert(t, k, http.StatusUnauthorized, what+" (bob, locked)")
		wantAlert(t, u, http.StatusUnauthorized, what+" (unknown)")
		if k.status != u.status || norm(k) != norm(u) || k.header.Get("Retry-After") != u.header.Get("Retry-After") {
			t.Fatalf("%s: answers differ:\nlocked %d %q:\n%s\nunknown %d %q:\n%s", what,
				k.status, k.header.Get("Retry-After"), norm(k), u.status, u.header.Get("Retry-After"), norm(u))
		}
	}
	same("a wrong code", kb.code(known, "email", wrongCode(code)), ub.code(unknown, "email", wrongCode(code)))
	// The unknown address spends its own budget (3 failures); bob's was
	// spent before: both are over it now, and still answer alike.
	for range 3 {
		ub.code(unknown, "email", wrongCode(code))
	}
	same("a code over the budget", kb.code(known, "email", wrongCode(code)), ub.code(unknown, "email", wrongCode(code)))
	// The lockout applies: bob's right code does not lead on.
	right := kb.code(known, "email", code)
	wantAlert(t, right, http.StatusUnauthorized, "bob's right code while locked")
	if !codeForm(right, "email") || right.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("a locked account's reset went on:\n%s", excerpt(right.body))
	}
	id := strings.Split(right.url.Path, "/")[2]
	if p := kb.get(e.issuer + "/reset/" + id); p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatal("a locked account's reset offers a new password")
	}
}

// TestAdminRecoveryLink: an operator gives alice, who lost every factor,
// a one-time link. Its page shows nothing of her until she continues;
// then she chooses a new password, her factors are removed, every
// session and grant ends, and signing in with the new password makes her
// enroll a new second factor before /account. The link works once, and
// not after an hour.
func TestAdminRecoveryLink(t *testing.T) {
	e := apiEnv(t)
	admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
	r := e.rp("spa", "")
	before := signIn(t, e, e.browser(), r, map[string]string{"scope": "openid profile offline_access"}, "alice", alicePass)

	e.api("POST", "/api/v1/users/nobody/recovery-link", admin, nil).want(t, "unknown user", 404, "user_not_found")
	e.api("POST", "/api/v1/users/"+alice+"/recovery-link", "", nil).want(t, "no token", 401, "")
	res := e.api("POST", "/api/v1/users/"+alice+"/recovery-link", admin, nil).want(t, "recovery link", 201, "")
	link := res.str("url")
	if !strings.HasPrefix(link, e.issuer+"/reset/link/") {
		t.Fatalf("link %q", link)
	}
	b := e.browser()
	p := b.get(link)
	if p.status != http.StatusOK || strings.Contains(p.body, "alice") || p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("the link's page: %d:\n%s", p.status, excerpt(p.body))
	}
	p = b.action(p, "continue", nil)
	if !p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("after continuing: %d, want the new password form:\n%s", p.status, excerpt(p.body))
	}
	// Used up: a second opening fails, in any browser.
	if again := e.browser(); again.action(again.get(link), "continue", nil).status != http.StatusGone {
		t.Fatal("the link opened twice")
	}
	wantAlert(t, b.newPassword(p, "alice"), http.StatusBadRequest, "username as password")
	p = b.newPassword(p, newPass)
	if p.status != http.StatusOK {
		t.Fatalf("new password: %d", p.status)
	}
	wantTokensEnded(t, e, "after the recovery link", before)
	if a, _ := e.store().GetAccount(t.Context(), alice); a.TOTPSecret != "" {
		t.Fatal("the lost TOTP app is still a factor")
	}
	p = b.follow(p, "continue")
	p = b.login(p, "alice", newPass)
	if !p.has(hasKey("data-totp-secret")) || p.has(hasAttr("data-action", "cancel")) {
		t.Fatalf("after signing in: want TOTP enrollment without skip:\n%s", excerpt(p.body))
	}
	secret := textOf(find(p.doc, hasKey("data-totp-secret"))[0])
	p = b.code(p, "totp", e.totpCode(strings.ReplaceAll(secret, " ", "")))
	for p.has(hasAttr("data-action", "continue")) { // recovery codes, shown once
		p = b.follow(p, "continue")
	}
	if p.url.Path != "/account" {
		t.Fatalf("after enrolling: at %s:\n%s", p.url, excerpt(p.body))
	}

	// A link not opened within the hour is dead.
	late := e.api("POST", "/api/v1/users/"+alice+"/recovery-link", admin, nil).want(t, "second link", 201, "").str("url")
	e.clock.Advance(61 * time.Minute)
	if lb := e.browser(); lb.action(lb.get(late), "continue", nil).status != http.StatusGone {
		t.Fatal("an expired link opened")
	}
}

// TestForgotPasswordCaps: the per-address send cap holds for addresses
// with and without an account alike, and a lower per-user cap does not
// make addresses with an account stand out.
func TestForgotPasswordCaps(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.MFA.Codes.PerDestination, c.MFA.Codes.PerUser = 2, 1 }))
	r := e.rp("spa", "")
	for _, email := range []string{bobEmail, "nobody@example.com"} {
		for i := range 3 {
			b := e.browser()
			p := b.emailForm(b.follow(b.get(r.authURL(nil).url), "forgot"), email)
			want := http.StatusOK
			if i == 2 {
				want = http.StatusTooManyRequests
			}
			if p.status != want {
				t.Fatalf("%s send %d: %d, want %d", email, i+1, p.status, want)
			}
		}
	}
}

// TestSelfServiceInTheSignInsLanguage: the forgot-password and
// registration pages opened from a sign-in asked with ui_locales=de, and
// every page after them, the step-up included, are German, and so is the
// emailed code.
func TestSelfServiceInTheSignInsLanguage(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, openRegistration(in))
	r := e.rp("spa", "")
	de := func(p *page, what string) {
		t.Helper()
		if !strings.Contains(p.body, `<html lang="de"`) {
			t.Fatalf("%s: not German (status %d at %s):\n%s", what, p.status, p.url, excerpt(p.body))
		}
	}
	b := e.browser()
	login := b.get(r.authURL(map[string]string{"ui_locales": "de"}).url)
	de(login, "sign-in page")
	p := b.follow(login, "forgot")
	de(p, "forgot page")
	p = b.emailForm(p, "alice@example.com")
	de(p, "reset code page")
	code := in.wait("alice@example.com", 0)
	if txt := in.text("alice@example.com"); !strings.Contains(txt, "Bestätigungscode") {
		t.Fatalf("the code email is not German: %q", txt)
	}
	p = b.code(p, "email", code)
	de(p, "second factor page")
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	de(p, "new password page")
	wantAlert(t, b.newPassword(p, "alice"), http.StatusBadRequest, "refused password")
	de(b.newPassword(p, newPass), "done page")

	p = b.follow(b.get(r.authURL(map[string]string{"ui_locales": "de"}).url), "register")
	de(p, "registration page")
	de(b.emailForm(p, "ida@example.com"), "registration code page")
}

// TestForgotPasswordFactorEnrolledMeanwhile: a second factor enrolled
// after the reset began is asked for too: the reset is never weaker than
// a step-up at the time the password is set.
func TestForgotPasswordFactorEnrolledMeanwhile(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	b := e.browser()
	p := startForgot(t, b, e.rp("spa", "").authURL(nil), bobEmail)
	p = b.code(p, "email", in.wait(bobEmail, 0))
	if !p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("bob has no second factor: want the password form:\n%s", excerpt(p.body))
	}
	if err := e.store().SetTOTPSecret(t.Context(), e.subject("bob"), aliceTOTP); err != nil {
		t.Fatal(err)
	}
	wantTOTP := func(p *page, what string) {
		t.Helper()
		if !codeForm(p, "totp") || p.has(hasAttr("autocomplete", "new-password")) {
			t.Fatalf("%s: want the TOTP form:\n%s", what, excerpt(p.body))
		}
	}
	wantTOTP(b.get(p.url.String()), "reloading the password page")
	if got := b.newPassword(p, newPass); got.has(hasAttr("data-action", "continue")) {
		t.Fatalf("the password was set without the new factor:\n%s", excerpt(got.body))
	}
}
