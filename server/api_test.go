package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/authn/recovery"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// apiEnv: bank may use every API; "floor" (confidential) has no API scope.
func apiEnv(t *testing.T) *env {
	return newEnv(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin", "stepup:authn"}
			}
			if c.Clients[i].ID == "floor" {
				c.Clients[i].GrantTypes = []string{"authorization_code", "client_credentials"}
			}
		}
	})
}

// ccToken gets a client_credentials access token.
func (e *env) ccToken(client, secret, scope string) string {
	e.t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		v.Set("scope", scope)
	}
	status, body := e.postForm("/oauth/token", v, client, secret)
	tok, _ := body["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		e.t.Fatalf("client_credentials for %s (%s): %d %v", client, scope, status, body)
	}
	return tok
}

type apiResp struct {
	status int
	body   map[string]any
	header http.Header
}

func (a apiResp) str(k string) string { s, _ := a.body[k].(string); return s }

// api calls /api/v1/… with a bearer token and a JSON body.
func (e *env) api(method, path, token string, body any, header ...string) apiResp {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	// The test rides along so that docs/openapi.yaml's validator
	// (openapi_test.go) blames it for a call the document does not allow.
	req, _ := http.NewRequestWithContext(withTest(context.Background(), e.t), method, e.issuer+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiResp{status: resp.StatusCode, header: resp.Header}
	_ = json.NewDecoder(resp.Body).Decode(&out.body)
	return out
}

func (a apiResp) want(t *testing.T, what string, status int, code string) apiResp {
	t.Helper()
	if a.status != status || (code != "" && a.str("error") != code) {
		t.Fatalf("%s: %d %v, want %d %s", what, a.status, a.body, status, code)
	}
	return a
}

func (e *env) subject(username string) string {
	e.t.Helper()
	a, err := e.store().AccountByUsername(context.Background(), username)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Subject
}

func TestGrantsAPI(t *testing.T) {
	e := apiEnv(t)
	alice, bob := e.subject("alice"), e.subject("bob")
	grants := e.ccToken("bank", bankSecret, "stepup:grants")
	ask := func(user, action, code, typ string, secs int) apiResp {
		return e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{
			"user_id": user, "action_type": action, "code": code, "grant_type": typ, "valid_for_seconds": secs})
	}
	check := func(user, action, grant string) apiResp {
		return e.api("POST", "/api/v1/step-up/verify-grant", grants, map[string]any{"user_id": user, "action_type": action, "grant": grant})
	}

	// Authentication and scope.
	e.api("POST", "/api/v1/step-up/verify-totp", "", map[string]any{}).want(t, "no token", 401, "invalid_token")
	e.api("POST", "/api/v1/step-up/verify-totp", "not.a.token", map[string]any{}).want(t, "bad token", 401, "invalid_token")
	noScope := e.api("POST", "/api/v1/step-up/verify-grant", e.ccToken("bank", bankSecret, ""), map[string]any{"user_id": alice, "action_type": "a", "grant": "g"})
	noScope.want(t, "token without the scope", 403, "insufficient_scope")
	e.api("POST", "/api/v1/step-up/verify-totp", e.ccToken("floor", bankSecret, ""), map[string]any{}).want(t, "client without the scope", 403, "insufficient_scope")
	b, r := e.browser(), e.rp("spa", "")
	userTok := signIn(t, e, b, r, nil, "alice", alicePass).tok.AccessToken
	e.api("POST", "/api/v1/step-up/verify-grant", userTok, map[string]any{}).want(t, "a user's token", 403, "insufficient_scope")

	// Input errors.
	ask(alice, "withdraw", "123456", "FOREVER", 60).want(t, "bad grant_type", 400, "invalid_request")
	ask(alice, "withdraw", "123456", "TIME_BASED", 0).want(t, "no valid_for_seconds", 400, "invalid_request")
	ask("nobody", "withdraw", "123456", "TIME_BASED", 60).want(t, "unknown user", 404, "user_not_found")
	ask(bob, "withdraw", "123456", "TIME_BASED", 60).want(t, "bob has no TOTP", 400, "user_not_enrolled")
	e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{"user": alice}).want(t, "unknown field", 400, "invalid_request")

	// A one-time grant.
	code := e.totpCode(aliceTOTP)
	g := ask(alice, "withdraw", code, "ONE_TIME_USE", 120).want(t, "right code", 200, "")
	grant := g.str("step_up_grant")
	if grant == "" || int64(g.body["expires_at"].(float64)) != e.clock.Now().Add(120*time.Second).Unix() {
		t.Fatalf("grant answer %v", g.body)
	}
	ask(alice, "withdraw", code, "ONE_TIME_USE", 120).want(t, "replayed code", 400, "invalid_code")
	check(alice, "transfer", grant).want(t, "another action", 404, "grant_not_found")
	check(bob, "withdraw", grant).want(t, "another user", 404, "grant_not_found")
	// Neither mismatch consumed it; of two concurrent uses exactly one wins.
	statuses := make([]int, 8)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i] = check(alice, "withdraw", grant).status })
	}
	wg.Wait()
	wins := 0
	for _, s := range statuses {
		if s == 200 {
			wins++
		}
	}
	if wins != 1 || slices.ContainsFunc(statuses, func(s int) bool { return s != 200 && s != 404 }) {
		t.Fatalf("concurrent uses of a one-time grant: %v, want exactly one 200", statuses)
	}
	check(alice, "withdraw", grant).want(t, "used one-time grant", 404, "grant_not_found")

	// Another client with the scope cannot use bank's grant.
	e.clock.Advance(30 * time.Second)
	tb := ask(alice, "export", e.totpCode(aliceTOTP), "TIME_BASED", 60).want(t, "time-based", 200, "").str("step_up_grant")
	for i := range 3 {
		if got := check(alice, "export", tb); got.status != 200 || got.body["success"] != true || got.body["factor"] != "totp" {
			t.Fatalf("time-based use %d: %v", i, got.body)
		}
	}
	e.clock.Advance(61 * time.Second)
	check(alice, "export", tb).want(t, "expired time-based grant", 404, "grant_not_found")

	// Other factors through verify-factor: a password re-entry, a
	// recovery code (each once); verify-totp takes a code only.
	factorGrant := func(body map[string]any) apiResp {
		body["user_id"], body["action_type"], body["grant_type"], body["valid_for_seconds"] = bob, "close-account", "ONE_TIME_USE", 60
		return e.api("POST", "/api/v1/step-up/verify-factor", grants, body)
	}
	factorGrant(map[string]any{"factor": "password", "password": "wrong"}).want(t, "wrong password", 400, "invalid_credentials")
	pg := factorGrant(map[string]any{"factor": "password", "password": bobPass}).want(t, "password grant", 200, "").str("step_up_grant")
	// verify-grant says what the grant rests on: a password re-entry is
	// not an authenticator code.
	if f := check(bob, "close-account", pg).want(t, "password grant holds", 200, "").str("factor"); f != "password" {
		t.Fatalf("verify-grant of a password grant: factor %q, want password", f)
	}
	factorGrant(map[string]any{"factor": "recovery", "code": "x"}).want(t, "bob has no recovery codes", 400, "user_not_enrolled")
	factorGrant(map[string]any{"factor": "sms", "code": "x"}).want(t, "not a grant factor", 400, "invalid_request")
	codes, err := recovery.New(e.store()).Generate(context.Background(), bob)
	if err != nil {
		t.Fatal(err)
	}
	factorGrant(map[string]any{"factor": "recovery", "code": codes[1]}).want(t, "recovery grant", 200, "")
	factorGrant(map[string]any{"factor": "recovery", "code": codes[1]}).want(t, "recovery code reused", 400, "invalid_code")
	e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{"user_id": bob, "action_type": "a", "factor": "password", "password": bobPass, "grant_type": "ONE_TIME_USE", "valid_for_seconds": 60}).
		want(t, "verify-totp with a password", 400, "invalid_request")

	// Wrong codes use the user's one budget (5; the replay above was the
	// first failure): the sixth attempt is 429 even with the right code,
	// and the hosted pages are locked too.
	for i := range 4 {
		ask(alice, "withdraw", "000000", "ONE_TIME_USE", 60).want(t, "wrong code "+string(rune('1'+i)), 400, "invalid_code")
	}
	locked := ask(alice, "withdraw", e.totpCode(aliceTOTP), "ONE_TIME_USE", 60).want(t, "locked", 429, "rate_limited")
	if locked.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	other := e.browser()
	wantAlert(t, other.login(other.get(r.authURL(nil).url), "alice", alicePass), http.StatusTooManyRequests, "hosted login after API lockout")
}

func TestAdminAPI(t *testing.T) {
	e := apiEnv(t)
	alice := e.subject("alice")
	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)

	e.api("GET", "/api/v1/users/"+alice+"/sessions", e.ccToken("bank", bankSecret, "stepup:grants"), nil).want(t, "grants scope on admin", 403, "insufficient_scope")
	e.api("GET", "/api/v1/users/nobody/sessions", admin, nil).want(t, "unknown user", 404, "user_not_found")
	e.api("POST", "/api/v1/sessions/nope/drop-elevation", admin, nil).want(t, "unknown session", 404, "session_not_found")

	list := func() []map[string]any {
		t.Helper()
		got := e.api("GET", "/api/v1/users/"+alice+"/sessions", admin, nil).want(t, "list", 200, "")
		var out []map[string]any
		for _, s := range got.body["sessions"].([]any) {
			out = append(out, s.(map[string]any))
		}
		return out
	}
	ss := list()
	if len(ss) != 1 || !sameSet(toStrings(ss[0]["levels"]), []string{oneFA, mfaACR}) || !sameSet(toStrings(ss[0]["client_ids"]), []string{"spa"}) || ss[0]["created_at"] == nil || ss[0]["last_seen_at"] == nil {
		t.Fatalf("sessions after an mfa sign-in: %v", ss)
	}
	id := ss[0]["id"].(string)

	// Drop the elevation: only 1fa stays, and the next authorization that
	// asks for multi-factor must step up again.
	e.api("POST", "/api/v1/sessions/"+id+"/drop-elevation", admin, nil).want(t, "drop", 204, "")
	if ss := list(); len(ss) != 1 || !sameSet(toStrings(ss[0]["levels"]), []string{oneFA}) {
		t.Fatalf("after drop: %v", ss)
	}
	a := r.authURL(nil)
	wantClaims(t, r.mustExchange(a, b.get(a.url).result(t)), oneFA, []string{"pwd"})
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	if p.loc != nil || len(find(p.doc, hasAttr("data-factor", "totp"))) == 0 {
		t.Fatalf("after drop-elevation, a multi-factor request did not ask for TOTP (status %d)", p.status)
	}
	e.clock.Advance(30 * time.Second)
	wantClaims(t, r.mustExchange(a, b.code(p, "totp", e.totpCode(aliceTOTP)).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// Revoke one session: the browser must sign in again.
	e.api("DELETE", "/api/v1/sessions/"+id, admin, nil).want(t, "revoke", 204, "")
	e.api("DELETE", "/api/v1/sessions/"+id, admin, nil).want(t, "revoke again", 404, "session_not_found")
	if p := b.get(r.authURL(nil).url); len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("after revocation the browser was not asked to sign in (status %d)", p.status)
	}

	// Revoke all: two browsers.
	b2 := e.browser()
	signIn(t, e, b, r, nil, "alice", alicePass)
	signIn(t, e, b2, r, nil, "alice", alicePass)
	if n := len(list()); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	e.api("DELETE", "/api/v1/users/"+alice+"/sessions", admin, nil).want(t, "revoke all", 204, "")
	if n := len(list()); n != 0 {
		t.Fatalf("%d sessions after revoking all", n)
	}

	// Lock: the right password is refused (429) on the hosted pages and
	// the API alike, and sessions end; unlock lifts it.
	signIn(t, e, b, r, nil, "alice", alicePass)
	grantsTok := e.ccToken("bank", bankSecret, "stepup:grants")
	e.clock.Advance(30 * time.Second)
	grant := e.api("POST", "/api/v1/step-up/verify-totp", grantsTok, map[string]any{
		"user_id": alice, "action_type": "pay", "code": e.totpCode(aliceTOTP), "grant_type": "ONE_TIME_USE", "valid_for_seconds": 600}).want(t, "grant before the lock", 200, "").str("step_up_grant")
	useGrant := func() apiResp {
		return e.api("POST", "/api/v1/step-up/verify-grant", grantsTok, map[string]any{"user_id": alice, "action_type": "pay", "grant": grant})
	}
	e.api("POST", "/api/v1/users/"+alice+"/lock", admin, nil).want(t, "lock", 204, "")
	useGrant().want(t, "a locked user's grant", 404, "grant_not_found")
	e.api("POST", "/api/v1/authn/sessions", e.ccToken("bank", bankSecret, "stepup:authn"), map[string]any{"user_id": alice}).want(t, "API session while locked", 403, "user_locked")
	if n := len(list()); n != 0 {
		t.Fatalf("%d sessions after lock", n)
	}
	p = b.get(r.authURL(nil).url)
	wantAlert(t, b.login(p, "alice", alicePass), http.StatusTooManyRequests, "login while locked")
	e.api("POST", "/api/v1/step-up/verify-totp", e.ccToken("bank", bankSecret, "stepup:grants"), map[string]any{
		"user_id": alice, "action_type": "a", "code": e.totpCode(aliceTOTP), "grant_type": "ONE_TIME_USE", "valid_for_seconds": 60}).want(t, "grant while locked", 429, "rate_limited")
	e.api("POST", "/api/v1/users/"+alice+"/unlock", admin, nil).want(t, "unlock", 204, "")
	useGrant().want(t, "the one-time grant was not consumed while locked", 200, "")
	a = r.authURL(nil)
	wantClaims(t, r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t)), oneFA, []string{"pwd"})
	e.api("POST", "/api/v1/users/nobody/lock", admin, nil).want(t, "lock unknown", 404, "user_not_found")
}

// exchangeCode redeems a code at /oauth/token.
func (e *env) exchangeCode(client, secret, code, verifier string) (int, map[string]any) {
	e.t.Helper()
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {rpCallback}}
	if secret == "" {
		v.Set("client_id", client)
		return e.postForm("/oauth/token", v, "", "")
	}
	return e.postForm("/oauth/token", v, client, secret)
}

func (e *env) idClaims(client string, raw any) claims {
	e.t.Helper()
	s, _ := raw.(string)
	ctx := oidc.ClientContext(context.Background(), e.ln.Client())
	prov, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: client, Now: e.clock.Now}).Verify(ctx, s)
	if err != nil {
		e.t.Fatalf("ID token: %v", err)
	}
	var c claims
	_ = idt.Claims(&c)
	return c
}

func TestNativeAuthenticationBackend(t *testing.T) {
	e := apiEnv(t)
	alice := e.subject("alice")
	tok := e.ccToken("bank", bankSecret, "stepup:authn")
	ip := []string{"Stepup-End-User-Ip", "203.0.113.7"}

	e.api("POST", "/api/v1/authn/sessions", e.ccToken("bank", bankSecret, "stepup:grants"), map[string]any{"username": "alice"}).want(t, "wrong scope", 403, "insufficient_scope")
	e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice", "bind_ip": true}).want(t, "bind without address", 400, "invalid_request")
	start := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice", "bind_ip": true}, ip...).want(t, "start", 201, "")
	id := start.str("id")
	if start.str("user_id") != alice || start.str("acr") != "" || start.body["ip_bound"] != true || !sameSet(toStrings(start.body["factors"]), []string{"password", "totp"}) /* no recovery codes yet */ {
		t.Fatalf("new session: %v", start.body)
	}
	path := "/api/v1/authn/sessions/" + id
	e.api("GET", path, tok, nil, "Stepup-End-User-Ip", "198.51.100.1").want(t, "other address", 403, "ip_mismatch")
	e.api("GET", path, tok, nil).want(t, "no address", 403, "ip_mismatch")
	e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()), "code_challenge_method": "S256", "redirect_uri": rpCallback}, ip...).
		want(t, "complete with nothing verified", 400, "unmet_authentication_requirements")

	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": "wrong"}, ip...).want(t, "wrong password", 400, "invalid_credentials")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "fingerprint", "code": "1"}, ip...).want(t, "unknown factor", 400, "invalid_request")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "sms", "code": "1"}, ip...).want(t, "alice has no phone", 400, "user_not_enrolled")
	st := e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}, ip...).want(t, "password", 200, "")
	if st.str("acr") != oneFA || !sameSet(toStrings(st.body["amr"]), []string{"pwd"}) {
		t.Fatalf("after the password: %v", st.body)
	}
	e.clock.Advance(5 * time.Second)
	st = e.api("POST", path+"/verify", tok, map[string]any{"factor": "totp", "code": e.totpCode(aliceTOTP)}, ip...).want(t, "totp", 200, "")
	totpAt := e.clock.Now().Unix()
	if st.str("acr") != mfaACR || !sameSet(toStrings(st.body["amr"]), []string{"pwd", "otp", "mfa"}) || !sameSet(toStrings(st.body["levels"]), []string{oneFA, mfaACR}) {
		t.Fatalf("after TOTP: %v", st.body)
	}
	// GET reads the same state without changing it.
	if got := e.api("GET", path, tok, nil, ip...).want(t, "state", 200, ""); got.str("acr") != mfaACR || !sameSet(toStrings(got.body["levels"]), []string{oneFA, mfaACR}) || got.str("id") != id {
		t.Fatalf("GET state: %v", got.body)
	}

	// Another client may not drive it.
	e.api("GET", path, e.ccToken("floor", bankSecret, ""), nil, ip...).want(t, "another client", 403, "insufficient_scope")

	verifier := oauth2.GenerateVerifier()
	done := e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "scope": "openid profile", "nonce": "n-1", "redirect_uri": rpCallback}, ip...).want(t, "complete", 200, "")
	code := done.str("code")
	e.api("GET", path, tok, nil, ip...).want(t, "handle after completion", 404, "session_not_found")

	// PKCE-bound: a wrong verifier fails (without spending the code: see
	// TestStolenCodeIsNeitherSpentNorRevoking).
	if status, body := e.exchangeCode("bank", bankSecret, code, oauth2.GenerateVerifier()); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", status, body)
	}
	// A fresh session and code for the rest.
	id = e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"user_id": alice}).want(t, "start 2", 201, "").str("id")
	path = "/api/v1/authn/sessions/" + id
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password 2", 200, "")
	e.clock.Advance(30 * time.Second)
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "totp", "code": e.totpCode(aliceTOTP)}).want(t, "totp 2", 200, "")
	totpAt = e.clock.Now().Unix()
	e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": "short", "code_challenge_method": "S256", "redirect_uri": rpCallback}).want(t, "bad challenge", 400, "invalid_request")
	code = e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "nonce": "n-2", "redirect_uri": rpCallback}).want(t, "complete 2", 200, "").str("code")
	status, body := e.exchangeCode("bank", bankSecret, code, verifier)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	c := e.idClaims("bank", body["id_token"])
	if c.Sub != alice || c.ACR != mfaACR || !sameSet(c.AMR, []string{"pwd", "otp", "mfa"}) || c.AuthTime != totpAt || c.Nonce != "n-2" {
		t.Fatalf("ID token of an API session: %+v (auth_time want %d)", c, totpAt)
	}
	// Single use: the replay fails.
	if status, body := e.exchangeCode("bank", bankSecret, code, verifier); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("replayed code: %d %v", status, body)
	}

	// Recovery codes are a factor too, each usable once.
	id = e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"user_id": alice}).want(t, "start 3", 201, "").str("id")
	path = "/api/v1/authn/sessions/" + id
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "recovery", "code": "aaaa-bbbb"}).want(t, "no recovery codes yet", 400, "user_not_enrolled")
	codes, err := recovery.New(e.store()).Generate(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password 3", 200, "")
	st = e.api("POST", path+"/verify", tok, map[string]any{"factor": "recovery", "code": codes[0]}).want(t, "recovery", 200, "")
	if st.str("acr") != mfaACR || !sameSet(toStrings(st.body["amr"]), []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("after a recovery code: %v", st.body)
	}
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "recovery", "code": codes[0]}).want(t, "recovery code reused", 400, "invalid_code")
}

// A native app holding a user's 1fa access token steps up through the
// API: the session it starts is its own and empty (issue 13 item 2), so
// the user verifies every factor of the level through the handle, the
// new tokens carry the elevated acr and mfa, and the browser session the
// token came from is not elevated by it.
func TestNativeStepUpWithUserToken(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	tok := first.tok.AccessToken

	start := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{}).want(t, "start with a user token", 201, "")
	if start.str("acr") != "" || len(toStrings(start.body["amr"])) != 0 {
		t.Fatalf("a new API session should hold nothing: %v", start.body)
	}
	e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"user_id": e.subject("bob")}).want(t, "another user", 403, "insufficient_scope")
	path := "/api/v1/authn/sessions/" + start.str("id")
	verifier := oauth2.GenerateVerifier()
	e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "redirect_uri": rpCallback}).
		want(t, "complete without a factor of its own", 400, "unmet_authentication_requirements")
	e.clock.Advance(10 * time.Second)
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "totp", "code": e.totpCode(aliceTOTP)}).want(t, "totp", 200, "")
	// TOTP alone is one factor: asking for multi-factor fails, honestly.
	e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "acr_values": mfaACR, "redirect_uri": rpCallback}).
		want(t, "mfa with TOTP alone", 400, "unmet_authentication_requirements")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password", 200, "")
	e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "acr_values": "phr", "redirect_uri": rpCallback}).
		want(t, "phr not reached", 400, "unmet_authentication_requirements")
	code := e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "acr_values": mfaACR, "redirect_uri": rpCallback}).
		want(t, "complete", 200, "").str("code")
	status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "client_id": {"spa"}, "redirect_uri": {"http://127.0.0.1:9/other"}}, "", "")
	if status != 400 {
		t.Fatalf("another redirect_uri: %d %v", status, body)
	}
	status, body = e.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "client_id": {"spa"}, "redirect_uri": {rpCallback}}, "", "")
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	c := e.idClaims("spa", body["id_token"])
	if c.ACR != mfaACR || !sameSet(c.AMR, []string{"pwd", "otp", "mfa"}) || c.Sub != first.claims.Sub {
		t.Fatalf("elevated tokens: %+v", c)
	}
	if !strings.Contains(body["scope"].(string), "openid") {
		t.Fatalf("scope %v", body["scope"])
	}
	// The browser's session is not elevated: a multi-factor request asks
	// for TOTP there.
	p := b.get(r.authURL(map[string]string{"acr_values": mfaACR}).url)
	if p.loc != nil || len(find(p.doc, hasAttr("data-factor", "totp"))) == 0 {
		t.Fatalf("the API step-up elevated the browser session (status %d)", p.status)
	}
}

// The APIs during a real Redis outage: 503 temporarily_unavailable,
// nothing written (no failure counted, no grant, no lock), and service
// resumes by itself.
func TestAPIDuringRedisOutage(t *testing.T) {
	rp0 := startRedis(t)
	var stores []*redisstore.Store
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	open := func() session.Store {
		s, err := redisstore.Open(config.Redis{URL: rp0.url()}, redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
		return s
	}
	e := newEnvWith(t, envOptions{open: open, mutate: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin", "stepup:authn"}
			}
		}
	}})
	alice := e.subject("alice")
	grants := e.ccToken("bank", bankSecret, "stepup:grants")
	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	authnTok := e.ccToken("bank", bankSecret, "stepup:authn")
	ask := func() apiResp {
		return e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{
			"user_id": alice, "action_type": "a", "code": e.totpCode(aliceTOTP), "grant_type": "ONE_TIME_USE", "valid_for_seconds": 60})
	}

	rp0.stop()
	ask().want(t, "verify-totp during the outage", 503, "temporarily_unavailable")
	e.api("POST", "/api/v1/step-up/verify-grant", grants, map[string]any{"user_id": alice, "action_type": "a", "grant": "g"}).want(t, "verify-grant", 503, "temporarily_unavailable")
	e.api("POST", "/api/v1/users/"+alice+"/lock", admin, nil).want(t, "lock", 503, "temporarily_unavailable")
	e.api("POST", "/api/v1/authn/sessions", authnTok, map[string]any{"user_id": alice}).want(t, "start", 503, "temporarily_unavailable")

	rp0.start()
	eventually(t, "the API answers again", func() bool { return ask().status == 200 })
	// Nothing was counted or locked during the outage: four wrong codes
	// still leave one attempt before the lockout.
	for range 4 {
		e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{
			"user_id": alice, "action_type": "a", "code": "000000", "grant_type": "ONE_TIME_USE", "valid_for_seconds": 60}).want(t, "wrong code", 400, "invalid_code")
	}
	e.clock.Advance(30 * time.Second)
	ask().want(t, "the fifth attempt", 200, "")
}
