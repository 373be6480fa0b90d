package server_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/server/op"
)

// Issue 13 item 10: a code was spent before its client, redirect URI and
// PKCE verifier were checked, so whoever held a stolen code (from a log,
// a Referer, a history) could burn it — and, by replaying it after the
// legitimate exchange, revoke the client's tokens. Now a code is taken
// only with what binds it (RFC 6749 §4.1.3, RFC 7636 §4.6), checked in the
// store script that spends it; only the rightful client's replay revokes
// (RFC 9700 §4.5).
func TestStolenCodeIsNeitherSpentNorRevoking(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	a := r.authURL(map[string]string{"scope": "openid offline_access"})
	res := b.login(b.get(a.url), "alice", alicePass).result(t)

	token := func(v url.Values, user, pass string) (int, map[string]any) {
		v.Set("grant_type", "authorization_code")
		v.Set("code", res.code)
		return e.postForm(op.PathToken, v, user, pass)
	}
	right := url.Values{"redirect_uri": {rpCallback}, "code_verifier": {a.verifier}}
	for _, tc := range []struct {
		name       string
		v          url.Values
		user, pass string
	}{
		{"another (public) client, with the verifier", url.Values{"client_id": {"spa"}, "redirect_uri": {rpCallback}, "code_verifier": {a.verifier}}, "", ""},
		{"another confidential client, with the verifier", right, "floor", bankSecret},
		{"the client, another registered redirect_uri (RFC 8252 loopback port)", url.Values{"redirect_uri": {"http://127.0.0.1:53682/cb"}, "code_verifier": {a.verifier}}, "bank", bankSecret},
		{"the client, a wrong verifier", url.Values{"redirect_uri": {rpCallback}, "code_verifier": {oauth2.GenerateVerifier()}}, "bank", bankSecret},
		{"the client, no verifier", url.Values{"redirect_uri": {rpCallback}}, "bank", bankSecret},
	} {
		v := url.Values{}
		for k, vs := range tc.v {
			v[k] = vs
		}
		if status, body := token(v, tc.user, tc.pass); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("%s: %d %v, want 400 invalid_grant", tc.name, status, body)
		}
	}
	// Malformed requests are refused before the store is asked.
	if status, body := token(url.Values{"redirect_uri": {rpCallback}, "code_verifier": {"short"}}, "bank", bankSecret); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("a verifier outside RFC 7636 §4.1: %d %v, want 400 invalid_request", status, body)
	}
	if status, body := token(url.Values{"code_verifier": {a.verifier}}, "bank", bankSecret); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("no redirect_uri: %d %v, want 400 invalid_request", status, body)
	}

	// The rightful client still redeems it.
	tk := r.mustExchange(a, res)
	if tk.tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	active := func() bool {
		_, body := e.postForm(op.PathIntrospect, url.Values{"token": {tk.tok.AccessToken}}, "bank", bankSecret)
		return body["active"] == true
	}

	// A replay without the binding is refused and revokes nothing.
	if status, body := token(url.Values{"client_id": {"spa"}, "redirect_uri": {rpCallback}, "code_verifier": {a.verifier}}, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("replay by another client: %d %v", status, body)
	}
	if status, body := token(url.Values{"redirect_uri": {rpCallback}, "code_verifier": {oauth2.GenerateVerifier()}}, "bank", bankSecret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("replay with a wrong verifier: %d %v", status, body)
	}
	if !active() {
		t.Fatal("a replay without the code's binding revoked the client's tokens")
	}
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tk.tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("a replay without the code's binding revoked the refresh token: %v", err)
	}

	// The rightful client's replay revokes what the code issued.
	if status, body := token(url.Values{"redirect_uri": {rpCallback}, "code_verifier": {a.verifier}}, "bank", bankSecret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("replay by the client: %d %v", status, body)
	}
	if active() {
		t.Fatal("the access token survived the client's own replay")
	}
}

// Concurrent redemptions of one code, all but one without its binding:
// exactly one succeeds (the others neither spend nor revoke). Concurrent
// redemptions with the binding are replays of each other: at most one
// answers with tokens, and those are revoked by the replays — also when a
// replay's revocation lands before the first exchange has written its
// grant (issue 13: a deleted grant id can never be written).
func TestCodeRedeemedOnceUnderConcurrency(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	const n = 12
	redeem := func(bound func(i int) bool) ([]int, []map[string]any) {
		a := r.authURL(nil)
		res := b.get(a.url)
		if res.loc == nil {
			res = b.login(res, "alice", alicePass)
		}
		code := res.result(t).code
		statuses, bodies := make([]int, n), make([]map[string]any, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				verifier := a.verifier
				if !bound(i) {
					verifier = oauth2.GenerateVerifier()
				}
				<-start
				statuses[i], bodies[i] = e.postForm(op.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"spa"},
					"redirect_uri": {rpCallback}, "code_verifier": {verifier}}, "", "")
			}()
		}
		close(start)
		wg.Wait()
		return statuses, bodies
	}

	statuses, _ := redeem(func(i int) bool { return i == 0 })
	for i, s := range statuses {
		if want := map[bool]int{true: http.StatusOK, false: http.StatusBadRequest}[i == 0]; s != want {
			t.Fatalf("redemption #%d (binding %v): status %d, want %d (statuses %v)", i, i == 0, s, want, statuses)
		}
	}

	statuses, bodies := redeem(func(int) bool { return true })
	ok := 0
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
			at, _ := bodies[i]["access_token"].(string)
			if _, in := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret); in["active"] != false {
				t.Fatalf("redemption #%d of a replayed code: its access token is active: %v", i, in)
			}
		case http.StatusBadRequest:
		default:
			t.Fatalf("redemption #%d: status %d", i, s)
		}
	}
	if ok > 1 {
		t.Fatalf("%d of %d concurrent redemptions succeeded (statuses %v), want at most 1", ok, n, statuses)
	}
}
