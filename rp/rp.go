// Package rp is the client side of RFC 9470 step-up: it reads a resource
// server's insufficient_user_authentication challenge and builds the
// authorization request that satisfies it (acr_values, max_age, PKCE S256,
// state and nonce), then checks the callback (state, RFC 9207 iss) and
// redeems the code.
//
// An application that gets a 401 from its API retries in a few lines:
//
//	ch, ok := rp.FromResponse(resp)
//	if ok && ch.StepUp() {
//		a := rp.NewAuthRequest(oauthConfig, ch)
//		// keep a (state, nonce, verifier) in the user's session and
//		http.Redirect(w, r, a.URL, http.StatusFound)
//	}
//	// … on the redirect URI:
//	tok, err := a.Exchange(ctx, oauthConfig, issuer, r.URL.Query())
package rp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// Challenge is a parsed Bearer challenge.
type Challenge struct {
	Realm       string
	Error       string
	Description string
	// ACRValues are the acceptable acr values, in order of preference.
	ACRValues []string
	// MaxAge is RFC 9470's max_age in seconds, valid when HasMaxAge.
	MaxAge    int64
	HasMaxAge bool
	Scope     string
}

// StepUp reports whether the challenge asks for a new authentication
// (RFC 9470 insufficient_user_authentication).
func (c *Challenge) StepUp() bool { return c.Error == "insufficient_user_authentication" }

// FromResponse parses the Bearer challenge of a 401 or 403 response.
func FromResponse(resp *http.Response) (*Challenge, bool) {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return nil, false
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if c, err := ParseChallenge(h); err == nil {
			return c, true
		}
	}
	return nil, false
}

// ErrNoBearer is returned when a header holds no Bearer challenge.
var ErrNoBearer = errors.New("rp: no Bearer challenge")

// ParseChallenge parses a WWW-Authenticate value (RFC 9110 §11.6.1) and
// returns its Bearer challenge; other schemes in the same header are
// skipped. Parameter values may be tokens or quoted-strings (max_age is
// accepted both as max_age=300 and max_age="300").
func ParseChallenge(header string) (*Challenge, error) {
	p := &parser{s: header}
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			return nil, ErrNoBearer
		}
		scheme := p.token()
		if scheme == "" {
			return nil, fmt.Errorf("rp: malformed challenge at byte %d", p.i)
		}
		params, err := p.params()
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		return challengeFrom(params)
	}
}

func challengeFrom(params [][2]string) (*Challenge, error) {
	c := &Challenge{}
	seen := map[string]bool{}
	for _, kv := range params {
		name, val := strings.ToLower(kv[0]), kv[1]
		if seen[name] {
			return nil, fmt.Errorf("rp: parameter %s repeated", name)
		}
		seen[name] = true
		switch name {
		case "realm":
			c.Realm = val
		case "error":
			c.Error = val
		case "error_description":
			c.Description = val
		case "acr_values":
			c.ACRValues = strings.Fields(val)
		case "max_age":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || val != strconv.FormatInt(n, 10) {
				return nil, fmt.Errorf("rp: max_age %q is not a non-negative integer", val)
			}
			c.MaxAge, c.HasMaxAge = n, true
		case "scope":
			c.Scope = val
		}
	}
	return c, nil
}

// parser reads the challenge grammar of RFC 9110 §11.6.1:
//
//	challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) skipSpaceAndCommas() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *parser) token() string {
	start := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params reads the auth-params after a scheme, up to the next challenge
// (a token not followed by "=") or the end. A token68 is skipped.
func (p *parser) params() ([][2]string, error) {
	var out [][2]string
	for first := true; ; first = false {
		p.skipSpaceAndCommas()
		if p.done() {
			return out, nil
		}
		start := p.i
		name := p.token()
		p.skipSpace()
		if name != "" && !p.done() && p.s[p.i] == '=' {
			j := p.i + 1
			for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
				j++
			}
			if j < len(p.s) && (p.s[j] == '"' || isTchar(p.s[j])) {
				p.i = j
				var val string
				if p.s[p.i] == '"' {
					v, err := p.quoted()
					if err != nil {
						return nil, err
					}
					val = v
				} else {
					val = p.token()
				}
				out = append(out, [2]string{name, val})
				continue
			}
		}
		p.i = start
		if !first {
			// The scheme of the next challenge.
			return out, nil
		}
		// token68 (RFC 9110 §11.2) right after the scheme.
		for p.i < len(p.s) && (isTchar(p.s[p.i]) || p.s[p.i] == '/') {
			p.i++
		}
		for p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
		}
		if p.i == start {
			return nil, fmt.Errorf("rp: malformed challenge at byte %d", p.i)
		}
		return out, nil
	}
}

func (p *parser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("rp: unterminated quoted-string")
}

// AuthRequest is one authorization request: what to send the user to, and
// what the callback must be checked against. Keep it in the user's
// session (it is small and holds no secret but the PKCE verifier) until
// the callback.
type AuthRequest struct {
	URL      string `json:"url"`
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
}

// NewAuthRequest builds the authorization request that answers ch:
// acr_values and max_age from the challenge (either may be absent), with
// a fresh state, nonce and PKCE S256 verifier. ch may be nil for a plain
// sign-in. opts add parameters (e.g. oauth2.SetAuthURLParam("login_hint",
// …)).
func NewAuthRequest(cfg *oauth2.Config, ch *Challenge, opts ...oauth2.AuthCodeOption) AuthRequest {
	a := AuthRequest{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	all := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(a.Verifier),
		oauth2.SetAuthURLParam("nonce", a.Nonce),
	}
	if ch != nil {
		if len(ch.ACRValues) > 0 {
			all = append(all, oauth2.SetAuthURLParam("acr_values", strings.Join(ch.ACRValues, " ")))
		}
		if ch.HasMaxAge {
			all = append(all, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(ch.MaxAge, 10)))
		}
	}
	a.URL = cfg.AuthCodeURL(a.State, append(all, opts...)...)
	return a
}

// CallbackError is an error the provider sent to the redirect URI
// (e.g. unmet_authentication_requirements, access_denied).
type CallbackError struct {
	Code, Description string
}

func (e *CallbackError) Error() string {
	if e.Description == "" {
		return "rp: authorization failed: " + e.Code
	}
	return "rp: authorization failed: " + e.Code + ": " + e.Description
}

// Exchange checks the callback's query against the request — state, and
// iss (RFC 9207) when issuer is not "" — and redeems the code with the
// PKCE verifier. Verify the ID token (nonce a.Nonce) with an OIDC library
// before trusting it.
func (a AuthRequest) Exchange(ctx context.Context, cfg *oauth2.Config, issuer string, q url.Values) (*oauth2.Token, error) {
	if q.Get("state") != a.State || a.State == "" {
		return nil, errors.New("rp: the callback's state does not match the request")
	}
	if issuer != "" && q.Get("iss") != issuer {
		return nil, fmt.Errorf("rp: the callback comes from issuer %q, want %q", q.Get("iss"), issuer)
	}
	if code := q.Get("error"); code != "" {
		return nil, &CallbackError{Code: code, Description: q.Get("error_description")}
	}
	if q.Get("code") == "" {
		return nil, errors.New("rp: the callback has no code")
	}
	return cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(a.Verifier))
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
