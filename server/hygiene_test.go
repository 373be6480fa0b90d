package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// Regression tests of issue 13's protocol-hygiene items (4, 5, 6, 12,
// 13, 14, 15), each end to end through a real instance.

// reply is a raw answer of the instance.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

// call sends method path with the given headers and body (form-encoded
// unless a Content-Type header says otherwise) and reads the answer.
func (e *env) call(method, path string, body string, header ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.issuer+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &out.body)
	return out
}

// flattened turns a compact JWS into the same JWS in the flattened JSON
// serialization (RFC 7515 §7.2.2): the same signature, other wrapping.
func flattened(compact string) string {
	p := strings.Split(compact, ".")
	b, _ := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
	return string(b)
}

// TestCompactJWSOnly: a token of ours re-wrapped in the JWS JSON
// serialization is refused wherever a token is read (item 13): userinfo,
// the APIs, introspection, and end_session's id_token_hint. Before, the
// first two and the hint took it.
func TestCompactJWSOnly(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
	tk := signIn(t, e, b, r, nil, "alice", alicePass)
	at := flattened(tk.tok.AccessToken)

	if got := e.call("GET", "/userinfo", "", "Authorization", "Bearer "+tk.tok.AccessToken); got.status != http.StatusOK {
		t.Fatalf("userinfo with the compact token: %d %s", got.status, got.raw)
	}
	if got := e.call("GET", "/userinfo", "", "Authorization", "Bearer "+at); got.status != http.StatusUnauthorized {
		t.Fatalf("userinfo with the JSON serialization: %d %s", got.status, got.raw)
	}
	e.api("POST", "/api/v1/authn/sessions", at, map[string]any{}).want(t, "API with the JSON serialization", 401, "invalid_token")
	if _, in := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret); in["active"] != false {
		t.Fatalf("introspection of the JSON serialization: %v", in)
	}
	p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {flattened(tk.idToken)}}.Encode())
	if p.status != http.StatusBadRequest {
		t.Fatalf("end_session with an id_token_hint in the JSON serialization: %d", p.status)
	}
	// The session is still there: the hint did not sign alice out.
	if res := b.get(r.authURL(map[string]string{"prompt": "none"}).url).result(t); res.err != "" {
		t.Fatalf("after the refused hint: %+v", res)
	}
}

// TestStaticServesFilesOnly: /static/ is not a directory listing (item 15).
func TestStaticServesFilesOnly(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/static/", "/static/nope.css", "/static/style.css/"} {
		if got := e.call("GET", path, ""); got.status != http.StatusNotFound || strings.Contains(got.raw, "style.css") {
			t.Fatalf("GET %s: %d %q", path, got.status, got.raw)
		}
	}
	got := e.call("GET", "/static/style.css", "")
	if got.status != http.StatusOK || !strings.HasPrefix(got.header.Get("Content-Type"), "text/css") {
		t.Fatalf("GET /static/style.css: %d %s", got.status, got.header.Get("Content-Type"))
	}
}

// TestJSONBodiesAreStrict: an API body with a name given twice, or in
// another case, is 400 invalid_request (item 14); before, the last
// duplicate won and USER_ID meant user_id.
func TestJSONBodiesAreStrict(t *testing.T) {
	e := apiEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:grants")
	alice := e.subject("alice")
	send := func(body string) reply {
		return e.call("POST", "/api/v1/step-up/verify-grant", body, "Authorization", "Bearer "+tok, "Content-Type", "application/json")
	}
	got := send(`{"user_id":"` + alice + `","action_type":"withdraw","grant":"nope"}`)
	if got.status != http.StatusNotFound || got.str("error") != "grant_not_found" {
		t.Fatalf("a well-formed body: %d %s", got.status, got.raw)
	}
	wantNoStore(t, "an API answer", got) // item 4: the APIs' answers carry grants and handles
	for _, body := range []string{
		`{"user_id":"` + alice + `","action_type":"withdraw","grant":"nope","grant":"other"}`,
		`{"user_id":"someone-else","user_id":"` + alice + `","action_type":"withdraw","grant":"nope"}`,
		`{"USER_ID":"` + alice + `","action_type":"withdraw","grant":"nope"}`,
		`{"user_id":"` + alice + `","Action_Type":"withdraw","grant":"nope"}`,
	} {
		if got := send(body); got.status != http.StatusBadRequest || got.str("error") != "invalid_request" {
			t.Fatalf("%s: %d %s, want 400 invalid_request", body, got.status, got.raw)
		}
	}
}

// codeFor runs alice's sign-in in b for r and returns the authorization
// request and the code the RP got, not yet redeemed.
func codeFor(t *testing.T, e *env, b *browser, r *rp) (authReq, rpResult) {
	t.Helper()
	a := r.authURL(nil)
	p := b.login(b.get(a.url), "alice", alicePass)
	if p.loc == nil {
		p = b.code(p, "totp", e.totpCode(aliceTOTP))
	}
	res := p.result(t)
	if res.code == "" {
		t.Fatalf("no code: %+v", res)
	}
	return a, res
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

func wantNoStore(t *testing.T, what string, got reply) {
	t.Helper()
	if got.header.Get("Cache-Control") != "no-store" || got.header.Get("Pragma") != "no-cache" {
		t.Fatalf("%s (%d): Cache-Control %q, Pragma %q", what, got.status, got.header.Get("Cache-Control"), got.header.Get("Pragma"))
	}
}

// TestBackChannelAnswersAreNotStored: token, introspection, revocation
// and userinfo answers carry Cache-Control: no-store and Pragma:
// no-cache, successes and errors alike (item 4, RFC 6749 §5.1).
func TestBackChannelAnswersAreNotStored(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	a, res := codeFor(t, e, b, r)
	auth := basic("bank", bankSecret)
	tok := e.call("POST", "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.code}, "code_verifier": {a.verifier}, "redirect_uri": {rpCallback}}.Encode(), "Authorization", auth)
	if tok.status != http.StatusOK || tok.str("access_token") == "" {
		t.Fatalf("code exchange: %d %s", tok.status, tok.raw)
	}
	wantNoStore(t, "token", tok)
	at := tok.str("access_token")
	for _, c := range []struct {
		what, method, path, body string
		header                   []string
		status                   int
	}{
		{"token bad client", "POST", "/oauth/token", "grant_type=client_credentials", []string{"Authorization", basic("bank", "wrong")}, 401},
		{"introspection", "POST", "/oauth/introspect", url.Values{"token": {at}}.Encode(), []string{"Authorization", auth}, 200},
		{"introspection error", "POST", "/oauth/introspect", "", []string{"Authorization", auth}, 400},
		{"userinfo", "GET", "/userinfo", "", []string{"Authorization", "Bearer " + at}, 200},
		{"userinfo error", "GET", "/userinfo", "", []string{"Authorization", "Bearer nope"}, 401},
		{"revocation", "POST", "/oauth/revoke", url.Values{"token": {at}}.Encode(), []string{"Authorization", auth}, 200},
		{"revocation error", "POST", "/oauth/revoke", "", []string{"Authorization", auth}, 400},
		// Last: a replayed code revokes what it issued.
		{"token error", "POST", "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {res.code}, "code_verifier": {a.verifier}, "redirect_uri": {rpCallback}}.Encode(), []string{"Authorization", auth}, 400},
	} {
		got := e.call(c.method, c.path, c.body, c.header...)
		if got.status != c.status {
			t.Fatalf("%s: %d %s, want %d", c.what, got.status, got.raw, c.status)
		}
		wantNoStore(t, c.what, got)
	}
}

// TestCORSOnlyForRegisteredOrigins: the back-channel endpoints answer
// CORS for the origins of registered redirect URIs only (a loopback IP
// on any port, as its redirect URIs), never "null", and never with
// credentials; introspection answers no CORS at all (item 5). Before,
// zitadel echoed any origin with Access-Control-Allow-Credentials: true.
func TestCORSOnlyForRegisteredOrigins(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Clients[0].RedirectURIs = append(c.Clients[0].RedirectURIs, "https://app.example.com/callback", "http://localhost:5173/cb")
	})
	preflight := func(path, origin, method string) reply {
		return e.call("OPTIONS", path, "", "Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", "authorization, content-type")
	}
	allowed := []string{"https://app.example.com", "http://localhost:5173", "http://127.0.0.1:9", "http://127.0.0.1:53219"}
	refused := []string{"null", "https://evil.example", "https://app.example.com:8443", "http://app.example.com", "http://localhost:5174", "http://[::1]:9", "https://app.example.com/callback"}
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/userinfo"} {
		for _, o := range allowed {
			got := preflight(path, o, "POST")
			if got.header.Get("Access-Control-Allow-Origin") != o || got.header.Get("Access-Control-Allow-Credentials") != "" ||
				!strings.Contains(got.header.Get("Access-Control-Allow-Headers"), "authorization") {
				t.Fatalf("preflight %s from %s: %d %v", path, o, got.status, got.header)
			}
		}
		for _, o := range refused {
			got := preflight(path, o, "POST")
			if got.header.Get("Access-Control-Allow-Origin") != "" || got.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("preflight %s from %s answered: %v", path, o, got.header)
			}
		}
		if got := preflight(path, "https://app.example.com", "DELETE"); got.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight %s for DELETE answered: %v", path, got.header)
		}
	}
	for _, o := range append(allowed[:1], refused[0], refused[1]) {
		if got := preflight("/oauth/introspect", o, "POST"); got.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("introspection preflight from %s answered: %v", o, got.header)
		}
	}
	// Actual requests: the allowed origin may read the answer, without
	// credentials; any other gets no CORS header at all.
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"stepup:grants"}}.Encode()
	for _, o := range append([]string{"https://app.example.com"}, refused...) {
		got := e.call("POST", "/oauth/token", cc, "Authorization", basic("bank", bankSecret), "Origin", o)
		if got.status != http.StatusOK {
			t.Fatalf("token from %s: %d %s", o, got.status, got.raw)
		}
		want := ""
		if o == "https://app.example.com" {
			want = o
		}
		if got.header.Get("Access-Control-Allow-Origin") != want || got.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("token from %s: CORS %v", o, got.header)
		}
	}
	// Discovery and the keys stay public: *, no credentials.
	for _, path := range []string{"/.well-known/openid-configuration", "/keys"} {
		got := e.call("GET", path, "", "Origin", "https://evil.example")
		if got.header.Get("Access-Control-Allow-Origin") != "*" || got.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("%s: CORS %v", path, got.header)
		}
	}
}

// TestBackChannelMethodsAndClientAuthentication: token, introspection
// and revocation are POST only with every parameter in the body, and a
// request that authenticates its client twice is refused; end_session is
// GET or POST (item 6). Before, the token endpoint took GET and PUT with
// the secret in the query, introspection took GET, revocation and
// end_session any method, and Basic silently won over the body.
func TestBackChannelMethodsAndClientAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	auth := basic("bank", bankSecret)
	cc := url.Values{"grant_type": {"client_credentials"}}
	withSecret := url.Values{"grant_type": {"client_credentials"}, "client_id": {"bank"}, "client_secret": {bankSecret}}
	for _, c := range []struct {
		method, path, query, body string
		header                    []string
	}{
		{"GET", "/oauth/token", withSecret.Encode(), "", nil},
		{"PUT", "/oauth/token", "", withSecret.Encode(), nil},
		{"DELETE", "/oauth/token", "", "", []string{"Authorization", auth}},
		{"GET", "/oauth/introspect", url.Values{"token": {"x"}, "client_id": {"bank"}, "client_secret": {bankSecret}}.Encode(), "", nil},
		{"DELETE", "/oauth/revoke", "", url.Values{"token": {"x"}}.Encode(), []string{"Authorization", auth}},
	} {
		path := c.path
		if c.query != "" {
			path += "?" + c.query
		}
		got := e.call(c.method, path, c.body, c.header...)
		if got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "POST" || got.str("error") != "invalid_request" {
			t.Fatalf("%s %s: %d Allow %q %s", c.method, c.path, got.status, got.header.Get("Allow"), got.raw)
		}
		wantNoStore(t, c.method+" "+c.path, got)
	}
	// end_session: GET and POST only.
	for _, m := range []string{"DELETE", "PUT", "PATCH"} {
		if got := e.call(m, "/end_session", ""); got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "GET, POST" {
			t.Fatalf("%s /end_session: %d Allow %q", m, got.status, got.header.Get("Allow"))
		}
	}
	if got := e.call("POST", "/end_session", "state=x"); got.status != http.StatusOK {
		t.Fatalf("POST /end_session: %d", got.status)
	}
	// Nothing is read from the query string, not even alongside a body.
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/oauth/revoke"} {
		got := e.call("POST", path+"?client_secret="+bankSecret, url.Values{"grant_type": {"client_credentials"}, "token": {"x"}, "client_id": {"bank"}}.Encode())
		if got.status != http.StatusBadRequest || got.str("error") != "invalid_request" {
			t.Fatalf("POST %s with a secret in the query: %d %s", path, got.status, got.raw)
		}
	}
	// One client authentication per request (RFC 6749 §2.3).
	for what, body := range map[string]url.Values{
		"Basic and another client_id": {"grant_type": {"client_credentials"}, "client_id": {"floor"}},
		"Basic and a client_secret":   {"grant_type": {"client_credentials"}, "client_secret": {"wrong"}},
		"Basic and the same secret":   {"grant_type": {"client_credentials"}, "client_secret": {bankSecret}},
		"Basic and an assertion":      {"grant_type": {"client_credentials"}, "client_assertion": {"x.y.z"}},
		"a parameter twice":           {"grant_type": {"client_credentials", "client_credentials"}},
	} {
		got := e.call("POST", "/oauth/token", body.Encode(), "Authorization", auth)
		if got.status != http.StatusBadRequest || got.str("error") != "invalid_request" {
			t.Fatalf("%s: %d %s", what, got.status, got.raw)
		}
	}
	for what, c := range map[string]struct {
		path string
		body url.Values
	}{
		"introspection, Basic and another client_id": {"/oauth/introspect", url.Values{"token": {"x"}, "client_id": {"floor"}, "client_secret": {bankSecret}}},
		"revocation, Basic and a client_secret":      {"/oauth/revoke", url.Values{"token": {"x"}, "client_secret": {bankSecret}}},
	} {
		if got := e.call("POST", c.path, c.body.Encode(), "Authorization", auth); got.status != http.StatusBadRequest || got.str("error") != "invalid_request" {
			t.Fatalf("%s: %d %s", what, got.status, got.raw)
		}
	}
	if got := e.call("POST", "/oauth/token", cc.Encode(), "Authorization", "Basic !!!"); got.status != http.StatusUnauthorized || got.str("error") != "invalid_client" {
		t.Fatalf("malformed Basic: %d %s", got.status, got.raw)
	}
	// Allowed: Basic alone, Basic with the same client_id, the body alone.
	same := url.Values{"grant_type": {"client_credentials"}, "client_id": {"bank"}}
	for what, c := range map[string]struct {
		body   url.Values
		header []string
	}{
		"Basic":                   {cc, []string{"Authorization", auth}},
		"Basic and its client_id": {same, []string{"Authorization", auth}},
		"client_secret_post":      {withSecret, nil},
	} {
		if got := e.call("POST", "/oauth/token", c.body.Encode(), c.header...); got.status != http.StatusOK {
			t.Fatalf("%s: %d %s", what, got.status, got.raw)
		}
	}
}

// TestUserinfoErrorsAreBearerChallenges: userinfo errors follow RFC 6750
// §3 (item 12): 401 invalid_token with a WWW-Authenticate challenge for a
// bad token, a bare challenge without one, 400 invalid_request for a
// token in the URL or sent twice. Before: 401 access_denied without a
// challenge, and ?access_token= was read.
func TestUserinfoErrorsAreBearerChallenges(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	at := signIn(t, e, b, r, nil, "alice", alicePass).tok.AccessToken

	got := e.call("GET", "/userinfo?access_token="+at, "")
	if got.status != http.StatusBadRequest || got.str("error") != "invalid_request" || !strings.HasPrefix(got.header.Get("WWW-Authenticate"), `Bearer error="invalid_request"`) {
		t.Fatalf("token in the query: %d %v %s", got.status, got.header, got.raw)
	}
	got = e.call("GET", "/userinfo", "", "Authorization", "Bearer "+at+"x")
	if got.status != http.StatusUnauthorized || got.str("error") != "invalid_token" || !strings.HasPrefix(got.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Fatalf("bad token: %d %v %s", got.status, got.header, got.raw)
	}
	got = e.call("GET", "/userinfo", "")
	if got.status != http.StatusUnauthorized || got.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("no token: %d %v %s", got.status, got.header, got.raw)
	}
	got = e.call("POST", "/userinfo", url.Values{"access_token": {at}}.Encode(), "Authorization", "Bearer "+at)
	if got.status != http.StatusBadRequest || got.str("error") != "invalid_request" {
		t.Fatalf("token in the header and the body: %d %s", got.status, got.raw)
	}
	got = e.call("POST", "/userinfo", url.Values{"access_token": {at, at}}.Encode())
	if got.status != http.StatusBadRequest || got.str("error") != "invalid_request" {
		t.Fatalf("token twice in the body: %d %s", got.status, got.raw)
	}
	if got = e.call("DELETE", "/userinfo", "", "Authorization", "Bearer "+at); got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "GET, POST" {
		t.Fatalf("DELETE /userinfo: %d %v", got.status, got.header)
	}
	// The standard ways work: the header (GET, POST) and a POST body.
	for _, c := range []struct {
		method, body string
		header       []string
	}{
		{"GET", "", []string{"Authorization", "Bearer " + at}},
		{"POST", "", []string{"Authorization", "Bearer " + at}},
		{"POST", url.Values{"access_token": {at}}.Encode(), nil},
	} {
		if got := e.call(c.method, "/userinfo", c.body, c.header...); got.status != http.StatusOK || got.str("preferred_username") != "alice" {
			t.Fatalf("%s userinfo: %d %s", c.method, got.status, got.raw)
		}
	}
}
