package server_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

func TestDiscovery(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	strs := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if d["issuer"] != e.issuer {
		t.Fatalf("issuer %v", d["issuer"])
	}
	if got := strs("acr_values_supported"); !slices.Equal(got, []string{oneFA, mfaACR, "phr", "phrh"}) {
		t.Fatalf("acr_values_supported %v", got)
	}
	if !slices.Equal(strs("response_types_supported"), []string{"code"}) || !slices.Equal(strs("code_challenge_methods_supported"), []string{"S256"}) {
		t.Fatalf("response types / PKCE methods: %v %v", d["response_types_supported"], d["code_challenge_methods_supported"])
	}
	for _, c := range []string{"acr", "amr", "auth_time"} {
		if !slices.Contains(strs("claims_supported"), c) {
			t.Fatalf("claims_supported lacks %s", c)
		}
	}
	if d["claims_parameter_supported"] != true || d["authorization_response_iss_parameter_supported"] != true {
		t.Fatalf("flags: %v %v", d["claims_parameter_supported"], d["authorization_response_iss_parameter_supported"])
	}
	for _, k := range []string{"introspection_endpoint", "revocation_endpoint", "userinfo_endpoint", "end_session_endpoint", "jwks_uri", "token_endpoint"} {
		if v, _ := d[k].(string); !strings.HasPrefix(v, e.issuer+"/") {
			t.Fatalf("%s = %v", k, d[k])
		}
	}
}

func TestPKCE(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")

	// A public client without a challenge: invalid_request to the RP.
	u, _ := url.Parse(r.cfg.AuthCodeURL("st"))
	if res := b.get(u.String()).result(t); res.err != "invalid_request" || res.state != "st" || res.iss != e.issuer {
		t.Fatalf("missing PKCE: %+v", res)
	}
	// plain is never accepted.
	q := u.Query()
	q.Set("code_challenge", strings.Repeat("a", 43))
	q.Set("code_challenge_method", "plain")
	u.RawQuery = q.Encode()
	if res := b.get(u.String()).result(t); res.err != "invalid_request" {
		t.Fatalf("plain PKCE: %+v", res)
	}
	// A wrong verifier fails the exchange.
	a := r.authURL(nil)
	res := b.login(b.get(a.url), "alice", alicePass).result(t)
	a.verifier = oauth2.GenerateVerifier()
	if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("wrong verifier: %v", err)
	}
}

func TestRedirectURIMismatchNeverRedirects(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	for name, mutate := range map[string]func(q url.Values){
		"other uri":      func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"unknown client": func(q url.Values) { q.Set("client_id", "nope") },
		"missing uri":    func(q url.Values) { q.Del("redirect_uri") },
		"suffix":         func(q url.Values) { q.Set("redirect_uri", rpCallback+"/x") },
	} {
		a := r.authURL(nil)
		u, _ := url.Parse(a.url)
		q := u.Query()
		mutate(q)
		u.RawQuery = q.Encode()
		p := b.get(u.String())
		if p.status != http.StatusBadRequest || p.loc != nil {
			t.Fatalf("%s: status %d loc %v", name, p.status, p.loc)
		}
	}
	// The port of a loopback IP literal is not compared (RFC 8252 §7.3).
	a := r.authURL(nil)
	u, _ := url.Parse(strings.Replace(a.url, url.QueryEscape("127.0.0.1:9"), url.QueryEscape("127.0.0.1:53682"), 1))
	p := b.get(u.String())
	if p.status != http.StatusOK {
		t.Fatalf("loopback port variant refused: %d", p.status)
	}
}

func TestRefreshKeepsClaims(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	tk := signIn(t, e, b, r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
	e.clock.Advance(20 * time.Minute) // past the mfa elevation lifetime
	nt, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tk.tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := r.verify(nt, "")
	if err != nil {
		t.Fatal(err)
	}
	if rt.claims.ACR != tk.claims.ACR || !sameSet(rt.claims.AMR, tk.claims.AMR) || rt.claims.AuthTime != tk.claims.AuthTime {
		t.Fatalf("refresh changed claims: %+v vs %+v", rt.claims, tk.claims)
	}
	at := jwtClaims(t, nt.AccessToken)
	if at["acr"] != mfaACR || int64(at["auth_time"].(float64)) != tk.claims.AuthTime {
		t.Fatalf("refreshed access token claims %v", at)
	}
}

func TestPublicRefreshReuseKillsFamily(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, nil, "alice", alicePass)
	old := tk.tok.RefreshToken
	t1, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if t1.RefreshToken == "" || t1.RefreshToken == old {
		t.Fatal("public client refresh token did not rotate")
	}
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: old}).Token(); err == nil {
		t.Fatal("reused refresh token accepted")
	}
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: t1.RefreshToken}).Token(); err == nil {
		t.Fatal("the family survived a reuse")
	}
}

func TestIDTokenHintOtherSubject(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	bob := signIn(t, e, e.browser(), r, nil, "bob", bobPass)
	signIn(t, e, b, r, nil, "alice", alicePass)

	a := r.authURL(map[string]string{"prompt": "none", "id_token_hint": bob.idToken})
	if res := b.get(a.url).result(t); res.err != "login_required" {
		t.Fatalf("hint for bob on alice's session: %+v", res)
	}
	// Without prompt=none the session is not used: the login page.
	a = r.authURL(map[string]string{"id_token_hint": bob.idToken})
	p := b.get(a.url)
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("hint for another subject did not show the login page")
	}
}

func TestSessionSurvivesRestartAndTwoInstances(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	// Begin on instance 1: the password.
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "alice", alicePass)
	// Instance 1 "restarts": a new process on the same store serves the
	// same address; the flow finishes there.
	e.ln.Config.Handler = e.instance().Handler()
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	res := p.result(t)

	// A second instance on another address, same store: it redeems the
	// code, and its SSO sees the session made on the first.
	second := httptest.NewServer(e.instance().Handler())
	defer second.Close()
	r.cfg.Endpoint.TokenURL = second.URL + "/oauth/token"
	tk := r.mustExchange(a, res)
	wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
}

func TestCSRFRejected(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	p := b.get(r.authURL(nil).url)
	f := p.form(t, hasAttr("autocomplete", "current-password"))
	action, _ := attr(f, "action")
	post := func(v url.Values, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+action, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return b.do(req).status
	}
	creds := url.Values{"username": {"alice"}, "password": {alicePass}}
	if s := post(creds, e.issuer); s != http.StatusForbidden {
		t.Fatalf("no token: %d", s)
	}
	creds.Set("csrf_token", "forged")
	if s := post(creds, e.issuer); s != http.StatusForbidden {
		t.Fatalf("bad token: %d", s)
	}
	tokenInput := find(f, hasAttr("name", "csrf_token"))[0]
	good, _ := attr(tokenInput, "value")
	creds.Set("csrf_token", good)
	if s := post(creds, "https://evil.example"); s != http.StatusForbidden {
		t.Fatalf("cross-origin: %d", s)
	}
	// Nothing changed: still no session, prompt=none says login_required.
	a := r.authURL(map[string]string{"prompt": "none"})
	if res := b.get(a.url).result(t); res.err != "login_required" {
		t.Fatalf("a refused POST signed the user in: %+v", res)
	}
}

func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestAccessTokenRFC9068IntrospectionUserinfoRevocation(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	r.cfg.Scopes = []string{"openid", "profile", "email"}
	tk := signIn(t, e, b, r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	at := tk.tok.AccessToken
	if h := jwtHeader(t, at); h["typ"] != "at+jwt" {
		t.Fatalf("access token typ %v", h["typ"])
	}
	c := jwtClaims(t, at)
	for _, k := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti", "acr", "amr", "auth_time"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("access token lacks %s: %v", k, c)
		}
	}
	status, in := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret)
	if status != 200 || in["active"] != true || in["acr"] != mfaACR || in["sub"] != tk.claims.Sub {
		t.Fatalf("introspection: %d %v", status, in)
	}
	// A public client may not introspect; a wrong secret is 401.
	if status, _ := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("introspection with a bad secret: %d", status)
	}
	// userinfo
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if ui["sub"] != tk.claims.Sub || ui["email"] != "alice@example.com" || ui["name"] != "Alice Example" {
		t.Fatalf("userinfo %v", ui)
	}
	// Revoke the access token: introspection turns inactive.
	if status, _ := e.postForm("/oauth/revoke", url.Values{"token": {at}}, "bank", bankSecret); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if _, in := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret); in["active"] != false {
		t.Fatalf("revoked token still active: %v", in)
	}
	// Revoke the refresh token: the grant is gone.
	if status, _ := e.postForm("/oauth/revoke", url.Values{"token": {tk.tok.RefreshToken}}, "bank", bankSecret); status != 200 {
		t.Fatal("revoke refresh")
	}
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tk.tok.RefreshToken}).Token(); err == nil {
		t.Fatal("revoked refresh token still works")
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, nil)
	status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"stepup:grants"}}, "bank", bankSecret)
	if status != 200 || body["access_token"] == nil || body["scope"] != "stepup:grants" {
		t.Fatalf("client_credentials: %d %v", status, body)
	}
	c := jwtClaims(t, body["access_token"].(string))
	if c["sub"] != "bank" || c["client_id"] != "bank" || c["acr"] != nil {
		t.Fatalf("client token claims %v", c)
	}
	if status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"stepup:admin"}}, "bank", bankSecret); status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("unlisted scope: %d %v", status, body)
	}
	if status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "bank", "nope"); status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("bad secret: %d %v", status, body)
	}
	if status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"spa"}}, "", ""); status/100 != 4 || body["error"] == nil {
		t.Fatalf("public client_credentials: %d %v", status, body)
	}
}

func TestEndSession(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, nil, "alice", alicePass)
	// An unregistered post_logout_redirect_uri is refused without redirect.
	p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {tk.idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if p.status != http.StatusBadRequest || p.loc != nil {
		t.Fatalf("bad post-logout uri: %d", p.status)
	}
	// Without a hint the user must confirm.
	p = b.get(e.issuer + "/end_session")
	if p.status != 200 || len(find(p.doc, hasAttr("name", "csrf_token"))) == 0 {
		t.Fatalf("logout confirmation page: %d", p.status)
	}
	a := r.authURL(map[string]string{"prompt": "none"})
	if res := b.get(a.url).result(t); res.err != "" {
		t.Fatalf("the confirmation page alone signed the user out: %+v", res)
	}
	// With the hint: signed out, back to the RP with state.
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/end_session?"+url.Values{"id_token_hint": {tk.idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"s1"}}.Encode(), nil)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p = b.do(req)
	if p.loc == nil || p.loc.Query().Get("state") != "s1" || !strings.HasPrefix(p.loc.String(), "http://127.0.0.1:9/bye") {
		t.Fatalf("logout redirect %v (status %d)", p.loc, p.status)
	}
	b2 := e.browser()
	b2.c.Jar = b.c.Jar
	if res := b2.get(a.url).result(t); res.err != "login_required" {
		t.Fatalf("after logout prompt=none: %+v", res)
	}
}

func TestEnrollmentInFlow(t *testing.T) {
	for _, tc := range []struct{ client, wantSkip string }{{"spa", "skippable"}, {"forced", "forced"}} {
		t.Run(tc.client, func(t *testing.T) {
			e := newEnv(t, nil)
			b, r := e.browser(), e.rp(tc.client, "")
			a := r.authURL(map[string]string{"acr_values": mfaACR})
			p := b.login(b.get(a.url), "bob", bobPass)
			secrets := find(p.doc, func(n *html.Node) bool { _, ok := attr(n, "data-totp-secret"); return ok })
			if len(secrets) != 1 {
				t.Fatalf("no data-totp-secret on the enrollment page (status %d)", p.status)
			}
			hasCancel := len(find(p.doc, hasAttr("data-action", "cancel"))) > 0
			if hasCancel != (tc.wantSkip == "skippable") {
				t.Fatalf("cancel control present=%v under %s", hasCancel, tc.wantSkip)
			}
			secret := strings.TrimSpace(textOf(secrets[0]))
			p = b.code(p, "totp", e.totpCode(secret))
			p, _ = b.shownRecoveryCodes(p) // once, after the first enrollment
			tk := r.mustExchange(a, p.result(t))
			wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
			// Enrolled for good: the next step-up asks the code, not enrollment.
			e.clock.Advance(30 * time.Second)
			a = r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "login"})
			p = b.login(b.get(a.url), "bob", bobPass)
			wantClaims(t, r.mustExchange(a, b.code(p, "totp", e.totpCode(secret)).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
		})
	}
}

func textOf(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return sb.String()
}

func TestStoreOutage(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, nil, "alice", alicePass)
	e.backend.Stop(t)
	resp, err := http.Get(e.issuer + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz during outage: %d", resp.StatusCode)
	}
	if p := b.get(r.authURL(nil).url); p.status != http.StatusServiceUnavailable {
		t.Fatalf("authorize during outage: %d", p.status)
	}
	e.backend.Restart(t)
	a := r.authURL(nil)
	deadline := time.Now().Add(10 * time.Second)
	var p *page
	for {
		p = b.get(a.url)
		if p.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantClaims(t, r.mustExchange(a, p.result(t)), oneFA, []string{"pwd"})
}
