package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stepup-dev/stepup/config"
)

// OpenID CIBA (Client-Initiated Backchannel Authentication Core 1.0),
// poll and ping, with the approval on stepup's hosted pages.

const (
	tellerSecret = "teller-secret-0123456789"
	cibaGrant    = "urn:openid:params:grant-type:ciba"
)

// withCIBA registers "teller" (poll) and, when ping is not "", "pinger"
// (ping mode, notifying ping) for CIBA, and sends messages to in.
func withCIBA(in *inbox, ping string, more ...func(*config.Config)) func(*config.Config) {
	return withCodes(in, append([]func(*config.Config){func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "teller", Name: "Teller Bank", Secret: tellerSecret,
			GrantTypes: []string{cibaGrant}, CIBA: config.CIBA{Mode: "poll", MaxExpiry: config.Duration(5 * time.Minute)}})
		if ping != "" {
			c.Clients = append(c.Clients, config.Client{ID: "pinger", Name: "Ping Bank", Secret: tellerSecret,
				GrantTypes: []string{cibaGrant}, CIBA: config.CIBA{Mode: "ping", NotificationEndpoint: ping, MaxExpiry: config.Duration(5 * time.Minute)}})
		}
	}}, more...)...)
}

// cibaRP is a relying party written from the CIBA spec with net/http
// alone: it authenticates with client_secret_basic, starts requests at
// backchannel_authentication_endpoint and polls token_endpoint; go-oidc
// checks the ID token's signature against the issuer's JWKS.
type cibaRP struct {
	t               testing.TB
	e               *env
	id, secret      string
	bcURL, tokenURL string
	verifier        *oidc.IDTokenVerifier
}

func (e *env) cibaRP(t testing.TB, id, secret string) *cibaRP {
	t.Helper()
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		BC       string   `json:"backchannel_authentication_endpoint"`
		Token    string   `json:"token_endpoint"`
		Modes    []string `json:"backchannel_token_delivery_modes_supported"`
		UserCode *bool    `json:"backchannel_user_code_parameter_supported"`
		Grants   []string `json:"grant_types_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.BC != e.issuer+"/oauth/bc-authorize" || strings.Join(meta.Modes, " ") != "poll ping" || meta.UserCode == nil || *meta.UserCode || !strings.Contains(strings.Join(meta.Grants, " "), cibaGrant) {
		t.Fatalf("discovery lacks CIBA metadata: %+v", meta)
	}
	ctx := oidc.ClientContext(context.Background(), e.ln.Client())
	prov, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &cibaRP{t: t, e: e, id: id, secret: secret, bcURL: meta.BC, tokenURL: meta.Token,
		verifier: prov.Verifier(&oidc.Config{ClientID: id, Now: e.clock.Now})}
}

// post sends a form with client_secret_basic and returns the status, the
// JSON body and the Cache-Control header.
func (c *cibaRP) post(endpoint string, v url.Values) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		c.t.Errorf("%s answered Cache-Control %q, want no-store", endpoint, cc)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// start is a backchannel authentication request; it fails the test
// unless the answer is CIBA Core §7.3's.
func (c *cibaRP) start(v url.Values) (authReqID string, expiresIn, interval int) {
	c.t.Helper()
	if !v.Has("scope") {
		v.Set("scope", "openid")
	}
	status, body := c.post(c.bcURL, v)
	id, _ := body["auth_req_id"].(string)
	exp, _ := body["expires_in"].(float64)
	ival, _ := body["interval"].(float64)
	if status != http.StatusOK || id == "" || exp <= 0 {
		c.t.Fatalf("bc-authorize: %d %v", status, body)
	}
	return id, int(exp), int(ival)
}

// poll is one token request (CIBA Core §10.1): the error code, or "" and
// the ID token's claims after checking its signature.
func (c *cibaRP) poll(authReqID string) (string, *claims, map[string]any) {
	c.t.Helper()
	status, body := c.post(c.tokenURL, url.Values{"grant_type": {cibaGrant}, "auth_req_id": {authReqID}})
	if e, _ := body["error"].(string); e != "" {
		if status != http.StatusBadRequest && status != http.StatusUnauthorized {
			c.t.Errorf("token error %s with status %d", e, status)
		}
		return e, nil, body
	}
	raw, _ := body["id_token"].(string)
	if status != http.StatusOK || raw == "" || body["access_token"] == nil || body["refresh_token"] != nil {
		c.t.Fatalf("token: %d %v", status, body)
	}
	idt, err := c.verifier.Verify(context.Background(), raw)
	if err != nil {
		c.t.Fatalf("ID token: %v", err)
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		c.t.Fatal(err)
	}
	return "", &cl, body
}

// wantPoll polls once after the interval and wants code.
func (c *cibaRP) wantPoll(authReqID, code string) {
	c.t.Helper()
	c.e.clock.Advance(time.Minute)
	if got, _, body := c.poll(authReqID); got != code {
		c.t.Fatalf("poll: %q %v, want %q", got, body, code)
	}
}

var cibaLink = regexp.MustCompile(`https?://[^ ]+/ciba/[A-Za-z0-9_.-]+`)

// link is the approval link of the latest message to to.
func (in *inbox) link(to string) string {
	in.t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := len(in.msgs) - 1; i >= 0; i-- {
		if m := in.msgs[i]; m["to"] == to {
			if l := cibaLink.FindString(m["text"]); l != "" {
				return l
			}
		}
	}
	in.t.Fatalf("no approval link to %s in %v", to, in.msgs)
	return ""
}

// approvalPage is the page of an authenticated approval: the client's
// name, the binding message, the level, and the approve and deny hooks.
func wantApprovalPage(t *testing.T, p *page, client, binding, level string) {
	t.Helper()
	if p.status != http.StatusOK || len(find(p.doc, hasAttr("data-action", "approve"))) != 1 || len(find(p.doc, hasAttr("data-action", "deny"))) != 1 {
		t.Fatalf("no approval page (status %d):\n%s", p.status, excerpt(p.body))
	}
	for _, s := range []string{client, binding, level} {
		if !strings.Contains(p.body, s) {
			t.Fatalf("approval page lacks %q:\n%s", s, excerpt(p.body))
		}
	}
}

// open follows an approval link as a user does: the page that binds
// nothing, then its continue button.
func (b *browser) open(link string) *page {
	b.t.Helper()
	p := b.get(link)
	if p.status != http.StatusOK || len(find(p.doc, hasAttr("data-action", "continue"))) != 1 {
		return p
	}
	return b.press(p, "continue")
}

func (b *browser) press(p *page, action string) *page {
	b.t.Helper()
	return b.submit(p, p.form(b.t, hasAttr("data-action", action)), nil)
}

// CIBA Core §7–§11, poll mode: a two-factor approval of "Withdraw 10.00"
// on the hosted pages; authorization_pending, slow_down (+5 s), the tokens
// with the acr, amr and auth_time of the approval, then invalid_grant for
// the used request. The browser that approved holds no session after.
func TestCIBAPollApproval(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	rp := e.cibaRP(t, "teller", tellerSecret)
	id, exp, ival := rp.start(url.Values{"login_hint": {"alice"}, "binding_message": {"Withdraw 10.00"}, "acr_values": {mfaACR}})
	if exp != 300 || ival != 5 {
		t.Fatalf("expires_in %d interval %d, want 300 and 5", exp, ival)
	}
	if code, _, _ := rp.poll(id); code != "authorization_pending" {
		t.Fatalf("first poll: %q", code)
	}
	// CIBA Core §11: polling faster than the interval is slow_down, and
	// the interval grows by 5 seconds.
	if code, _, _ := rp.poll(id); code != "slow_down" {
		t.Fatalf("second poll at once: %q, want slow_down", code)
	}
	e.clock.Advance(6 * time.Second) // the interval is 10 s now
	if code, _, _ := rp.poll(id); code != "slow_down" {
		t.Fatalf("poll after 6 s with a 10 s interval: %q, want slow_down", code)
	}
	e.clock.Advance(16 * time.Second)
	if code, _, _ := rp.poll(id); code != "authorization_pending" {
		t.Fatalf("poll after the interval: %q", code)
	}

	b := e.browser()
	p := b.open(in.link("alice@example.com"))
	if strings.Contains(p.body, "Withdraw 10.00") {
		t.Fatal("the binding message is shown before the user authenticated")
	}
	p = b.login(p, "mallory", alicePass) // the approval is alice's, whatever the form says
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	wantApprovalPage(t, p, "Teller Bank", "Withdraw 10.00", mfaACR)
	approvedAt := e.clock.Now().Unix()
	if p = b.press(p, "approve"); p.status != http.StatusOK || !strings.Contains(p.body, "approved") {
		t.Fatalf("approve: %d\n%s", p.status, excerpt(p.body))
	}

	e.clock.Advance(time.Minute)
	code, cl, body := rp.poll(id)
	if code != "" {
		t.Fatalf("poll after approval: %q %v", code, body)
	}
	if cl.Sub == "" || cl.ACR != mfaACR || !sameSet(cl.AMR, []string{"pwd", "otp", "mfa"}) || cl.AuthTime > approvedAt || cl.AuthTime < approvedAt-5 || cl.SID != "" {
		t.Fatalf("ID token claims %+v, want the approval's (acr %s, auth_time ≈ %d, no sid)", cl, mfaACR, approvedAt)
	}
	// Single use.
	rp.wantPoll(id, "invalid_grant")
	// CIBA "does not affect any provider-specific session": the browser
	// that approved is not signed in.
	a := e.rp("spa", "").authURL(map[string]string{"prompt": "none"})
	if res := b.get(a.url).result(t); res.err != "login_required" {
		t.Fatalf("after an approval, prompt=none: %+v, want login_required", res)
	}
	// The pair is free again.
	rp.start(url.Values{"login_hint": {"alice@example.com"}})
}

// An approval is fresh: a session at the requested level in the same
// browser does not count, and the session is left as it was.
func TestCIBAIgnoresBrowserSession(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	b := e.browser()
	spa := e.rp("spa", "")
	before := signIn(t, e, b, spa, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	wantClaims(t, before, mfaACR, []string{"pwd", "otp", "mfa"})

	rp := e.cibaRP(t, "teller", tellerSecret)
	id, _, _ := rp.start(url.Values{"login_hint": {"alice"}, "acr_values": {oneFA}, "binding_message": {"Pay 5.00"}})
	e.clock.Advance(time.Minute)
	p := b.open(in.link("alice@example.com"))
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("a signed-in browser skipped the approval's authentication:\n%s", excerpt(p.body))
	}
	p = b.login(p, "alice", alicePass)
	wantApprovalPage(t, p, "Teller Bank", "Pay 5.00", oneFA)
	b.press(p, "approve")
	e.clock.Advance(time.Minute)
	if code, cl, _ := rp.poll(id); code != "" || cl.ACR != oneFA || !sameSet(cl.AMR, []string{"pwd"}) {
		t.Fatalf("tokens: %q %+v, want 1fa from the approval's password only", code, cl)
	}
	// The session was neither renewed nor raised: prompt=none still
	// answers with the old sign-in's auth_time.
	a := spa.authURL(map[string]string{"prompt": "none"})
	after := spa.mustExchange(a, b.get(a.url).result(t))
	if after.claims.AuthTime != before.claims.AuthTime {
		t.Fatalf("the approval changed the session: auth_time %d, was %d", after.claims.AuthTime, before.claims.AuthTime)
	}
}

// Deny on the approval page, and cancel on a factor page, are
// access_denied.
func TestCIBADeny(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	rp := e.cibaRP(t, "teller", tellerSecret)

	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}, "binding_message": {"Withdraw 10.00"}})
	b := e.browser()
	p := b.login(b.open(in.link("bob@example.com")), "bob", bobPass)
	wantApprovalPage(t, p, "Teller Bank", "Withdraw 10.00", oneFA)
	if p = b.press(p, "deny"); p.status != http.StatusOK || !strings.Contains(p.body, "denied") {
		t.Fatalf("deny: %d\n%s", p.status, excerpt(p.body))
	}
	rp.wantPoll(id, "access_denied")

	id, _, _ = rp.start(url.Values{"login_hint": {"bob"}})
	b = e.browser()
	b.cancel(b.open(in.link("bob@example.com")))
	rp.wantPoll(id, "access_denied")
}

// An approval link belongs to the first browser that opens it (a GET,
// as a link scanner sends, binds nothing); another browser sees nothing
// of the request. Links expire with the request;
// the client then gets expired_token.
func TestCIBALinkBindingAndExpiry(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	rp := e.cibaRP(t, "teller", tellerSecret)
	id, exp, _ := rp.start(url.Values{"login_hint": {"alice"}, "binding_message": {"Withdraw 10.00"}, "requested_expiry": {"60"}})
	if exp != 60 {
		t.Fatalf("expires_in %d, want the requested 60", exp)
	}
	link := in.link("alice@example.com")
	// A GET binds nothing: a scanner fetching the link takes nothing away.
	scanner := e.browser()
	if p := scanner.get(link); p.status != http.StatusOK || len(find(p.doc, hasAttr("data-action", "continue"))) != 1 || strings.Contains(p.body, "Teller") || strings.Contains(p.body, "Withdraw") {
		t.Fatalf("GET of the link: %d\n%s", p.status, excerpt(p.body))
	}
	first := e.browser()
	if p := first.open(link); len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("first browser: %d\n%s", p.status, excerpt(p.body))
	}
	for _, p := range []*page{e.browser().get(link), scanner.open(link)} {
		if p.status != http.StatusForbidden || strings.Contains(p.body, "alice") || strings.Contains(p.body, "Teller") || strings.Contains(p.body, "Withdraw") {
			t.Fatalf("another browser: %d\n%s", p.status, excerpt(p.body))
		}
	}
	if p := first.get(link); len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("first browser again: %d\n%s", p.status, excerpt(p.body))
	}
	e.clock.Advance(61 * time.Second)
	if code, _, _ := rp.poll(id); code != "expired_token" {
		t.Fatalf("poll after expiry: %q", code)
	}
	if p := e.browser().get(link); p.status != http.StatusGone {
		t.Fatalf("expired link: %d", p.status)
	}
	// requested_expiry above the client's max_expiry is cut to it.
	if _, exp, _ := rp.start(url.Values{"login_hint": {"bob"}, "requested_expiry": {"86400"}}); exp != 300 {
		t.Fatalf("expires_in %d, want max_expiry 300", exp)
	}
}

// Concurrent polls of an approved request: exactly one gets tokens.
func TestCIBAConcurrentPolls(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	rp := e.cibaRP(t, "teller", tellerSecret)
	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}})
	b := e.browser()
	b.press(b.login(b.open(in.link("bob@example.com")), "bob", bobPass), "approve")
	e.clock.Advance(time.Minute)
	const n = 8
	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, rp.tokenURL, strings.NewReader(url.Values{"grant_type": {cibaGrant}, "auth_req_id": {id}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("teller", tellerSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode == http.StatusOK && body["id_token"] != nil {
				results <- "tokens"
				return
			}
			results <- fmt.Sprint(body["error"])
		}()
	}
	wg.Wait()
	close(results)
	got := map[string]int{}
	for r := range results {
		got[r]++
	}
	// The rest polled too fast or after the take.
	if got["tokens"] != 1 || got["tokens"]+got["invalid_grant"]+got["slow_down"] != n {
		t.Fatalf("concurrent polls: %v, want exactly one with tokens", got)
	}
}

// Every error of the backchannel endpoint (CIBA Core §13) and of the
// CIBA grant (§11), and the one-pending-request rule.
func TestCIBAErrors(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, "", func(c *config.Config) {
		c.Users = append(c.Users, config.User{Username: "nomail", Password: bobPass})
	}))
	rp := e.cibaRP(t, "teller", tellerSecret)
	bc := rp.bcURL
	long := strings.Repeat("x", 257)
	for _, tc := range []struct {
		name   string
		v      url.Values
		status int
		code   string
	}{
		{"no openid", url.Values{"scope": {"profile"}, "login_hint": {"alice"}}, 400, "invalid_scope"},
		{"no hint", url.Values{"scope": {"openid"}}, 400, "invalid_request"},
		{"two hints", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "id_token_hint": {"x.y.z"}}, 400, "invalid_request"},
		{"login_hint_token", url.Values{"scope": {"openid"}, "login_hint_token": {"x"}}, 400, "invalid_request"},
		{"bad id_token_hint", url.Values{"scope": {"openid"}, "id_token_hint": {"x.y.z"}}, 400, "invalid_request"},
		{"unknown user", url.Values{"scope": {"openid"}, "login_hint": {"nobody"}}, 400, "unknown_user_id"},
		{"unreachable user", url.Values{"scope": {"openid"}, "login_hint": {"nomail"}}, 400, "unknown_user_id"},
		{"binding_message 65", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "binding_message": {strings.Repeat("é", 65)}}, 400, "invalid_binding_message"},
		{"binding_message control", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "binding_message": {"a\nb"}}, 400, "invalid_binding_message"},
		{"unknown acr", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "acr_values": {"urn:nope"}}, 400, "invalid_request"},
		{"17 acr values", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "acr_values": {strings.Repeat(oneFA+" ", 17)}}, 400, "invalid_request"},
		{"requested_expiry", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "requested_expiry": {"-5"}}, 400, "invalid_request"},
		{"long login_hint", url.Values{"scope": {"openid"}, "login_hint": {long}}, 400, "invalid_request"},
		{"user_code", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "user_code": {"1234"}}, 400, "invalid_request"},
	} {
		if status, body := rp.post(bc, tc.v); status != tc.status || body["error"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	// Client authentication as at the token endpoint.
	other := *rp
	other.secret = "wrong"
	if status, body := other.post(bc, url.Values{"scope": {"openid"}, "login_hint": {"alice"}}); status != 401 || body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", status, body)
	}
	other = *rp
	other.id, other.secret = "bank", bankSecret
	if status, body := other.post(bc, url.Values{"scope": {"openid"}, "login_hint": {"alice"}}); status != 400 || body["error"] != "unauthorized_client" {
		t.Errorf("client without the CIBA grant: %d %v", status, body)
	}
	if status, body := other.post(rp.tokenURL, url.Values{"grant_type": {cibaGrant}, "auth_req_id": {"a.b"}}); status != 400 || body["error"] != "unauthorized_client" {
		t.Errorf("CIBA grant of a client without it: %d %v", status, body)
	}
	if status, body := rp.post(bc, url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "client_secret": {tellerSecret}}); status != 400 || body["error"] != "invalid_request" {
		t.Errorf("two client authentication methods: %d %v", status, body)
	}
	if status, _ := e.postForm("/oauth/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"alice"}, "client_id": {"teller"}, "client_secret": {tellerSecret}}, "", ""); status != 200 {
		t.Errorf("client_secret_post: %d", status)
	}
	resp, err := http.Get(bc + "?scope=openid&login_hint=alice")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}

	// alice has a pending request of teller now (client_secret_post
	// above): another is 429 until she decides.
	if status, body := rp.post(bc, url.Values{"scope": {"openid"}, "login_hint": {"alice"}}); status != http.StatusTooManyRequests || body["error"] != "invalid_request" {
		t.Errorf("second pending request: %d %v", status, body)
	}

	// The grant: unknown, malformed and other clients' auth_req_ids.
	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}})
	for _, tc := range []struct{ arid, code string }{
		{"", "invalid_request"}, {"nodot", "invalid_grant"}, {id + "x", "invalid_grant"}, {"a.b", "invalid_grant"},
	} {
		if code, _, _ := rp.poll(tc.arid); code != tc.code {
			t.Errorf("auth_req_id %q: %q, want %q", tc.arid, code, tc.code)
		}
	}
	e.clock.Advance(time.Minute)
	if code, _, _ := rp.poll(id); code != "authorization_pending" {
		t.Errorf("the real one after those: %q", code)
	}
}

// Wrong factors on the approval page count in the user's one lockout
// budget: after max_failures, approvals and sign-ins are both refused.
func TestCIBALockout(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	rp := e.cibaRP(t, "teller", tellerSecret)
	rp.start(url.Values{"login_hint": {"bob"}})
	b := e.browser()
	p := b.open(in.link("bob@example.com"))
	for i := range 5 {
		p = b.login(p, "bob", "wrong")
		if p.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, p.status)
		}
	}
	wantAlert(t, b.login(p, "bob", bobPass), http.StatusTooManyRequests, "approval after lockout")
	// The same budget as a sign-in.
	s := e.browser()
	a := e.rp("spa", "").authURL(nil)
	wantAlert(t, s.login(s.get(a.url), "bob", bobPass), http.StatusTooManyRequests, "sign-in after approval failures")
}

// Ping mode (CIBA Core §10.2): the notification endpoint gets
// {"auth_req_id"} with the client_notification_token as bearer token,
// after which the client takes the tokens.
func TestCIBAPing(t *testing.T) {
	type ping struct{ auth, body, ctype string }
	pings := make(chan ping, 4)
	notify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		pings <- ping{r.Header.Get("Authorization"), string(b), r.Header.Get("Content-Type")}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(notify.Close)
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, notify.URL+"/cb"))
	rp := e.cibaRP(t, "pinger", tellerSecret)
	if status, body := rp.post(rp.bcURL, url.Values{"scope": {"openid"}, "login_hint": {"bob"}}); status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("ping without client_notification_token: %d %v", status, body)
	}
	const token = "notify-me-8f3c2a9b0d1e4f56"
	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}, "client_notification_token": {token}, "binding_message": {"Withdraw 10.00"}})
	b := e.browser()
	b.press(b.login(b.open(in.link("bob@example.com")), "bob", bobPass), "approve")
	select {
	case p := <-pings:
		var got map[string]string
		if err := json.Unmarshal([]byte(p.body), &got); err != nil || got["auth_req_id"] != id || len(got) != 1 {
			t.Fatalf("ping body %q, want {\"auth_req_id\": %q}", p.body, id)
		}
		if p.auth != "Bearer "+token || !strings.HasPrefix(p.ctype, "application/json") {
			t.Fatalf("ping Authorization %q Content-Type %q", p.auth, p.ctype)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ping")
	}
	if code, cl, _ := rp.poll(id); code != "" || cl.ACR != oneFA {
		t.Fatalf("token after the ping: %q %+v", code, cl)
	}
	// A denial pings too.
	id, _, _ = rp.start(url.Values{"login_hint": {"bob"}, "client_notification_token": {token}})
	b = e.browser()
	b.cancel(b.open(in.link("bob@example.com")))
	select {
	case p := <-pings:
		if !strings.Contains(p.body, id) {
			t.Fatalf("denial ping %q", p.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ping for the denial")
	}
	rp.wantPoll(id, "access_denied")
}

// A Chromium approval at phr: bob registered a passkey on /account; the
// approval page asks for it (the browser's own session does not count),
// the virtual authenticator answers with user verification, and the
// client's tokens say phr with the passkey's amr.
func TestBrowserCIBAPasskeyApproval(t *testing.T) {
	in := newInbox(t)
	b := newBrowserEnv(t, true, withCIBA(in, ""))
	b.enrollOnAccount("bob", bobPass, "", "Phone")

	rp := b.cibaRP(t, "teller", tellerSecret)
	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}, "acr_values": {"phr"}, "binding_message": {"Withdraw 10.00"}})
	b.navigate(in.link("bob@example.com"))
	b.click(`[data-action="continue"]`)
	b.onPath("/login/")
	b.click(`[data-action="passkey"]`)
	b.waitFor("the approval page", `!!document.querySelector('[data-action="approve"]')`)
	for _, want := range []string{"Teller Bank", "Withdraw 10.00", "phr"} {
		if !eval[bool](b, fmt.Sprintf(`document.body.innerText.includes(%q)`, want)) {
			t.Fatalf("the approval page does not show %q", want)
		}
	}
	b.screenshot("ciba-approval.png")
	b.click(`[data-action="approve"]`)
	b.waitFor("the decision", `document.body.innerText.includes("approved")`)

	b.clock.Advance(time.Minute)
	code, cl, body := rp.poll(id)
	if code != "" || cl.ACR != "phr" || !hasAll(cl.AMR, "hwk", "user", "mfa") || slices.Contains(cl.AMR, "pwd") {
		t.Fatalf("tokens: %q %+v %v, want phr from the passkey alone", code, cl, body)
	}
}

// Abuse: a locked account can neither be asked nor approve; a provider
// outage answers 503 and ends the request (the pair is free again); the
// per-user cap answers 429 once reached. Every step is audited.
func TestCIBAAbuseAndAudit(t *testing.T) {
	in := newInbox(t)
	logs := &syncBuffer{}
	e := newEnvWith(t, envOptions{mutate: withCIBA(in, ""), log: slog.New(slog.NewJSONHandler(logs, nil))})
	rp := e.cibaRP(t, "teller", tellerSecret)
	ctx := t.Context()
	bob, err := e.store().AccountByUsername(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}

	// Locked between the approval and the token request: access_denied.
	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}})
	b := e.browser()
	b.press(b.login(b.open(in.link("bob@example.com")), "bob", bobPass), "approve")
	if err := e.store().LockAccount(ctx, bob.Subject); err != nil {
		t.Fatal(err)
	}
	rp.wantPoll(id, "access_denied")
	if err := e.store().UnlockAccount(ctx, bob.Subject); err != nil {
		t.Fatal(err)
	}

	// Locked after the request: the approval page refuses the password.
	rp.start(url.Values{"login_hint": {"bob"}})
	if err := e.store().LockAccount(ctx, bob.Subject); err != nil {
		t.Fatal(err)
	}
	b = e.browser()
	wantAlert(t, b.login(b.open(in.link("bob@example.com")), "bob", bobPass), http.StatusTooManyRequests, "a locked user's approval")
	// Locked: no new request.
	if status, body := rp.post(rp.bcURL, url.Values{"scope": {"openid"}, "login_hint": {"alice"}}); status != 200 {
		t.Fatalf("alice (not locked): %d %v", status, body)
	}
	if status, body := e.cibaRP(t, "teller", tellerSecret).post(rp.bcURL, url.Values{"scope": {"openid"}, "login_hint": {"bob"}}); status != http.StatusForbidden || body["error"] != "access_denied" {
		t.Fatalf("a locked user: %d %v, want 403 access_denied", status, body)
	}

	// The provider is down: 503, and the request ended (no 429 after).
	in.down.Store(true)
	carol := url.Values{"scope": {"openid"}, "login_hint": {"carol"}}
	for i := range 9 {
		if status, body := rp.post(rp.bcURL, carol); status != http.StatusServiceUnavailable {
			t.Fatalf("request %d with the provider down: %d %v, want 503", i+1, status, body)
		}
	}
	in.down.Store(false)
	rp.start(carol) // the 10th in the window: allowed, pending now
	// The 11th for carol is over the per-user cap (whatever the pending rule says).
	if status, body := rp.post(rp.bcURL, carol); status != http.StatusTooManyRequests || body["error"] != "invalid_request" || !strings.Contains(fmt.Sprint(body["error_description"]), "too many") {
		t.Fatalf("over the per-user cap: %d %v", status, body)
	}

	for _, ev := range []string{"ciba.requested", "ciba.refused", "ciba.opened", "code.sent", "code.send_failed", "attempt.locked"} {
		if !strings.Contains(logs.String(), `"event":"`+ev+`"`) {
			t.Errorf("no %s audit event", ev)
		}
	}
}

// id_token_hint (CIBA Core §7.1): an ID token stepup issued to this
// client names the user; one issued to another client does not.
func TestCIBAIDTokenHint(t *testing.T) {
	in := newInbox(t)
	logs := &syncBuffer{}
	e := newEnvWith(t, envOptions{mutate: withCIBA(in, ""), log: slog.New(slog.NewJSONHandler(logs, nil))})
	rp := e.cibaRP(t, "teller", tellerSecret)
	id, _, _ := rp.start(url.Values{"login_hint": {"bob"}})
	b := e.browser()
	b.press(b.login(b.open(in.link("bob@example.com")), "bob", bobPass), "approve")
	e.clock.Advance(time.Minute)
	_, first, body := rp.poll(id)
	hint, _ := body["id_token"].(string)

	id, _, _ = rp.start(url.Values{"id_token_hint": {hint}, "binding_message": {"Second"}})
	b = e.browser()
	p := b.login(b.open(in.link("bob@example.com")), "bob", bobPass)
	wantApprovalPage(t, p, "Teller Bank", "Second", oneFA)
	b.press(p, "approve")
	e.clock.Advance(time.Minute)
	if code, cl, _ := rp.poll(id); code != "" || cl.Sub != first.Sub {
		t.Fatalf("with id_token_hint: %q %+v, want bob (%s)", code, cl, first.Sub)
	}
	for _, ev := range []string{"ciba.approved", `"grant_type":"urn:openid:params:grant-type:ciba"`} {
		if !strings.Contains(logs.String(), ev) {
			t.Errorf("no %s in the audit log", ev)
		}
	}

	spa := signIn(t, e, e.browser(), e.rp("spa", ""), nil, "bob", bobPass)
	if status, body := rp.post(rp.bcURL, url.Values{"scope": {"openid"}, "id_token_hint": {spa.idToken}}); status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("another client's ID token as hint: %d %v", status, body)
	}
}

// An approval that runs out while the user is on it ends with an error
// page, and leaves the browser's own session exactly as it was (it is
// neither used nor cleared).
func TestCIBAApprovalEndsWithoutTouchingSession(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, "", func(c *config.Config) {
		c.Session.IdleTimeout = config.Duration(2 * time.Hour)
		c.Clients[len(c.Clients)-1].CIBA.MaxExpiry = config.Duration(time.Hour)
	}))
	b := e.browser()
	spa := e.rp("spa", "")
	signIn(t, e, b, spa, nil, "bob", bobPass)
	rp := e.cibaRP(t, "teller", tellerSecret)
	rp.start(url.Values{"login_hint": {"bob"}, "requested_expiry": {"600"}})
	p := b.open(in.link("bob@example.com"))
	e.clock.Advance(11 * time.Minute) // past the request, so past its approval flow
	if p = b.login(p, "bob", bobPass); p.status/100 != 4 || p.loc != nil {
		t.Fatalf("an approval past its flow: %d\n%s", p.status, excerpt(p.body))
	}
	a := spa.authURL(map[string]string{"prompt": "none"})
	if res := b.get(a.url).result(t); res.err != "" {
		t.Fatalf("the browser's session after an approval ran out: %+v", res)
	}
}
