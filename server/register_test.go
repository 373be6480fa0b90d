package server_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// Registration (PRODUCT.md §11, issue 15 item 1).

func openRegistration(in *inbox, more ...func(*config.Config)) func(*config.Config) {
	return withCodes(in, append([]func(*config.Config){func(c *config.Config) { c.Registration = "open" }}, more...)...)
}

// register runs the registration pages from the sign-in page p up to the
// password form.
func register(t *testing.T, b *browser, in *inbox, p *page, email string) *page {
	t.Helper()
	to := strings.ToLower(email)
	n := in.count(to)
	p = b.follow(p, "register")
	p = b.emailForm(p, email)
	if !codeForm(p, "email") {
		t.Fatalf("after the address: %d, want the code form:\n%s", p.status, excerpt(p.body))
	}
	code := in.wait(to, n)
	wantAlert(t, b.code(p, "email", wrongCode(code)), http.StatusUnauthorized, "wrong registration code")
	p = b.code(p, "email", code)
	if !p.has(hasAttr("autocomplete", "new-password")) {
		t.Fatalf("after the code: %d, want the password form:\n%s", p.status, excerpt(p.body))
	}
	return p
}

// TestRegistrationOff: by default there is no link and no page.
func TestRegistrationOff(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	b := e.browser()
	p := b.get(e.rp("spa", "").authURL(nil).url)
	if p.has(hasAttr("data-action", "register")) || !p.has(hasAttr("data-action", "forgot")) {
		t.Fatalf("login page links:\n%s", excerpt(p.body))
	}
	if p := b.get(e.issuer + "/register"); p.status != http.StatusNotFound {
		t.Fatalf("/register with registration off: %d", p.status)
	}
}

// TestRegistration: a new address is verified by a code before the
// account exists; the password is held to the policy; the sign-in the
// user came from then completes with the new account at 1fa (pwd), as a
// relying party sees it through go-oidc. From a client that forces
// enrollment, asking multi-factor, the new account must enroll a second
// factor.
func TestRegistration(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, openRegistration(in))
	r := e.rp("spa", "")
	b := e.browser()
	a := r.authURL(nil)
	p := register(t, b, in, b.get(a.url), "Dave@Example.com")
	wantAlert(t, b.newPassword(p, "dave@example.com"), http.StatusBadRequest, "the address as password")
	wantAlert(t, b.newPassword(p, "letmein1"), http.StatusBadRequest, "a common password")
	p = b.newPassword(p, newPass)
	tk := r.mustExchange(a, p.result(t))
	wantClaims(t, tk, oneFA, []string{"pwd"})
	acct, err := e.store().AccountByUsername(t.Context(), "dave@example.com")
	if err != nil || acct.Subject != tk.claims.Sub || acct.Email != "dave@example.com" {
		t.Fatalf("account %+v (%v), token sub %q", acct, err, tk.claims.Sub)
	}
	// The account signs in like any other.
	signIn(t, e, e.browser(), r, nil, "dave@example.com", newPass)
	// Its username is its address, and follows it when it changes.
	ab := e.browser()
	p = ab.accountPage("dave@example.com", newPass)
	p = ab.emailForm(ab.action(p, "change-email", nil), "dave.new@example.com")
	p = ab.code(p, "email", in.wait("dave.new@example.com", 0))
	if p.url.Query().Get("done") != "address" {
		t.Fatalf("changing the address: at %s", p.url)
	}
	signIn(t, e, e.browser(), r, nil, "dave.new@example.com", newPass)

	// Registering from a client that forces enrollment: the enrollment
	// page follows, with no way to skip it.
	fb := e.browser()
	fa := e.rp("forced", "").authURL(map[string]string{"acr_values": mfaACR})
	p = register(t, fb, in, fb.get(fa.url), "erin@example.com")
	p = fb.newPassword(p, newPass)
	if p.loc != nil || !p.has(hasKey("data-totp-secret")) || p.has(hasAttr("data-action", "cancel")) {
		t.Fatalf("after registering for a force_enroll client: want the TOTP enrollment without skip:\n%s", excerpt(p.body))
	}
}

// TestRegistrationDuplicateAddress: an address that has an account gets
// the same pages and answers; its owner is emailed a notice, not a code,
// and no code creates a second account.
func TestRegistrationDuplicateAddress(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, openRegistration(in))
	r := e.rp("spa", "")
	start := func(email string) *page {
		b := e.browser()
		return b.emailForm(b.follow(b.get(r.authURL(nil).url), "register"), email)
	}
	fresh, dup := start("frank@example.com"), start(bobEmail)
	norm := func(p *page) string {
		s := regexp.MustCompile(`value="[^"]{20,}"`).ReplaceAllString(p.body, `value="X"`)
		s = flowIDs.ReplaceAllString(s, "/$1/ID")
		return strings.ReplaceAll(s, "f•••@example.com", "b•••@example.com")
	}
	if fresh.status != dup.status || norm(fresh) != norm(dup) {
		t.Fatalf("pages differ:\nnew %d:\n%s\ntaken %d:\n%s", fresh.status, norm(fresh), dup.status, norm(dup))
	}
	txt := in.waitNotice(bobEmail, 0)
	if !strings.Contains(txt, "already has one") || regexp.MustCompile(`\b[0-9]{6}\b`).MatchString(txt) {
		t.Fatalf("the owner's notice: %q", txt)
	}
	in.wait("frank@example.com", 0)
	b := e.browser()
	p := b.emailForm(b.follow(b.get(r.authURL(nil).url), "register"), bobEmail)
	for _, c := range []string{"000000", "123456", in.last("frank@example.com")} {
		wantAlert(t, b.code(p, "email", c), http.StatusUnauthorized, "a code for a taken address")
	}
}

// TestRegistrationCaps: the per-address send cap holds across browsers,
// for new and taken addresses alike.
func TestRegistrationCaps(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, openRegistration(in, func(c *config.Config) { c.MFA.Codes.PerDestination = 2 }))
	r := e.rp("spa", "")
	for _, email := range []string{"gina@example.com", bobEmail} {
		for i := range 3 {
			b := e.browser()
			p := b.emailForm(b.follow(b.get(r.authURL(nil).url), "register"), email)
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

// TestRegistrationStandaloneEnrolls: a registration not started from a
// sign-in (straight to /register) ends on /account; with `mfa.login:
// always` every sign-in is multi-factor (PRODUCT.md §3), so the new
// account must enroll a second factor before /account shows, as a
// sign-in to /account would make it.
func TestRegistrationStandaloneEnrolls(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, openRegistration(in, func(c *config.Config) { c.MFA.Login = "always" }))
	b := e.browser()
	p := b.get(e.issuer + "/register")
	if p.status != http.StatusOK {
		t.Fatalf("/register: %d", p.status)
	}
	n := in.count("frank@example.com")
	p = b.emailForm(p, "frank@example.com")
	p = b.code(p, "email", in.wait("frank@example.com", n))
	p = b.newPassword(p, newPass)
	if !p.has(hasKey("data-totp-secret")) || p.has(hasAttr("data-action", "change-email")) {
		t.Fatalf("after a standalone registration with mfa.login always: want the enrollment, at %s (%d):\n%s", p.url, p.status, excerpt(p.body))
	}
	p, _, _ = b.enrollTOTP(p)
	if p.url.Path != "/account" || !p.has(hasAttr("data-action", "change-email")) {
		t.Fatalf("after the enrollment: want /account, at %s (%d):\n%s", p.url, p.status, excerpt(p.body))
	}
}
