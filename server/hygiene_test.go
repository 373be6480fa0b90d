package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
	if got := send(`{"user_id":"` + alice + `","action_type":"withdraw","grant":"nope"}`); got.status != http.StatusNotFound || got.str("error") != "grant_not_found" {
		t.Fatalf("a well-formed body: %d %s", got.status, got.raw)
	}
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
