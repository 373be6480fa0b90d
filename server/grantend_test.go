package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// Issue 13, item 2 (second half) and item 8: what a user's sign-ins gave
// ends when they end. A sign-out ends the session's online grants: their
// refresh tokens and their access tokens, at introspection, userinfo and
// the APIs alike; its offline grant (offline_access) lives on. An
// operator's end of the session, of all the user's sessions, or a lock,
// ends every grant, offline ones included. Before, every refresh token
// of an ended session's offline grant kept working, and every access
// token stayed active until it expired.
func TestEndingSessionsEndsTheirTokens(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(t *testing.T, e *env, b *browser, online *tokens)
		// offlineLives: the offline grant outlives the end.
		offlineLives bool
	}{
		{"sign-out", func(t *testing.T, e *env, b *browser, online *tokens) {
			p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {online.idToken}}.Encode())
			if p.status != http.StatusOK {
				t.Fatalf("end_session: %d\n%s", p.status, excerpt(p.body))
			}
		}, true},
		{"admin ends the session", func(t *testing.T, e *env, b *browser, online *tokens) {
			admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
			ss, _ := e.api("GET", "/api/v1/users/"+alice+"/sessions", admin, nil).want(t, "list", 200, "").body["sessions"].([]any)
			if len(ss) != 1 {
				t.Fatalf("%d sessions, want the browser's one", len(ss))
			}
			id, _ := ss[0].(map[string]any)["id"].(string)
			e.api("DELETE", "/api/v1/sessions/"+id, admin, nil).want(t, "end the session", 204, "")
		}, false},
		{"admin ends all sessions", func(t *testing.T, e *env, b *browser, online *tokens) {
			admin := e.ccToken("bank", bankSecret, "stepup:admin")
			e.api("DELETE", "/api/v1/users/"+e.subject("alice")+"/sessions", admin, nil).want(t, "end all sessions", 204, "")
		}, false},
		{"admin locks the user", func(t *testing.T, e *env, b *browser, online *tokens) {
			admin := e.ccToken("bank", bankSecret, "stepup:admin")
			e.api("POST", "/api/v1/users/"+e.subject("alice")+"/lock", admin, nil).want(t, "lock", 204, "")
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := apiEnv(t)
			b, r := e.browser(), e.rp("spa", "")
			online := signIn(t, e, b, r, nil, "alice", alicePass)
			// Single sign-on in the same browser session: an offline grant,
			// of another client (a session holds one grant per client:
			// the same client's would replace the online one).
			rb := e.rp("bank", bankSecret)
			a := rb.authURL(map[string]string{"scope": "openid profile offline_access"})
			offline := rb.mustExchange(a, b.get(a.url).result(t))
			offline.client, offline.secret = "bank", bankSecret
			if online.tok.RefreshToken == "" || offline.tok.RefreshToken == "" {
				t.Fatal("the public client got no refresh token")
			}
			// Another user's tokens are no one's business here.
			bystander := signIn(t, e, e.browser(), r, map[string]string{"scope": "openid profile offline_access"}, "bob", bobPass)
			wantTokensLive(t, e, "online grant before the end", online)

			c.end(t, e, b, online)

			wantTokensEnded(t, e, "online grant", online)
			if c.offlineLives {
				wantTokensLive(t, e, "offline grant", offline)
			} else {
				wantTokensEnded(t, e, "offline grant", offline)
			}
			wantTokensLive(t, e, "another user's grant", bystander)
		})
	}
}

// Item 2's scenario to its end: a leaked access token of a grant with
// offline_access starts an API authentication session, proves a factor
// through it and completes it into an offline refresh token of its own.
// An operator's "end all sessions" must end that refresh token too.
func TestAdminEndReachesTokensOfAPISessions(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	leaked := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "alice", alicePass).tok.AccessToken
	start := e.api("POST", "/api/v1/authn/sessions", leaked, map[string]any{}).want(t, "start with the leaked token", 201, "")
	path := "/api/v1/authn/sessions/" + start.str("id")
	e.api("POST", path+"/verify", leaked, map[string]any{"factor": "totp", "code": e.totpCode(aliceTOTP)}).want(t, "totp", 200, "")
	verifier := oauth2.GenerateVerifier()
	code := e.api("POST", path+"/complete", leaked, map[string]any{
		"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
		"scope": "openid offline_access", "redirect_uri": rpCallback}).want(t, "complete", 200, "").str("code")
	status, body := e.exchangeCode("spa", "", code, verifier)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, body)
	}
	tk := &tokens{tok: (&oauth2.Token{AccessToken: body["access_token"].(string)}).WithExtra(body)}
	tk.tok.RefreshToken, _ = body["refresh_token"].(string)
	if tk.tok.RefreshToken == "" || !strings.Contains(body["scope"].(string), "offline_access") {
		t.Fatalf("the API session's code gave no offline refresh token: %v", body)
	}
	wantTokensLive(t, e, "API session's grant before the end", tk)

	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	e.api("DELETE", "/api/v1/users/"+e.subject("alice")+"/sessions", admin, nil).want(t, "end all sessions", 204, "")
	wantTokensEnded(t, e, "API session's grant", tk)
}

// A code whose session ends between the authorization and the exchange
// yields no tokens: the exchange is refused, not turned into a grant no
// end can reach.
func TestCodeOfAnEndedSessionIsRefused(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	a := r.authURL(map[string]string{"scope": "openid offline_access"})
	res := b.get(a.url).result(t)
	if p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {first.idToken}}.Encode()); p.status != http.StatusOK {
		t.Fatalf("end_session: %d", p.status)
	}
	if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("exchange of a code of an ended session: %v, want invalid_grant", err)
	}
}

// refreshWith redeems a refresh token of the public client spa.
func (e *env) refreshWith(rt string) (int, map[string]any) {
	e.t.Helper()
	return e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}}, "", "")
}

// refreshTokens refreshes tk with the client it was issued to.
func (e *env) refreshTokens(tk *tokens) (int, map[string]any) {
	e.t.Helper()
	if tk.client == "" {
		return e.refreshWith(tk.tok.RefreshToken)
	}
	return e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.tok.RefreshToken}}, tk.client, tk.secret)
}

// wantTokensLive: the access token is active at introspection, userinfo
// answers, and the refresh token works (checked last: it rotates).
func wantTokensLive(t *testing.T, e *env, what string, tk *tokens) {
	t.Helper()
	if _, in := e.postForm("/oauth/introspect", url.Values{"token": {tk.tok.AccessToken}}, "bank", bankSecret); in["active"] != true {
		t.Fatalf("%s: introspection of the access token %v, want active", what, in)
	}
	if got := e.call("GET", "/userinfo", "", "Authorization", "Bearer "+tk.tok.AccessToken); got.status != http.StatusOK {
		t.Fatalf("%s: userinfo %d %s, want 200", what, got.status, got.raw)
	}
	if status, body := e.refreshTokens(tk); status != http.StatusOK {
		t.Fatalf("%s: refresh %d %v, want 200", what, status, body["error"])
	} else {
		tk.tok.RefreshToken, _ = body["refresh_token"].(string)
		tk.tok.AccessToken, _ = body["access_token"].(string)
	}
}

// wantTokensEnded: the access token is inactive at introspection,
// userinfo answers 401 invalid_token with its challenge, the API refuses
// the token, and the refresh token is refused (invalid_grant).
func wantTokensEnded(t *testing.T, e *env, what string, tk *tokens) {
	t.Helper()
	if _, in := e.postForm("/oauth/introspect", url.Values{"token": {tk.tok.AccessToken}}, "bank", bankSecret); in["active"] != false {
		t.Errorf("%s: introspection of the access token %v, want active false", what, in)
	}
	got := e.call("GET", "/userinfo", "", "Authorization", "Bearer "+tk.tok.AccessToken)
	if got.status != http.StatusUnauthorized || got.str("error") != "invalid_token" || !strings.HasPrefix(got.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Errorf("%s: userinfo %d %v %s, want 401 invalid_token", what, got.status, got.header.Get("WWW-Authenticate"), got.raw)
	}
	e.api("POST", "/api/v1/authn/sessions", tk.tok.AccessToken, map[string]any{}).want(t, what+": the API with the access token", 401, "invalid_token")
	// Last: a refused refresh may clean up what the checks above look at.
	if status, body := e.refreshTokens(tk); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("%s: refresh %d %v, want 400 invalid_grant", what, status, body["error"])
	}
}

// Issue 18 review: the exchange stores its grant in the round trip that
// asks the session (PutGrant), so a code issued in a session before its
// sign-out and exchanged after it wrote over the session's offline grant
// of the same client (one grant per session and client) and then undid
// its write: the offline grant, which the sign-out had left alive, was
// gone, and the client's offline refresh token with it. Now the late
// exchange is refused (invalid_grant) and changes nothing.
func TestLateExchangeAfterSignOutKeepsTheOfflineGrant(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
	offline := signIn(t, e, b, r, map[string]string{"scope": "openid profile offline_access"}, "alice", alicePass)
	// Another authorization of the client in the session: its code is
	// issued, not yet exchanged, when the user signs out.
	a := r.authURL(map[string]string{"scope": "openid profile"})
	late := b.get(a.url).result(t)
	if p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {offline.idToken}}.Encode()); p.status != http.StatusOK {
		t.Fatalf("end_session: %d\n%s", p.status, excerpt(p.body))
	}
	if _, err := r.exchange(a, late); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("exchange of a code of a signed-out session: %v, want invalid_grant", err)
	}
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: offline.tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("the offline refresh token after the sign-out and a refused late exchange: %v", err)
	}
}
