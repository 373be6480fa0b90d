package op

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// Signing is the CPU cost of the token endpoint: an access token and an
// ID token per code exchange or refresh. Verifying an access token is the
// cost of userinfo and introspection. Discovery and JWKS are fetched by
// every relying party and resource server.

// benchAlgs are the algorithms keys.algorithm accepts; ES256 is the
// default.
var benchAlgs = []string{"ES256", "RS256", "EdDSA"}

// reportCPU reports the process's CPU time per op (cpu-ns/op) when the
// benchmark ends: a crowded machine moves it less than ns/op (wall time).
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	cpu0 := cpu()
	return func() { b.ReportMetric(float64((cpu()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }
}

func benchKeys(b *testing.B, alg string) *Keys {
	b.Helper()
	pemBytes, err := generateKey(alg)
	if err != nil {
		b.Fatal(err)
	}
	k, err := NewKeys(alg, pemBytes)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

const benchConfig = `
issuer: https://id.example.com
clients:
  - id: bank
    secret: bench-client-secret-0123456789
    redirect_uris: [https://bank.example.com/callback]
    grant_types: [authorization_code, refresh_token]
`

// benchProvider is a Provider as server.New builds it, minus what the
// benchmarked paths do not touch (store, cookies, password hashing).
func benchProvider(b *testing.B, alg string) *Provider {
	b.Helper()
	cfg, err := config.Parse([]byte(benchConfig), nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Options{Config: cfg, Keys: benchKeys(b, alg), Log: slog.New(slog.DiscardHandler), SIDKey: make([]byte, 32), OTPKey: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

var benchAuth = authClaims{
	Subject:  "0f8fad5b-d9cb-469f-a165-70867728950e",
	ACR:      authn.ACRMFA,
	AMR:      []string{"pwd", "otp", "mfa"},
	AuthTime: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Unix(),
}

func benchIDClaims(now time.Time) idTokenClaims {
	return idTokenClaims{
		Issuer:   "https://id.example.com",
		Subject:  benchAuth.Subject,
		Audience: "bank",
		Expiry:   now.Add(idTokenLifetime).Unix(),
		IssuedAt: now.Unix(),
		AuthTime: benchAuth.AuthTime,
		Nonce:    "n-0S6_WzA2Mj",
		ACR:      benchAuth.ACR,
		AMR:      benchAuth.AMR,
		AZP:      "bank",
		AtHash:   "77QmUPtjPfzWtF2AnpK9RQ",
		SID:      "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl",
	}
}

func benchAccessClaims(now time.Time) accessTokenClaims {
	return accessTokenClaims{
		Issuer:   "https://id.example.com",
		Subject:  benchAuth.Subject,
		Audience: "bank",
		Expiry:   now.Add(accessTokenLifetime).Unix(),
		IssuedAt: now.Unix(),
		JTI:      "grant-0123456789." + randomID(12),
		ClientID: "bank",
		Scope:    "openid profile email offline_access",
		AuthTime: benchAuth.AuthTime,
		ACR:      benchAuth.ACR,
		AMR:      benchAuth.AMR,
	}
}

func BenchmarkSignIDToken(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			k := benchKeys(b, alg)
			claims := benchIDClaims(time.Now())
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := k.signID("", claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignAccessToken(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			k := benchKeys(b, alg)
			claims := benchAccessClaims(time.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.signAccess(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The whole token response of a code exchange: access token, at_hash,
// ID token.
func BenchmarkTokenResponse(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			p := benchProvider(b, alg)
			benchTokenResponse(b, p)
		})
	}
}

// The token response with two key sets (issue 18): the ID token in the
// client's algorithm (RS256: a client that registered none; ES256: one
// that registered it), the access token ES256. "RS256" − "ES256" is what
// an RS256 client costs over an ES256 one per code exchange.
func BenchmarkTokenResponseTwoKeys(b *testing.B) {
	for _, idAlg := range []string{"RS256", "ES256"} {
		b.Run(idAlg, func(b *testing.B) {
			cfg, err := config.Parse([]byte(benchConfig), nil)
			if err != nil {
				b.Fatal(err)
			}
			if idAlg != "RS256" {
				cfg.Clients[0].IDTokenSignedResponseAlg = idAlg
			}
			keys, err := LoadKeys(b.Context(), KeyOptions{Algorithm: "RS256"}, &memSecrets{m: map[string][]byte{}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			p, err := New(Options{Config: cfg, Keys: keys, Log: slog.New(slog.DiscardHandler), SIDKey: make([]byte, 32), OTPKey: make([]byte, 32)})
			if err != nil {
				b.Fatal(err)
			}
			benchTokenResponse(b, p)
		})
	}
}

// benchTokenResponse times p's token response of a code exchange for the
// client bank: the ID token and access token signed, with a refresh token.
func benchTokenResponse(b *testing.B, p *Provider) {
	c, ok := p.Client("bank")
	if !ok {
		b.Fatal("no client bank")
	}
	g := &session.Grant{ID: "grant-0123456789", ClientID: "bank", Subject: benchAuth.Subject, SessionID: "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl"}
	gd := grantData{authClaims: benchAuth, Scopes: []string{"openid", "profile", "email", "offline_access"}}
	now := time.Now()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		resp, err := p.tokenResponse(c, g, gd, "n-0S6_WzA2Mj", "refresh-token", now)
		if err != nil {
			b.Fatal(err)
		}
		if resp.IDToken == "" {
			b.Fatal("no ID token")
		}
	}
}

// What userinfo and introspection do with the bearer token before looking
// at the store.
func BenchmarkVerifyAccessToken(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			k := benchKeys(b, alg)
			token, err := k.signAccess(benchAccessClaims(time.Now()))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				var at accessTokenClaims
				if err := k.verify(token, "at+jwt", &at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchGet serves GET path through the provider's handler.
func benchGet(b *testing.B, path string) {
	// zitadel/oidc logs each route it registers to the default logger.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	h := benchProvider(b, "ES256").Handler()
	req := httptest.NewRequest(http.MethodGet, "https://id.example.com"+path, nil)
	check := httptest.NewRecorder()
	h.ServeHTTP(check, req)
	if check.Code != http.StatusOK || check.Body.Len() == 0 {
		b.Fatalf("GET %s: %d %q", path, check.Code, check.Body.String())
	}
	b.SetBytes(int64(check.Body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkDiscovery(b *testing.B) { benchGet(b, PathDiscovery) }

func BenchmarkJWKS(b *testing.B) { benchGet(b, PathJWKS) }
