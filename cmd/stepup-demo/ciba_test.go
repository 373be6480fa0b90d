package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// syncBuffer is a log sink safe for stepupd's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoBankApproveOnPhone is the demo's "approve on your phone": the
// bank starts CIBA with binding_message "Withdraw 10.00", stepupd's log
// provider prints the approval link, a second browser opens it, signs in
// to the multi-factor level and approves, and the bank — polling — makes
// the withdrawal with the approval's token.
func TestDemoBankApproveOnPhone(t *testing.T) {
	op := httptest.NewUnstartedServer(nil)
	bankSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + op.Listener.Addr().String()
	bankURL := "http://" + bankSrv.Listener.Addr().String()
	cfg, err := config.Parse([]byte(`
issuer: `+issuer+`
clients:
  - id: demo-bank
    secret: `+secret+`
    redirect_uris: [`+bankURL+`/callback]
    grant_types: [authorization_code, refresh_token, urn:openid:params:grant-type:ciba]
users:
  - username: alice
    password: `+alicePass+`
    email: alice@example.com
    totp_secret: `+aliceTOTP+`
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	backend := sessiontest.NewBackend(t)
	if _, err := server.Seed(context.Background(), backend.Store(t), cfg.Users); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := server.New(context.Background(), cfg, backend.Store(t), server.Options{Log: slog.New(slog.NewTextHandler(logs, nil))})
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

	type browser struct{ c *http.Client }
	newBrowser := func() browser {
		jar, _ := cookiejar.New(nil)
		return browser{&http.Client{Jar: jar}}
	}
	do := func(b browser, method, u, origin string, form url.Values) (*url.URL, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", origin)
		}
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Request.URL, string(body)
	}
	submit := func(b browser, at *url.URL, body, attr, val string, values url.Values) (*url.URL, string) {
		t.Helper()
		action, form := findForm(t, body, attr, val)
		for k, v := range values {
			form[k] = v
		}
		return do(b, http.MethodPost, at.ResolveReference(&url.URL{Path: action}).String(), issuer, form)
	}

	// The customer signs in to the bank at 1fa and asks for the
	// withdrawal to be approved on the phone.
	desk := newBrowser()
	at, body := do(desk, http.MethodGet, bankURL+"/login", "", nil)
	_, body = submit(desk, at, body, "autocomplete", "current-password", url.Values{"username": {"alice"}, "password": {alicePass}})
	if !strings.Contains(body, `data-action="withdraw-phone"`) {
		t.Fatalf("no approve-on-your-phone button:\n%s", body)
	}
	_, body = do(desk, http.MethodPost, bankURL+"/withdraw-phone", bankURL, nil)
	if !strings.Contains(body, `data-ciba-status="waiting"`) {
		t.Fatalf("after starting CIBA:\n%s", body)
	}

	// stepupd's log provider printed the link: a second browser finishes.
	link := regexp.MustCompile(`https?://[^ "\\]+/ciba/[A-Za-z0-9_.-]+`).FindString(logs.String())
	if link == "" || !strings.Contains(logs.String(), "Withdraw 10.00") {
		t.Fatalf("no approval link in stepupd's log:\n%s", logs.String())
	}
	phone := newBrowser()
	at, body = do(phone, http.MethodGet, link, "", nil)
	at, body = submit(phone, at, body, "data-action", "continue", nil)
	at, body = submit(phone, at, body, "autocomplete", "current-password", url.Values{"password": {alicePass}})
	code, err := totp.Code(aliceTOTP, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	at, body = submit(phone, at, body, "autocomplete", "one-time-code", url.Values{"code": {code}})
	if !strings.Contains(body, "Withdraw 10.00") || !strings.Contains(body, "Demo") && !strings.Contains(body, "demo-bank") {
		t.Fatalf("approval page:\n%s", body)
	}
	submit(phone, at, body, "data-action", "approve", nil)

	// The bank polls at the interval (5 s) and withdraws.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body = do(desk, http.MethodGet, bankURL+"/", "", nil)
		if strings.Contains(body, `data-ciba-status="done"`) {
			break
		}
		if !strings.Contains(body, `data-ciba-status="waiting"`) || time.Now().After(deadline) {
			t.Fatalf("the bank did not complete the withdrawal:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range []string{"200 OK", `&#34;withdrawn&#34;:10`, `&#34;balance&#34;:990`, `&#34;acr&#34;:&#34;` + acrMFA} {
		if !strings.Contains(body, s) {
			t.Fatalf("after the approved withdrawal, %q is missing:\n%s", s, body)
		}
	}
}
