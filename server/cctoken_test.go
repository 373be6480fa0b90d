package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
)

// TestClientCredentialsFastPathAnswersLikeZitadel: stepup serves a plain
// client_credentials request itself (server/op/cctoken.go) instead of
// through zitadel's router; a request with one parameter more (which
// zitadel ignores) still goes through zitadel. Every answer — success,
// each refusal — must be the same either way: status, headers, error
// body byte for byte, and the access token's header and claims but for
// jti, iat and exp.
func TestClientCredentialsFastPathAnswersLikeZitadel(t *testing.T) {
	const hashedSecret = "hashed-secret-0123456789"
	hash, err := password.HashWith(password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}, hashedSecret)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "hashed", SecretHash: hash,
			RedirectURIs: []string{rpCallback}, GrantTypes: []string{"client_credentials"}, Scopes: []string{"stepup:grants", "extra"}})
	})
	cc := "client_credentials"
	cases := []struct {
		name       string
		form       url.Values
		user, pass string
		wantStatus int
	}{
		{"basic", url.Values{"grant_type": {cc}}, "bank", bankSecret, 200},
		{"basic with scope", url.Values{"grant_type": {cc}, "scope": {"stepup:grants"}}, "bank", bankSecret, 200},
		{"hashed secret, two scopes, one repeated", url.Values{"grant_type": {cc}, "scope": {"extra stepup:grants extra"}}, "hashed", hashedSecret, 200},
		{"hashed secret again (cached)", url.Values{"grant_type": {cc}}, "hashed", hashedSecret, 200},
		{"secret in the body", url.Values{"grant_type": {cc}, "client_id": {"bank"}, "client_secret": {bankSecret}}, "", "", 200},
		{"basic and the same client_id in the body", url.Values{"grant_type": {cc}, "client_id": {"bank"}}, "bank", bankSecret, 200},
		{"escaped basic id", url.Values{"grant_type": {cc}}, "ba%6Ek", bankSecret, 200},
		{"scope not allowed", url.Values{"grant_type": {cc}, "scope": {"stepup:admin"}}, "bank", bankSecret, 400},
		{"openid scope", url.Values{"grant_type": {cc}, "scope": {"openid"}}, "bank", bankSecret, 400},
		{"wrong secret", url.Values{"grant_type": {cc}}, "bank", "nope", 401},
		{"wrong hashed secret", url.Values{"grant_type": {cc}}, "hashed", "nope", 401},
		{"unknown client", url.Values{"grant_type": {cc}}, "nobody", "x", 401},
		{"no credentials", url.Values{"grant_type": {cc}}, "", "", 400},
		{"public client", url.Values{"grant_type": {cc}, "client_id": {"spa"}}, "", "", 0},
		{"client without the grant", url.Values{"grant_type": {cc}}, "floor", bankSecret, 0},
		{"bad escape in basic secret", url.Values{"grant_type": {cc}}, "bank", "%zz", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fast := rawPost(t, e, tc.form, tc.user, tc.pass)
			other := url.Values{"x_unknown": {"1"}} // zitadel ignores it; the fast path does not take it
			for k, v := range tc.form {
				other[k] = v
			}
			slow := rawPost(t, e, other, tc.user, tc.pass)
			if tc.wantStatus != 0 && fast.status != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", fast.status, tc.wantStatus, fast.body)
			}
			if fast.status != slow.status {
				t.Fatalf("status %d, zitadel's %d (%s / %s)", fast.status, slow.status, fast.body, slow.body)
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "Pragma", "Www-Authenticate", "Retry-After"} {
				if fast.header.Get(h) != slow.header.Get(h) {
					t.Errorf("%s %q, zitadel's %q", h, fast.header.Get(h), slow.header.Get(h))
				}
			}
			if fast.status != 200 {
				if !bytes.Equal(fast.body, slow.body) {
					t.Errorf("body %s, zitadel's %s", fast.body, slow.body)
				}
				return
			}
			f, s := tokenShape(t, fast.body), tokenShape(t, slow.body)
			if !reflect.DeepEqual(f, s) {
				t.Errorf("answer %v, zitadel's %v", f, s)
			}
		})
	}
}

type rawAnswer struct {
	status int
	header http.Header
	body   []byte
}

func rawPost(t *testing.T, e *env, form url.Values, user, pass string) rawAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawAnswer{resp.StatusCode, resp.Header, b}
}

// tokenShape is a token response with the access token replaced by its
// JOSE header and its claims but jti, iat and exp; it also checks that
// the body is exactly one JSON object and a newline, as zitadel writes it.
func tokenShape(t *testing.T, body []byte) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("}\n")) {
		t.Errorf("body %q is not a JSON object and a newline", body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	at, _ := m["access_token"].(string)
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWS", at)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	claims := jwtClaims(t, at)
	for _, k := range []string{"jti", "iat", "exp"} {
		if claims[k] == nil {
			t.Errorf("no %s in the access token", k)
		}
		delete(claims, k)
	}
	m["access_token"] = map[string]any{"header": h, "claims": claims}
	return m
}
