// Package demo is the relying party built into stepupd's demo mode: a page
// that signs in through the provider like any client would (code flow,
// PKCE, state, nonce), verifies the ID token and shows its acr, amr and
// auth_time, with a button to step up.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// MFA is the multi-factor acr of the default ladder.
const MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

type rp struct {
	issuer, clientID, redirect string
	once                       sync.Once
	provider                   *oidc.Provider
	err                        error
}

// Mount returns a function that adds /demo/ routes for a public client.
func Mount(issuer, clientID, redirectURL string) func(*http.ServeMux) {
	d := &rp{issuer: issuer, clientID: clientID, redirect: redirectURL}
	return func(mux *http.ServeMux) {
		mux.HandleFunc("GET /demo/{$}", d.home)
		mux.HandleFunc("GET /demo/login", d.login)
		mux.HandleFunc("GET /demo/callback", d.callback)
	}
}

func (d *rp) oauth(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	// Discovery is fetched lazily: the provider is this very process, which
	// is not listening yet when Mount runs.
	d.once.Do(func() { d.provider, d.err = oidc.NewProvider(ctx, d.issuer) })
	if d.err != nil {
		err := d.err
		d.once = sync.Once{}
		return nil, nil, err
	}
	return &oauth2.Config{
		ClientID:    d.clientID,
		Endpoint:    d.provider.Endpoint(),
		RedirectURL: d.redirect,
		Scopes:      []string{oidc.ScopeOpenID, "profile"},
	}, d.provider, nil
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (d *rp) login(w http.ResponseWriter, r *http.Request) {
	cfg, _, err := d.oauth(r.Context())
	if err != nil {
		http.Error(w, "discovery failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	asked := "" // the cookie remembers what was asked, to compare with what came back
	if r.URL.Query().Get("acr") == "mfa" {
		asked = "mfa"
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", MFA), oauth2.SetAuthURLParam("max_age", "300"))
	}
	if l := r.URL.Query().Get("ui_locales"); l != "" {
		opts = append(opts, oauth2.SetAuthURLParam("ui_locales", l))
	}
	http.SetCookie(w, &http.Cookie{Name: "demo_rp", Value: state + "." + nonce + "." + verifier + "." + asked, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, cfg.AuthCodeURL(state, opts...), http.StatusFound)
}

func (d *rp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie("demo_rp")
	parts := []string{}
	if err == nil {
		parts = strings.Split(c.Value, ".")
	}
	if len(parts) != 4 || q.Get("state") != parts[0] {
		render(w, http.StatusBadRequest, view{Error: "state mismatch: start again from /demo/"})
		return
	}
	asked := ""
	if parts[3] == "mfa" {
		asked = MFA
	}
	if e := q.Get("error"); e != "" {
		v := view{Error: e + ": " + q.Get("error_description"), Asked: asked}
		if asked != "" {
			v.Mismatch = "asked for " + asked + ", got no sign-in (" + e + ")"
		}
		render(w, http.StatusOK, v)
		return
	}
	if q.Get("iss") != d.issuer {
		render(w, http.StatusBadRequest, view{Error: "the response's iss does not name the issuer (RFC 9207)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	cfg, provider, err := d.oauth(ctx)
	if err != nil {
		render(w, http.StatusBadGateway, view{Error: err.Error()})
		return
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		render(w, http.StatusBadGateway, view{Error: "code exchange: " + err.Error()})
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: d.clientID}).Verify(ctx, raw)
	if err != nil || idt.Nonce != parts[1] {
		render(w, http.StatusBadGateway, view{Error: "ID token did not verify"})
		return
	}
	var claims struct {
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
	}
	_ = idt.Claims(&claims)
	v := view{Sub: idt.Subject, ACR: claims.ACR, AMR: strings.Join(claims.AMR, " "),
		AuthTime: time.Unix(claims.AuthTime, 0).UTC().Format(time.RFC3339), Asked: asked}
	if asked != "" && claims.ACR != asked {
		// A voluntary step-up the user cancelled still signs in, at the
		// level reached: a relying party must compare, and so does this
		// page, so a cancel never looks like success.
		v.Mismatch = "asked for " + asked + ", got " + claims.ACR
	}
	render(w, http.StatusOK, v)
}

func (d *rp) home(w http.ResponseWriter, _ *http.Request) { render(w, http.StatusOK, view{}) }

type view struct{ Error, Sub, ACR, AMR, AuthTime, Asked, Mismatch string }

var page = template.Must(template.New("demo").Parse(`<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>stepup demo</title>
<link rel="stylesheet" href="/static/style.css"><main class="demo"><div class="card"><h1>stepup demo relying party</h1>
{{if .Mismatch}}<p class="alert" role="alert" data-acr-mismatch>Step-up not completed: {{.Mismatch}}.</p>
{{else if .Error}}<p class="alert" role="alert">{{.Error}}</p>{{end}}
{{if .Sub}}<dl class="claims"><dt>sub</dt><dd>{{.Sub}}</dd><dt>acr</dt><dd data-claim="acr">{{.ACR}}</dd>
<dt>amr</dt><dd data-claim="amr">{{.AMR}}</dd><dt>auth_time</dt><dd>{{.AuthTime}}</dd></dl>{{end}}
<p><a class="button" href="/demo/login">Sign in (any level)</a></p>
<p><a class="button secondary" href="/demo/login?acr=mfa">Step up: multi-factor, max_age=300</a></p>
<p class="links"><a href="/account" data-action="account">Your account: password, email address, sign-in methods</a></p>
<p class="links"><a href="/demo/login?ui_locales=de" lang="de">Auf Deutsch anmelden</a> · <a href="/logout">Sign out</a></p>
</div></main></html>`))

func render(w http.ResponseWriter, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, v)
}
