package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
	steprp "github.com/stepup-dev/stepup/rp"
	"github.com/stepup-dev/stepup/rs"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// bankAPI is a resource server protected by package rs: /balance needs a
// token at 1fa, /withdraw the multi-factor level within 300 s.
func bankAPI(t *testing.T, v *rs.Validator) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	show := func(w http.ResponseWriter, r *http.Request) {
		tk, ok := rs.FromContext(r.Context())
		if !ok {
			t.Error("the middleware let a request through without a token in its context")
			http.Error(w, "no token", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": tk.Subject, "acr": tk.ACR, "amr": tk.AMR, "auth_time": tk.AuthTime.Unix()})
	}
	mux.Handle("GET /balance", v.Require(rs.Requirement{ACR: oneFA})(http.HandlerFunc(show)))
	mux.Handle("POST /withdraw", v.Require(rs.Requirement{ACR: mfaACR, MaxAge: 300 * time.Second})(http.HandlerFunc(show)))
	// The plain-function form, as another router would use it.
	mux.HandleFunc("GET /fresh", func(w http.ResponseWriter, r *http.Request) {
		if _, e := v.Check(r, rs.Requirement{MaxAge: 60 * time.Second}); e != nil {
			e.Write(w)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("GET /admin", v.Require(rs.Requirement{Scopes: []string{"stepup:grants"}})(http.HandlerFunc(show)))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

type apiAnswer struct {
	status int
	auth   string
	body   map[string]any
}

func callAPI(t *testing.T, method, u, token string) apiAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, auth: resp.Header.Get("WWW-Authenticate")}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func (a apiAnswer) want(t *testing.T, what string, status int, header string) {
	t.Helper()
	if a.status != status || a.auth != header {
		t.Fatalf("%s: status %d WWW-Authenticate %q (body %v)\nwant %d %q", what, a.status, a.auth, a.body, status, header)
	}
}

const (
	challengeACR = `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="` + mfaACR + `", max_age="300"`
	challengeOld = `Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="` + mfaACR + `", max_age="300"`
)

// TestResourceServerBranches drives rs with tokens from a running stepupd:
// every branch and its exact WWW-Authenticate header.
func TestResourceServerBranches(t *testing.T) {
	e := newEnv(t, nil)
	v, err := rs.New(rs.Config{Issuer: e.issuer, Audience: "spa", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api := bankAPI(t, v)
	b, r := e.browser(), e.rp("spa", "")
	oneFactor := signIn(t, e, b, r, nil, "alice", alicePass).tok.AccessToken

	callAPI(t, "GET", api.URL+"/balance", "").want(t, "no token", 401, "Bearer")
	ok := callAPI(t, "GET", api.URL+"/balance", oneFactor)
	ok.want(t, "valid 1fa token", 200, "")
	if ok.body["acr"] != oneFA || ok.body["sub"] == "" {
		t.Fatalf("the handler saw %v", ok.body)
	}
	callAPI(t, "POST", api.URL+"/withdraw", oneFactor).want(t, "insufficient acr", 401, challengeACR)

	// Wrong audience: a token the provider issued to another client.
	bankRP := e.rp("bank", bankSecret)
	bankToken := signIn(t, e, e.browser(), bankRP, nil, "bob", bobPass).tok.AccessToken
	callAPI(t, "GET", api.URL+"/balance", bankToken).want(t, "wrong audience", 401,
		`Bearer error="invalid_token", error_description="the access token is not meant for this resource"`)

	// An ID token is not an access token (typ JWT, not at+jwt).
	idTok := signIn(t, e, e.browser(), r, nil, "bob", bobPass).idToken
	callAPI(t, "GET", api.URL+"/balance", idTok).want(t, "ID token", 401,
		`Bearer error="invalid_token", error_description="the token is not a JWT access token (typ at+jwt)"`)

	// A forged signature.
	parts := strings.Split(oneFactor, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	callAPI(t, "GET", api.URL+"/balance", forged).want(t, "forged signature", 401,
		`Bearer error="invalid_token", error_description="the access token's signature is not valid"`)

	// Step up with TOTP: the multi-factor level within max_age passes.
	a := r.authURL(map[string]string{"acr_values": mfaACR, "max_age": "300"})
	p := b.code(b.get(a.url), "totp", e.totpCode(aliceTOTP))
	mfa := r.mustExchange(a, p.result(t)).tok.AccessToken
	ok = callAPI(t, "POST", api.URL+"/withdraw", mfa)
	ok.want(t, "valid mfa token", 200, "")
	if ok.body["acr"] != mfaACR || !sameSet(toStrings(ok.body["amr"]), []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("the handler saw %v", ok.body)
	}
	// The plain function: max_age only, no acr in the challenge.
	callAPI(t, "GET", api.URL+"/fresh", mfa).want(t, "fresh", 200, "")

	// Too old: the authentication is more than 300 s ago.
	e.clock.Advance(301 * time.Second)
	callAPI(t, "POST", api.URL+"/withdraw", mfa).want(t, "too old", 401, challengeOld)
	callAPI(t, "GET", api.URL+"/fresh", mfa).want(t, "too old (Check)", 401,
		`Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="60"`)
	callAPI(t, "GET", api.URL+"/balance", mfa).want(t, "a higher level satisfies a lower one", 200, "")

	// Scope: a user token has no stepup:grants.
	callAPI(t, "GET", api.URL+"/admin", mfa).want(t, "scope", 403,
		`Bearer error="insufficient_scope", error_description="the access token lacks a required scope", scope="stepup:grants"`)

	// Expired: access tokens live 10 minutes.
	e.clock.Advance(10 * time.Minute)
	callAPI(t, "GET", api.URL+"/balance", mfa).want(t, "expired", 401,
		`Bearer error="invalid_token", error_description="the access token has expired"`)
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// TestResourceServerKeyRotation restarts the provider with a new signing
// key: rs picks the new key up without a restart, and tokens of the old
// key stop validating once it is gone from the key set.
func TestResourceServerKeyRotation(t *testing.T) {
	var handler atomic.Pointer[http.Handler]
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	issuer := "http://" + ts.Listener.Addr().String()
	dir := t.TempDir()
	backend := sessiontest.NewBackend(t)
	start := func(name string) {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		file := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse([]byte(strings.ReplaceAll(baseConfig, "ISSUER", issuer)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		cfg.Keys.Algorithm, cfg.Keys.File = "ES256", file
		srv, err := server.New(context.Background(), cfg, backend.Store(t), server.Options{Log: discardLog()})
		if err != nil {
			t.Fatal(err)
		}
		h := srv.Handler()
		handler.Store(&h)
	}
	start("one")
	ts.Start()
	t.Cleanup(ts.Close)
	ccToken := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bank", bankSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
			t.Fatalf("client_credentials: status %d, %v", resp.StatusCode, err)
		}
		return body.AccessToken
	}
	c := &clock{now: time.Now()}
	// The provider runs on the real clock: a leeway covers the second
	// that may pass between starting c and issuing a token (iat).
	v, err := rs.New(rs.Config{Issuer: issuer, Audience: "bank", Now: c.Now, Leeway: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	api := bankAPI(t, v)
	old := ccToken()
	callAPI(t, "GET", api.URL+"/admin", old).want(t, "first key", 403,
		`Bearer error="insufficient_scope", error_description="the access token lacks a required scope", scope="stepup:grants"`)

	start("two")
	fresh := ccToken()
	// A refetch right after the last one is not allowed (RefreshEvery).
	callAPI(t, "GET", api.URL+"/admin", fresh).want(t, "new key before the refetch interval", 401,
		`Bearer error="invalid_token", error_description="the access token is not signed by a key of the issuer"`)
	c.Advance(11 * time.Second)
	callAPI(t, "GET", api.URL+"/admin", fresh).want(t, "rotated key", 403,
		`Bearer error="insufficient_scope", error_description="the access token lacks a required scope", scope="stepup:grants"`)
	c.Advance(11 * time.Second)
	callAPI(t, "GET", api.URL+"/admin", old).want(t, "retired key", 401,
		`Bearer error="invalid_token", error_description="the access token is not signed by a key of the issuer"`)
}

// TestStepUpLoopWithRPAndRS is the whole RFC 9470 loop: the API answers
// 401 with a challenge, rp turns it into an authorization request with
// acr_values and max_age, the user enters a TOTP code, and the retry with
// the new token succeeds.
func TestStepUpLoopWithRPAndRS(t *testing.T) {
	e := newEnv(t, nil)
	v, err := rs.New(rs.Config{Issuer: e.issuer, Audience: "spa", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api := bankAPI(t, v)
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: "spa", Endpoint: prov.Endpoint(), RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID}}
	verifier := prov.Verifier(&oidc.Config{ClientID: "spa", Now: e.clock.Now})
	b := e.browser()

	// Sign in at 1fa through rp.
	a := steprp.NewAuthRequest(cfg, nil)
	p := b.login(b.get(a.URL), "alice", alicePass)
	tok, err := a.Exchange(ctx, cfg, e.issuer, callback(t, p))
	if err != nil {
		t.Fatal(err)
	}

	withdraw := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, api.URL+"/withdraw", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	resp := withdraw(tok.AccessToken)
	ch, ok := steprp.FromResponse(resp)
	if resp.StatusCode != http.StatusUnauthorized || !ok || !ch.StepUp() {
		t.Fatalf("withdraw with a 1fa token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	e.clock.Advance(30 * time.Second)
	a = steprp.NewAuthRequest(cfg, ch)
	q := mustParseURL(t, a.URL).Query()
	if q.Get("acr_values") != mfaACR || q.Get("max_age") != "300" || q.Get("code_challenge_method") != "S256" || q.Get("state") != a.State || q.Get("nonce") != a.Nonce {
		t.Fatalf("step-up request %s", a.URL)
	}
	p = b.get(a.URL)
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 0 {
		t.Fatalf("the step-up asked for the fresh password again")
	}
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	tok, err = a.Exchange(ctx, cfg, e.issuer, callback(t, p))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	_ = idt.Claims(&c)
	if c.Nonce != a.Nonce || c.ACR != mfaACR || !sameSet(c.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("ID token after step-up: %+v", c)
	}
	if resp := withdraw(tok.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry after step-up: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// A callback with another state is refused before any exchange.
	if _, err := a.Exchange(ctx, cfg, e.issuer, url.Values{"state": {"other"}, "code": {"x"}, "iss": {e.issuer}}); err == nil {
		t.Fatal("a callback with a foreign state was accepted")
	}
}

// callback is the full query the RP received on its redirect URI.
func callback(t *testing.T, p *page) url.Values {
	t.Helper()
	p.result(t)
	return p.loc.Query()
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
