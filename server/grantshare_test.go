package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session/redisstore"
)

// Issue 18, item 2: a session holds one grant per client, so Redis
// memory follows sessions, not sign-ins. Before, every authorization of
// the same client in the same session stored a grant of its own (and
// entries in the session's and the user's indexes) that lived as long
// as the session.

// grantKeys counts the grant records in Redis (not the ended markers).
func grantKeys(t *testing.T, e *env) int {
	t.Helper()
	ks, err := e.backend.Store(t).(*redisstore.Store).Keys(t.Context(), "{grant:*}")
	if err != nil {
		t.Fatal(err)
	}
	return len(ks)
}

// introspect returns the introspection of an access token (by bank).
func introspect(e *env, at string) map[string]any {
	_, body := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret)
	return body
}

func TestOneGrantPerSessionAndClient(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	if n := grantKeys(t, e); n != 1 {
		t.Fatalf("%d grants after one sign-in, want 1", n)
	}
	var last *tokens
	for range 3 {
		e.clock.Advance(time.Second)
		a := r.authURL(nil)
		last = r.mustExchange(a, b.get(a.url).result(t))
	}
	if n := grantKeys(t, e); n != 1 {
		t.Fatalf("%d grants after three more authorizations of the same client in the same session, want 1", n)
	}
	// Another client in the same session, and another session: one more
	// grant each.
	rb := e.rp("bank", bankSecret)
	a := rb.authURL(nil)
	rb.mustExchange(a, b.get(a.url).result(t))
	signIn(t, e, e.browser(), r, nil, "bob", bobPass)
	if n := grantKeys(t, e); n != 3 {
		t.Fatalf("%d grants for two clients in one session and one in another, want 3", n)
	}
	// The access token of an earlier authorization stays active until it
	// expires (it carries that authorization's own claims)…
	if in := introspect(e, first.tok.AccessToken); in["active"] != true {
		t.Fatalf("the first authorization's access token: %v, want active", in)
	}
	if in := introspect(e, last.tok.AccessToken); in["active"] != true {
		t.Fatalf("the last authorization's access token: %v, want active", in)
	}
	// …but its refresh token is no longer the grant's: presented, it is
	// an old refresh token of the family, and the public client's family
	// is revoked (RFC 9700 §4.14.2), the last authorization's tokens too.
	if status, body := e.refreshWith(first.tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh with the first authorization's refresh token: %d %v, want 400 invalid_grant", status, body)
	}
	if status, body := e.refreshWith(last.tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after the family was revoked: %d %v, want 400 invalid_grant", status, body)
	}
	if in := introspect(e, last.tok.AccessToken); in["active"] != false {
		t.Fatalf("the last access token after the family was revoked: %v, want inactive", in)
	}
	// The session goes on: the next authorization stores the grant again.
	a = r.authURL(nil)
	again := r.mustExchange(a, b.get(a.url).result(t))
	if status, body := e.refreshWith(again.tok.RefreshToken); status != http.StatusOK {
		t.Fatalf("refresh of a new authorization after the revocation: %d %v", status, body)
	}
}

// A step-up in the same session stores the session's grant again with
// what the step-up earned; the refresh token of the authorization before
// never obtains the raised claims, and an access token from before keeps
// its own.
func TestStepUpRaisesOnlyTheNewTokens(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	wantClaims(t, first, oneFA, []string{"pwd"})

	e.clock.Advance(10 * time.Second)
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	up := r.mustExchange(a, b.code(b.get(a.url), "totp", e.totpCode(aliceTOTP)).result(t))
	wantClaims(t, up, mfaACR, []string{"pwd", "otp", "mfa"})
	if n := grantKeys(t, e); n != 1 {
		t.Fatalf("%d grants after a sign-in and a step-up of the same client in one session, want 1", n)
	}

	// The old refresh token (a confidential client's, not rotated) is
	// refused: no tokens, so no raised claims.
	refresh := func(rt string) (int, map[string]any) {
		return e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "bank", bankSecret)
	}
	if status, body := refresh(first.tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh with the refresh token from before the step-up: %d %v, want 400 invalid_grant", status, body)
	}
	// The access token from before keeps its one-factor claims.
	if in := introspect(e, first.tok.AccessToken); in["active"] != true || in["acr"] != oneFA {
		t.Fatalf("the access token from before the step-up: %v, want active with acr %s", in, oneFA)
	}
	// The step-up's refresh token carries the step-up's claims, no more.
	status, body := refresh(up.tok.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh with the step-up's refresh token: %d %v", status, body)
	}
	idt, _ := body["id_token"].(string)
	tk, err := r.verifier.Verify(r.ctx, idt)
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := tk.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.ACR != mfaACR || c.AuthTime != up.claims.AuthTime {
		t.Fatalf("refreshed ID token acr %q auth_time %d, want %q %d", c.ACR, c.AuthTime, mfaACR, up.claims.AuthTime)
	}
	at, _ := body["access_token"].(string)
	if in := introspect(e, at); in["acr"] != mfaACR {
		t.Fatalf("refreshed access token: %v, want acr %s", in, mfaACR)
	}
	// And the old one stays refused.
	if status, body := refresh(first.tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("the refresh token from before the step-up, again: %d %v, want 400 invalid_grant", status, body)
	}
}

// A client that revokes its refresh token (an RP's sign-out) and signs
// the user in again in the same session gets a grant again, and the
// revoked authorization's access tokens do not come back to life with it.
func TestRevokedSessionGrantIsNotRevived(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	if status, body := e.postForm("/oauth/revoke", url.Values{"token": {first.tok.RefreshToken}, "client_id": {"spa"}}, "", ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if in := introspect(e, first.tok.AccessToken); in["active"] != false {
		t.Fatalf("the access token after its refresh token was revoked: %v, want inactive", in)
	}
	a := r.authURL(nil)
	again := r.mustExchange(a, b.get(a.url).result(t))
	if in := introspect(e, again.tok.AccessToken); in["active"] != true {
		t.Fatalf("the new authorization's access token: %v, want active", in)
	}
	if in := introspect(e, first.tok.AccessToken); in["active"] != false {
		t.Fatalf("the revoked authorization's access token after the grant was stored again: %v, want inactive", in)
	}
	if status, body := e.refreshWith(again.tok.RefreshToken); status != http.StatusOK {
		t.Fatalf("refresh of the new authorization: %d %v", status, body)
	}
}

// A code used twice revokes the session's grant for the client (what the
// code gave and what later authorizations gave: failing closed), and a
// later authorization in the session still gets tokens.
func TestReplayedCodeEndsTheSessionGrant(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	a1 := r.authURL(nil)
	res1 := b.login(b.get(a1.url), "alice", alicePass).result(t)
	r.mustExchange(a1, res1)
	a2 := r.authURL(nil)
	second := r.mustExchange(a2, b.get(a2.url).result(t))

	status, body := e.exchangeCode("bank", bankSecret, res1.code, a1.verifier)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.Contains(body["error_description"].(string), "revoked") {
		t.Fatalf("the first code again: %d %v, want 400 invalid_grant (revoked)", status, body)
	}
	if in := introspect(e, second.tok.AccessToken); in["active"] != false {
		t.Fatalf("the later authorization's access token after the replay: %v, want inactive", in)
	}
	a3 := r.authURL(nil)
	third := r.mustExchange(a3, b.get(a3.url).result(t))
	if in := introspect(e, third.tok.AccessToken); in["active"] != true {
		t.Fatalf("an authorization after the replay: %v, want active", in)
	}
}
