package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/server/obs"
)

// The code factors on /account: the user's own email_mfa switch and their
// phone, each confirmed by a code sent there before anything is stored.

const bobEmail = "bob@example.com"

func (b *browser) emailMFA(user string) bool {
	b.t.Helper()
	a, err := b.e.store().AccountByUsername(b.t.Context(), user)
	if err != nil {
		b.t.Fatal(err)
	}
	return a.EmailMFA
}

func (b *browser) phoneOf(user string) string {
	b.t.Helper()
	a, err := b.e.store().AccountByUsername(b.t.Context(), user)
	if err != nil {
		b.t.Fatal(err)
	}
	return a.Phone
}

// TestAccountEmailMFAOn: bob (password only) is not offered email codes
// for a multi-factor step-up; he turns them on at /account with the code
// emailed to him (a wrong code and another session's code change
// nothing); from then on password + email code meets multi-factor with
// amr pwd, otp, mfa. Under a client floor he may not turn off his only
// second factor (409).
func TestAccountEmailMFAOn(t *testing.T) {
	in := newInbox(t)
	e := newEnvWith(t, envOptions{mutate: withCodes(in), metrics: obs.NewMetrics()})
	r := e.rp("spa", "")

	// Without the switch, email is no factor: the step-up offers to enroll
	// one, sends no email, and skipping gives the honest 1fa.
	b0 := e.browser()
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b0.login(b0.get(a.url), "bob", bobPass)
	if codeForm(p, "email") || len(find(p.doc, hasAttr("data-factor", "email"))) != 0 || in.count(bobEmail) != 0 {
		t.Fatalf("email offered before bob turned it on (%d emails):\n%s", in.count(bobEmail), excerpt(p.body))
	}
	wantClaims(t, r.mustExchange(a, b0.cancel(p).result(t)), oneFA, []string{"pwd"})

	b := e.browser()
	p = b.accountPage("bob", bobPass)
	if !p.has(hasAttr("data-email-mfa", "off")) {
		t.Fatalf("account page lacks the email switch (off):\n%s", excerpt(p.body))
	}
	p = b.action(p, "email-on", nil)
	if !codeForm(p, "email") || !p.has(hasAttr("data-action", "cancel")) || in.count(bobEmail) != 1 {
		t.Fatalf("turning email codes on: want the email code form and one email (got %d):\n%s", in.count(bobEmail), excerpt(p.body))
	}
	if text := textOf(p.doc); !strings.Contains(text, "b•••@example.com") {
		t.Fatalf("the code page should name the address masked:\n%s", excerpt(p.body))
	}
	mine := in.last(bobEmail)
	codePage := p

	// A wrong code: 401 with an alert, and nothing changes.
	wantAlert(t, b.code(codePage, "email", wrongCode(mine)), http.StatusUnauthorized, "wrong email code")
	if b.emailMFA("bob") {
		t.Fatal("a wrong code turned email codes on")
	}
	// A code sent to the same address for another session of bob's is
	// worth nothing here.
	b2 := e.browser()
	p2 := b2.action(b2.accountPage("bob", bobPass), "email-on", nil)
	if !codeForm(p2, "email") || in.count(bobEmail) != 2 {
		t.Fatalf("second session: want a second email (got %d)", in.count(bobEmail))
	}
	theirs := in.last(bobEmail)
	if theirs == mine {
		t.Skip("both sessions drew the same code (one in a million)")
	}
	wantAlert(t, b.code(codePage, "email", theirs), http.StatusUnauthorized, "another session's code")
	if b.emailMFA("bob") {
		t.Fatal("another session's code turned email codes on")
	}

	p = b.code(codePage, "email", mine)
	if p.url.Path != "/account" || !p.has(hasAttr("data-email-mfa", "on")) || !strings.Contains(p.body, "Email codes are on") {
		t.Fatalf("after the right code: at %s:\n%s", p.url, excerpt(p.body))
	}
	if !b.emailMFA("bob") {
		t.Fatal("email codes not on in the store")
	}
	// A restart seeds the configured users again: bob's config has no
	// email_mfa, which keeps his own choice.
	if _, err := server.Seed(t.Context(), e.store(), e.cfg.Users); err != nil {
		t.Fatal(err)
	}
	if !b.emailMFA("bob") {
		t.Fatal("seeding the config again turned bob's email codes off")
	}

	// A new browser: password, then the email code, meets multi-factor.
	b3 := e.browser()
	e.clock.Advance(time.Minute)
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b3.login(b3.get(a.url), "bob", bobPass)
	if !codeForm(p, "email") || in.count(bobEmail) != 3 {
		t.Fatalf("step-up after turning email on: want the email form and a third email (got %d):\n%s", in.count(bobEmail), excerpt(p.body))
	}
	wantClaims(t, r.mustExchange(a, b3.code(p, "email", in.last(bobEmail)).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// The floor client needs a second factor: the only one stays.
	p = b.action(b.get(e.issuer+"/account"), "email-off", nil)
	wantAlert(t, p, http.StatusConflict, "turning off the last second factor under a floor")
	if !b.emailMFA("bob") {
		t.Fatal("the last second factor was turned off under a floor")
	}
	m := scrape(t, e)
	for name, want := range map[string]float64{
		`stepup_enrollments_total{factor="email"}`:              1,
		`stepup_codes_sent_total{factor="email",result="sent"}`: 3,
		`stepup_failures_total{reason="bad_code"}`:              2,
		`stepup_audit_events_total{event="factor.removed"}`:     0,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// wrongCode is a six-digit code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestAccountEmailMFAOff: without a floor, turning email codes off is a
// factor removal that needs a fresh verification (with the email code
// itself) and then takes email out of the step-up.
func TestAccountEmailMFAOff(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.Clients = c.Clients[:2] /* no floor */ }))
	acct, err := e.store().AccountByUsername(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	// bob's own choice (as the email-on confirmation stores it).
	if err := e.store().SetEmailMFA(t.Context(), acct.Subject, true); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	p := b.get(e.issuer + "/account")
	p = b.login(p, "bob", bobPass)
	if !p.has(hasAttr("data-email-mfa", "on")) || !p.has(hasAttr("data-action", "email-off")) {
		t.Fatalf("the account page should show email codes on, with a control to turn them off:\n%s", excerpt(p.body))
	}
	// A password alone is not fresh enough to remove a factor of a user
	// who has a second one: the email code is asked first.
	p = b.action(p, "email-off", nil)
	if !strings.Contains(p.url.Path, "/login/") || !codeForm(p, "email") {
		t.Fatalf("turning email off after a password-only sign-in: at %s, want the email code form:\n%s", p.url, excerpt(p.body))
	}
	if !b.emailMFA("bob") {
		t.Fatal("email codes turned off without a fresh verification")
	}
	p = b.code(p, "email", in.last(bobEmail))
	p = b.action(p, "email-off", nil)
	if p.url.Path != "/account" || !p.has(hasAttr("data-email-mfa", "off")) || b.emailMFA("bob") {
		t.Fatalf("turning email off: at %s (email_mfa %v):\n%s", p.url, b.emailMFA("bob"), excerpt(p.body))
	}
	sent := in.count(bobEmail)
	r := e.rp("spa", "")
	// The email code this session holds no longer counts, not even by
	// single sign-on.
	a0 := r.authURL(map[string]string{"acr_values": mfaACR})
	if p0 := b.get(a0.url); p0.loc != nil || codeForm(p0, "email") {
		t.Fatalf("after turning email off, the session's email code still met multi-factor (at %v)", p0.loc)
	}
	b2 := e.browser()
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p = b2.login(b2.get(a.url), "bob", bobPass)
	if codeForm(p, "email") || in.count(bobEmail) != sent {
		t.Fatalf("email still offered after turning it off:\n%s", excerpt(p.body))
	}
	wantClaims(t, r.mustExchange(a, b2.cancel(p).result(t)), oneFA, []string{"pwd"})
}

// TestAccountReplacePhone: carol replaces her phone on /account. The new
// number gets a code and is stored only once that comes back; then an SMS
// step-up goes to the new number, the old one receives nothing more, and
// under the floor the phone, her only second factor, cannot be removed.
func TestAccountReplacePhone(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	const newPhone = "+15555550199"
	b := e.browser()
	p := b.accountPage("carol", carolPass)
	if got, _ := attr(find(p.doc, hasKey("data-phone"))[0], "data-phone"); got != "+1••••••0123" {
		t.Fatalf("account page shows the phone as %q, want it masked", got)
	}
	// Changing the phone needs a fresh second factor: her current phone.
	p = b.submit(p, p.form(t, hasAttr("data-enroll", "sms")), map[string]string{"phone": "+1 (555) 555-0199"})
	if !strings.Contains(p.url.Path, "/login/") || !codeForm(p, "sms") || in.count(carolPhone) != 1 {
		t.Fatalf("replacing the phone after a password-only sign-in: at %s, want the SMS form:\n%s", p.url, excerpt(p.body))
	}
	p = b.code(p, "sms", in.last(carolPhone))
	if p.url.Path != "/account" {
		t.Fatalf("after verifying: at %s", p.url)
	}
	old := in.count(carolPhone)

	// An invalid number is refused with an alert, and nothing is texted.
	wantAlert(t, b.submit(p, p.form(t, hasAttr("data-enroll", "sms")), map[string]string{"phone": "555"}), http.StatusBadRequest, "invalid number")
	p = b.submit(p, p.form(t, hasAttr("data-enroll", "sms")), map[string]string{"phone": "+1 (555) 555-0199"})
	if !codeForm(p, "sms") || in.count(newPhone) != 1 || !p.has(hasAttr("data-action", "cancel")) {
		t.Fatalf("after entering the new number: want the SMS code form and one text to it (got %d):\n%s", in.count(newPhone), excerpt(p.body))
	}
	if got := b.phoneOf("carol"); got != carolPhone {
		t.Fatalf("the new number was stored (%q) before it was verified", got)
	}
	code := in.last(newPhone)
	wantAlert(t, b.code(p, "sms", wrongCode(code)), http.StatusUnauthorized, "wrong SMS code")
	if got := b.phoneOf("carol"); got != carolPhone {
		t.Fatalf("a wrong code stored the new number (%q)", got)
	}
	// A resend right away is within the cooldown.
	wantAlert(t, b.submit(p, p.form(t, hasAttr("data-action", "resend")), nil), http.StatusTooManyRequests, "resend within the cooldown")
	p = b.code(p, "sms", code)
	if p.url.Path != "/account" || !strings.Contains(p.body, "Your phone number is verified") {
		t.Fatalf("after the right code: at %s:\n%s", p.url, excerpt(p.body))
	}
	if got, _ := attr(find(p.doc, hasKey("data-phone"))[0], "data-phone"); got != "+1••••••0199" {
		t.Fatalf("account page shows %q, want the new number masked", got)
	}
	if got := b.phoneOf("carol"); got != newPhone {
		t.Fatalf("stored phone %q, want %q", got, newPhone)
	}

	// A step-up in a new browser texts the new number only.
	r := e.rp("spa", "")
	b2 := e.browser()
	e.clock.Advance(time.Minute)
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p2 := b2.login(b2.get(a.url), "carol", carolPass)
	if !codeForm(p2, "sms") || in.count(newPhone) != 2 {
		t.Fatalf("step-up: want the SMS form and a text to the new number (got %d):\n%s", in.count(newPhone), excerpt(p2.body))
	}
	wantClaims(t, r.mustExchange(a, b2.code(p2, "sms", in.last(newPhone)).result(t)), mfaACR, []string{"pwd", "sms", "mfa"})
	if in.count(carolPhone) != old {
		t.Fatalf("the old number received %d more texts", in.count(carolPhone)-old)
	}

	// The floor client needs a second factor: the phone stays.
	p = b.action(b.get(e.issuer+"/account"), "remove-phone", nil)
	wantAlert(t, p, http.StatusConflict, "removing the last second factor under a floor")
	if got := b.phoneOf("carol"); got != newPhone {
		t.Fatalf("phone after a refused removal: %q", got)
	}
}

// TestAccountAddAndRemovePhone: without a floor, bob adds a phone on
// /account (his first second factor), then removes it.
func TestAccountAddAndRemovePhone(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.Clients = c.Clients[:2] }))
	const phone = "+15555550188"
	b := e.browser()
	p := b.accountPage("bob", bobPass)
	if len(find(p.doc, hasAttr("data-action", "remove-phone"))) != 0 {
		t.Fatal("a remove control for a phone bob does not have")
	}
	p = b.submit(p, p.form(t, hasAttr("data-enroll", "sms")), map[string]string{"phone": phone})
	f := p.form(t, hasAttr("data-factor", "sms"))
	if len(find(f, func(n *html.Node) bool { v, _ := attr(n, "name"); return v == "pending" })) != 1 {
		t.Fatalf("the code form does not carry the pending number:\n%s", excerpt(p.body))
	}
	p = b.code(p, "sms", in.last(phone))
	if b.phoneOf("bob") != phone || !p.has(hasAttr("data-action", "remove-phone")) {
		t.Fatalf("phone not added: %q\n%s", b.phoneOf("bob"), excerpt(p.body))
	}
	p = b.action(p, "remove-phone", nil)
	if p.status != http.StatusOK || p.url.Path != "/account" || b.phoneOf("bob") != "" {
		t.Fatalf("removing the phone: status %d at %s, stored %q", p.status, p.url, b.phoneOf("bob"))
	}
	if !p.has(hasAttr("data-phone", "")) {
		t.Fatalf("account page after removal:\n%s", excerpt(p.body))
	}
}

// TestAccountEmailMFARequiredByConfig: users[].email_mfa: true is the
// operator's requirement: the account page offers no way to turn email
// codes off, and a forged request to do so is refused with 409.
func TestAccountEmailMFARequiredByConfig(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		c.Clients = c.Clients[:2] // no floor: only the config keeps email on
		for i := range c.Users {
			if c.Users[i].Username == "bob" {
				c.Users[i].EmailMFA = true
			}
		}
	}))
	b := e.browser()
	p := b.login(b.get(e.issuer+"/account"), "bob", bobPass)
	p = b.action(p, "verify", nil) // fresh: password and the email code
	p = b.code(p, "email", in.last(bobEmail))
	if p.url.Path != "/account" || !p.has(hasAttr("data-email-mfa", "on")) || !p.has(hasKey("data-email-required")) || p.has(hasAttr("data-action", "email-off")) {
		t.Fatalf("config email_mfa: true: want email on, marked required, without an off control:\n%s", excerpt(p.body))
	}
	// The same form as any account change, aimed at the off endpoint.
	f := p.form(t, hasAttr("action", "/account/recovery"))
	for i, a := range f.Attr {
		if a.Key == "action" {
			f.Attr[i].Val = "/account/email/off"
		}
	}
	wantAlert(t, b.submit(p, f, nil), http.StatusConflict, "turning off email codes the config requires")
	if !b.emailMFA("bob") {
		t.Fatal("email codes required by the config were turned off")
	}
}
