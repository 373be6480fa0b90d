package server_test

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
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
