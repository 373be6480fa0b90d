package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/coreos/go-oidc/v3/oidc"
)

// syncBuffer is the audit log under test (handlers write concurrently).
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

// TestFloorServesTheBenchFlows drives the floor as the bench tool does
// (a password session, then a TOTP step-up, an SSO and a
// client_credentials grant) and checks what the bench checks: the page
// shapes, the redirects, the ID token (go-oidc: signature, issuer,
// audience, nonce) with acr and amr; and that a replayed code and a wrong
// TOTP code are refused, and the Redis round trips per request.
func TestFloorServesTheBenchFlows(t *testing.T) {
	t.Run("as stepupd", func(t *testing.T) { testFlows(t, false, false) })
	// -fold: the TOTP page in /authorize's response, 6 round trips.
	t.Run("fold", func(t *testing.T) { testFlows(t, true, false) })
	// -rt3: and 3 round trips.
	t.Run("rt3", func(t *testing.T) { testFlows(t, true, true) })
}

func testFlows(t *testing.T, fold, rt3 bool) {
	mr := miniredis.RunT(t)
	secret := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	ts := httptest.NewUnstartedServer(nil)
	sec := &secrets{Issuer: "http://" + ts.Listener.Addr().String(), ClientID: "bench", ClientSecret: "s3cret", RedirectURI: "http://127.0.0.1:9/cb", Password: "pw"}
	sec.Users = append(sec.Users, struct {
		Username   string `json:"username"`
		TOTPSecret string `json:"totp_secret"`
	}{"user0", secret})
	s, err := newServer(sec, mr.Addr(), filepath.Join(t.TempDir(), "floor.db"))
	if err != nil {
		t.Fatal(err)
	}
	audit := &syncBuffer{}
	s.audit = audit
	s.fold, s.rt3 = fold, rt3
	ts.Config.Handler = s
	ts.Start()
	defer ts.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), sec.RedirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	ctx := oidc.ClientContext(context.Background(), ts.Client())
	prov, err := oidc.NewProvider(ctx, sec.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	verifier := prov.Verifier(&oidc.Config{ClientID: "bench"})

	const verifierStr = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	sum := sha256.Sum256([]byte(verifierStr))
	authURL := func(acr string) string {
		q := url.Values{"response_type": {"code"}, "client_id": {"bench"}, "redirect_uri": {sec.RedirectURI}, "scope": {"openid profile"},
			"state": {"st"}, "nonce": {"n0nce"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		if acr != "" {
			q.Set("acr_values", acr)
		}
		return sec.Issuer + "/authorize?" + q.Encode()
	}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(u string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", sec.Issuer)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	codeOf := func(resp *http.Response) string {
		t.Helper()
		loc, err := resp.Location()
		if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), sec.RedirectURI) {
			t.Fatalf("want a 302 to the redirect URI, got %d %v", resp.StatusCode, loc)
		}
		if loc.Query().Get("state") != "st" || loc.Query().Get("iss") != sec.Issuer || loc.Query().Get("code") == "" {
			t.Fatalf("authorization response %s", loc)
		}
		return loc.Query().Get("code")
	}
	formRe := func(body, marker string) (string, string) {
		t.Helper()
		m := regexp.MustCompile(`<form method="post" action="([^"]+)"[^>]*` + marker + `[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)">`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no form with %s in:\n%s", marker, body)
		}
		return sec.Issuer + m[1], m[2]
	}
	exchange := func(code string) (*http.Response, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {sec.RedirectURI}, "code_verifier": {verifierStr}}
		req, _ := http.NewRequest(http.MethodPost, sec.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bench", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	idToken := func(tok map[string]any) (acr string, amr []string) {
		t.Helper()
		raw, _ := tok["id_token"].(string)
		idt, err := verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		var c struct {
			Nonce string   `json:"nonce"`
			ACR   string   `json:"acr"`
			AMR   []string `json:"amr"`
		}
		if err := idt.Claims(&c); err != nil || c.Nonce != "n0nce" {
			t.Fatalf("ID token claims %+v, %v", c, err)
		}
		return c.ACR, c.AMR
	}

	// Set-up: a password session (the login page found by its hooks).
	resp, body := get(authURL(""))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `autocomplete="current-password"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, body)
	}
	action, csrf := formRe(body, `class="login"`)
	codeOf(post(action, url.Values{"csrf_token": {csrf}, "username": {"user0"}, "password": {"pw"}}))

	// The step-up: /authorize → 302 → the TOTP page → POST → code → exchange.
	trips0 := s.trips.Load()
	resp, body = get(authURL(mfaACR))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `autocomplete="one-time-code"`) || !strings.Contains(body, "user0") {
		t.Fatalf("TOTP page: %d\n%s", resp.StatusCode, body)
	}
	if onAuthorize := resp.Request.URL.Path == "/authorize"; onAuthorize != fold {
		t.Fatalf("the TOTP page at %s (fold %v)", resp.Request.URL.Path, fold)
	}
	action, csrf = formRe(body, `data-factor="totp"`)
	// Every hidden input goes back, as the bench sends them (-rt3 adds the subject).
	var sub []string
	if m := regexp.MustCompile(`<input type="hidden" name="sub" value="([^"]+)">`).FindStringSubmatch(body); m != nil {
		sub = []string{m[1]}
	}
	if (sub != nil) != rt3 {
		t.Fatalf("hidden sub %v with rt3 %v", sub, rt3)
	}
	if rt3 {
		// The subject is bound to session and flow by the CSRF token.
		if r := post(action, url.Values{"csrf_token": {csrf}, "code": {"000000"}, "sub": {"someone-else"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("another subject in the form: %d, want 403", r.StatusCode)
		}
	}
	tripsWrong := s.trips.Load()
	if r := post(action, url.Values{"csrf_token": {csrf}, "code": {"000000"}, "sub": sub}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong TOTP code: %d, want 401", r.StatusCode)
	}
	tripsWrong = s.trips.Load() - tripsWrong
	code := codeOf(post(action, url.Values{"csrf_token": {csrf}, "code": {hotp(mustB32(secret), time.Now().Unix()/30)}, "sub": sub}))
	resp, tok := exchange(code)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange: %d %v", resp.StatusCode, tok)
	}
	if acr, amr := idToken(tok); acr != mfaACR || !slices.Contains(amr, "otp") {
		t.Fatalf("after the step-up: acr %q amr %v", acr, amr)
	}
	// 2 + 1 + 3 + 2, as stepupd (TestRoundTripsPerFlow), without the
	// wrong code's post; folded 1 + 3 + 2.
	want := int64(8)
	switch {
	case rt3:
		want = 3
	case fold:
		want = 6
	}
	if got := s.trips.Load() - trips0 - tripsWrong; got != want {
		t.Errorf("step-up: %d Redis round trips, want %d", got, want)
	}
	if resp, _ := exchange(code); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a replayed code: %d, want 400", resp.StatusCode)
	}
	for _, ev := range []string{"stepup.verified", "stepup.completed", "authorize.code", "token.issued"} {
		if !strings.Contains(audit.String(), `"event":"`+ev+`"`) {
			t.Errorf("no %s audit line in:\n%s", ev, audit.String())
		}
	}

	// SSO (no acr_values, as the bench's sso mode): the session answers at
	// once, in 4 round trips (2 with -rt3), and says what it holds.
	trips0 = s.trips.Load()
	resp, tok = exchange(codeOf(func() *http.Response { r, _ := get(authURL("")); return r }()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSO exchange: %d %v", resp.StatusCode, tok)
	}
	if acr, _ := idToken(tok); acr != mfaACR {
		t.Errorf("SSO after the step-up: acr %q", acr)
	}
	want = 4
	if rt3 {
		want = 2
	}
	if got := s.trips.Load() - trips0; got != want {
		t.Errorf("SSO: %d Redis round trips, want %d", got, want)
	}

	// client_credentials: a signed JWT, no Redis.
	req, _ := http.NewRequest(http.MethodPost, sec.Issuer+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bench", "s3cret")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cc map[string]any
	_ = json.NewDecoder(r.Body).Decode(&cc)
	r.Body.Close()
	if at, _ := cc["access_token"].(string); r.StatusCode != http.StatusOK || strings.Count(at, ".") != 2 {
		t.Fatalf("client_credentials: %d %v", r.StatusCode, cc)
	}
	req, _ = http.NewRequest(http.MethodPost, sec.Issuer+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bench", "wrong")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong client secret: %v %v, want 401", r, err)
	}
}
