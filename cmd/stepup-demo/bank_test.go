package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

const (
	alicePass = "correct horse battery staple"
	aliceTOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	secret    = "demo-bank-secret-0123456789"
)

// TestDemoBankStepUpLoop runs the demo against a real stepupd: sign in at
// 1fa, read the balance, get the RFC 9470 challenge on a withdrawal, step
// up with TOTP, and see the retried withdrawal succeed with the elevated
// token's acr and amr.
func TestDemoBankStepUpLoop(t *testing.T) {
	op := httptest.NewUnstartedServer(nil)
	bankSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + op.Listener.Addr().String()
	bankURL := "http://" + bankSrv.Listener.Addr().String()
	yaml := `
issuer: ` + issuer + `
clients:
  - id: demo-bank
    secret: ` + secret + `
    redirect_uris: [` + bankURL + `/callback]
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), cfg, backend.Store(t), server.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	op.Config.Handler = srv.Handler()
	op.Start()
	t.Cleanup(op.Close)

	h, err := newBank(Options{Issuer: issuer, ClientID: "demo-bank", ClientSecret: secret, RedirectURL: bankURL + "/callback"})
	if err != nil {
		t.Fatal(err)
	}
	bankSrv.Config.Handler = h
	bankSrv.Start()
	t.Cleanup(bankSrv.Close)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(u string) (*url.URL, string, int) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Request.URL, string(b), resp.StatusCode
	}
	post := func(u, origin string, form url.Values) (*url.URL, string, int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Request.URL, string(b), resp.StatusCode
	}
	// submit fills the provider's form that holds an input with attr=val.
	submit := func(at *url.URL, body, attr, val string, values url.Values) (*url.URL, string, int) {
		t.Helper()
		action, hidden := findForm(t, body, attr, val)
		for k, v := range values {
			hidden[k] = v
		}
		u := at.ResolveReference(&url.URL{Path: action})
		return post(u.String(), issuer, hidden)
	}

	// 1. Sign in at 1fa.
	at, body, _ := get(bankURL + "/login")
	at, body, _ = submit(at, body, "autocomplete", "current-password", url.Values{"username": {"alice"}, "password": {alicePass}})
	if at.String() != bankURL+"/" || !strings.Contains(body, `data-claim="acr">urn:stepup:loa:1fa<`) {
		t.Fatalf("after sign-in at %s:\n%s", at, body)
	}
	// 2. Balance at 1fa.
	_, body, _ = post(bankURL+"/balance", bankURL, nil)
	if !strings.Contains(body, "200 OK") || !strings.Contains(body, `&#34;balance&#34;:1000`) {
		t.Fatalf("balance:\n%s", body)
	}
	// 3. Withdraw: the exact RFC 9470 challenge.
	_, body, _ = post(bankURL+"/withdraw", bankURL, url.Values{"amount": {"10"}})
	want := `WWW-Authenticate: Bearer error=&#34;insufficient_user_authentication&#34;, error_description=&#34;A different authentication level is required&#34;, acr_values=&#34;` + acrMFA + `&#34;, max_age=&#34;300&#34;`
	if !strings.Contains(body, "401 Unauthorized") || !strings.Contains(body, want) || !strings.Contains(body, `data-action="stepup"`) {
		t.Fatalf("withdraw at 1fa:\n%s", body)
	}
	// 4. Step up with TOTP; the bank retries the withdrawal.
	at, body, _ = post(bankURL+"/stepup", bankURL, nil)
	if strings.Contains(body, `autocomplete="current-password"`) {
		t.Fatal("the step-up asked for the fresh password again")
	}
	code, err := totp.Code(aliceTOTP, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	at, body, _ = submit(at, body, "autocomplete", "one-time-code", url.Values{"code": {code}})
	if at.String() != bankURL+"/" {
		t.Fatalf("after the step-up at %s:\n%s", at, body)
	}
	for _, s := range []string{"200 OK", `&#34;withdrawn&#34;:10`, `&#34;balance&#34;:990`, `data-claim="acr">` + acrMFA + `<`, `data-claim="amr">pwd otp mfa<`} {
		if !strings.Contains(body, s) {
			t.Fatalf("after the retried withdrawal, %q is missing:\n%s", s, body)
		}
	}
	// A POST from another origin changes nothing.
	if _, _, status := post(bankURL+"/withdraw", "https://evil.example", url.Values{"amount": {"10"}}); status != http.StatusForbidden {
		t.Fatalf("cross-origin withdraw: %d", status)
	}
}

// findForm returns the action and hidden inputs of the form holding an
// element with attr=val.
func findForm(t *testing.T, body, attr, val string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	get := func(n *html.Node, key string) string {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val
			}
		}
		return ""
	}
	var forms []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			forms = append(forms, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, f := range forms {
		found := false
		hidden := url.Values{}
		var inner func(*html.Node)
		inner = func(n *html.Node) {
			if n.Type == html.ElementNode {
				if get(n, attr) == val {
					found = true
				}
				if n.Data == "input" && get(n, "type") == "hidden" {
					hidden.Set(get(n, "name"), get(n, "value"))
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				inner(c)
			}
		}
		inner(f)
		if found {
			return get(f, "action"), hidden
		}
	}
	t.Fatalf("no form with %s=%q:\n%s", attr, val, body)
	return "", nil
}
