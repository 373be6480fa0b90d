package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server/obs"
)

const (
	carolPass  = "carol's long password"
	carolPhone = "+15555550123"
)

// inbox is a webhook receiver (PRODUCT.md §4) standing in for the SMS and
// email providers: it keeps every {to, code, text} it is sent.
type inbox struct {
	t    testing.TB
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []map[string]string
	// down makes the receiver answer 502 (a provider outage).
	down atomic.Bool
}

func newInbox(t testing.TB) *inbox {
	in := &inbox{t: t}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if in.down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var m map[string]string
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil {
			t.Errorf("webhook got %s %q", r.Method, r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		in.mu.Lock()
		in.msgs = append(in.msgs, m)
		in.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// count returns how many messages went to to.
func (in *inbox) count(to string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, m := range in.msgs {
		if m["to"] == to {
			n++
		}
	}
	return n
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// last returns the code of the latest message to to, checking that the
// text carries it.
func (in *inbox) last(to string) string {
	in.t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := len(in.msgs) - 1; i >= 0; i-- {
		if m := in.msgs[i]; m["to"] == to {
			if !sixDigits.MatchString(m["code"]) || !strings.Contains(m["text"], m["code"]) {
				in.t.Fatalf("message %v: no 6-digit code in the text", m)
			}
			return m["code"]
		}
	}
	in.t.Fatalf("no message to %s (got %v)", to, in.msgs)
	return ""
}

// withCodes points the SMS and email providers at in and adds carol, who
// has a password and a phone (seeded, so verified) and nothing else.
func withCodes(in *inbox, more ...func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.SMS = config.Provider{Provider: "webhook", URL: in.srv.URL + "/sms"}
		c.Email = config.Provider{Provider: "webhook", URL: in.srv.URL + "/email"}
		c.Users = append(c.Users, config.User{Username: "carol", Password: carolPass, Phone: carolPhone})
		c.Clients = append(c.Clients, config.Client{ID: "fallback", Public: true, RedirectURIs: []string{rpCallback}, Unenrolled: "email_fallback",
			GrantTypes: []string{"authorization_code", "refresh_token"}})
		for _, f := range more {
			f(c)
		}
	}
}

func codeForm(p *page, factor string) bool {
	return len(find(p.doc, func(n *html.Node) bool { return n.Data == "form" && hasAttr("data-factor", factor)(n) })) == 1
}

// PRODUCT.md §2: password + SMS is multi-factor; amr pwd, sms, mfa.
func TestSMSStepUpThroughWebhook(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "carol", carolPass)
	wantClaims(t, first, oneFA, []string{"pwd"})
	if in.count(carolPhone) != 0 {
		t.Fatal("a code was sent for a 1fa sign-in")
	}

	e.clock.Advance(time.Minute)
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	if !codeForm(p, "sms") || len(find(p.doc, hasAttr("data-action", "cancel"))) == 0 || len(find(p.doc, hasAttr("data-action", "resend"))) != 1 {
		t.Fatalf("step-up page lacks the sms form, cancel or resend:\n%s", excerpt(p.body))
	}
	if text := textOf(p.doc); !strings.Contains(text, "+1••••••0123") || strings.Contains(text, carolPhone) {
		t.Fatalf("the page should show the number masked:\n%s", excerpt(p.body))
	}
	if in.count(carolPhone) != 1 {
		t.Fatalf("%d texts sent, want 1", in.count(carolPhone))
	}
	// A reload sends nothing new.
	b.get(p.url.String())
	if in.count(carolPhone) != 1 {
		t.Fatalf("a reload sent another text")
	}
	p = b.code(p, "sms", in.last(carolPhone))
	tk := r.mustExchange(a, p.result(t))
	wantClaims(t, tk, mfaACR, []string{"pwd", "sms", "mfa"})
	if tk.claims.AuthTime != e.clock.Now().Unix() {
		t.Fatalf("auth_time %d is not the SMS verification", tk.claims.AuthTime)
	}
}

// PRODUCT.md §3 email_fallback: a user with no second factor gets a code
// by email (amr otp); under the other policies the email is no factor.
func TestEmailFallbackClient(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	const bobEmail = "bob@example.com"

	b, r := e.browser(), e.rp("fallback", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	if !codeForm(p, "email") || !strings.Contains(p.body, "b•••@example.com") {
		t.Fatalf("email_fallback did not ask for an email code:\n%s", excerpt(p.body))
	}
	wantAlert(t, b.code(p, "email", "000000"), http.StatusUnauthorized, "wrong email code")
	p = b.code(p, "email", in.last(bobEmail))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// prompt=none: email under email_fallback is a factor the user has →
	// interaction_required, not the honest lower level.
	e.clock.Advance(20 * time.Minute) // past the multi-factor level's 15m
	a = r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "none"})
	if res := b.get(a.url).result(t); res.err != "interaction_required" {
		t.Fatalf("prompt=none under email_fallback: %+v", res)
	}

	// The same user under allow_skip: email is no factor; enrollment is
	// offered and no email is sent.
	sent := in.count(bobEmail)
	b2, r2 := e.browser(), e.rp("spa", "")
	a = r2.authURL(map[string]string{"acr_values": mfaACR})
	p = b2.login(b2.get(a.url), "bob", bobPass)
	if codeForm(p, "email") || len(find(p.doc, hasAttr("data-enroll", "sms"))) == 0 {
		t.Fatalf("allow_skip offered email or no phone enrollment:\n%s", excerpt(p.body))
	}
	if in.count(bobEmail) != sent {
		t.Fatal("an email code was sent outside email_fallback")
	}
	// Skipping: the honest lower level.
	wantClaims(t, r2.mustExchange(a, b2.cancel(p).result(t)), oneFA, []string{"pwd"})
}

// A user's email_mfa switch makes email an enrolled factor; SMS + email is
// one category, so it never makes multi-factor without the password.
func TestEmailMFAUser(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		c.Users[1].EmailMFA = true             // bob
		c.Users[2].Email = "carol@example.com" // carol: phone and email
		c.Users[2].EmailMFA = true
	}))
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	p = b.code(p, "email", in.last("bob@example.com"))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// carol: SMS first (the order of PRODUCT.md §5), email offered beside.
	b2 := e.browser()
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b2.login(b2.get(a.url), "carol", carolPass)
	if !codeForm(p, "sms") || len(find(p.doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr("data-factor", "email")(n) })) != 1 {
		t.Fatalf("carol's step-up: want the sms form and an email link:\n%s", excerpt(p.body))
	}
	p = b2.get(p.url.String() + "?factor=email")
	p = b2.code(p, "email", in.last("carol@example.com"))
	tk := r.mustExchange(a, p.result(t))
	wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
}

// force_enroll: the enrollment offer includes a phone verified by SMS;
// the texted code is the factor's verification, recovery codes are shown
// once, then the original request continues.
func TestForceEnrollPhone(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	const phone = "+15555550142"
	b, r := e.browser(), e.rp("forced", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	if len(find(p.doc, hasAttr("data-action", "cancel"))) != 0 {
		t.Fatal("force_enroll offers a skip")
	}
	links := find(p.doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr("data-enroll", "sms")(n) })
	if len(links) != 1 {
		t.Fatalf("no phone enrollment link on the enrollment page:\n%s", excerpt(p.body))
	}
	href, _ := attr(links[0], "href")
	u, _ := p.url.Parse(href)
	p = b.get(u.String())
	phoneForm := p.form(t, hasAttr("autocomplete", "tel"))
	if got := b.submit(p, phoneForm, map[string]string{"phone": "555-0142"}); got.status != http.StatusBadRequest || len(find(got.doc, hasAttr("role", "alert"))) == 0 {
		t.Fatalf("a number without country code: status %d", got.status)
	}
	p = b.submit(p, phoneForm, map[string]string{"phone": "+1 (555) 555-0142"})
	if !codeForm(p, "sms") || in.count(phone) != 1 {
		t.Fatalf("no code form after the number (%d texts):\n%s", in.count(phone), excerpt(p.body))
	}
	wantAlert(t, b.code(p, "sms", "000000"), http.StatusUnauthorized, "wrong enrollment code")
	// Not enrolled until confirmed.
	if acct, _ := e.store().AccountByUsername(t.Context(), "bob"); acct.Phone != "" {
		t.Fatalf("phone stored before it was verified: %q", acct.Phone)
	}
	p = b.code(p, "sms", in.last(phone))
	p, codes := b.shownRecoveryCodes(p)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	res := p.result(t)
	if res.state != a.state {
		t.Fatalf("the original request did not continue: %+v", res)
	}
	wantClaims(t, r.mustExchange(a, res), mfaACR, []string{"pwd", "sms", "mfa"})
	if acct, _ := e.store().AccountByUsername(t.Context(), "bob"); acct.Phone != phone {
		t.Fatalf("stored phone %q, want %q", acct.Phone, phone)
	}

	// Enrolled for good: the next step-up texts the number.
	e.clock.Advance(time.Minute)
	b2 := e.browser()
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b2.login(b2.get(a.url), "bob", bobPass)
	p = b2.code(p, "sms", in.last(phone))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "sms", "mfa"})
}

// allow_skip: skipping the phone enrollment gives the honest lower level
// for a voluntary acr and unmet_authentication_requirements for an
// essential one.
func TestAllowSkipPhoneEnrollment(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		c.MFA.Factors = []string{"sms", "email", "recovery"}
		c.Users[0].TOTPSecret = ""
	}))
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	if len(find(p.doc, hasAttr("autocomplete", "tel"))) != 1 {
		t.Fatalf("with TOTP off, the enrollment offer is the phone:\n%s", excerpt(p.body))
	}
	wantClaims(t, r.mustExchange(a, b.cancel(p).result(t)), oneFA, []string{"pwd"})

	claims := `{"id_token":{"acr":{"essential":true,"values":["` + mfaACR + `"]}}}`
	a = r.authURL(map[string]string{"claims": claims})
	p = b.get(a.url)
	if len(find(p.doc, hasAttr("autocomplete", "tel"))) != 1 {
		t.Fatalf("essential step-up: no phone enrollment offer:\n%s", excerpt(p.body))
	}
	if res := b.cancel(p).result(t); res.err != "unmet_authentication_requirements" || res.state != a.state {
		t.Fatalf("skipping an essential enrollment: %+v", res)
	}
}

// The code rules: one use, bound to the browser session, replaced by a
// resend only after the cooldown, dead after its lifetime.
func TestSMSCodeReuseSessionCooldownExpiry(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		c.MFA.Codes.TTL = config.Duration(3 * time.Second)
		c.MFA.Codes.ResendCooldown = config.Duration(2 * time.Second)
	}))
	r := e.rp("spa", "")
	b := e.browser()
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "carol", carolPass)
	first := in.last(carolPhone)

	// Resend within the cooldown: 429, nothing sent.
	resend := p.form(t, hasAttr("data-action", "resend"))
	got := b.submit(p, resend, nil)
	wantAlert(t, got, http.StatusTooManyRequests, "resend within the cooldown")
	if in.count(carolPhone) != 1 {
		t.Fatal("a resend within the cooldown sent a text")
	}

	// Another browser session of carol cannot use this session's code.
	other := e.browser()
	a2 := r.authURL(map[string]string{"acr_values": mfaACR})
	op := other.login(other.get(a2.url), "carol", carolPass)
	if in.count(carolPhone) != 2 {
		t.Fatalf("%d texts, want one per session", in.count(carolPhone))
	}
	wantAlert(t, other.code(op, "sms", first), http.StatusUnauthorized, "code of another session")

	// After the cooldown: a new code, which replaces the first.
	time.Sleep(2100 * time.Millisecond)
	if got = b.submit(p, resend, nil); !codeForm(got, "sms") || got.status != http.StatusOK {
		t.Fatalf("resend after the cooldown: status %d", got.status)
	}
	second := in.last(carolPhone)
	if in.count(carolPhone) != 3 {
		t.Fatal("the resend sent nothing")
	}
	if first != second {
		wantAlert(t, b.code(p, "sms", first), http.StatusUnauthorized, "the replaced code")
	}
	wantClaims(t, r.mustExchange(a, b.code(p, "sms", second).result(t)), mfaACR, []string{"pwd", "sms", "mfa"})

	// Reuse: the used code fails in the next step-up of the same session
	// (which may text at once: a used code ends the cooldown).
	a = r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "login"})
	p = b.login(b.get(a.url), "carol", carolPass)
	if in.count(carolPhone) != 4 {
		t.Fatal("the next step-up sent no code")
	}
	third := in.last(carolPhone)
	if third != second {
		wantAlert(t, b.code(p, "sms", second), http.StatusUnauthorized, "a used code")
	}

	// Expiry: after the lifetime the code fails.
	time.Sleep(3100 * time.Millisecond)
	wantAlert(t, b.code(p, "sms", third), http.StatusUnauthorized, "an expired code")
}

// One budget across instances: wrong SMS codes on two servers sharing
// Redis lock carol out; then even the right code answers 429.
func TestSMSLockoutAcrossInstances(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	second := httptest.NewServer(e.instance().Handler())
	t.Cleanup(second.Close)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "carol", carolPass)
	code := in.last(carolPhone)
	servers := []*httptest.Server{e.ln, second}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		q := b.get(on(servers[i%2], p.url))
		wantAlert(t, b.code(q, "sms", wrong), http.StatusUnauthorized, "wrong code")
	}
	if in.count(carolPhone) != 1 {
		t.Fatalf("showing the page on the second instance sent another code")
	}
	for _, s := range servers {
		q := b.get(on(s, p.url))
		got := b.code(q, "sms", code)
		wantAlert(t, got, http.StatusTooManyRequests, "right code while locked")
		if got.loc != nil {
			t.Fatal("a locked user stepped up")
		}
	}
}

// Concurrent submissions of one right code: exactly one wins.
func TestSMSCodeDoubleSubmission(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	second := httptest.NewServer(e.instance().Handler())
	t.Cleanup(second.Close)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "carol", carolPass)
	code := in.last(carolPhone)
	f := p.form(t, hasAttr("data-factor", "sms"))
	const n = 8
	var mu sync.Mutex
	var wins []*url.URL
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := formRequest(p, f, map[string]string{"code": code})
			if i%2 == 1 { // half of them through the other instance
				u, _ := url.Parse(on(second, req.URL))
				req.URL, req.Host = u, u.Host
				req.Header.Set("Origin", second.URL)
			}
			<-start
			resp, err := b.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if loc, _ := resp.Location(); loc != nil && strings.HasPrefix(loc.String(), rpCallback) && loc.Query().Get("code") != "" {
				wins = append(wins, loc)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d of %d concurrent submissions of one code won (statuses %v), want 1", len(wins), n, statuses)
	}
	q := wins[0].Query()
	tk := r.mustExchange(a, rpResult{code: q.Get("code"), state: q.Get("state"), iss: q.Get("iss")})
	wantClaims(t, tk, mfaACR, []string{"pwd", "sms", "mfa"})
}

// SMS pumping: sends are capped per user, per number and per IP; a capped
// send answers 429 and texts nothing.
func TestSendCaps(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		c.MFA.Codes.PerUser = 2
		c.MFA.Codes.ResendCooldown = config.Duration(time.Millisecond)
	}))
	b, r := e.browser(), e.rp("spa", "")
	p := b.login(b.get(r.authURL(map[string]string{"acr_values": mfaACR}).url), "carol", carolPass)
	resend := p.form(t, hasAttr("data-action", "resend"))
	time.Sleep(5 * time.Millisecond)
	if got := b.submit(p, resend, nil); got.status != http.StatusOK {
		t.Fatalf("second send: %d", got.status)
	}
	time.Sleep(5 * time.Millisecond)
	wantAlert(t, b.submit(p, resend, nil), http.StatusTooManyRequests, "third send over per_user 2")
	if in.count(carolPhone) != 2 {
		t.Fatalf("%d texts, want 2", in.count(carolPhone))
	}

	// Phone enrollment of many numbers from one user is capped as well.
	e2 := newEnv(t, withCodes(in, func(c *config.Config) {
		c.MFA.Codes.PerUser = 2
		c.MFA.Codes.ResendCooldown = config.Duration(time.Millisecond)
	}))
	b2, r2 := e2.browser(), e2.rp("forced", "")
	p = b2.login(b2.get(r2.authURL(map[string]string{"acr_values": mfaACR}).url), "bob", bobPass)
	p = b2.get(p.url.String() + "?enroll=sms")
	for i, num := range []string{"+19005550001", "+19005550002", "+19005550003"} {
		time.Sleep(5 * time.Millisecond)
		got := b2.submit(p, p.form(t, hasAttr("autocomplete", "tel")), map[string]string{"phone": num})
		if i < 2 && !codeForm(got, "sms") {
			t.Fatalf("number %d: status %d", i+1, got.status)
		}
		if i == 2 {
			wantAlert(t, got, http.StatusTooManyRequests, "a third number")
			if in.count(num) != 0 {
				t.Fatal("the capped number was texted")
			}
		}
	}
}

// Audit events and metrics of codes; the log holds no SMS or recovery
// code (the webhook provider is used, not the log provider).
func TestCodeEventsMetricsNoCodeInLog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := newInbox(t)
	e := newEnvWith(t, envOptions{mutate: withCodes(in), log: log, metrics: obs.NewMetrics()})
	var sixDigit []string

	// bob enrolls a phone (force_enroll) and gets recovery codes.
	b, r := e.browser(), e.rp("forced", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(b.login(b.get(a.url), "bob", bobPass).url.String() + "?enroll=sms")
	p = b.submit(p, p.form(t, hasAttr("autocomplete", "tel")), map[string]string{"phone": "+15555550177"})
	enrollCode := in.last("+15555550177")
	p, recovery := b.shownRecoveryCodes(b.code(p, "sms", enrollCode))
	r.mustExchange(a, p.result(t))
	sixDigit = append(sixDigit, enrollCode)

	// carol: a wrong SMS code, then the right one.
	b2, r2 := e.browser(), e.rp("spa", "")
	a = r2.authURL(map[string]string{"acr_values": mfaACR})
	p = b2.login(b2.get(a.url), "carol", carolPass)
	code := in.last(carolPhone)
	sixDigit = append(sixDigit, code)
	b2.code(p, "sms", "999999")
	r2.mustExchange(a, b2.code(p, "sms", code).result(t))

	// bob again, with a recovery code; then the provider is down.
	b3 := e.browser()
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b3.login(b3.get(a.url), "bob", bobPass)
	sixDigit = append(sixDigit, in.last("+15555550177"))
	p = b3.get(p.url.String() + "?factor=recovery")
	r.mustExchange(a, b3.code(p, "recovery", recovery[2]).result(t))
	in.down.Store(true)
	b4 := e.browser()
	p = b4.login(b4.get(r2.authURL(map[string]string{"acr_values": mfaACR}).url), "carol", carolPass)
	wantAlert(t, p, http.StatusServiceUnavailable, "provider down")

	logs := buf.String()
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		for k, v := range rec {
			str, ok := v.(string)
			if !ok {
				continue
			}
			if codeIn(str, sixDigit) {
				t.Errorf("log field %s holds an SMS code: %q", k, str)
			}
			for _, rc := range recovery {
				if strings.Contains(str, rc) {
					t.Errorf("log field %s holds a recovery code: %q", k, str)
				}
			}
		}
	}
	for _, ev := range []string{obs.EventCodeSent, obs.EventCodeSendFailed, obs.EventRecoveryUsed, obs.EventEnrolled, obs.EventStepUpFailed} {
		if !strings.Contains(logs, `"event":"`+ev+`"`) {
			t.Errorf("no audit event %s", ev)
		}
	}
	m := scrape(t, e)
	for name, want := range map[string]float64{
		`stepup_codes_sent_total{factor="sms",result="sent"}`:   3,
		`stepup_codes_sent_total{factor="sms",result="failed"}`: 1,
		`stepup_enrollments_total{factor="sms"}`:                1,
		`stepup_enrollments_total{factor="recovery"}`:           1,
		`stepup_failures_total{reason="bad_code"}`:              1,
		`stepup_audit_events_total{event="recovery.used"}`:      1,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// mfa.factors turns factors off: without sms a verified phone is no
// factor and no phone is offered for enrollment.
func TestFactorsDisableSMS(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.MFA.Factors = []string{"totp", "email", "recovery"} }))
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "carol", carolPass)
	if codeForm(p, "sms") || len(find(p.doc, hasAttr("data-enroll", "sms"))) != 0 || len(find(p.doc, hasAttr("data-totp-secret", ""))) != 1 {
		t.Fatalf("with sms off: want TOTP enrollment only:\n%s", excerpt(p.body))
	}
	if in.count(carolPhone) != 0 {
		t.Fatal("a text was sent with sms off")
	}
}

// mfa.login: always makes every login multi-factor (essential).
func TestMFALoginAlways(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) { c.MFA.Login = "always" }))
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": oneFA})
	p := b.login(b.get(a.url), "carol", carolPass)
	if p.loc != nil {
		t.Fatal("mfa.login always completed after the password")
	}
	wantClaims(t, r.mustExchange(a, b.code(p, "sms", in.last(carolPhone)).result(t)), mfaACR, []string{"pwd", "sms", "mfa"})
	// Skipping the enrollment cannot lower an essential level.
	b2 := e.browser()
	a = r.authURL(nil)
	p = b2.login(b2.get(a.url), "bob", bobPass)
	if res := b2.cancel(p).result(t); res.err != "unmet_authentication_requirements" {
		t.Fatalf("skipping under mfa.login always: %+v", res)
	}
}
