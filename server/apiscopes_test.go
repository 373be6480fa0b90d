package server_test

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
)

// Issue 13 item 16: a client that may call stepup's APIs asks for the API
// scopes at /authorize (or at an API completion): the user's tokens must
// not carry them, whatever a resource server trusting `scope` would make
// of them. Every scope in the stepup: namespace is an API scope, so one
// added later (stepup:scim) is kept out as well. The client's own
// client_credentials token still gets them.
func TestAPIScopesStayOutOfUserTokens(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin", "stepup:authn", "stepup:scim", "accounts:read"}
			}
		}
	})
	asked := "openid profile stepup:admin stepup:grants stepup:authn stepup:scim accounts:read offline_access"
	want := []string{"openid", "profile", "accounts:read", "offline_access"}
	check := func(what string, scope any, accessToken string) {
		t.Helper()
		s, _ := scope.(string)
		if !sameSet(strings.Fields(s), want) {
			t.Fatalf("%s: token response scope %q, want %q", what, s, want)
		}
		if got, _ := jwtClaims(t, accessToken)["scope"].(string); !sameSet(strings.Fields(got), want) {
			t.Fatalf("%s: the access token's scope claim is %q, want %q", what, got, want)
		}
		_, in := e.postForm("/oauth/introspect", url.Values{"token": {accessToken}}, "bank", bankSecret)
		if in["active"] != true || !sameSet(strings.Fields(in["scope"].(string)), want) {
			t.Fatalf("%s: introspection %v", what, in)
		}
	}

	// Through /authorize.
	b, r := e.browser(), e.rp("bank", bankSecret)
	a := r.authURL(map[string]string{"scope": asked})
	tk := r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t))
	check("authorization code", tk.tok.Extra("scope"), tk.tok.AccessToken)
	e.api("GET", "/api/v1/users/"+tk.claims.Sub+"/sessions", tk.tok.AccessToken, nil).want(t, "a user's token at the admin API", 403, "insufficient_scope")

	// A refresh may not bring them back.
	status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.tok.RefreshToken}, "scope": {"openid stepup:admin"}}, "bank", bankSecret)
	if status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("refresh asking for stepup:admin: %d %v", status, body)
	}
	status, body = e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.tok.RefreshToken}}, "bank", bankSecret)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	check("refresh", body["scope"], body["access_token"].(string))

	// Through an API authentication session a backend completes.
	authnTok := e.ccToken("bank", bankSecret, "stepup:authn")
	path := "/api/v1/authn/sessions/" + e.api("POST", "/api/v1/authn/sessions", authnTok, map[string]any{"username": "alice"}).want(t, "start", 201, "").str("id")
	e.api("POST", path+"/verify", authnTok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password", 200, "")
	verifier := oauth2.GenerateVerifier()
	code := e.api("POST", path+"/complete", authnTok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
		"scope": asked, "redirect_uri": rpCallback}).want(t, "complete", 200, "").str("code")
	status, body = e.exchangeCode("bank", bankSecret, code, verifier)
	if status != 200 {
		t.Fatalf("exchange of the API code: %d %v", status, body)
	}
	check("API completion", body["scope"], body["access_token"].(string))

	// The client's own token is unaffected.
	for _, s := range []string{"stepup:admin", "stepup:scim"} {
		status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {s}}, "bank", bankSecret)
		if status != 200 || body["scope"] != s {
			t.Fatalf("client_credentials for %s: %d %v", s, status, body)
		}
	}
}
