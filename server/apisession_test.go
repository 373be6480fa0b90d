package server_test

import (
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Issue 13 item 2: a user's access token leaks (every resource server of
// its client sees it). Its holder starts an API authentication session
// with it and waits; the victim steps up in their browser. Completing the
// handle must not turn the victim's verifications into a multi-factor
// code for the token's holder: an API session counts only what was
// verified through its handle.
func TestLeakedTokenCannotBorrowTheBrowsersStepUp(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	leaked := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "alice", alicePass).tok.AccessToken

	start := e.api("POST", "/api/v1/authn/sessions", leaked, map[string]any{}).want(t, "the attacker starts a session", 201, "")
	if start.str("acr") != "" || len(toStrings(start.body["amr"])) != 0 || len(toStrings(start.body["levels"])) != 0 {
		t.Fatalf("a session started with a token borrowed the browser's verifications: %v", start.body)
	}
	path := "/api/v1/authn/sessions/" + start.str("id")

	// The victim steps up in the browser, after the handle was started.
	e.clock.Advance(30 * time.Second)
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	wantClaims(t, r.mustExchange(a, b.code(b.get(a.url), "totp", e.totpCode(aliceTOTP)).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	if st := e.api("GET", path, leaked, nil).want(t, "state after the victim's step-up", 200, ""); st.str("acr") != "" || len(toStrings(st.body["levels"])) != 0 {
		t.Fatalf("the handle sees the browser's step-up: %v", st.body)
	}
	verifier := oauth2.GenerateVerifier()
	for _, acr := range []string{mfaACR, ""} {
		e.api("POST", path+"/complete", leaked, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
			"acr_values": acr, "scope": "openid offline_access", "redirect_uri": rpCallback}).want(t, "the attacker completes (acr_values "+acr+")", 400, "unmet_authentication_requirements")
	}
}
