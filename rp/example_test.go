package rp_test

import (
	"fmt"
	"net/url"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/rp"
)

// An API answered 401 with RFC 9470's challenge: the client builds the
// authorization request that satisfies it.
func ExampleNewAuthRequest() {
	ch, err := rp.ParseChallenge(`Bearer error="insufficient_user_authentication", ` +
		`error_description="A different authentication level is required", ` +
		`acr_values="http://schemas.openid.net/pape/policies/2007/06/multi-factor", max_age="300"`)
	if err != nil || !ch.StepUp() {
		panic(err)
	}
	cfg := &oauth2.Config{
		ClientID:    "bank",
		RedirectURL: "https://bank.example.com/callback",
		Endpoint:    oauth2.Endpoint{AuthURL: "https://id.example.com/authorize", TokenURL: "https://id.example.com/oauth/token"},
		Scopes:      []string{"openid"},
	}
	a := rp.NewAuthRequest(cfg, ch)
	// Keep a (state, nonce, PKCE verifier) until the callback; then
	// a.Exchange(ctx, cfg, issuer, callbackQuery).
	u, _ := url.Parse(a.URL)
	q := u.Query()
	fmt.Println(q.Get("acr_values"))
	fmt.Println(q.Get("max_age"), q.Get("code_challenge_method"), q.Get("state") == a.State, q.Get("nonce") == a.Nonce)
	// Output:
	// http://schemas.openid.net/pape/policies/2007/06/multi-factor
	// 300 S256 true true
}
