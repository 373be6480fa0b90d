package server_test

import (
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
)

// API-first authentication with codes sent by SMS and email: the hosted pages'
// send caps and cooldown apply, the code is bound to the API session, a
// wrong code counts against the user's budget, and the tokens say sms.
func TestNativeSMSAndEmailCodes(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:authn"}
			}
		}
		c.MFA.Codes.PerUser = 2
		c.Users[0].EmailMFA = true // alice turned email codes on
	}))
	tok := e.ccToken("bank", bankSecret, "stepup:authn")
	start := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "carol"}).want(t, "start", 201, "")
	if !sameSet(toStrings(start.body["factors"]), []string{"password", "sms"}) {
		t.Fatalf("carol's factors: %v", start.body["factors"])
	}
	path := "/api/v1/authn/sessions/" + start.str("id")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": carolPass}).want(t, "password", 200, "")
	e.api("POST", path+"/send", tok, map[string]any{"factor": "email"}).want(t, "email codes are off for carol", 400, "user_not_enrolled")
	e.api("POST", path+"/send", tok, map[string]any{"factor": "totp"}).want(t, "totp is not sent", 400, "invalid_request")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "sms", "code": "123456"}).want(t, "a code before any was sent", 400, "invalid_code")

	sent := e.api("POST", path+"/send", tok, map[string]any{"factor": "sms"}).want(t, "send", http.StatusAccepted, "")
	if sent.body["sent"] != true || in.count(carolPhone) != 1 {
		t.Fatalf("send: %v, %d messages", sent.body, in.count(carolPhone))
	}
	code := in.last(carolPhone)
	again := e.api("POST", path+"/send", tok, map[string]any{"factor": "sms"}).want(t, "resend within the cooldown", 429, "rate_limited")
	if again.header.Get("Retry-After") == "" || in.count(carolPhone) != 1 {
		t.Fatalf("a resend in the cooldown sent a message or gave no Retry-After")
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "sms", "code": wrong}).want(t, "wrong code", 400, "invalid_code")
	st := e.api("POST", path+"/verify", tok, map[string]any{"factor": "sms", "code": code}).want(t, "right code", 200, "")
	if st.str("acr") != mfaACR || !sameSet(toStrings(st.body["amr"]), []string{"pwd", "sms", "mfa"}) {
		t.Fatalf("after the SMS code: %v", st.body)
	}
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "sms", "code": code}).want(t, "the code again", 400, "invalid_code")

	// The per-user send cap (2 here) spans sessions, as on the hosted pages.
	for i, want := range []int{http.StatusAccepted, http.StatusTooManyRequests} {
		other := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "carol"}).want(t, "another session", 201, "").str("id")
		got := e.api("POST", "/api/v1/authn/sessions/"+other+"/send", tok, map[string]any{"factor": "sms"})
		if got.status != want {
			t.Fatalf("send #%d of carol: %d %v, want %d", i+2, got.status, got.body, want)
		}
	}
	if in.count(carolPhone) != 2 {
		t.Fatalf("%d messages to carol, want 2 (the cap)", in.count(carolPhone))
	}

	verifier := oauth2.GenerateVerifier()
	c := e.api("POST", path+"/complete", tok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "redirect_uri": rpCallback}).
		want(t, "complete", 200, "").str("code")
	status, body := e.exchangeCode("bank", bankSecret, c, verifier)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	if cl := e.idClaims("bank", body["id_token"]); cl.ACR != mfaACR || !sameSet(cl.AMR, []string{"pwd", "sms", "mfa"}) {
		t.Fatalf("ID token: %+v", cl)
	}

	// Email codes, for a user who turned them on: amr otp.
	id := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice"}).want(t, "alice", 201, "").str("id")
	path = "/api/v1/authn/sessions/" + id
	e.api("POST", path+"/send", tok, map[string]any{"factor": "email"}).want(t, "send email", http.StatusAccepted, "")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "alice's password", 200, "")
	st = e.api("POST", path+"/verify", tok, map[string]any{"factor": "email", "code": in.last("alice@example.com")}).want(t, "email code", 200, "")
	if st.str("acr") != mfaACR || !sameSet(toStrings(st.body["amr"]), []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("after the email code: %v", st.body)
	}
}
