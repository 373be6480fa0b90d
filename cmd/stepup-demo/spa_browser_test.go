package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// spaKit is where clients/js builds the end-to-end app (npm run build).
const spaKit = "../../clients/js/e2e"

// TestSPAKitBrowser runs the TypeScript SPA kit (clients/js) in Chromium:
// a single-page app on its own origin, with oidc-client-ts as it comes
// (filterProtocolClaims on), signs in at stepupd, reads the bank's
// balance, and withdraws: the bank's API answers the RFC 9470 challenge,
// the kit sends the browser to stepup with its acr_values and max_age, a
// cancelled step-up comes back visibly at 1fa without a retry, and a TOTP
// step-up comes back at the multi-factor level and the kit's retried
// withdrawal succeeds. It skips, saying so, without Chromium or the built
// kit, except under CI=true, where both must be there.
func TestSPAKitBrowser(t *testing.T) {
	chromium := findChromium(t)
	bundle, err := os.ReadFile(filepath.Join(spaKit, "dist", "app.js"))
	if err != nil {
		needOrSkip(t, "the SPA kit's bundle is not built (cd clients/js && npm ci && npm run build): "+err.Error())
	}
	page, err := os.ReadFile(filepath.Join(spaKit, "index.html"))
	if err != nil {
		t.Fatal(err)
	}

	op := httptest.NewUnstartedServer(nil)
	bankSrv := httptest.NewUnstartedServer(nil)
	spaSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + op.Listener.Addr().String()
	bankURL := "http://" + bankSrv.Listener.Addr().String()
	spaURL := "http://" + spaSrv.Listener.Addr().String()
	yaml := `
issuer: ` + issuer + `
clients:
  - id: demo-bank
    secret: ` + secret + `
    redirect_uris: [` + bankURL + `/callback]
  - id: spa
    public: true
    redirect_uris: [` + spaURL + `/callback]
users:
  - username: alice
    password: ` + alicePass + `
    totp_secret: ` + aliceTOTP + `
`
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	backend := sessiontest.NewBackend(t)
	if _, err := server.Seed(context.Background(), backend.Store(t), cfg.Users); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, backend.Store(t), server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	op.Config.Handler = srv.Handler()
	op.Start()
	t.Cleanup(op.Close)

	h, err := newBank(Options{Issuer: issuer, ClientID: "demo-bank", ClientSecret: secret, RedirectURL: bankURL + "/callback",
		APIAudiences: []string{"spa"}, CORSOrigins: []string{spaURL}})
	if err != nil {
		t.Fatal(err)
	}
	bankSrv.Config.Handler = h
	bankSrv.Start()
	t.Cleanup(bankSrv.Close)

	conf, _ := json.Marshal(map[string]string{"issuer": issuer, "clientId": "spa", "bank": bankURL})
	html := replaceBetween(string(page), "/*CONFIG*/", "/*END*/", string(conf))
	spaSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(bundle)
		case "/", "/callback":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, html)
		default:
			http.NotFound(w, r)
		}
	})
	spaSrv.Start()
	t.Cleanup(spaSrv.Close)

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	b := &tab{t: t, ctx: ctx}

	// Sign in: the hosted login page, then back on the SPA at 1fa.
	b.navigate(spaURL + "/")
	b.ready(spaURL)
	b.click("#signin")
	b.waitFor("the login page", `!!document.querySelector('input[autocomplete="current-password"]')`)
	b.fill(`input[autocomplete~="username"]`, "alice")
	b.fill(`input[autocomplete="current-password"]`, alicePass)
	b.submit(`input[autocomplete="current-password"]`)
	b.ready(spaURL)
	if got := b.text("#acr"); got != acr1FA {
		t.Fatalf("after sign-in the kit reads acr %q, want %q", got, acr1FA)
	}
	if got := b.text("#profile-acr"); got != "(filtered)" {
		t.Fatalf("user.profile.acr = %q: oidc-client-ts's default should have filtered it, or this test proves nothing about reading the ID token", got)
	}

	b.click("#balance")
	b.waitFor("the balance", `document.querySelector("#result").textContent.startsWith("200 ")`)

	// Withdraw: 401 challenge → stepup's step-up page → cancel → back at
	// 1fa, not retried.
	b.click("#withdraw")
	b.waitFor("the step-up page", `!!document.querySelector('[data-action="cancel"]')`)
	b.click(`[data-action="cancel"]`)
	b.ready(spaURL)
	if out, res, acr := b.text("#outcome"), b.text("#result"), b.text("#acr"); out != "unmet" || acr != acr1FA || !strings.Contains(res, "not completed") {
		t.Fatalf("after a cancelled step-up: outcome %q, result %q, acr %q; want unmet at %s", out, res, acr, acr1FA)
	}
	var ch struct {
		AcrValues []string `json:"acrValues"`
		MaxAge    int      `json:"maxAge"`
	}
	if err := json.Unmarshal([]byte(b.text("#challenge")), &ch); err != nil || !slices.Equal(ch.AcrValues, []string{acrMFA}) || ch.MaxAge != 300 {
		t.Fatalf("the kit read the challenge as %q (%v)", b.text("#challenge"), err)
	}

	// Withdraw again: this time the TOTP code; the kit retries and the
	// withdrawal succeeds at the multi-factor level.
	b.click("#withdraw")
	b.waitFor("the TOTP form", `!!document.querySelector('form[data-factor="totp"] input[autocomplete="one-time-code"]')`)
	code, err := totp.Code(aliceTOTP, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.fill(`form[data-factor="totp"] input[autocomplete="one-time-code"]`, code)
	b.submit(`form[data-factor="totp"] input[autocomplete="one-time-code"]`)
	b.ready(spaURL)
	if out, acr, amr := b.text("#outcome"), b.text("#acr"), b.text("#amr"); out != "retried" || acr != acrMFA || !strings.Contains(amr, "otp") {
		t.Fatalf("after the TOTP step-up: outcome %q, acr %q, amr %q; result %q", out, acr, amr, b.text("#result"))
	}
	var w struct {
		Withdrawn int    `json:"withdrawn"`
		Balance   int    `json:"balance"`
		ACR       string `json:"acr"`
	}
	res := b.text("#result")
	if !strings.HasPrefix(res, "200 ") || json.Unmarshal([]byte(strings.TrimPrefix(res, "200 ")), &w) != nil || w.Withdrawn != 10 || w.Balance != 990 || w.ACR != acrMFA {
		t.Fatalf("the retried withdrawal answered %q", res)
	}
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("STEPUP_TEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needOrSkip(t, "no Chromium binary found (chromium, chromium-browser, google-chrome)")
	return ""
}

// needOrSkip skips with why, except under CI=true, where it fails.
func needOrSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + "; CI must run the SPA kit's browser test")
	}
	t.Skip(why + ": skipping the SPA kit's browser test")
}

func replaceBetween(s, start, end, with string) string {
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		return s
	}
	return s[:i] + with + s[j+len(end):]
}

// tab drives one Chromium tab.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func (b *tab) navigate(u string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u)); err != nil {
		b.t.Fatalf("navigate %s: %v", u, err)
	}
}

func (b *tab) eval(js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
}

func (b *tab) waitFor(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err == nil && v {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	href, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href`))
	body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	b.t.Fatalf("waiting for %s: not reached; at %s:\n%s", what, href, body)
}

// ready waits for the SPA to have finished its start (and any callback).
func (b *tab) ready(origin string) {
	b.t.Helper()
	b.waitFor("the SPA", fmt.Sprintf(`location.origin === %q && document.body && document.body.dataset.ready === "true"`, origin))
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.waitFor(sel, fmt.Sprintf(`!!document.querySelector(%q) && document.readyState === "complete"`, sel))
	b.eval(fmt.Sprintf(`(document.querySelector(%q).click(), true)`, sel))
}

func (b *tab) fill(sel, value string) {
	b.t.Helper()
	b.waitFor(sel, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	b.eval(fmt.Sprintf(`(document.querySelector(%q).value = %q, true)`, sel, value))
}

func (b *tab) submit(sel string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(document.querySelector(%q).form.submit(), true)`, sel))
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}
