package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/server/obs"
)

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	resp, err := http.Get(e.issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetrics(t *testing.T) {
	e := newEnvWith(t, envOptions{metrics: obs.NewMetrics()})
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	bob := e.browser()
	p := bob.get(r.authURL(nil).url)
	for range 5 {
		bob.login(p, "bob", "wrong password")
	}
	bob.login(p, "bob", bobPass) // 429
	if code, _ := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "bank", bankSecret); code != http.StatusOK {
		t.Fatalf("client_credentials: %d", code)
	}

	m := scrape(t, e)
	for name, want := range map[string]float64{
		`stepup_logins_total`:                                                      1,
		`stepup_step_ups_total{acr="` + mfaACR + `"}`:                              1,
		`stepup_failures_total{reason="bad_credentials"}`:                          5,
		`stepup_failures_total{reason="locked_user"}`:                              1,
		`stepup_lockouts_total{budget="user"}`:                                     1,
		`stepup_locked_attempts_total{budget="user"}`:                              1,
		`stepup_tokens_issued_total{grant_type="authorization_code"}`:              1,
		`stepup_tokens_issued_total{grant_type="client_credentials"}`:              1,
		`stepup_audit_events_total{event="stepup.verified"}`:                       1,
		`stepup_http_requests_total{code="401",route="POST /login/{id}/password"}`: 5,
		`stepup_http_requests_total{code="429",route="POST /login/{id}/password"}`: 1,
		`stepup_http_requests_total{code="200",route="/oauth/token"}`:              2,
		`stepup_http_request_duration_seconds_count{route="GET /login/{id}"}`:      3,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// syncBuffer is a log sink shared by the handlers of a test server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The audit log of a full run names every event and holds no secret: no
// password, TOTP secret, TOTP code, authorization code, token, client
// secret, cookie or CSRF token (PRODUCT.md §8).
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// zitadel/oidc logs to the default logger, as stepupd sets it.
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })
	e := newEnvWith(t, envOptions{log: log})
	var secrets []string
	var codes []string // TOTP codes: 6 digits, compared with string values only
	keep := func(s ...string) {
		for _, v := range s {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	keep(alicePass, bobPass, aliceTOTP, bankSecret, "wrong password 7f3a")

	// alice: password, step-up with TOTP (one wrong code first), refresh,
	// userinfo, introspection, revocation.
	b, r := e.browser(), e.rp("bank", bankSecret)
	r.cfg.Scopes = append(r.cfg.Scopes, "offline_access")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	keep(csrfOf(p))
	b.login(p, "alice", "wrong password 7f3a")
	p = b.login(p, "alice", alicePass)
	codes = append(codes, "123456")
	b.code(p, "totp", "123456")
	c := e.totpCode(aliceTOTP)
	codes = append(codes, c)
	res := b.code(p, "totp", c).result(t)
	keep(res.code)
	tk := r.mustExchange(a, res)
	keep(tk.tok.AccessToken, tk.tok.RefreshToken, tk.idToken)
	for _, ck := range b.c.Jar.Cookies(p.url) {
		keep(ck.Value)
	}
	aliceIDToken := tk.idToken
	tok2, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tk.tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	keep(tok2.AccessToken, tok2.RefreshToken)
	e.postForm("/oauth/introspect", url.Values{"token": {tok2.AccessToken}}, "bank", bankSecret)
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok2.AccessToken)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	e.postForm("/oauth/revoke", url.Values{"token": {tok2.RefreshToken}}, "bank", bankSecret)
	_, cc := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "bank", bankSecret)
	at, _ := cc["access_token"].(string)
	keep(at)
	e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "bank", "wrong-client-secret-99")
	keep("wrong-client-secret-99")

	// bob enrolls TOTP in the flow (a wrong confirming code first).
	bb, rs := e.browser(), e.rp("forced", "")
	a = rs.authURL(map[string]string{"acr_values": mfaACR})
	p = bb.login(bb.get(a.url), "bob", bobPass)
	nodes := find(p.doc, func(n *html.Node) bool { _, ok := attr(n, "data-totp-secret"); return ok })
	if len(nodes) != 1 {
		t.Fatalf("no enrollment page")
	}
	secret := strings.TrimSpace(textOf(nodes[0]))
	keep(secret)
	codes = append(codes, "654321")
	bb.code(p, "totp", "654321")
	c = e.totpCode(secret)
	codes = append(codes, c)
	p, recoveryCodes := bb.shownRecoveryCodes(bb.code(p, "totp", c))
	keep(recoveryCodes...)
	res = p.result(t)
	keep(res.code)
	tk = rs.mustExchange(a, res)
	keep(tk.tok.AccessToken, tk.idToken)

	// alice signs out (the hint names her session: no confirmation).
	if lp := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {aliceIDToken}}.Encode()); lp.status != http.StatusOK {
		t.Fatalf("end_session: %d", lp.status)
	}

	logs := buf.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret %.12q…", s)
		}
	}
	events := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if ev, ok := rec["event"].(string); ok {
			events[ev] = true
		}
		for k, v := range rec {
			if s, ok := v.(string); ok && codeIn(s, codes) {
				t.Errorf("log field %s holds a one-time code: %q", k, s)
			}
		}
	}
	for _, ev := range []string{obs.EventLogin, obs.EventLoginFailed, obs.EventStepUp, obs.EventStepUpFailed, obs.EventStepUpDone,
		obs.EventEnrolled, obs.EventEnrollFailed, obs.EventAuthorized, obs.EventToken, obs.EventRevoked, obs.EventClientAuth, obs.EventLogout} {
		if !events[ev] {
			t.Errorf("no audit event %s in the log", ev)
		}
	}
}

var digits6 = regexp.MustCompile(`(^|[^0-9])([0-9]{6})([^0-9]|$)`)

// codeIn reports whether s holds one of codes as a 6-digit group of its own.
func codeIn(s string, codes []string) bool {
	for _, m := range digits6.FindAllStringSubmatch(s, -1) {
		for _, c := range codes {
			if m[2] == c {
				return true
			}
		}
	}
	return false
}

func csrfOf(p *page) string {
	for _, in := range find(p.doc, hasAttr("name", "csrf_token")) {
		v, _ := attr(in, "value")
		return v
	}
	return ""
}

// The outage test's helpers: wait for a condition with a deadline, never
// asserting on how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
