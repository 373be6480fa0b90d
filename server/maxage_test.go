package server_test

import (
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Issue 13 item 9: max_age × 10⁹ overflowed time.Duration. 9223372037
// became a negative duration, so no verification was ever fresh enough
// and the password page came back after every sign-in; the largest int64
// became −1 s. Both are larger than any session's age: the session
// satisfies them as it is (OIDC Core §3.1.2.1), at /authorize and at the
// API's complete.
func TestHugeMaxAgeIsNoLimitBeyondTheSession(t *testing.T) {
	huge := []string{"9223372037", "9223372036854775807"}
	t.Run("authorize", func(t *testing.T) {
		e := newEnv(t, nil)
		b, r := e.browser(), e.rp("spa", "")
		first := signIn(t, e, b, r, nil, "alice", alicePass)
		e.clock.Advance(5 * time.Minute)
		for _, v := range huge {
			a := r.authURL(map[string]string{"max_age": v})
			p := b.get(a.url)
			if p.loc == nil {
				// Before the fix: the password page, and after signing in on
				// it, the password page again.
				t.Fatalf("max_age=%s with a 5-minute-old session showed a page (status %d)", v, p.status)
			}
			tk := r.mustExchange(a, p.result(t))
			wantClaims(t, tk, oneFA, []string{"pwd"})
			if tk.claims.AuthTime != first.claims.AuthTime {
				t.Fatalf("max_age=%s: auth_time %d, want the session's %d", v, tk.claims.AuthTime, first.claims.AuthTime)
			}
		}
		// Negative is still refused, with the error on the redirect URI.
		a := r.authURL(map[string]string{"max_age": "-1"})
		if res := b.get(a.url).result(t); res.err != "invalid_request" || res.state != a.state || res.iss != e.issuer {
			t.Fatalf("max_age=-1: %+v", res)
		}
	})
	t.Run("api complete", func(t *testing.T) {
		e := apiEnv(t)
		tok := e.ccToken("bank", bankSecret, "stepup:authn")
		for _, maxAge := range []int64{9223372037, 9223372036854775807} {
			path := "/api/v1/authn/sessions/" + e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice"}).want(t, "start", 201, "").str("id")
			e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password", 200, "")
			verifiedAt := e.clock.Now().Unix()
			e.clock.Advance(2 * time.Minute)
			verifier := oauth2.GenerateVerifier()
			code := e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
				"redirect_uri": rpCallback, "max_age": maxAge}).want(t, "complete with a huge max_age", 200, "").str("code")
			status, body := e.exchangeCode("bank", bankSecret, code, verifier)
			if status != 200 {
				t.Fatalf("exchange: %d %v", status, body)
			}
			if c := e.idClaims("bank", body["id_token"]); c.ACR != oneFA || c.AuthTime != verifiedAt {
				t.Fatalf("max_age=%d: %+v, want %s at %d", maxAge, c, oneFA, verifiedAt)
			}
		}
		path := "/api/v1/authn/sessions/" + e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice"}).want(t, "start", 201, "").str("id")
		e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()), "code_challenge_method": "S256",
			"redirect_uri": rpCallback, "max_age": -1}).want(t, "negative max_age", 400, "invalid_request")
	})
}
