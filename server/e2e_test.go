package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	sort.Strings(g)
	sort.Strings(w)
	return slices.Equal(g, w)
}

func wantClaims(t *testing.T, tk *tokens, acr string, amr []string) {
	t.Helper()
	if tk.claims.ACR != acr || !sameSet(tk.claims.AMR, amr) {
		t.Fatalf("acr %q amr %v, want %q %v", tk.claims.ACR, tk.claims.AMR, acr, amr)
	}
	if tk.claims.AuthTime == 0 {
		t.Fatalf("no auth_time")
	}
}

// signIn runs a password login (and TOTP when asked) for a fresh request.
func signIn(t *testing.T, e *env, b *browser, r *rp, params map[string]string, user, pass string) *tokens {
	t.Helper()
	a := r.authURL(params)
	p := b.get(a.url)
	p = b.login(p, user, pass)
	if p.loc == nil { // a second factor is asked
		p = b.code(p, "totp", e.totpCode(aliceTOTP))
	}
	return r.mustExchange(a, p.result(t))
}

func TestPasswordLogin1FA(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(nil)
	p := b.get(a.url)
	if p.status != http.StatusOK {
		t.Fatalf("login page status %d", p.status)
	}
	p = b.login(p, "alice", alicePass)
	tk := r.mustExchange(a, p.result(t))
	wantClaims(t, tk, oneFA, []string{"pwd"})
	if tk.claims.AuthTime != e.clock.Now().Unix() {
		t.Fatalf("auth_time %d, want %d", tk.claims.AuthTime, e.clock.Now().Unix())
	}
}

func TestWrongPasswordIs401WithAlert(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	p := b.get(r.authURL(nil).url)
	for _, user := range []string{"alice", "nobody"} {
		got := b.login(p, user, "wrong password")
		if got.status != http.StatusUnauthorized || len(find(got.doc, hasAttr("role", "alert"))) == 0 {
			t.Fatalf("%s: status %d, alert missing? body:\n%s", user, got.status, excerpt(got.body))
		}
	}
}

func TestMFAByACRValues(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "alice", alicePass)
	if p.loc != nil {
		t.Fatalf("multi-factor was requested but the flow completed after the password")
	}
	e.clock.Advance(7 * time.Second)
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	tk := r.mustExchange(a, p.result(t))
	wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
	if tk.claims.AuthTime != e.clock.Now().Unix() {
		t.Fatalf("auth_time %d is not the latest verification %d", tk.claims.AuthTime, e.clock.Now().Unix())
	}
}

func TestStepUpKeepsPasswordAndSSO(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	first := signIn(t, e, b, r, nil, "alice", alicePass)
	wantClaims(t, first, oneFA, []string{"pwd"})

	// SSO: no page at all.
	e.clock.Advance(time.Minute)
	a := r.authURL(nil)
	tk := r.mustExchange(a, b.get(a.url).result(t))
	wantClaims(t, tk, oneFA, []string{"pwd"})
	if tk.claims.AuthTime != first.claims.AuthTime {
		t.Fatalf("SSO changed auth_time")
	}

	// Step-up: only the TOTP page, never the password again.
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 0 {
		t.Fatalf("step-up asked for the password again")
	}
	if len(find(p.doc, hasAttr("data-action", "cancel"))) == 0 {
		t.Fatalf("step-up page has no cancel control")
	}
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	tk = r.mustExchange(a, p.result(t))
	wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
	if first.claims.Sub != tk.claims.Sub {
		t.Fatalf("subject changed on step-up")
	}
}

func TestMaxAge(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, nil, "alice", alicePass)
	e.clock.Advance(2 * time.Minute)

	// A large max_age is satisfied by the session.
	a := r.authURL(map[string]string{"max_age": "3600"})
	wantClaims(t, r.mustExchange(a, b.get(a.url).result(t)), oneFA, []string{"pwd"})

	// max_age exceeded → the password page again.
	a = r.authURL(map[string]string{"max_age": "60"})
	p := b.get(a.url)
	if p.loc != nil {
		t.Fatalf("max_age=60 with a 2-minute-old password completed without a prompt")
	}
	p = b.login(p, "alice", alicePass)
	tk := r.mustExchange(a, p.result(t))
	if tk.claims.AuthTime != e.clock.Now().Unix() {
		t.Fatalf("auth_time %d not refreshed", tk.claims.AuthTime)
	}
}

func TestPromptLogin(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, nil, "alice", alicePass)
	a := r.authURL(map[string]string{"prompt": "login"})
	p := b.get(a.url)
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("prompt=login did not show the password form (status %d)", p.status)
	}
	e.clock.Advance(time.Second)
	tk := r.mustExchange(a, b.login(p, "alice", alicePass).result(t))
	if tk.claims.AuthTime != e.clock.Now().Unix() {
		t.Fatalf("prompt=login: auth_time %d is not the new verification", tk.claims.AuthTime)
	}
}

func TestPromptNone(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")

	a := r.authURL(map[string]string{"prompt": "none"})
	res := b.get(a.url).result(t)
	if res.err != "login_required" || res.state != a.state || res.iss != e.issuer {
		t.Fatalf("no session: %+v", res)
	}

	signIn(t, e, b, r, nil, "alice", alicePass)
	a = r.authURL(map[string]string{"prompt": "none", "acr_values": mfaACR})
	if res := b.get(a.url).result(t); res.err != "interaction_required" {
		t.Fatalf("step-up needed under prompt=none: %+v", res)
	}

	a = r.authURL(map[string]string{"prompt": "none"})
	wantClaims(t, r.mustExchange(a, b.get(a.url).result(t)), oneFA, []string{"pwd"})
}

func TestEssentialUnreachableAndVoluntaryHonest(t *testing.T) {
	// Nothing can be enrolled in the flow, and bob has no second factor:
	// email is enabled, but bob did not turn email codes on and the policy
	// is not email_fallback.
	e := newEnv(t, func(c *config.Config) { c.MFA.Factors = []string{"email"}; c.Users[0].TOTPSecret = "" })
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, nil, "bob", bobPass)

	// bob has no second factor and none can be enrolled: essential → unmet.
	claims := `{"id_token":{"acr":{"essential":true,"values":["` + mfaACR + `"]}}}`
	a := r.authURL(map[string]string{"claims": claims})
	if res := b.get(a.url).result(t); res.err != "unmet_authentication_requirements" {
		t.Fatalf("essential unreachable: %+v", res)
	}
	// voluntary → the honest lower level.
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	wantClaims(t, r.mustExchange(a, b.get(a.url).result(t)), oneFA, []string{"pwd"})
}

func TestClientFloorCannotBeLowered(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("floor", bankSecret)
	a := r.authURL(map[string]string{"acr_values": oneFA})
	p := b.login(b.get(a.url), "alice", alicePass)
	if p.loc != nil {
		t.Fatalf("floor client got a code after the password alone")
	}
	p = b.code(p, "totp", e.totpCode(aliceTOTP))
	wantClaims(t, r.mustExchange(a, p.result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
}

func TestCancel(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")

	// Cancelling the first login → access_denied.
	a := r.authURL(nil)
	if res := b.cancel(b.get(a.url)).result(t); res.err != "access_denied" || res.state != a.state {
		t.Fatalf("cancel first login: %+v", res)
	}

	signIn(t, e, b, r, nil, "alice", alicePass)
	// Voluntary step-up cancelled → the level reached.
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	wantClaims(t, r.mustExchange(a, b.cancel(b.get(a.url)).result(t)), oneFA, []string{"pwd"})

	// Essential step-up cancelled → unmet_authentication_requirements.
	a = r.authURL(map[string]string{"claims": `{"id_token":{"acr":{"essential":true,"value":"` + mfaACR + `"}}}`})
	if res := b.cancel(b.get(a.url)).result(t); res.err != "unmet_authentication_requirements" {
		t.Fatalf("essential cancel: %+v", res)
	}
}

func TestTOTPReplayRejected(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	code := e.totpCode(aliceTOTP)
	// The same code, in the same time step, on a new step-up: refused.
	a := r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "login"})
	p := b.login(b.get(a.url), "alice", alicePass)
	p = b.code(p, "totp", code)
	if p.status != http.StatusUnauthorized || len(find(p.doc, hasAttr("role", "alert"))) == 0 {
		t.Fatalf("replayed TOTP: status %d", p.status)
	}
}

func TestCodeReplayRevokes(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("bank", bankSecret)
	a := r.authURL(map[string]string{"scope": "openid offline_access"})
	res := b.login(b.get(a.url), "alice", alicePass).result(t)
	tk := r.mustExchange(a, res)
	if tk.tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("second exchange: %v, want invalid_grant", err)
	}
	// What the first exchange issued is revoked.
	status, body := e.postForm("/oauth/introspect", url.Values{"token": {tk.tok.AccessToken}}, "bank", bankSecret)
	if status != 200 || body["active"] != false {
		t.Fatalf("access token after code replay: %d %v", status, body)
	}
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tk.tok.RefreshToken}).Token(); err == nil {
		t.Fatal("refresh token still works after code replay")
	}
}
