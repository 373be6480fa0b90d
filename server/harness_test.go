package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

const (
	mfaACR     = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	oneFA      = "urn:stepup:loa:1fa"
	rpCallback = "http://127.0.0.1:9/cb" // never contacted: the browser stops at the RP
	aliceTOTP  = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	alicePass  = "correct horse battery staple"
	bobPass    = "bob's long password"
	bankSecret = "bank-secret-0123456789"
)

// clock is the fake time every instance of a test shares. Like a real
// clock it moves on between two readings (by 1 µs), so nothing happens at
// the very instant a request arrived.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one issuer: a config, a store backend, a clock, and any number
// of stepupd instances serving it.
type env struct {
	t       testing.TB
	cfg     *config.Config
	backend *sessiontest.Backend // nil when the test brings its own store
	open    func() session.Store // a store client for the issuer's data
	clock   *clock
	ln      *httptest.Server // the first instance; its address is the issuer
	issuer  string
	log     *slog.Logger
	metrics *obs.Metrics // of the first instance
	// mount is server.Options.Mount of every instance.
	mount func(*http.ServeMux)
	// accounts opens the account database (nil when the test brings its
	// own store).
	accounts func() account.Store
}

// envOptions change what newEnvWith builds.
type envOptions struct {
	mutate func(*config.Config)
	log    *slog.Logger
	// open, when set, replaces the sessiontest backend.
	open    func() session.Store
	metrics *obs.Metrics
	// localhost names the issuer http://localhost:<port> instead of the
	// IP: WebAuthn refuses an IP address as RP ID.
	localhost bool
	// mount adds routes to every instance (server.Options.Mount), given
	// the issuer.
	mount func(issuer string) func(*http.ServeMux)
}

// baseConfig: alice has a password and TOTP, bob only a password.
const baseConfig = `
issuer: ISSUER
clients:
  - id: spa
    public: true
    redirect_uris: [` + rpCallback + `]
    post_logout_redirect_uris: ["http://127.0.0.1:9/bye"]
  - id: bank
    secret: ` + bankSecret + `
    redirect_uris: [` + rpCallback + `]
    grant_types: [authorization_code, refresh_token, client_credentials]
    scopes: ["stepup:grants"]
  - id: floor
    secret: ` + bankSecret + `
    redirect_uris: [` + rpCallback + `]
    min_acr: ` + mfaACR + `
  - id: forced
    public: true
    redirect_uris: [` + rpCallback + `]
    unenrolled: force_enroll
users:
  - username: alice
    password: ` + alicePass + `
    email: alice@example.com
    name: Alice Example
    totp_secret: ` + aliceTOTP + `
  - username: bob
    password: "` + bobPass + `"
    email: bob@example.com
`

// newEnv starts one instance. mutate may change the config before it is
// validated.
func newEnv(t testing.TB, mutate func(*config.Config)) *env {
	t.Helper()
	return newEnvWith(t, envOptions{mutate: mutate})
}

func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	mutate := o.mutate
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	if o.localhost {
		_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
		issuer = "http://localhost:" + port
	}
	cfg, err := config.Parse([]byte(strings.ReplaceAll(baseConfig, "ISSUER", issuer)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if mutate != nil {
		mutate(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config after mutate: %v", err)
		}
	}
	e := &env{t: t, cfg: cfg, open: o.open, clock: &clock{now: time.Now().Truncate(time.Second)}, issuer: issuer, log: o.log, metrics: o.metrics}
	if o.mount != nil {
		e.mount = o.mount(issuer)
	}
	if e.open == nil {
		// As stepupd runs: accounts in SQL (SQLite in the test's directory,
		// or PostgreSQL in CI), the rest in Redis. Each store is another
		// instance's connection to both.
		e.backend = sessiontest.NewBackend(t)
		dbURL, keys := accounttest.NewURL(t), accounttest.Keys(t)
		e.open = func() session.Store {
			return account.Overlay(e.backend.Store(t).(account.Short), accounttest.Open(t, dbURL, keys))
		}
		e.accounts = func() account.Store { return accounttest.Open(t, dbURL, keys) }
	}
	if e.log == nil {
		e.log = discardLog()
	}
	if _, err := server.Seed(context.Background(), e.open(), cfg.Users); err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = e.instanceWith(e.metrics).Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	e.ln = ts
	return e
}

// instance builds another stepupd on the same store and clock.
func (e *env) instance() *server.Server {
	e.t.Helper()
	return e.instanceWith(nil)
}

func (e *env) instanceWith(m *obs.Metrics) *server.Server {
	e.t.Helper()
	srv, err := server.New(context.Background(), e.cfg, e.open(), server.Options{Now: e.clock.Now, Log: e.log, Metrics: m, Mount: e.mount})
	if err != nil {
		e.t.Fatal(err)
	}
	return srv
}

// browser is a user agent with a cookie jar that stops at the RP.
type browser struct {
	t testing.TB
	c *http.Client
	e *env
	// header is added to every request (X-Forwarded-For behind a proxy).
	header http.Header
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), rpCallback) || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is a fetched response.
type page struct {
	status int
	url    *url.URL
	loc    *url.URL // set when the browser stopped at the RP
	body   string
	doc    *html.Node
	header http.Header // the response's
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		p.loc, _ = url.Parse(loc)
	}
	p.doc, _ = html.Parse(strings.NewReader(p.body))
	return p
}

func (b *browser) get(u string) *page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// rpResult is what the RP got on its redirect URI.
type rpResult struct {
	code, state, iss, err, desc string
}

func (p *page) result(t testing.TB) rpResult {
	t.Helper()
	if p.loc == nil || !strings.HasPrefix(p.loc.String(), rpCallback) {
		t.Fatalf("expected a redirect to the RP, got status %d at %s:\n%s", p.status, p.url, excerpt(p.body))
	}
	q := p.loc.Query()
	return rpResult{code: q.Get("code"), state: q.Get("state"), iss: q.Get("iss"), err: q.Get("error"), desc: q.Get("error_description")}
}

func excerpt(s string) string {
	if len(s) > 1500 {
		return s[:1500] + "…"
	}
	return s
}

// attr returns the attribute value of n.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// form finds the form containing an element that matches sel.
func (p *page) form(t testing.TB, sel func(*html.Node) bool) *html.Node {
	t.Helper()
	for _, f := range find(p.doc, func(n *html.Node) bool { return n.Data == "form" }) {
		if sel(f) || len(find(f, sel)) > 0 {
			return f
		}
	}
	t.Fatalf("no such form on the page (status %d at %s):\n%s", p.status, p.url, excerpt(p.body))
	return nil
}

func hasAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, key); return ok && v == val }
}

// submit posts a form with its hidden inputs plus values.
func (b *browser) submit(p *page, form *html.Node, values map[string]string) *page {
	b.t.Helper()
	return b.do(formRequest(p, form, values))
}

// formRequest is the POST a browser sends for form on p: its hidden
// inputs plus values, from the page's origin.
func formRequest(p *page, form *html.Node, values map[string]string) *http.Request {
	action, _ := attr(form, "action")
	u := p.url.ResolveReference(&url.URL{Path: action})
	if pu, err := url.Parse(action); err == nil {
		u = p.url.ResolveReference(pu)
	}
	v := url.Values{}
	for _, in := range find(form, func(n *html.Node) bool { return n.Data == "input" }) {
		if t, _ := attr(in, "type"); t == "hidden" {
			name, _ := attr(in, "name")
			val, _ := attr(in, "value")
			v.Set(name, val)
		}
	}
	for k, val := range values {
		v.Set(k, val)
	}
	req, _ := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", p.url.Scheme+"://"+p.url.Host)
	return req
}

// login fills the username/password form (found by its autocomplete hooks).
func (b *browser) login(p *page, user, pass string) *page {
	b.t.Helper()
	f := p.form(b.t, hasAttr("autocomplete", "current-password"))
	// "username", or "username webauthn" when passkeys offer conditional UI.
	isUsername := func(n *html.Node) bool {
		v, _ := attr(n, "autocomplete")
		return slices.Contains(strings.Fields(v), "username")
	}
	if len(find(f, isUsername)) != 1 {
		b.t.Fatalf("login form has no autocomplete=username input")
	}
	return b.submit(p, f, map[string]string{"username": user, "password": pass})
}

// code fills the one-time-code form of factor.
func (b *browser) code(p *page, factor, code string) *page {
	b.t.Helper()
	f := p.form(b.t, hasAttr("data-factor", factor))
	if len(find(f, hasAttr("autocomplete", "one-time-code"))) != 1 {
		b.t.Fatalf("code form has no autocomplete=one-time-code input")
	}
	return b.submit(p, f, map[string]string{"code": code})
}

func (b *browser) cancel(p *page) *page {
	b.t.Helper()
	return b.submit(p, p.form(b.t, hasAttr("data-action", "cancel")), nil)
}

func (e *env) totpCode(secret string) string {
	c, err := totp.Code(secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// rp is a relying party: oauth2 + go-oidc verifying signatures against
// the issuer's JWKS.
type rp struct {
	e        *env
	cfg      *oauth2.Config
	verifier *oidc.IDTokenVerifier
	ctx      context.Context
}

func (e *env) rp(clientID, secret string) *rp {
	e.t.Helper()
	ctx := oidc.ClientContext(context.Background(), e.ln.Client())
	prov, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	return &rp{
		e:        e,
		ctx:      ctx,
		cfg:      &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: prov.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID, "profile"}},
		verifier: prov.Verifier(&oidc.Config{ClientID: clientID, Now: e.clock.Now}),
	}
}

// authReq is one authorization request with its PKCE verifier and nonce.
type authReq struct {
	url, state, nonce, verifier string
}

func (r *rp) authURL(params map[string]string) authReq {
	a := authReq{state: randomString(), nonce: randomString(), verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}
	for k, v := range params {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	a.url = r.cfg.AuthCodeURL(a.state, opts...)
	return a
}

// claims is what the tests check in an ID token.
type claims struct {
	Sub      string   `json:"sub"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce"`
	SID      string   `json:"sid"`
}

type tokens struct {
	tok     *oauth2.Token
	idToken string
	claims  claims
	// client and secret refresh the tokens in the grantend tests; ""
	// is the public client spa.
	client, secret string
}

// exchange redeems the code and verifies the ID token's signature, issuer,
// audience, expiry and nonce.
func (r *rp) exchange(a authReq, res rpResult) (*tokens, error) {
	r.e.t.Helper()
	if res.err != "" {
		r.e.t.Fatalf("RP got error %s: %s", res.err, res.desc)
	}
	if res.state != a.state || res.iss != r.e.issuer {
		r.e.t.Fatalf("RP got state %q iss %q, want %q %q", res.state, res.iss, a.state, r.e.issuer)
	}
	tok, err := r.cfg.Exchange(r.ctx, res.code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		return nil, err
	}
	return r.verify(tok, a.nonce)
}

func (r *rp) verify(tok *oauth2.Token, nonce string) (*tokens, error) {
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		return nil, err
	}
	out := &tokens{tok: tok, idToken: raw}
	if err := idt.Claims(&out.claims); err != nil {
		return nil, err
	}
	if nonce != "" && out.claims.Nonce != nonce {
		r.e.t.Fatalf("nonce %q, want %q", out.claims.Nonce, nonce)
	}
	return out, nil
}

func (r *rp) mustExchange(a authReq, res rpResult) *tokens {
	r.e.t.Helper()
	tk, err := r.exchange(a, res)
	if err != nil {
		r.e.t.Fatalf("exchange: %v", err)
	}
	return tk
}

func randomString() string {
	sum := sha256.Sum256([]byte(time.Now().String() + oauth2.GenerateVerifier()))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// postForm calls a back-channel endpoint.
func (e *env) postForm(path string, v url.Values, user, pass string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// store returns a store client on the env's backend.
func (e *env) store() session.Store { return e.open() }
