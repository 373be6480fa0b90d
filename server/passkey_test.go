package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The WebAuthn JSON endpoints without a browser: guards, one-time
// challenges and outages. (The ceremonies themselves run in Chromium in
// passkey_browser_test.go.)

type ceremonyEndpoints struct {
	begin, finish, csrf string
}

func (p *page) ceremony(t *testing.T) ceremonyEndpoints {
	t.Helper()
	boxes := find(p.doc, func(n *html.Node) bool { _, ok := attr(n, "data-ceremony"); return ok })
	if len(boxes) == 0 {
		t.Fatalf("no data-ceremony element at %s:\n%s", p.url, excerpt(p.body))
	}
	begin, _ := attr(boxes[0], "data-begin")
	finish, _ := attr(boxes[0], "data-finish")
	csrf, _ := attr(boxes[0], "data-csrf")
	return ceremonyEndpoints{begin: begin, finish: finish, csrf: csrf}
}

// postJSON posts body to a ceremony endpoint like static/passkey.js.
func (b *browser) postJSON(path, csrf, origin, body string) (int, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.issuer+path, strings.NewReader(body))
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	p := b.do(req)
	var out map[string]any
	_ = json.Unmarshal([]byte(p.body), &out)
	return p.status, out
}

// fakeAssertion answers challenge with a well-formed but unsigned
// assertion.
func fakeAssertion(challenge string) string {
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challenge, "origin": "http://localhost"})
	enc := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{
		"id": "AAAA", "rawId": "AAAA", "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    enc(cd),
			"authenticatorData": enc(make([]byte, 37)),
			"signature":         enc([]byte{1, 2, 3}),
			"userHandle":        enc([]byte("0123456789abcdef0123456789abcdef")),
		},
	})
	return string(body)
}

func TestPasskeyEndpoints(t *testing.T) {
	e := newEnvWith(t, envOptions{localhost: true})
	b := e.browser()
	r := e.rp("spa", "")
	p := b.get(r.authURL(nil).url)
	c := p.ceremony(t)
	origin := e.issuer

	if st, _ := b.postJSON(c.begin, "", origin, ""); st != http.StatusForbidden {
		t.Errorf("begin without the CSRF header: %d, want 403", st)
	}
	if st, _ := b.postJSON(c.begin, c.csrf, "https://evil.example", ""); st != http.StatusForbidden {
		t.Errorf("begin from another origin: %d, want 403", st)
	}
	st, opts := b.postJSON(c.begin, c.csrf, origin, "")
	pk, _ := opts["publicKey"].(map[string]any)
	challenge, _ := pk["challenge"].(string)
	if st != http.StatusOK || challenge == "" || pk["rpId"] != "localhost" {
		t.Fatalf("begin: %d %v, want options with a challenge for rpId localhost", st, opts)
	}

	// A forged answer is refused and spends the challenge: answering it
	// again finds nothing (GETDEL).
	st, ans := b.postJSON(c.finish, c.csrf, origin, fakeAssertion(challenge))
	if st != http.StatusUnauthorized || ans["error"] == nil || ans["redirect"] != nil {
		t.Fatalf("forged assertion: %d %v, want 401 with an error", st, ans)
	}
	if st, ans = b.postJSON(c.finish, c.csrf, origin, fakeAssertion(challenge)); st != http.StatusBadRequest {
		t.Fatalf("the same challenge answered twice: %d %v, want 400", st, ans)
	}
	if st, _ = b.postJSON(c.finish, c.csrf, origin, `{"response":{}}`); st != http.StatusBadRequest {
		t.Errorf("malformed answer: %d, want 400", st)
	}

	// A ceremony begun in one browser cannot be finished from another:
	// not on the flow it was begun in, which belongs to the first browser
	// (403, issue 13 item 1), nor on a flow of the other browser's own
	// (the ceremony is bound to the browser and page that began it: 400).
	_, opts = b.postJSON(c.begin, c.csrf, origin, "")
	challenge = opts["publicKey"].(map[string]any)["challenge"].(string)
	other := e.browser()
	op := other.get(r.authURL(nil).url)
	oc := op.ceremony(t)
	if st, ans = other.postJSON(c.finish, oc.csrf, origin, fakeAssertion(challenge)); st != http.StatusForbidden {
		t.Errorf("finishing another browser's ceremony on its flow: %d %v, want 403", st, ans)
	}
	if st, ans = other.postJSON(oc.finish, oc.csrf, origin, fakeAssertion(challenge)); st != http.StatusBadRequest {
		t.Errorf("finishing another browser's ceremony on a flow of its own: %d %v, want 400", st, ans)
	}

	// The store down: 503 with a JSON error, nothing else.
	e.backend.Stop(t)
	if st, ans = b.postJSON(c.begin, c.csrf, origin, ""); st != http.StatusServiceUnavailable || ans["error"] == nil {
		t.Errorf("begin with the store down: %d %v, want 503 with an error", st, ans)
	}
	e.backend.Restart(t)
	if st, _ = b.postJSON(c.begin, c.csrf, origin, ""); st != http.StatusOK {
		t.Errorf("begin after the store is back: %d", st)
	}
}
