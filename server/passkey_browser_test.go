package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/stepup-dev/stepup/authn/passkey"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// These tests drive a real Chromium through the hosted pages with the
// DevTools virtual authenticator (WebAuthn.addVirtualAuthenticator). They
// skip only when no Chromium binary is found and CI is not set; under
// CI=true a missing browser fails them.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("STEPUP_TEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium binary found (chromium, chromium-browser, google-chrome); CI must run the browser tests")
	}
	t.Skip("no Chromium binary found (chromium, chromium-browser, google-chrome): skipping the real-browser WebAuthn tests")
	return ""
}

// rpCallbackServer is a relying party's redirect URI that records what it got.
type rpCallbackServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []url.Values
}

func newRPCallbackServer(t *testing.T) *rpCallbackServer {
	cb := &rpCallbackServer{}
	cb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" { // the browser also asks for /favicon.ico
			http.NotFound(w, r)
			return
		}
		cb.mu.Lock()
		cb.got = append(cb.got, r.URL.Query())
		cb.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>rp</title><p id=rp>back at the relying party</p>")
	}))
	t.Cleanup(cb.srv.Close)
	return cb
}

func (cb *rpCallbackServer) url() string { return cb.srv.URL + "/cb" }

func (cb *rpCallbackServer) last(t *testing.T) rpResult {
	t.Helper()
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.got) == 0 {
		t.Fatal("the relying party got no redirect")
	}
	q := cb.got[len(cb.got)-1]
	return rpResult{code: q.Get("code"), state: q.Get("state"), iss: q.Get("iss"), err: q.Get("error"), desc: q.Get("error_description")}
}

// browserEnv is an issuer on localhost with a public client "web" whose
// redirect URI is cb, and a Chromium tab with a virtual authenticator.
type browserEnv struct {
	*env
	cb   *rpCallbackServer
	ctx  context.Context
	auth webauthn.AuthenticatorID
	// log holds the server's JSON log (audit events).
	log *syncBuffer
	// noCond is the script that hides conditional mediation from pages.
	noCond cdppage.ScriptIdentifier
}

func newBrowserEnv(t *testing.T, uv bool, mutate func(*config.Config)) *browserEnv {
	t.Helper()
	return newBrowserEnvMount(t, uv, mutate, nil)
}

// newBrowserEnvMount is newBrowserEnv with extra routes (envOptions.mount).
func newBrowserEnvMount(t *testing.T, uv bool, mutate func(*config.Config), mount func(issuer string) func(*http.ServeMux)) *browserEnv {
	t.Helper()
	path := chromiumPath(t)
	cb := newRPCallbackServer(t)
	logs := &syncBuffer{}
	e := newEnvWith(t, envOptions{localhost: true, mount: mount, log: slog.New(slog.NewJSONHandler(logs, nil)), mutate: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{
			ID: "web", Public: true, RedirectURIs: []string{cb.url()},
			GrantTypes: []string{"authorization_code", "refresh_token"},
		})
		if mutate != nil {
			mutate(c)
		}
	}})
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(900, 1000), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium %s: %v", path, err)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:            webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:        webauthn.Ctap2versionCtap21,
			Transport:           webauthn.AuthenticatorTransportInternal,
			HasResidentKey:      true,
			HasUserVerification: uv,
			IsUserVerified:      uv,
			// The zero value would be false, and every ceremony would wait
			// for a touch that never comes.
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	// The virtual authenticator answers a conditional (autofill) request at
	// once, as if the user had picked the passkey from the list, so a page
	// with conditional UI would sign in by itself while a test clicks its
	// button. Tests click the buttons; TestBrowserPasskeyConditionalUI
	// turns this off to test the autofill path on its own.
	noCond, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);`,
	})
	if err != nil {
		t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
	return &browserEnv{env: e, cb: cb, ctx: ctx, auth: res.AuthenticatorID, log: logs, noCond: noCond.Identifier}
}

// allowConditionalUI lets pages loaded from now on use conditional
// mediation (passkeys offered in the username field's autofill).
func (b *browserEnv) allowConditionalUI() {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, cdppage.RemoveScriptToEvaluateOnNewDocument, cdppage.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: b.noCond}); err != nil {
		b.t.Fatalf("Page.removeScriptToEvaluateOnNewDocument: %v", err)
	}
}

func (b *browserEnv) navigate(u string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u)); err != nil {
		b.t.Fatalf("navigate %s: %v", u, err)
	}
}

// eval runs js in the page.
func eval[T any](b *browserEnv, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls js (a boolean expression) until it holds.
func (b *browserEnv) waitFor(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js))
		if err == nil && v {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	href, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href`))
	body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	b.t.Fatalf("waiting for %s: not reached; at %s:\n%s", what, href, excerpt(body))
}

func (b *browserEnv) onPath(path string) {
	b.t.Helper()
	b.waitFor("page "+path, fmt.Sprintf(`document.readyState === "complete" && location.pathname.startsWith(%q)`, path))
}

// click clicks the element sel once it exists, the page has loaded and,
// inside a ceremony, static/passkey.js is ready.
func (b *browserEnv) click(sel string) {
	b.t.Helper()
	b.waitFor(sel, fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el || document.readyState !== "complete") return false;
		const box = el.closest("[data-ceremony]"); return !box || box.hasAttribute("data-passkey-ready"); })()`, sel))
	eval[bool](b, fmt.Sprintf(`(document.querySelector(%q).click(), true)`, sel))
}

// fill sets an input's value.
func (b *browserEnv) fill(sel, value string) {
	b.t.Helper()
	b.waitFor(sel, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	eval[bool](b, fmt.Sprintf(`(document.querySelector(%q).value = %q, true)`, sel, value))
}

// signIn fills the username/password form and submits it. The virtual
// authenticator answers the login page's conditional request (autofill)
// at once, where a person would have to pick the passkey: presence is
// switched off meanwhile, so this is a password sign-in.
func (b *browserEnv) signIn(user, pass string) {
	b.t.Helper()
	b.presence(false)
	b.fill(`input[autocomplete~="username"]`, user)
	b.fill(`input[autocomplete="current-password"]`, pass)
	b.submitAndWait(`input[autocomplete="current-password"]`)
	b.presence(true)
}

// submitAndWait submits the form of sel and waits for the next page.
func (b *browserEnv) submitAndWait(sel string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(window.__stepupOld = true, document.querySelector(%q).form.submit(), true)`, sel))
	b.waitFor("the next page", `!window.__stepupOld && document.readyState === "complete"`)
}

func (b *browserEnv) presence(on bool) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.SetAutomaticPresenceSimulation, webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: b.auth, Enabled: on}); err != nil {
		b.t.Fatalf("WebAuthn.setAutomaticPresenceSimulation: %v", err)
	}
}

// screenshot saves the page to docs/screenshots/name (when
// STEPUP_SCREENSHOTS is set, so ordinary runs leave the tree alone).
func (b *browserEnv) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("STEPUP_SCREENSHOTS")
	if dir == "" {
		return
	}
	// The whole page, beyond the viewport.
	width := eval[float64](b, `document.documentElement.clientWidth`)
	height := eval[float64](b, `Math.max(document.documentElement.scrollHeight, 400)`)
	beyond, surface := true, true
	shot, err := chromedp.Call(b.ctx, cdppage.CaptureScreenshot, cdppage.CaptureScreenshotParams{
		Format: cdppage.CaptureScreenshotFormatPng, CaptureBeyondViewport: &beyond, FromSurface: &surface,
		Clip: &cdppage.Viewport{Width: width, Height: height, Scale: 1},
	})
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	png := shot.Data
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browserEnv) clearCookies() {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		b.t.Fatalf("clearing cookies: %v", err)
	}
}

// credentials returns the virtual authenticator's credentials.
func (b *browserEnv) credentials() []*webauthn.Credential {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: b.auth})
	if err != nil {
		b.t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// enrollOnAccount signs user in on /account (answering a TOTP step-up
// when the page asks to confirm it's them) and adds a passkey named name.
func (b *browserEnv) enrollOnAccount(user, pass, totpSecret, name string) {
	b.t.Helper()
	b.navigate(b.issuer + "/account")
	b.onPath("/login/")
	b.screenshot("login.png")
	b.signIn(user, pass)
	b.onPath("/account")
	b.waitFor("account page", `!!document.querySelector('[data-ceremony="create"]')`)
	before := len(b.credentials())
	b.fill(`[data-passkey-name-input]`, name)
	b.click(`[data-ceremony="create"] [data-action="passkey"]`)
	if totpSecret != "" {
		// A password alone is not fresh enough to change the factors of
		// a user with a second factor: the page asks for it first.
		b.onPath("/login/")
		b.waitFor("the TOTP form", `!!document.querySelector('form[data-factor="totp"]')`)
		b.fill(`input[autocomplete="one-time-code"]`, b.totpCode(totpSecret))
		b.submitAndWait(`form[data-factor="totp"] input[autocomplete="one-time-code"]`)
		b.onPath("/account")
		b.waitFor("account page", `!!document.querySelector('[data-ceremony="create"]')`)
		b.fill(`[data-passkey-name-input]`, name)
		b.click(`[data-ceremony="create"] [data-action="passkey"]`)
	}
	b.waitFor("the new passkey on /account", fmt.Sprintf(`location.search.includes("done=passkey") && [...document.querySelectorAll("[data-passkey-name]")].some(e => e.textContent === %q)`, name))
	if got := len(b.credentials()); got != before+1 {
		b.t.Fatalf("the authenticator holds %d credentials, want %d", got, before+1)
	}
}

// authorize runs an authorization request of the "web" client in the
// browser up to the login page, or straight to the relying party.
func (b *browserEnv) authorize(params map[string]string) (*rp, authReq) {
	b.t.Helper()
	r := b.rp("web", "")
	r.cfg.RedirectURL = b.cb.url()
	a := r.authURL(params)
	b.navigate(a.url)
	return r, a
}

func (b *browserEnv) atRP() {
	b.t.Helper()
	b.waitFor("the relying party", fmt.Sprintf(`location.href.startsWith(%q)`, b.cb.url()))
}

func hasAll(list []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(list, w) {
			return false
		}
	}
	return true
}

// TestBrowserPasskeyPasswordless: enroll a passkey on /account, sign out,
// sign in with the passkey alone, and get an ID token at phr with amr hwk
// and mfa (PRODUCT.md §2: a passkey with user verification is
// multi-factor and phishing resistant on its own).
func TestBrowserPasskeyPasswordless(t *testing.T) {
	b := newBrowserEnv(t, true, nil)
	b.enrollOnAccount("bob", bobPass, "", "Laptop")
	b.screenshot("account.png")

	// Sign out from the account page ("this browser").
	b.click(`[data-current] [data-action="revoke"]`)
	b.waitFor("signed out", `document.body.innerText.includes("You are signed out")`)

	r, a := b.authorize(map[string]string{"acr_values": "phr"})
	b.onPath("/login/")
	b.waitFor("conditional UI hook", `document.querySelector('input[autocomplete~="username"]').autocomplete.includes("webauthn")`)
	b.click(`[data-action="passkey"]`)
	b.atRP()
	tk := r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != "phr" || !hasAll(tk.claims.AMR, "hwk", "user", "mfa") || slices.Contains(tk.claims.AMR, "pwd") {
		t.Fatalf("passwordless sign-in: acr %q amr %v, want phr with hwk, user, mfa and no pwd", tk.claims.ACR, tk.claims.AMR)
	}
	if tk.claims.AuthTime == 0 {
		t.Error("no auth_time")
	}

	// A signature counter that did not grow means a possible clone: the
	// assertion is refused (webauthn.sign_count: refuse, the default) and
	// reported in the audit log.
	ctx := t.Context()
	st := b.store()
	acct, err := st.AccountByUsername(ctx, "bob")
	if err != nil || len(acct.Passkeys) != 1 {
		t.Fatalf("bob's passkeys: %v, %v", acct, err)
	}
	c, err := passkey.Decode(acct.Passkeys[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Laptop" || !c.UV || c.LastUsedAt.IsZero() || c.WebAuthn.Authenticator.SignCount == 0 {
		t.Errorf("stored passkey: name %q uv %v last used %v sign count %d", c.Name, c.UV, c.LastUsedAt, c.WebAuthn.Authenticator.SignCount)
	}
	c.WebAuthn.Authenticator.SignCount = 1 << 30
	rec, _ := c.Encode()
	if err := st.UpdatePasskey(ctx, acct.Subject, session.StoredPasskey{ID: c.ID(), Data: rec}); err != nil {
		t.Fatal(err)
	}
	b.clearCookies()
	b.authorize(map[string]string{"acr_values": "phr"})
	b.onPath("/login/")
	b.click(`[data-action="passkey"]`)
	b.waitFor("the refusal", `!!document.querySelector('[data-passkey-error]') && document.querySelector('[data-passkey-error]').textContent.includes("copied")`)
	if !strings.Contains(b.log.String(), `"event":"webauthn.clone_suspected"`) {
		t.Error("no webauthn.clone_suspected audit event")
	}
}

// TestBrowserPasskeyConditionalUI: the login page asks for a passkey
// through the username field's autofill (conditional mediation) as soon as
// it loads; choosing the passkey there signs in without any click on the
// button, at phr, and exactly once.
func TestBrowserPasskeyConditionalUI(t *testing.T) {
	b := newBrowserEnv(t, true, nil)
	b.enrollOnAccount("bob", bobPass, "", "Laptop")
	b.clearCookies()
	b.allowConditionalUI()
	before := strings.Count(b.log.String(), `"event":"login.succeeded"`)
	r, a := b.authorize(map[string]string{"acr_values": "phr"})
	b.atRP()
	tk := r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != "phr" || !hasAll(tk.claims.AMR, "hwk", "user", "mfa") || slices.Contains(tk.claims.AMR, "pwd") {
		t.Fatalf("conditional UI sign-in: acr %q amr %v, want phr with hwk, user, mfa and no pwd", tk.claims.ACR, tk.claims.AMR)
	}
	if n := strings.Count(b.log.String(), `"event":"login.succeeded"`) - before; n != 1 {
		t.Errorf("%d login.succeeded events for one autofill sign-in, want exactly 1", n)
	}
}

// TestBrowserPasskeyStepUp: from a password session, a request for phr
// opens the passkey form; one assertion with user verification reaches
// phr. Registering needed a fresh second factor first (alice has TOTP).
func TestBrowserPasskeyStepUp(t *testing.T) {
	b := newBrowserEnv(t, true, nil)
	b.enrollOnAccount("alice", alicePass, aliceTOTP, "Phone")

	b.clearCookies()
	r, a := b.authorize(nil)
	b.onPath("/login/")
	b.signIn("alice", alicePass)
	b.atRP()
	tk := r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != oneFA {
		t.Fatalf("password sign-in: acr %q, want %s", tk.claims.ACR, oneFA)
	}

	r, a = b.authorize(map[string]string{"acr_values": "phr"})
	b.onPath("/login/")
	b.waitFor("the passkey step-up form", `!!document.querySelector('form[data-factor="webauthn"] [data-action="passkey"]')`)
	b.click(`form[data-factor="webauthn"] [data-action="passkey"]`)
	b.atRP()
	tk = r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != "phr" || !hasAll(tk.claims.AMR, "pwd", "hwk", "user", "mfa") {
		t.Fatalf("step-up to phr: acr %q amr %v, want phr with pwd, hwk, user, mfa", tk.claims.ACR, tk.claims.AMR)
	}

	// The factor choice: a multi-factor step-up opens on the factor used
	// last (the passkey) and offers the authenticator app beside it.
	b.clearCookies()
	r, a = b.authorize(map[string]string{"acr_values": mfaACR})
	b.onPath("/login/")
	b.signIn("alice", alicePass)
	b.onPath("/login/")
	b.waitFor("the factor choice", `!!document.querySelector('form[data-factor="webauthn"]') && !!document.querySelector('a[data-factor="totp"]')`)
	b.screenshot("factor-choice.png")
	b.click(`form[data-factor="webauthn"] [data-action="passkey"]`)
	b.atRP()
	tk = r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != mfaACR || !hasAll(tk.claims.AMR, "pwd", "hwk", "mfa") {
		t.Fatalf("multi-factor step-up: acr %q amr %v", tk.claims.ACR, tk.claims.AMR)
	}
}

// TestBrowserPasskeyWithoutUV: a security key that cannot verify the
// user is a second factor (password + key = multi-factor) but never
// phr; an essential phr request fails with
// unmet_authentication_requirements.
func TestBrowserPasskeyWithoutUV(t *testing.T) {
	b := newBrowserEnv(t, false, nil)
	b.enrollOnAccount("bob", bobPass, "", "Old key")

	b.clearCookies()
	r, a := b.authorize(map[string]string{"acr_values": "phr " + mfaACR})
	b.onPath("/login/")
	b.signIn("bob", bobPass)
	b.onPath("/login/")
	b.waitFor("the passkey step-up form", `!!document.querySelector('form[data-factor="webauthn"] [data-action="passkey"]')`)
	b.click(`form[data-factor="webauthn"] [data-action="passkey"]`)
	b.atRP()
	tk := r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != mfaACR || !hasAll(tk.claims.AMR, "pwd", "hwk", "mfa") {
		t.Fatalf("password + key without UV: acr %q amr %v, want %s with pwd, hwk, mfa", tk.claims.ACR, tk.claims.AMR, mfaACR)
	}

	// Essential phr: the key cannot give it, so the only way is a new
	// passkey; without a page (prompt=none) that is unmet at once, and a
	// user who skips creating one gets unmet too.
	essential := `{"id_token":{"acr":{"essential":true,"values":["phr"]}}}`
	_, a = b.authorize(map[string]string{"claims": essential, "prompt": "none"})
	b.atRP()
	if res := b.cb.last(t); res.err != "unmet_authentication_requirements" || res.code != "" || res.state != a.state {
		t.Fatalf("essential phr, prompt=none, with a key without UV: %+v, want unmet_authentication_requirements", res)
	}
	_, a = b.authorize(map[string]string{"claims": essential})
	b.waitFor("the offer to create a passkey", `!!document.querySelector('[data-ceremony="create"]')`)
	b.submitAndWait(`[data-action="cancel"]`)
	b.atRP()
	if res := b.cb.last(t); res.err != "unmet_authentication_requirements" || res.code != "" || res.state != a.state {
		t.Fatalf("essential phr, passkey creation skipped: %+v, want unmet_authentication_requirements", res)
	}
}

// TestBrowserPasskeyEnrollInFlow: a user without a passkey whom a relying
// party asks for phr creates one in the flow; registering proves nothing
// by itself, so the flow then asks for an assertion, which reaches phr.
// Later the authenticator answers without user verification (UV=0): that
// assertion is recorded as possession only, the page says so, and the
// request completes at the multi-factor level, never phr.
func TestBrowserPasskeyEnrollInFlow(t *testing.T) {
	b := newBrowserEnv(t, true, nil)
	r, a := b.authorize(map[string]string{"acr_values": "phr"})
	b.onPath("/login/")
	b.signIn("bob", bobPass)
	b.waitFor("the passkey enrollment", `!!document.querySelector('[data-ceremony="create"] [data-action="passkey"]') && !!document.querySelector('[data-action="cancel"]')`)
	b.fill(`[data-passkey-name-input]`, "Work laptop")
	b.click(`[data-ceremony="create"] [data-action="passkey"]`)
	b.waitFor("the assertion after registering", `!!document.querySelector('form[data-factor="webauthn"] [data-action="passkey"]')`)
	if !strings.Contains(b.log.String(), `"event":"enroll.succeeded","factor":"webauthn"`) {
		t.Error("no enroll.succeeded audit event for the passkey")
	}
	b.click(`form[data-factor="webauthn"] [data-action="passkey"]`)
	b.atRP()
	tk := r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != "phr" || !hasAll(tk.claims.AMR, "pwd", "hwk", "user", "mfa") {
		t.Fatalf("phr through an in-flow passkey: acr %q amr %v", tk.claims.ACR, tk.claims.AMR)
	}

	badUV := true
	if _, err := chromedp.Call(b.ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: b.auth, IsBadUV: &badUV}); err != nil {
		t.Fatalf("WebAuthn.setResponseOverrideBits: %v", err)
	}
	r, a = b.authorize(map[string]string{"acr_values": "phr", "prompt": "login"})
	b.onPath("/login/")
	b.signIn("bob", bobPass)
	b.click(`form[data-factor="webauthn"] [data-action="passkey"]`)
	b.waitFor("the UV refusal", `!!document.querySelector('[data-passkey-error]') && document.querySelector('[data-passkey-error]').textContent.includes("did not verify you")`)
	b.submitAndWait(`[data-action="cancel"]`)
	b.atRP()
	tk = r.mustExchange(a, b.cb.last(t))
	if tk.claims.ACR != mfaACR || !hasAll(tk.claims.AMR, "pwd", "hwk", "mfa") {
		t.Fatalf("after an assertion without UV: acr %q amr %v, want %s (never phr)", tk.claims.ACR, tk.claims.AMR, mfaACR)
	}
}

// chromeVirtualAAGUID is the AAGUID of Chromium's virtual authenticator,
// which attests with a packed statement and a certificate.
const chromeVirtualAAGUID = "01020304-0506-0708-0102-030405060708"

// TestBrowserPasskeyHardware: phrh only when the operator trusts the
// authenticator's attested model; otherwise the same passkey stops at phr.
func TestBrowserPasskeyHardware(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			b := newBrowserEnv(t, true, func(c *config.Config) {
				if trusted {
					c.WebAuthn.HardwareAAGUIDs = []string{chromeVirtualAAGUID}
				}
			})
			b.enrollOnAccount("bob", bobPass, "", "Key")
			acct, err := b.store().AccountByUsername(t.Context(), "bob")
			if err != nil || len(acct.Passkeys) != 1 {
				t.Fatalf("bob's passkeys: %v", err)
			}
			c, err := passkey.Decode(acct.Passkeys[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("registered: format %q, AAGUID %s, hardware %v", c.WebAuthn.AttestationFormat, c.AAGUID(), c.Hardware)
			if c.Hardware != trusted {
				t.Fatalf("hardware = %v, want %v", c.Hardware, trusted)
			}
			b.clearCookies()
			r, a := b.authorize(map[string]string{"acr_values": "phrh phr"})
			b.onPath("/login/")
			b.click(`[data-action="passkey"]`)
			b.atRP()
			tk := r.mustExchange(a, b.cb.last(t))
			want := "phr"
			if trusted {
				want = "phrh"
			}
			if tk.claims.ACR != want || !hasAll(tk.claims.AMR, "hwk", "user", "mfa") {
				t.Fatalf("acr %q amr %v, want %s", tk.claims.ACR, tk.claims.AMR, want)
			}
		})
	}
}
