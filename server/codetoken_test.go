package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
)

// TestCodeExchangeFastPathAnswersLikeZitadel: stepup serves a plain
// authorization_code request itself (server/op/cctoken.go,
// codeExchangeToken) instead of through zitadel's router; a request with
// one parameter more (which zitadel ignores) still goes through zitadel.
// Every answer — success, each refusal, a replay — must be the same
// either way: status, headers, error body byte for byte, and the tokens'
// headers and claims but for what is random or per code (jti, iat, exp,
// at_hash, nonce, the refresh token's value). Each side redeems codes of
// its own: a code is good once.
func TestCodeExchangeFastPathAnswersLikeZitadel(t *testing.T) {
	const machineSecret = "machine-secret-0123456789"
	hash, err := password.HashWith(password.Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}, machineSecret)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "machine", SecretHash: hash,
			RedirectURIs: []string{rpCallback}, GrantTypes: []string{"client_credentials"}})
	})
	br := e.browser()
	bank, spa := e.rp("bank", bankSecret), e.rp("spa", "")
	signIn(t, e, br, bank, nil, "alice", alicePass)
	// code is a fresh code of r's client for the signed-in browser, with
	// its PKCE verifier.
	code := func(r *rp) (string, string) {
		a := r.authURL(nil)
		res := br.get(a.url).result(t)
		if res.code == "" {
			t.Fatalf("no code: %+v", res)
		}
		return res.code, a.verifier
	}
	ac := "authorization_code"
	cases := []struct {
		name       string
		issuer     *rp // whose code
		form       func(code, verifier string) url.Values
		user, pass string
		wantStatus int
		replay     bool // the answer compared is the code's second redemption
	}{
		{"basic", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", bankSecret, 200, false},
		{"secret in the body", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}, "client_id": {"bank"}, "client_secret": {bankSecret}}
		}, "", "", 200, false},
		{"basic and the same client_id in the body", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}, "client_id": {"bank"}}
		}, "bank", bankSecret, 200, false},
		{"public client", spa, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}, "client_id": {"spa"}}
		}, "", "", 200, false},
		{"replayed code", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", bankSecret, 400, true},
		{"wrong verifier", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {strings.Repeat("a", 43)}}
		}, "bank", bankSecret, 400, false},
		{"no verifier", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}}
		}, "bank", bankSecret, 400, false},
		{"malformed verifier", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {"short"}}
		}, "bank", bankSecret, 400, false},
		{"other redirect_uri", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {"http://127.0.0.1:9/other"}, "code_verifier": {v}}
		}, "bank", bankSecret, 400, false},
		{"another client's code", spa, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", bankSecret, 400, false},
		{"unknown code", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {"x" + c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", bankSecret, 400, false},
		{"code missing", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", bankSecret, 400, false},
		{"redirect_uri missing", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "code_verifier": {v}}
		}, "bank", bankSecret, 400, false},
		{"wrong secret", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", "nope", 401, false},
		{"unknown client", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "nobody", "x", 401, false},
		{"no credentials", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "", "", 400, false},
		{"client without the grant", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "machine", machineSecret, 0, false},
		{"bad escape in basic secret", bank, func(c, v string) url.Values {
			return url.Values{"grant_type": {ac}, "code": {c}, "redirect_uri": {rpCallback}, "code_verifier": {v}}
		}, "bank", "%zz", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redeem := func(extra bool) rawAnswer {
				c, v := code(tc.issuer)
				form := tc.form(c, v)
				if extra {
					form.Set("x_unknown", "1") // zitadel ignores it; the fast path does not take it
				}
				if tc.replay {
					if first := rawPost(t, e, form, tc.user, tc.pass); first.status != 200 {
						t.Fatalf("first redemption: %d %s", first.status, first.body)
					}
				}
				return rawPost(t, e, form, tc.user, tc.pass)
			}
			fast, slow := redeem(false), redeem(true)
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
			f, s := codeTokenShape(t, fast.body), codeTokenShape(t, slow.body)
			if !reflect.DeepEqual(f, s) {
				t.Errorf("answer %v, zitadel's %v", f, s)
			}
		})
	}
}

// codeTokenShape is tokenShape with the ID token replaced by its JOSE
// header and its claims but iat, exp, at_hash and nonce (each present),
// and the refresh token by whether there is one.
func codeTokenShape(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	m := tokenShape(t, body)
	idt, _ := raw["id_token"].(string)
	parts := strings.Split(idt, ".")
	if len(parts) != 3 {
		t.Fatalf("id token %q is not a JWS", idt)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	claims := jwtClaims(t, idt)
	for _, k := range []string{"iat", "exp", "at_hash", "nonce"} {
		if claims[k] == nil {
			t.Errorf("no %s in the ID token", k)
		}
		delete(claims, k)
	}
	m["id_token"] = map[string]any{"header": h, "claims": claims}
	_, hasRefresh := raw["refresh_token"]
	m["refresh_token"] = hasRefresh
	return m
}
