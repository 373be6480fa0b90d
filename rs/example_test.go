package rs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stepup-dev/stepup/rs"
)

const mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// A resource server protects /withdraw with the multi-factor level and
// max_age 300; a token at 1fa gets the RFC 9470 challenge. (Here a
// stand-in issuer serves discovery and keys; point Issuer at stepupd.)
func ExampleValidator_Require() {
	issuer, sign := standInIssuer()
	defer issuer.Close()

	v, err := rs.New(rs.Config{Issuer: issuer.URL, Audience: "bank"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	withdraw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := rs.FromContext(r.Context())
		fmt.Fprintf(w, "paid out for %s at %s", t.Subject, t.ACR)
	})
	mux.Handle("POST /withdraw", v.Require(rs.Requirement{ACR: mfa, MaxAge: 300 * time.Second})(withdraw))

	for _, acr := range []string{"urn:stepup:loa:1fa", mfa} {
		req := httptest.NewRequest(http.MethodPost, "/withdraw", nil)
		req.Header.Set("Authorization", "Bearer "+sign(acr))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	}
	// Output:
	// 401 Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="http://schemas.openid.net/pape/policies/2007/06/multi-factor", max_age="300" {"error":"insufficient_user_authentication","error_description":"A different authentication level is required"}
	//
	// 200  paid out for alice at http://schemas.openid.net/pape/policies/2007/06/multi-factor
}

// The challenge alone, as RFC 9470 §3 shows it.
func ExampleChallenge() {
	fmt.Println(rs.Challenge{
		Error:       rs.ErrInsufficientUserAuthentication,
		Description: "More recent authentication is required",
		MaxAge:      5, HasMaxAge: true,
	})
	// Output: Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"
}

// standInIssuer serves a discovery document and a key set, and signs
// access tokens the way stepup does.
func standInIssuer() (*httptest.Server, func(acr string) string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": ts.URL, "jwks_uri": ts.URL + "/keys",
				"acr_values_supported": []string{"urn:stepup:loa:1fa", mfa, "phr", "phrh"}})
		case "/keys":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
		}
	}))
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	return ts, func(acr string) string {
		now := time.Now().Unix()
		b, _ := json.Marshal(map[string]any{"iss": ts.URL, "aud": "bank", "sub": "alice", "client_id": "bank", "jti": "t1",
			"iat": now, "exp": now + 600, "auth_time": now, "acr": acr, "amr": []string{"pwd", "otp", "mfa"}})
		jws, _ := signer.Sign(b)
		s, _ := jws.CompactSerialize()
		return s
	}
}
