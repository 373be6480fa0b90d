package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/config"
)

// wantAlert checks the status of a failed attempt and its role="alert".
func wantAlert(t *testing.T, p *page, status int, what string) {
	t.Helper()
	if p.status != status || len(find(p.doc, hasAttr("role", "alert"))) == 0 {
		t.Fatalf("%s: status %d (want %d with role=alert):\n%s", what, p.status, status, excerpt(p.body))
	}
}

// on returns u with the scheme and host of server instead.
func on(server *httptest.Server, u *url.URL) string {
	s, _ := url.Parse(server.URL)
	v := *u
	v.Scheme, v.Host = s.Scheme, s.Host
	return v.String()
}

// PRODUCT.md §3 "Lockout": one budget per user shared by every instance;
// the failure that reaches max_failures answers 401, every attempt after
// it 429, even with the right password.
func TestLockoutAcrossInstances(t *testing.T) {
	e := newEnv(t, nil) // max_failures 5
	second := httptest.NewServer(e.instance().Handler())
	t.Cleanup(second.Close)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(nil)
	first := b.get(a.url)
	servers := []*httptest.Server{e.ln, second}
	for i := range 5 {
		p := b.get(on(servers[i%2], first.url))
		wantAlert(t, b.login(p, "alice", "wrong password"), http.StatusUnauthorized, "failure "+string(rune('1'+i)))
	}
	for _, s := range servers {
		p := b.login(b.get(on(s, first.url)), "alice", alicePass)
		wantAlert(t, p, http.StatusTooManyRequests, "right password while locked")
		if p.loc != nil {
			t.Fatal("a locked account signed in")
		}
	}
	// The budget is alice's: bob signs in on the same flow.
	p := b.login(b.get(first.url.String()), "bob", bobPass)
	wantClaims(t, r.mustExchange(a, p.result(t)), oneFA, []string{"pwd"})
}

// The one budget counts every factor, password included; a replayed code
// is a failure; the lockout ends when the window has passed.
func TestLockoutCountsEveryFactorAndEnds(t *testing.T) {
	// The window is real Redis time. It must outlast the steps between the
	// first failure and the locked checks on a loaded CI machine under
	// -race, so it is generous, and the test sleeps only for what is left
	// of it once the limit is reached (the lock restarts there).
	const window = 8 * time.Second
	e := newEnv(t, func(c *config.Config) { c.MFA.Lockout.Window = config.Duration(window) })
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	for range 2 {
		wantAlert(t, b.login(p, "alice", "wrong password"), http.StatusUnauthorized, "wrong password")
	}
	codePage := b.login(p, "alice", alicePass) // a success uses nothing
	if codePage.status != http.StatusOK {
		t.Fatalf("TOTP page status %d", codePage.status)
	}
	wantAlert(t, b.code(codePage, "totp", "000000"), http.StatusUnauthorized, "wrong code (3rd failure)")
	// A code used once, then replayed: the replay is the 4th failure.
	e.clock.Advance(30 * time.Second)
	used := e.totpCode(aliceTOTP)
	a2 := r.authURL(map[string]string{"acr_values": mfaACR})
	b2 := e.browser()
	p2 := b2.login(b2.get(a2.url), "alice", alicePass)
	wantClaims(t, r.mustExchange(a2, b2.code(p2, "totp", used).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
	wantAlert(t, b.code(codePage, "totp", used), http.StatusUnauthorized, "replayed code (4th failure)")
	wantAlert(t, b.code(codePage, "totp", "999999"), http.StatusUnauthorized, "wrong code (5th failure, reaches the limit)")
	limitAt := time.Now()
	e.clock.Advance(30 * time.Second)
	wantAlert(t, b.code(codePage, "totp", e.totpCode(aliceTOTP)), http.StatusTooManyRequests, "right code while locked")
	b3 := e.browser()
	wantAlert(t, b3.login(b3.get(r.authURL(nil).url), "alice", alicePass), http.StatusTooManyRequests, "right password while locked")

	// Redis expires the budget in real time.
	time.Sleep(time.Until(limitAt.Add(window + 200*time.Millisecond)))
	e.clock.Advance(30 * time.Second)
	p = b.code(codePage, "totp", e.totpCode(aliceTOTP))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
}

// raceForm posts the same form n times at once and counts the statuses.
// Every request is counted before its secret is checked, so exactly
// max_failures of them can be checked whatever the interleaving.
func raceForm(t *testing.T, b *browser, p *page, sel func(*html.Node) bool, form map[string]string, n int) map[int]int {
	t.Helper()
	f := p.form(t, sel)
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			resp, err := b.c.Do(formRequest(p, f, form))
			status := -1
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			got[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

func TestLockoutRace(t *testing.T) {
	const n = 24
	t.Run("password", func(t *testing.T) {
		e := newEnv(t, nil)
		b, r := e.browser(), e.rp("spa", "")
		p := b.get(r.authURL(nil).url)
		got := raceForm(t, b, p, hasAttr("autocomplete", "current-password"), map[string]string{"username": "alice", "password": "wrong password"}, n)
		if got[http.StatusUnauthorized] != 5 || got[http.StatusTooManyRequests] != n-5 {
			t.Fatalf("%d concurrent wrong passwords: statuses %v, want 5×401 and %d×429", n, got, n-5)
		}
		wantAlert(t, b.login(p, "alice", alicePass), http.StatusTooManyRequests, "right password after the race")
	})
	t.Run("totp", func(t *testing.T) {
		e := newEnv(t, nil)
		b, r := e.browser(), e.rp("spa", "")
		p := b.login(b.get(r.authURL(map[string]string{"acr_values": mfaACR}).url), "alice", alicePass)
		got := raceForm(t, b, p, hasAttr("data-factor", "totp"), map[string]string{"code": "000000"}, n)
		if got[http.StatusUnauthorized] != 5 || got[http.StatusTooManyRequests] != n-5 {
			t.Fatalf("%d concurrent wrong codes: statuses %v, want 5×401 and %d×429", n, got, n-5)
		}
		wantAlert(t, b.code(p, "totp", e.totpCode(aliceTOTP)), http.StatusTooManyRequests, "right code after the race")
	})
}

// The per-client-IP throttle stands beside the user budget: failures
// across many usernames from one address exhaust it. Behind a trusted
// proxy the client is the right-most untrusted X-Forwarded-For address,
// so a client cannot escape by writing its own.
func TestIPThrottle(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.MFA.Lockout.IPMaxFailures = 6
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	r := e.rp("spa", "")
	attacker := e.browser()
	attacker.header = http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	p := attacker.get(r.authURL(nil).url)
	for _, user := range []string{"u1", "u2", "u3", "u4", "u5", "alice"} {
		wantAlert(t, attacker.login(p, user, "wrong password"), http.StatusUnauthorized, "failure for "+user)
	}
	wantAlert(t, attacker.login(p, "bob", bobPass), http.StatusTooManyRequests, "any user from the throttled address")
	// Writing another address in front does not help: the proxy appends
	// the real one.
	attacker.header = http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.7"}}
	wantAlert(t, attacker.login(p, "bob", bobPass), http.StatusTooManyRequests, "spoofed X-Forwarded-For")
	// Refused attempts check nothing and use no user's budget: a throttled
	// address cannot lock alice out by naming her.
	for range 6 {
		wantAlert(t, attacker.login(p, "alice", "wrong password"), http.StatusTooManyRequests, "throttled attempt naming alice")
	}

	// Another client behind the same proxy is not throttled, and alice
	// (one failure) is not locked.
	other := e.browser()
	other.header = http.Header{"X-Forwarded-For": {"203.0.113.8"}}
	a := r.authURL(nil)
	wantClaims(t, r.mustExchange(a, other.login(other.get(a.url), "alice", alicePass).result(t)), oneFA, []string{"pwd"})
}

// Client authentication at the token endpoint counts against the same
// per-IP budget: a flood of wrong client secrets is refused (429) once the
// address has used it up — even with the right secret — and other
// addresses are not affected.
func TestClientSecretThrottle(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.MFA.Lockout.IPMaxFailures = 5
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	token := func(from, secret string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		req.SetBasicAuth("bank", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		if got := token("203.0.113.9", "wrong secret"); got != http.StatusUnauthorized {
			t.Fatalf("wrong secret #%d: %d, want 401", i+1, got)
		}
	}
	for _, secret := range []string{"wrong secret", bankSecret} {
		if got := token("203.0.113.9", secret); got != http.StatusTooManyRequests {
			t.Fatalf("from the throttled address with %q: %d, want 429", secret, got)
		}
	}
	if got := token("203.0.113.10", bankSecret); got != http.StatusOK {
		t.Fatalf("another address with the right secret: %d, want 200", got)
	}
}
