package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
)

// mfaACR is the multi-factor level of stepup's default ladder.
const mfaACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// user is an account the bench may sign in as.
type user struct {
	Username   string `json:"username"`
	TOTPSecret string `json:"totp_secret,omitempty"`
}

// bench holds what every flow needs: endpoints from discovery, clients,
// the shared transport and the ID token verifier.
type bench struct {
	target                      string
	issuer                      string
	authEndpoint, tokenEndpoint string
	jwksURI, discoveryURL       string
	clientID, clientSecret      string
	redirectURI                 string
	ccClientID, ccClientSecret  string
	password                    string
	users                       []user
	verifyEvery                 int64
	tr                          *countingTransport
	api                         *http.Client // back channel: no jar, no redirects
	verifier                    *oidc.IDTokenVerifier
	exchanges                   atomic.Int64
	expectIss                   bool // stepup sends iss in the authorization response (RFC 9207)
	verifyCtx                   context.Context
	pids                        []string // server processes to account CPU to
	warmup                      bool
	redisAddr                   string   // stepupd's Redis, to count commands per op
	backends                    []string // -backends: the instances behind the issuer
	scim                        scimConfig
	scimTok                     scimToken
	rate                        float64 // -rate: operations per second over all workers (0: closed loop)
}

// discover reads the provider's metadata and prepares the verifier, so a
// wrong -issuer fails at once rather than as thousands of errors.
func (b *bench) discover(ctx context.Context) error {
	b.discoveryURL = strings.TrimSuffix(b.issuer, "/") + "/.well-known/openid-configuration"
	b.verifyCtx = oidc.ClientContext(context.Background(), b.api)
	prov, err := oidc.NewProvider(b.verifyCtx, b.issuer)
	if err != nil {
		return fmt.Errorf("discovery at %s: %w", b.discoveryURL, err)
	}
	var meta struct {
		Auth  string `json:"authorization_endpoint"`
		Token string `json:"token_endpoint"`
		JWKS  string `json:"jwks_uri"`
	}
	if err := prov.Claims(&meta); err != nil {
		return err
	}
	b.authEndpoint, b.tokenEndpoint, b.jwksURI = meta.Auth, meta.Token, meta.JWKS
	b.verifier = prov.Verifier(&oidc.Config{ClientID: b.clientID})
	return nil
}

func random(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// authReq is one authorization request with its PKCE verifier and nonce.
type authReq struct {
	url, state, nonce, verifier string
}

func (b *bench) newAuthReq(extra url.Values) authReq {
	a := authReq{state: random(12), nonce: random(12), verifier: oauth2.GenerateVerifier()}
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {b.clientID},
		"redirect_uri":          {b.redirectURI},
		"scope":                 {"openid profile"},
		"state":                 {a.state},
		"nonce":                 {a.nonce},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(a.verifier)},
		"code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		q[k] = v
	}
	a.url = b.authEndpoint + "?" + q.Encode()
	return a
}

// code reads the authorization response the browser stopped at.
func (b *bench) code(step string, p *page, a authReq) (string, error) {
	if p.loc == nil {
		return "", p.unexpected(step, "a redirect to the redirect URI")
	}
	q := p.loc.Query()
	if e := q.Get("error"); e != "" {
		return "", stepErr(step, "error="+e, "%s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != a.state {
		return "", stepErr(step, "state mismatch", "state %q, want %q", q.Get("state"), a.state)
	}
	if b.expectIss && q.Get("iss") != b.issuer {
		return "", stepErr(step, "iss mismatch", "iss %q, want %q", q.Get("iss"), b.issuer)
	}
	c := q.Get("code")
	if c == "" {
		return "", stepErr(step, "no code", "redirect without code: %s", p.loc)
	}
	return c, nil
}

// idClaims are the claims the stepup mode checks.
type idClaims struct {
	Nonce string   `json:"nonce"`
	ACR   string   `json:"acr"`
	AMR   []string `json:"amr"`
}

// postToken calls the token endpoint with client_secret_basic.
func (b *bench) postToken(ctx context.Context, step, id, secret string, form url.Values) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.tokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, stepErr(step, "bad url", "%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := b.api.Do(req)
	if err != nil {
		return nil, stepErr(step, "transport", "%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, stepErr(step, "transport", "reading body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, stepErr(step, fmt.Sprintf("status %d", resp.StatusCode), "%s", excerpt(string(body), 300))
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, stepErr(step, "bad json", "%v: %s", err, excerpt(string(body), 200))
	}
	if s, _ := out["access_token"].(string); s == "" {
		return nil, stepErr(step, "no access_token", "%s", excerpt(string(body), 200))
	}
	return out, nil
}

// exchange redeems a code and, for every verifyEvery-th exchange (or
// always when check is set), verifies the ID token's signature, issuer,
// audience, expiry and nonce with go-oidc.
func (b *bench) exchange(ctx context.Context, code string, a authReq, check func(idClaims) error) error {
	_, err := b.exchangeTok(ctx, code, a, check)
	return err
}

// exchangeTok is exchange that also returns the token response.
func (b *bench) exchangeTok(ctx context.Context, code string, a authReq, check func(idClaims) error) (map[string]any, error) {
	tok, err := b.postToken(ctx, "token", b.clientID, b.clientSecret, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {b.redirectURI},
		"code_verifier": {a.verifier},
	})
	if err != nil {
		return nil, err
	}
	raw, _ := tok["id_token"].(string)
	if raw == "" {
		return nil, stepErr("token", "no id_token", "token response without id_token")
	}
	n := b.exchanges.Add(1)
	if check == nil && (b.verifyEvery <= 0 || n%b.verifyEvery != 0) {
		return tok, nil
	}
	idt, err := b.verifier.Verify(b.verifyCtx, raw)
	if err != nil {
		return nil, stepErr("id_token", "invalid", "%v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return nil, stepErr("id_token", "claims", "%v", err)
	}
	if c.Nonce != a.nonce {
		return nil, stepErr("id_token", "nonce mismatch", "nonce %q, want %q", c.Nonce, a.nonce)
	}
	if check != nil {
		if err := check(c); err != nil {
			return nil, err
		}
	}
	return tok, nil
}

// passwordLogin runs /authorize → hosted login page → POST the form found
// by its autocomplete hooks, and returns the code. The same code drives
// stepup's page and the zitadel example's: both mark their inputs with
// autocomplete="username" / "current-password", and every hidden input
// (stepup's csrf_token, zitadel's auth request id) is sent back as is.
func (b *bench) passwordLogin(ctx context.Context, v *vu, username string, extra url.Values) (string, authReq, error) {
	a := b.newAuthReq(extra)
	p, err := v.get(ctx, "authorize", a.url)
	if err != nil {
		return "", a, err
	}
	if p.loc != nil {
		return "", a, stepErr("authorize", "no login page", "redirected to the RP without a login page: %s", p.loc)
	}
	if p.status != http.StatusOK {
		return "", a, p.unexpected("login page", "200")
	}
	form := formWith(p.html(), hasToken("autocomplete", "current-password"))
	if form == nil {
		return "", a, p.unexpected("login page", "a form with autocomplete=current-password")
	}
	action, vals, err := formFields(p, form)
	if err != nil {
		return "", a, stepErr("login page", "bad form", "%v", err)
	}
	uName, pName := inputName(form, hasToken("autocomplete", "username")), inputName(form, hasToken("autocomplete", "current-password"))
	if uName == "" || pName == "" {
		return "", a, stepErr("login page", "bad form", "no username/password inputs")
	}
	vals.Set(uName, username)
	vals.Set(pName, b.password)
	p, err = v.post(ctx, "login POST", action, vals)
	if err != nil {
		return "", a, err
	}
	c, err := b.code("login POST", p, a)
	return c, a, err
}

// --- operations: one call is one measured operation ---

// opLogin is a full password login with a fresh browser: authorize,
// login page, password POST, code exchange, ID token verification.
func (b *bench) opLogin(ctx context.Context, username string) error {
	v := b.newVU()
	c, a, err := b.passwordLogin(ctx, v, username, nil)
	if err != nil {
		return err
	}
	return b.exchange(ctx, c, a, nil)
}

// opSSO reuses the browser's session: /authorize must answer with a code
// at once, then the code is exchanged.
func (b *bench) opSSO(ctx context.Context, v *vu) error {
	_, err := b.opSSOTok(ctx, v)
	return err
}

// opSSOTok is opSSO that also returns the token response: its refresh
// token replaces the one the session's grant had (one grant per session
// and client, issue 18), as an RP that signs the user in again keeps the
// new tokens.
func (b *bench) opSSOTok(ctx context.Context, v *vu) (map[string]any, error) {
	a := b.newAuthReq(nil)
	p, err := v.get(ctx, "authorize", a.url)
	if err != nil {
		return nil, err
	}
	c, err := b.code("authorize (sso)", p, a)
	if err != nil {
		return nil, err
	}
	return b.exchangeTok(ctx, c, a, nil)
}

// opStepUp elevates an existing password session to the multi-factor
// level: /authorize with acr_values → TOTP page → POST a valid code →
// code → exchange, and checks that the ID token says so.
func (b *bench) opStepUp(ctx context.Context, s *pooled) error {
	a := b.newAuthReq(url.Values{"acr_values": {mfaACR}})
	p, err := s.v.get(ctx, "authorize (mfa)", a.url)
	if err != nil {
		return err
	}
	if p.loc != nil {
		return stepErr("authorize (mfa)", "no totp page", "redirected without a step-up: %s", p.loc)
	}
	if p.status != http.StatusOK {
		return p.unexpected("totp page", "200")
	}
	form := formWith(p.html(), hasAttr("data-factor", "totp"))
	if form == nil || first(form, hasToken("autocomplete", "one-time-code")) == nil {
		return p.unexpected("totp page", `a form data-factor="totp" with a one-time-code input`)
	}
	action, vals, err := formFields(p, form)
	if err != nil {
		return stepErr("totp page", "bad form", "%v", err)
	}
	code, err := totp.GenerateCode(s.u.TOTPSecret, time.Now())
	if err != nil {
		return stepErr("totp", "secret", "%v", err)
	}
	vals.Set(inputName(form, hasToken("autocomplete", "one-time-code")), code)
	p, err = s.v.post(ctx, "totp POST", action, vals)
	if err != nil {
		return err
	}
	c, err := b.code("totp POST", p, a)
	if err != nil {
		return err
	}
	return b.exchange(ctx, c, a, func(c idClaims) error {
		if c.ACR != mfaACR || !slices.Contains(c.AMR, "otp") {
			return stepErr("id_token", "wrong acr/amr", "acr %q amr %v after a TOTP step-up", c.ACR, c.AMR)
		}
		return nil
	})
}

// opClientCredentials is one client_credentials grant.
func (b *bench) opClientCredentials(ctx context.Context) error {
	_, err := b.postToken(ctx, "token (cc)", b.ccClientID, b.ccClientSecret, url.Values{"grant_type": {"client_credentials"}})
	return err
}

// opGetJSON fetches a public JSON document (discovery, JWKS).
func (b *bench) opGetJSON(ctx context.Context, step, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return stepErr(step, "bad url", "%v", err)
	}
	resp, err := b.api.Do(req)
	if err != nil {
		return stepErr(step, "transport", "%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return stepErr(step, "transport", "reading body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return stepErr(step, fmt.Sprintf("status %d", resp.StatusCode), "%s", excerpt(string(body), 200))
	}
	if len(body) == 0 || body[0] != '{' {
		return stepErr(step, "not json", "%s", excerpt(string(body), 200))
	}
	return nil
}
