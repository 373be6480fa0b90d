package rs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stepup-dev/stepup/rs"
)

// testIssuer serves discovery and a one-key JWKS, counts JWKS fetches and
// signs arbitrary payloads.
type testIssuer struct {
	ts      *httptest.Server
	key     *ecdsa.PrivateKey
	fetches atomic.Int64
	down    atomic.Bool
}

func newTestIssuer(t testing.TB) *testIssuer {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is := &testIssuer{key: key}
	is.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.ts.URL, "jwks_uri": is.ts.URL + "/keys",
				"acr_values_supported": []string{"urn:stepup:loa:1fa", mfa, "phr", "phrh"}})
		case "/keys":
			is.fetches.Add(1)
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		}
	}))
	t.Cleanup(is.ts.Close)
	return is
}

func (is *testIssuer) sign(t testing.TB, typ, kid string, payload []byte) string {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// flattened turns a compact JWS into the same JWS in the flattened JSON
// serialization (RFC 7515 §7.2.2): same signature, other wrapping.
func flattened(compact string) string {
	p := strings.Split(compact, ".")
	b, _ := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
	return string(b)
}

func (is *testIssuer) claims(mod func(map[string]any)) []byte {
	now := time.Now().Unix()
	c := map[string]any{"iss": is.ts.URL, "aud": "bank", "sub": "alice", "client_id": "bank", "jti": "j",
		"iat": now, "exp": now + 600, "auth_time": now - 10, "acr": mfa, "amr": []string{"pwd", "otp", "mfa"}, "scope": "openid a b"}
	if mod != nil {
		mod(c)
	}
	b, _ := json.Marshal(c)
	return b
}

func TestValidate(t *testing.T) {
	is := newTestIssuer(t)
	v, err := rs.New(rs.Config{Issuer: is.ts.URL + "/", Audience: "bank"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name    string
		token   string
		wantErr string // "" = valid
	}{
		{"RFC 9068 §2.1 typ at+jwt", is.sign(t, "at+jwt", "k1", is.claims(nil)), ""},
		{"RFC 9068 §2.1 typ application/at+jwt", is.sign(t, "application/AT+JWT", "k1", is.claims(nil)), ""},
		{"aud as an array", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { c["aud"] = []string{"x", "bank"} })), ""},
		{"no kid, one key", is.sign(t, "at+jwt", "", is.claims(nil)), ""},
		{"RFC 9068 §4 typ JWT refused", is.sign(t, "JWT", "k1", is.claims(nil)), "not a JWT access token"},
		{"unknown kid", is.sign(t, "at+jwt", "k2", is.claims(nil)), "not signed by a key"},
		{"other issuer", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), "another issuer"},
		{"other audience", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { c["aud"] = []string{"x"} })), "not meant for this resource"},
		{"expired", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { c["exp"] = time.Now().Unix() - 1 })), "expired"},
		{"issued in the future", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { c["iat"] = time.Now().Unix() + 120 })), "future"},
		{"RFC 7519 §4.1.5 nbf in the future", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { c["nbf"] = time.Now().Unix() + 120 })), "not valid yet"},
		{"RFC 9068 §2.2 no jti", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { delete(c, "jti") })), "required claim"},
		{"RFC 9068 §2.2 no client_id", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { delete(c, "client_id") })), "required claim"},
		{"RFC 9068 §2.2 no exp", is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) { delete(c, "exp") })), "required claim"},
		{"claims not JSON", is.sign(t, "at+jwt", "k1", []byte("not json")), "malformed"},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + strings.Split(is.sign(t, "at+jwt", "k1", is.claims(nil)), ".")[1] + ".", "malformed"},
		{"garbage", "a.b.c", "malformed"},
		{"RFC 7515 §7.2 JSON serialization refused", flattened(is.sign(t, "at+jwt", "k1", is.claims(nil))), "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := v.Validate(ctx, c.token)
			if c.wantErr == "" {
				if err != nil || tok.Subject != "alice" || tok.ACR != mfa || len(tok.Scopes) != 3 {
					t.Fatalf("valid token refused: %v %+v", err, tok)
				}
				return
			}
			var e *rs.Error
			if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Challenge.Error != rs.ErrInvalidToken || !strings.Contains(e.Challenge.Description, c.wantErr) {
				t.Fatalf("got %v, want invalid_token mentioning %q", err, c.wantErr)
			}
		})
	}
	// Unknown kids cost at most one fetch per RefreshEvery.
	before := is.fetches.Load()
	for range 20 {
		_, _ = v.Validate(ctx, is.sign(t, "at+jwt", "made-up", is.claims(nil)))
	}
	if n := is.fetches.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 20 unknown kids", n)
	}
}

func TestRequirements(t *testing.T) {
	is := newTestIssuer(t)
	v, _ := rs.New(rs.Config{Issuer: is.ts.URL, Audience: "bank"})
	check := func(acr string, authAge time.Duration, req rs.Requirement) *rs.Error {
		tok := is.sign(t, "at+jwt", "k1", is.claims(func(c map[string]any) {
			c["acr"] = acr
			c["auth_time"] = time.Now().Add(-authAge).Unix()
		}))
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, e := v.Check(r, req)
		return e
	}
	for _, c := range []struct {
		name   string
		acr    string
		age    time.Duration
		req    rs.Requirement
		header string
	}{
		{"a higher level satisfies a lower one", "phr", time.Minute, rs.Requirement{ACR: mfa, MaxAge: 5 * time.Minute}, ""},
		{"the same level", mfa, 0, rs.Requirement{ACR: mfa}, ""},
		{"RFC 9470 §3 lower level", "urn:stepup:loa:1fa", 0, rs.Requirement{ACR: mfa},
			`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="` + mfa + `"`},
		{"an acr the ladder does not know satisfies nothing", "urn:other:gold", 0, rs.Requirement{ACR: "urn:stepup:loa:1fa"},
			`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:stepup:loa:1fa"`},
		{"RFC 9470 §3 too old", mfa, 301 * time.Second, rs.Requirement{ACR: mfa, MaxAge: 300 * time.Second},
			`Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="` + mfa + `", max_age="300"`},
		{"missing scope", mfa, 0, rs.Requirement{Scopes: []string{"a", "c"}},
			`Bearer error="insufficient_scope", error_description="the access token lacks a required scope", scope="a c"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := check(c.acr, c.age, c.req)
			switch {
			case c.header == "" && e != nil:
				t.Fatalf("refused: %v", e)
			case c.header != "" && (e == nil || e.Challenge.String() != c.header):
				t.Fatalf("got %v, want %s", e, c.header)
			}
		})
	}
	// A route requirement the ladder does not know fails closed (500).
	if e := check(mfa, 0, rs.Requirement{ACR: "urn:typo"}); e == nil || e.Status != http.StatusInternalServerError {
		t.Fatalf("unknown required acr: %v", e)
	}
	// The issuer unreachable before any key was fetched: 503.
	down := newTestIssuer(t)
	down.down.Store(true)
	v2, _ := rs.New(rs.Config{Issuer: down.ts.URL, Audience: "bank"})
	if _, err := v2.Validate(context.Background(), down.sign(t, "at+jwt", "k1", down.claims(nil))); err == nil || err.(*rs.Error).Status != http.StatusServiceUnavailable {
		t.Fatalf("issuer down: %v", err)
	}
}

// FuzzValidateClaims signs arbitrary payloads with the issuer's key: the
// validator never panics, and a token it accepts has this issuer, this
// audience, and an expiry in the future.
func FuzzValidateClaims(f *testing.F) {
	is := newTestIssuer(f)
	v, _ := rs.New(rs.Config{Issuer: is.ts.URL, Audience: "bank"})
	f.Add(string(is.claims(nil)))
	f.Add(`{"iss":"` + is.ts.URL + `","aud":["bank"],"sub":"s","client_id":"c","jti":"j","iat":1,"exp":99999999999}`)
	f.Add(`{"aud":{"x":1},"exp":"soon"}`)
	f.Fuzz(func(t *testing.T, payload string) {
		tok, err := v.Validate(context.Background(), is.sign(t, "at+jwt", "k1", []byte(payload)))
		if err != nil {
			return
		}
		found := false
		for _, a := range tok.Audience {
			found = found || a == "bank"
		}
		if tok.Issuer != is.ts.URL || !found || !tok.ExpiresAt.After(time.Now()) || tok.Subject == "" || tok.ClientID == "" || tok.JTI == "" {
			t.Fatalf("accepted %s as %+v", payload, tok)
		}
	})
}

// BenchmarkValidate is the per-request cost of rs on a warm key cache:
// parse, ES256 verify, claims.
func BenchmarkValidate(b *testing.B) {
	is := newTestIssuer(b)
	v, _ := rs.New(rs.Config{Issuer: is.ts.URL, Audience: "bank"})
	tok := is.sign(b, "at+jwt", "k1", is.claims(nil))
	ctx := context.Background()
	if _, err := v.Validate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// A stale key set is refreshed in the background: while the issuer is
// down, tokens of known keys still validate (no request waits on it), and
// once it is back the refresh happens.
func TestStaleKeysRefreshInBackground(t *testing.T) {
	is := newTestIssuer(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }
	v, _ := rs.New(rs.Config{Issuer: is.ts.URL, Audience: "bank", Now: clock, CacheFor: time.Minute, Leeway: time.Hour})
	tok := is.sign(t, "at+jwt", "k1", is.claims(nil))
	ctx := context.Background()
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	is.down.Store(true)
	advance(2 * time.Minute)
	for range 3 {
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatalf("a known key while the issuer is down: %v", err)
		}
	}
	is.down.Store(false)
	before := is.fetches.Load()
	advance(2 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for is.fetches.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the stale key set was never refreshed")
		}
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
