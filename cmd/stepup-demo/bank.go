package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/rp"
	"github.com/stepup-dev/stepup/rs"
)

// The levels the bank asks for (stepup's default ladder).
const (
	acr1FA = "urn:stepup:loa:1fa"
	acrMFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
)

// withdrawMaxAge is how fresh the authentication behind a withdrawal must be.
const withdrawMaxAge = 300 * time.Second

// Options configure the bank.
type Options struct {
	Issuer, ClientID, ClientSecret, RedirectURL string
	// HTTPClient reaches the provider; nil: http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock of the resource server; nil: time.Now.
	Now func() time.Time
	// APIAudiences are more clients whose access tokens the API accepts
	// (each token is still checked for its own audience), e.g. a
	// single-page app that calls the API directly.
	APIAudiences []string
	// CORSOrigins may call the API from a browser on another origin
	// (exact scheme://host[:port]); the API's challenge header is exposed
	// to them so a client library can read it.
	CORSOrigins []string
}

// bank is the demo: a resource server (/api/…, protected by package rs)
// and a web relying party (package rp) that calls it, in one process.
type bank struct {
	o   Options
	api http.Handler

	discover sync.Mutex
	provider *oidc.Provider

	mu       sync.Mutex
	visitors map[string]*visitor
	balances map[string]int
}

// visitor is one browser's state (in memory: a demo).
type visitor struct {
	token   *oauth2.Token
	claims  idClaims
	pending *rp.AuthRequest
	// challenge is the last RFC 9470 challenge the API answered.
	challenge *rp.Challenge
	// retry is the withdrawal to retry after a step-up.
	retry int
	last  *apiCall
	// ciba is the latest "approve on your phone" withdrawal.
	ciba *cibaState
}

type idClaims struct {
	Sub      string   `json:"sub"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
}

// apiCall is one call of the web page to the bank's API, shown as is.
type apiCall struct {
	Request, Status, WWWAuthenticate, Body string
}

// newBank builds the handler.
func newBank(o Options) (http.Handler, error) {
	if o.Issuer == "" || o.ClientID == "" || o.RedirectURL == "" {
		return nil, errors.New("stepup-demo: -issuer, -client-id and -redirect-url are required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	b := &bank{o: o, visitors: map[string]*visitor{}, balances: map[string]int{}}
	// One resource server per accepted audience: rs checks exactly one.
	apis := map[string]http.Handler{}
	for _, aud := range append([]string{o.ClientID}, o.APIAudiences...) {
		v, err := rs.New(rs.Config{Issuer: o.Issuer, Audience: aud, Client: o.HTTPClient, Now: o.Now})
		if err != nil {
			return nil, err
		}
		api := http.NewServeMux()
		api.Handle("GET /api/balance", v.Require(rs.Requirement{ACR: acr1FA})(http.HandlerFunc(b.balance)))
		api.Handle("POST /api/withdraw", v.Require(rs.Requirement{ACR: acrMFA, MaxAge: withdrawMaxAge})(http.HandlerFunc(b.withdraw)))
		apis[aud] = api
	}
	b.api = apis[o.ClientID]

	ui := http.NewServeMux()
	ui.HandleFunc("GET /{$}", b.home)
	ui.HandleFunc("GET /login", b.login)
	ui.HandleFunc("GET /callback", b.callback)
	ui.HandleFunc("POST /balance", b.uiBalance)
	ui.HandleFunc("POST /withdraw", b.uiWithdraw)
	ui.HandleFunc("POST /withdraw-phone", b.uiWithdrawPhone)
	ui.HandleFunc("POST /stepup", b.stepUp)
	ui.HandleFunc("POST /logout", b.logout)

	mux := http.NewServeMux()
	// The API authenticates by bearer token, never by cookie, so requests
	// from other origins cannot ride on a visitor's session: it sits
	// outside the forms' cross-origin protection, behind CORS instead.
	mux.Handle("/api/", cors(o.CORSOrigins, byAudience(apis, b.api)))
	// Forms are same-origin only (the cookie is SameSite=Lax as well).
	mux.Handle("/", http.NewCrossOriginProtection().Handler(ui))
	return mux, nil
}

// byAudience hands a request to the resource server of its token's
// audience (read unverified: that resource server then verifies the
// token, audience included); anything else goes to def, which refuses it.
func byAudience(apis map[string]http.Handler, def http.Handler) http.Handler {
	if len(apis) == 1 {
		return def
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, aud := range unverifiedAudience(rs.BearerToken(r)) {
			if h, ok := apis[aud]; ok {
				h.ServeHTTP(w, r)
				return
			}
		}
		def.ServeHTTP(w, r)
	})
}

// unverifiedAudience is the aud claim of a JWT, not checked: only to
// choose which validator checks it.
func unverifiedAudience(raw string) []string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c struct {
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return nil
	}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

// cors lets the listed origins call the API from a browser: simple
// requests get Access-Control-Allow-Origin and the WWW-Authenticate
// header exposed (the RFC 9470 challenge is in it), preflights the
// methods and headers the API takes. No credentials: the API reads a
// bearer token, not cookies. Other origins get no CORS headers, so the
// browser keeps the answers from their scripts.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		next.ServeHTTP(w, r)
	})
}

// --- the resource server ---

func (b *bank) balance(w http.ResponseWriter, r *http.Request) {
	t, _ := rs.FromContext(r.Context())
	b.mu.Lock()
	bal := b.account(t.Subject)
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"balance": bal, "acr": t.ACR, "amr": t.AMR, "auth_time": t.AuthTime.Unix()})
}

func (b *bank) withdraw(w http.ResponseWriter, r *http.Request) {
	t, _ := rs.FromContext(r.Context())
	var req struct {
		Amount int `json:"amount"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil || req.Amount <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": `send {"amount": <positive integer>}`})
		return
	}
	b.mu.Lock()
	bal := b.account(t.Subject)
	ok := req.Amount <= bal
	if ok {
		bal -= req.Amount
		b.balances[t.Subject] = bal
	}
	b.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "insufficient_funds", "balance": bal})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"withdrawn": req.Amount, "balance": bal, "acr": t.ACR, "amr": t.AMR, "auth_time": t.AuthTime.Unix()})
}

// account is the balance of sub; every new customer starts with 1000.
// The caller holds b.mu.
func (b *bank) account(sub string) int {
	bal, ok := b.balances[sub]
	if !ok {
		bal = 1000
		b.balances[sub] = bal
	}
	return bal
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// --- the relying party ---

func (b *bank) oauth(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	b.discover.Lock()
	defer b.discover.Unlock()
	if b.provider == nil {
		// Discovery is fetched on first use, so the bank may start before
		// the provider; a failure is retried on the next request.
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, b.o.HTTPClient), b.o.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discovery at %s: %w", b.o.Issuer, err)
		}
		b.provider = p
	}
	return &oauth2.Config{
		ClientID: b.o.ClientID, ClientSecret: b.o.ClientSecret, RedirectURL: b.o.RedirectURL,
		Endpoint: b.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile"},
	}, b.provider, nil
}

const cookieName = "stepup_demo"

// visitor returns the browser's state, creating it (and the cookie).
func (b *bank) visitor(w http.ResponseWriter, r *http.Request) *visitor {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, err := r.Cookie(cookieName); err == nil {
		if v, ok := b.visitors[c.Value]; ok {
			return v
		}
	}
	id := random()
	v := &visitor{}
	b.visitors[id] = v
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(b.o.RedirectURL, "https://")})
	return v
}

func random() string {
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// authorize sends the browser to the provider: a plain sign-in (ch nil)
// or the step-up the challenge asks for.
func (b *bank) authorize(w http.ResponseWriter, r *http.Request, v *visitor, ch *rp.Challenge) {
	cfg, _, err := b.oauth(r.Context())
	if err != nil {
		b.render(w, r, v, http.StatusBadGateway, err.Error())
		return
	}
	a := rp.NewAuthRequest(cfg, ch)
	b.mu.Lock()
	v.pending = &a
	b.mu.Unlock()
	http.Redirect(w, r, a.URL, http.StatusFound)
}

func (b *bank) login(w http.ResponseWriter, r *http.Request) {
	b.authorize(w, r, b.visitor(w, r), nil)
}

func (b *bank) stepUp(w http.ResponseWriter, r *http.Request) {
	v := b.visitor(w, r)
	b.mu.Lock()
	ch := v.challenge
	b.mu.Unlock()
	if ch == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	b.authorize(w, r, v, ch)
}

func (b *bank) callback(w http.ResponseWriter, r *http.Request) {
	v := b.visitor(w, r)
	b.mu.Lock()
	a := v.pending
	v.pending = nil
	b.mu.Unlock()
	if a == nil {
		b.render(w, r, v, http.StatusBadRequest, "No sign-in is in progress in this browser: start again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	cfg, provider, err := b.oauth(ctx)
	if err != nil {
		b.render(w, r, v, http.StatusBadGateway, err.Error())
		return
	}
	tok, err := a.Exchange(oidc.ClientContext(ctx, b.o.HTTPClient), cfg, b.o.Issuer, r.URL.Query())
	if err != nil {
		var ce *rp.CallbackError
		if errors.As(err, &ce) {
			b.render(w, r, v, http.StatusOK, "The provider answered "+ce.Code+": "+ce.Description)
			return
		}
		b.render(w, r, v, http.StatusBadGateway, err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: b.o.ClientID, Now: b.o.Now}).Verify(oidc.ClientContext(ctx, b.o.HTTPClient), raw)
	if err != nil || idt.Nonce != a.Nonce {
		b.render(w, r, v, http.StatusBadGateway, "The ID token did not verify.")
		return
	}
	var c idClaims
	_ = idt.Claims(&c)
	b.mu.Lock()
	v.token, v.claims, v.challenge = tok, c, nil
	retry := v.retry
	v.retry = 0
	b.mu.Unlock()
	if retry > 0 {
		// Back from a step-up: retry the withdrawal with the new token.
		b.callAPI(v, http.MethodPost, "/api/withdraw", fmt.Sprintf(`{"amount": %d}`, retry))
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// callAPI calls the bank's own API with the visitor's access token (in
// process, through the same rs middleware an outside caller meets) and
// records the exchange for the page. A step-up challenge is kept.
func (b *bank) callAPI(v *visitor, method, path, body string) *apiCall {
	b.mu.Lock()
	tok := v.token
	b.mu.Unlock()
	return b.callAPIWith(v, tok, method, path, body)
}

// callAPIWith is callAPI with the access token tok.
func (b *bank) callAPIWith(v *visitor, tok *oauth2.Token, method, path, body string) *apiCall {
	req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	desc := method + " " + path
	if body != "" {
		desc += " " + body
	}
	if tok != nil {
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		desc += "\nAuthorization: Bearer " + abbreviate(tok.AccessToken)
	}
	rec := httptest.NewRecorder()
	b.api.ServeHTTP(rec, req)
	res := rec.Result()
	call := &apiCall{Request: desc, Status: res.Status, WWWAuthenticate: res.Header.Get("WWW-Authenticate"), Body: strings.TrimSpace(rec.Body.String())}
	b.mu.Lock()
	defer b.mu.Unlock()
	v.last = call
	if ch, ok := rp.FromResponse(res); ok && ch.StepUp() {
		v.challenge = ch
	}
	return call
}

func abbreviate(s string) string {
	if len(s) > 24 {
		return s[:12] + "…" + s[len(s)-8:]
	}
	return s
}

func (b *bank) uiBalance(w http.ResponseWriter, r *http.Request) {
	v := b.visitor(w, r)
	b.callAPI(v, http.MethodGet, "/api/balance", "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (b *bank) uiWithdraw(w http.ResponseWriter, r *http.Request) {
	v := b.visitor(w, r)
	amount := 10
	if _, err := fmt.Sscan(r.PostFormValue("amount"), &amount); err != nil || amount <= 0 {
		amount = 10
	}
	call := b.callAPI(v, http.MethodPost, "/api/withdraw", fmt.Sprintf(`{"amount": %d}`, amount))
	if strings.Contains(call.WWWAuthenticate, rs.ErrInsufficientUserAuthentication) {
		b.mu.Lock()
		v.retry = amount
		b.mu.Unlock()
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (b *bank) logout(w http.ResponseWriter, r *http.Request) {
	v := b.visitor(w, r)
	b.mu.Lock()
	*v = visitor{}
	b.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// --- the page ---

type pageData struct {
	Error     string
	SignedIn  bool
	Claims    idClaims
	AuthTime  string
	AuthAge   string
	Last      *apiCall
	Challenge *rp.Challenge
	Retry     int
	MaxAge    int
	CIBA      *cibaState
}

func (b *bank) home(w http.ResponseWriter, r *http.Request) {
	b.render(w, r, b.visitor(w, r), http.StatusOK, "")
}

func (b *bank) render(w http.ResponseWriter, _ *http.Request, v *visitor, status int, msg string) {
	b.mu.Lock()
	d := pageData{Error: msg, SignedIn: v.token != nil, Claims: v.claims, Last: v.last, Challenge: v.challenge, Retry: v.retry, MaxAge: int(withdrawMaxAge / time.Second)}
	if v.ciba != nil {
		c := *v.ciba
		d.CIBA = &c
	}
	b.mu.Unlock()
	if d.SignedIn && d.Claims.AuthTime > 0 {
		at := time.Unix(d.Claims.AuthTime, 0)
		d.AuthTime = at.UTC().Format(time.RFC3339)
		d.AuthAge = time.Since(at).Round(time.Second).String()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

var pageTemplate = template.Must(template.New("bank").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo Bank · stepup</title>
{{if and .CIBA (eq .CIBA.Status "waiting")}}<meta http-equiv="refresh" content="2">{{end}}
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.5rem}section{border:1px solid #ddd;border-radius:.5rem;padding:1rem;margin:1rem 0}
pre{background:#f5f5f5;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
button{font:inherit;padding:.4rem .9rem;margin:.2rem 0}dt{font-weight:600}dd{margin:0 0 .5rem 0;word-break:break-all}
[role=alert]{color:#a00}.step{background:#fff7e0}
</style></head><body>
<h1>Demo Bank</h1>
<p>A relying party of stepup: <code>GET /api/balance</code> needs a token at
<code>urn:stepup:loa:1fa</code>; <code>POST /api/withdraw</code> needs the
multi-factor level and an authentication at most {{.MaxAge}} s old, and
answers RFC 9470's challenge otherwise.</p>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
{{if not .SignedIn}}
<section><p>1. Sign in with your password (alice, in the compose setup).</p>
<p><a href="/login" data-action="login">Sign in</a></p></section>
{{else}}
<section><h2>Your token</h2><dl>
<dt>sub</dt><dd data-claim="sub">{{.Claims.Sub}}</dd>
<dt>acr</dt><dd data-claim="acr">{{.Claims.ACR}}</dd>
<dt>amr</dt><dd data-claim="amr">{{range $i, $m := .Claims.AMR}}{{if $i}} {{end}}{{$m}}{{end}}</dd>
<dt>auth_time</dt><dd data-claim="auth_time">{{.AuthTime}} ({{.AuthAge}} ago)</dd></dl>
<form method="post" action="/logout"><button>Sign out of the bank</button></form></section>
<section><h2>Banking</h2>
<form method="post" action="/balance"><button data-action="balance">2. Check balance (1fa)</button></form>
<form method="post" action="/withdraw"><input type="hidden" name="amount" value="10">
<button data-action="withdraw">3. Withdraw 10 (multi-factor, max_age {{.MaxAge}})</button></form>
<form method="post" action="/withdraw-phone">
<button data-action="withdraw-phone">Withdraw 10.00 — approve on your phone (OpenID CIBA)</button></form>
{{with .CIBA}}<p data-ciba-status="{{.Status}}">{{if eq .Status "waiting"}}Waiting for your approval of “Withdraw {{.Amount}}.00”. stepup sent you a link
(with the demo's log provider: the <code>notify.log</code> line in stepupd's output) — open it in another browser,
sign in to the multi-factor level and approve. This page refreshes itself.{{else if eq .Status "done"}}Approved: the withdrawal
below was made with the approval's token.{{else}}Approve on your phone: {{.Status}}{{end}}</p>{{end}}</section>
{{end}}
{{with .Last}}<section><h2>Last API call</h2>
<pre data-api="request">{{.Request}}</pre>
<p>→ <strong data-api="status">{{.Status}}</strong></p>
{{if .WWWAuthenticate}}<pre data-api="www-authenticate">WWW-Authenticate: {{.WWWAuthenticate}}</pre>{{end}}
<pre data-api="body">{{.Body}}</pre></section>{{end}}
{{if .Challenge}}<section class="step"><h2>Step-up needed</h2>
<p>The API asks for <code>acr_values={{range .Challenge.ACRValues}}{{.}} {{end}}</code>{{if .Challenge.HasMaxAge}} and
<code>max_age={{.Challenge.MaxAge}}</code>{{end}}. The bank sends you back to stepup with exactly those
parameters (package rp); stepup asks only for what is missing, then the bank retries{{if .Retry}} the withdrawal of {{.Retry}}{{end}}.</p>
<form method="post" action="/stepup"><button data-action="stepup">4. Step up and retry</button></form></section>{{end}}
</body></html>`))
