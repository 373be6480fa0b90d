package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
)

// Review findings: regression tests for what an adversarial review found
// on the features of issues 5–8.

// A native app's access token continues its session through
// /api/v1/authn/sessions, but the code it completes must not carry more
// than that token was granted: an access token (which every resource
// server of the client sees) must not become an offline refresh token or
// wider scopes without the user.
func TestNativeCompletionCannotWidenTheTokensScopes(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	if got := strings.Fields(first.tok.Extra("scope").(string)); slices.Contains(got, "offline_access") || slices.Contains(got, "email") {
		t.Fatalf("the first token should have neither offline_access nor email: %v", got)
	}
	tok := first.tok.AccessToken
	start := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{}).want(t, "start with a user token", 201, "")
	// A user's token completes only after a factor verified in its session.
	e.api("POST", "/api/v1/authn/sessions/"+start.str("id")+"/verify", tok, map[string]any{"factor": "totp", "code": e.totpCode(aliceTOTP)}).want(t, "totp", 200, "")
	verifier := oauth2.GenerateVerifier()
	code := e.api("POST", "/api/v1/authn/sessions/"+start.str("id")+"/complete", tok, map[string]any{
		"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
		"scope": "openid profile email offline_access", "redirect_uri": rpCallback}).want(t, "complete", 200, "").str("code")
	status, body := e.exchangeCode("spa", "", code, verifier)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	scope, _ := body["scope"].(string)
	got := strings.Fields(scope)
	if slices.Contains(got, "offline_access") || slices.Contains(got, "email") || !slices.Contains(got, "openid") {
		t.Fatalf("a user token of scope %q completed into scope %q", first.tok.Extra("scope"), scope)
	}
}

// A user with a second factor who signed in with the password alone may
// look at /account but not change a factor: the change asks for the
// multi-factor level first and nothing is removed meanwhile. (The
// existing /account tests accept either answer at that point.)
func TestAccountChangeNeedsTheSecondFactorNotJustThePassword(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Clients = c.Clients[:2] }) // no floor: removal is allowed once fresh
	b := e.browser()
	p := b.accountPage("alice", alicePass)
	p = b.action(p, "remove-totp", nil)
	if !strings.Contains(p.url.Path, "/login/") || !p.has(hasAttr("data-factor", "totp")) {
		t.Fatalf("removing TOTP with a password-only session: at %s (status %d), want the TOTP step-up", p.url, p.status)
	}
	acct, err := e.store().AccountByUsername(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if acct.TOTPSecret == "" {
		t.Fatal("TOTP was removed with the password alone")
	}
	p = b.action(b.get(e.issuer+"/account"), "recovery-codes", nil)
	if len(find(p.doc, hasKey("data-recovery-code"))) != 0 || !strings.Contains(p.url.Path, "/login/") {
		t.Fatalf("recovery codes made with a password-only session (at %s)", p.url)
	}
	e.clock.Advance(time.Minute)
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	if p.url.Path != "/account" {
		t.Fatalf("after the TOTP step-up: at %s", p.url)
	}
	if p = b.action(p, "remove-totp", nil); p.status != http.StatusOK || !strings.Contains(p.body, "removed") {
		t.Fatalf("removing TOTP once fresh: status %d at %s:\n%s", p.status, p.url, excerpt(p.body))
	}
}

// An operator's lock stops token issuance for the user: the sessions end
// and so does every grant, an offline_access refresh token included. It
// stays ended after unlock (issue 13 item 2: ending a user's sessions ends
// every refresh token derived from them); a new sign-in gets new tokens.
func TestAdminLockStopsOfflineRefresh(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	r.cfg.Scopes = append(r.cfg.Scopes, "offline_access")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	rt := first.tok.RefreshToken
	if rt == "" {
		t.Fatal("no refresh token for offline_access")
	}
	refresh := func(tok string) (int, map[string]any) {
		return e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}, "client_id": {"spa"}}, "", "")
	}
	status, body := refresh(rt)
	if status != http.StatusOK {
		t.Fatalf("refresh before the lock: %d %v", status, body)
	}
	rt, _ = body["refresh_token"].(string)

	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	alice := e.subject("alice")
	e.api("POST", "/api/v1/users/"+alice+"/lock", admin, nil).want(t, "lock", http.StatusNoContent, "")
	if status, body := refresh(rt); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("offline refresh of a locked account: %d %v, want 400 invalid_grant", status, body["error"])
	}
	e.api("POST", "/api/v1/users/"+alice+"/unlock", admin, nil).want(t, "unlock", http.StatusNoContent, "")
	if status, body := refresh(rt); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("offline refresh token of before the lock, after unlock: %d %v, want 400 invalid_grant", status, body["error"])
	}
	again := signIn(t, e, e.browser(), r, nil, "alice", alicePass)
	if status, body := refresh(again.tok.RefreshToken); status != http.StatusOK {
		t.Fatalf("offline refresh of a sign-in after unlock: %d %v", status, body["error"])
	}
}

// PRODUCT.md §2: an email address is a factor only when the user turned
// email codes on, or under the email_fallback policy. A code a user
// entered for a client with email_fallback must not make a session
// multi-factor for a client whose policy does not count email: single
// sign-on would carry the fallback over to a client that requires a real
// second factor.
func TestEmailFallbackDoesNotCarryOverToOtherClients(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	const bobEmail = "bob@example.com"
	b := e.browser()
	fb := e.rp("fallback", "")
	a := fb.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	if !codeForm(p, "email") {
		t.Fatalf("email_fallback did not ask for an email code:\n%s", excerpt(p.body))
	}
	p = b.code(p, "email", in.last(bobEmail))
	wantClaims(t, fb.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	// Same browser, a client under allow_skip: the email code is no
	// factor there. No multi-factor token without a page.
	e.clock.Advance(time.Minute)
	r := e.rp("spa", "")
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p = b.get(a.url)
	if p.loc != nil {
		res := p.result(t)
		if res.code != "" {
			tk := r.mustExchange(a, res)
			if tk.claims.ACR == mfaACR {
				t.Fatalf("spa (allow_skip) got %s with amr %v from an email_fallback code", tk.claims.ACR, tk.claims.AMR)
			}
		}
		return
	}
	if p.status != http.StatusOK || codeForm(p, "email") {
		t.Fatalf("spa step-up page: status %d, email offered=%v", p.status, codeForm(p, "email"))
	}
	// Skipping gives the honest lower level.
	wantClaims(t, r.mustExchange(a, b.cancel(p).result(t)), oneFA, []string{"pwd"})
}

// One API authentication session, one code: completions racing on one
// handle yield exactly one code (README: "the handle ends with its code").
func TestNativeCompletionIsOnceUnderConcurrency(t *testing.T) {
	e := apiEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:authn")
	id := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice"}).want(t, "start", 201, "").str("id")
	path := "/api/v1/authn/sessions/" + id
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password", 200, "")
	const n = 12
	statuses := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			body, _ := json.Marshal(map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()), "code_challenge_method": "S256", "redirect_uri": rpCallback})
			req, _ := http.NewRequest("POST", e.issuer+path+"/complete", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for s := range statuses {
		got[s]++
	}
	if got[http.StatusOK] != 1 || got[http.StatusOK]+got[http.StatusNotFound] != n {
		t.Fatalf("concurrent completions of one handle: %v, want exactly one 200 and the rest 404", got)
	}
}

// The admin API's levels follow the same email rule as the tokens: an
// email code entered under one client's email_fallback policy is no second
// factor in an operator's view of the session (no client's fallback is
// assumed there), so the session lists 1fa only.
func TestAdminLevelsApplyTheEmailRule(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:admin"}
			}
		}
	}))
	b := e.browser()
	fb := e.rp("fallback", "")
	a := fb.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	if !codeForm(p, "email") {
		t.Fatalf("email_fallback did not ask for an email code:\n%s", excerpt(p.body))
	}
	p = b.code(p, "email", in.last("bob@example.com"))
	wantClaims(t, fb.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})

	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	got := e.api("GET", "/api/v1/users/"+e.subject("bob")+"/sessions", admin, nil).want(t, "list", 200, "")
	ss := got.body["sessions"].([]any)
	if len(ss) != 1 {
		t.Fatalf("sessions: %v", ss)
	}
	if lv := toStrings(ss[0].(map[string]any)["levels"]); !sameSet(lv, []string{oneFA}) {
		t.Fatalf("levels of a session whose second factor is an email_fallback code: %v, want [%s]", lv, oneFA)
	}
}
