package rs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Config configures a Validator. Issuer and Audience are required; the
// zero value of everything else works.
type Config struct {
	// Issuer is the provider's issuer identifier, exactly as in its
	// discovery document and the tokens' iss claim.
	Issuer string
	// Audience is the aud every accepted token must carry. stepup issues
	// access tokens to the client that asked for them, so this is the
	// client id of the application whose API this is.
	Audience string
	// Levels is the acr ladder, lowest first, used to rank acr values (a
	// higher level satisfies a lower one). Empty: the issuer's discovery
	// acr_values_supported, which stepup lists in ladder order.
	Levels []string
	// JWKSURL is the key set; empty: the discovery document's jwks_uri.
	JWKSURL string
	// Realm, when set, is sent in every challenge.
	Realm string
	// Client fetches discovery and keys; nil: a client with a 10 s
	// timeout.
	Client *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp and iat (default 0).
	Leeway time.Duration
	// RefreshEvery is the least time between two key-set fetches caused
	// by a token whose key is unknown (default 10 s): a rotated key is
	// picked up at once, a flood of made-up key ids costs one fetch.
	RefreshEvery time.Duration
	// CacheFor is how long a key set is used before it is fetched again
	// (default 1 h).
	CacheFor time.Duration
}

// Validator validates stepup's RFC 9068 JWT access tokens and enforces
// per-route acr and max_age requirements. It is safe for concurrent use;
// create one per issuer and audience and share it.
type Validator struct {
	cfg          Config
	client       *http.Client
	now          func() time.Time
	refreshEvery time.Duration
	cacheFor     time.Duration

	// fetch serialises fetches; mu guards the fields below and is never
	// held over the network.
	fetch   sync.Mutex
	mu      sync.Mutex
	jwksURL string
	ladder  []string
	cache   keyCache
	lastErr error
}

// New returns a Validator. It does not contact the issuer: discovery and
// keys are fetched on first use, so a resource server may start before
// its provider.
func New(cfg Config) (*Validator, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("rs: Config.Issuer and Config.Audience are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	v := &Validator{
		cfg:          cfg,
		client:       cfg.Client,
		now:          cfg.Now,
		refreshEvery: cfg.RefreshEvery,
		cacheFor:     cfg.CacheFor,
		jwksURL:      cfg.JWKSURL,
	}
	if len(cfg.Levels) > 0 {
		v.ladder = slices.Clone(cfg.Levels)
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.refreshEvery <= 0 {
		v.refreshEvery = 10 * time.Second
	}
	if v.cacheFor <= 0 {
		v.cacheFor = time.Hour
	}
	return v, nil
}

// Requirement is what a route asks of the access token's authentication.
// The zero value accepts any valid token.
type Requirement struct {
	// ACR is the lowest acceptable level: the token's acr must rank at
	// or above it on the ladder. "" for no requirement.
	ACR string
	// MaxAge, when positive, is the longest time since the token's
	// auth_time (RFC 9470 max_age, sent in whole seconds).
	MaxAge time.Duration
	// Scopes must all be granted to the token (403 insufficient_scope
	// otherwise).
	Scopes []string
}

// Token is a validated access token.
type Token struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string
	JTI      string
	Scopes   []string
	ACR      string
	AMR      []string
	// AuthTime is the time of the authentication; zero when the token has
	// none (client_credentials).
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Raw is the token as presented.
	Raw string
}

// Error is why a request was refused; Write sends it.
type Error struct {
	// Status is 401 (no, invalid or insufficient token), 403 (scope),
	// 500 (a requirement the ladder does not know) or 503 (the issuer's
	// keys could not be fetched).
	Status int
	// Challenge is sent as WWW-Authenticate on 401 and 403.
	Challenge Challenge
	err       error
}

func (e *Error) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.Challenge.Error + ": " + e.Challenge.Description
}

func (e *Error) Unwrap() error { return e.err }

// Write answers the request with the error: the status, the challenge in
// WWW-Authenticate, and a JSON body {"error", "error_description"}.
func (e *Error) Write(w http.ResponseWriter) {
	h := w.Header()
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		h.Set("WWW-Authenticate", e.Challenge.String())
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	code, desc := e.Challenge.Error, e.Challenge.Description
	switch {
	case e.Status == http.StatusServiceUnavailable:
		code, desc = "temporarily_unavailable", "the authorization server's keys are unavailable"
	case e.Status == http.StatusInternalServerError:
		code, desc = "server_error", "the resource's requirement cannot be checked"
	case code == "":
		code, desc = "invalid_request", "a bearer access token is required"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (v *Validator) challenge(code, desc string) Challenge {
	return Challenge{Realm: v.cfg.Realm, Error: code, Description: desc}
}

func (v *Validator) invalid(desc string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Challenge: v.challenge(ErrInvalidToken, desc), err: err}
}

// BearerToken extracts the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1); "" when there is none.
func BearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// allowedAlgs are the signature algorithms a token may use; the key's own
// alg, when the JWKS states one, must match too.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA, jose.PS256, jose.ES384, jose.RS384}

// audience is an aud claim: one string or an array (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// claims are the RFC 9068 §2.2 claims, plus acr, amr and auth_time.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	Expiry    *int64   `json:"exp"`
	IssuedAt  *int64   `json:"iat"`
	NotBefore *int64   `json:"nbf"`
	JTI       string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	ACR       string   `json:"acr"`
	AMR       []string `json:"amr"`
	AuthTime  *int64   `json:"auth_time"`
}

// Validate checks a JWT access token (RFC 9068 §4): header typ at+jwt,
// signature by a key of the issuer's set, iss, aud, exp, and the presence
// of sub, client_id, iat and jti. It checks no route requirement.
func (v *Validator) Validate(ctx context.Context, raw string) (*Token, error) {
	// Compact serialization only (RFC 9068 §2.1 says JWT, which is
	// compact): the JSON serialization carries unprotected headers and
	// extra members a gateway in front of the RS may read differently.
	jws, err := jose.ParseSignedCompact(raw, allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, v.invalid("the access token is malformed", err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !typAccessToken(typ) {
		return nil, v.invalid("the token is not a JWT access token (typ at+jwt)", nil)
	}
	key, err := v.key(ctx, h.KeyID)
	if errors.Is(err, errKeysUnavailable) {
		return nil, &Error{Status: http.StatusServiceUnavailable, err: err}
	}
	if err != nil {
		return nil, v.invalid("the access token is not signed by a key of the issuer", err)
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, v.invalid("the access token's algorithm does not match its key", nil)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, v.invalid("the access token's signature is not valid", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, v.invalid("the access token's claims are malformed", err)
	}
	if c.Issuer != v.cfg.Issuer {
		return nil, v.invalid("the access token was issued by another issuer", nil)
	}
	if !slices.Contains(c.Audience, v.cfg.Audience) {
		return nil, v.invalid("the access token is not meant for this resource", nil)
	}
	if c.Expiry == nil || c.IssuedAt == nil || c.Subject == "" || c.ClientID == "" || c.JTI == "" {
		return nil, v.invalid("the access token lacks a required claim", nil)
	}
	now := v.now()
	exp := time.Unix(*c.Expiry, 0)
	if !now.Before(exp.Add(v.cfg.Leeway)) {
		return nil, v.invalid("the access token has expired", nil)
	}
	iat := time.Unix(*c.IssuedAt, 0)
	if iat.After(now.Add(v.cfg.Leeway)) {
		return nil, v.invalid("the access token is issued in the future", nil)
	}
	if c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(now.Add(v.cfg.Leeway)) {
		return nil, v.invalid("the access token is not valid yet", nil)
	}
	t := &Token{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, ClientID: c.ClientID,
		JTI: c.JTI, Scopes: strings.Fields(c.Scope), ACR: c.ACR, AMR: c.AMR,
		IssuedAt: iat, ExpiresAt: exp, Raw: raw,
	}
	if c.AuthTime != nil {
		t.AuthTime = time.Unix(*c.AuthTime, 0)
	}
	return t, nil
}

// Check is the plain-function form of the middleware, for any router:
// it extracts the bearer token of r, validates it and checks req. On
// failure the returned *Error says what to answer (err.Write(w)).
func (v *Validator) Check(r *http.Request, req Requirement) (*Token, *Error) {
	raw := BearerToken(r)
	if raw == "" {
		// RFC 6750 §3.1: no error code when the request had no token.
		return nil, &Error{Status: http.StatusUnauthorized, Challenge: v.challenge("", "")}
	}
	t, err := v.Validate(r.Context(), raw)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, v.invalid("the access token is not valid", err)
	}
	if e := v.Satisfies(r.Context(), t, req); e != nil {
		return nil, e
	}
	return t, nil
}

// Satisfies checks a validated token against req: the RFC 9470 challenge
// when its acr ranks below req.ACR or its auth_time is older than
// req.MaxAge, 403 insufficient_scope when a scope is missing.
func (v *Validator) Satisfies(ctx context.Context, t *Token, req Requirement) *Error {
	if req.ACR != "" || req.MaxAge > 0 {
		ch := v.challenge(ErrInsufficientUserAuthentication, "")
		if req.ACR != "" {
			ch.ACRValues = []string{req.ACR}
		}
		if req.MaxAge > 0 {
			ch.MaxAge, ch.HasMaxAge = int64(req.MaxAge/time.Second), true
		}
		if req.ACR != "" {
			ladder, err := v.levels(ctx)
			if err != nil {
				return &Error{Status: http.StatusServiceUnavailable, err: err}
			}
			want := slices.Index(ladder, req.ACR)
			if want < 0 {
				return &Error{Status: http.StatusInternalServerError, err: fmt.Errorf("rs: the route requires acr %q, which the ladder %q does not know", req.ACR, ladder)}
			}
			if got := slices.Index(ladder, t.ACR); t.ACR == "" || got < want {
				ch.Description = "A different authentication level is required"
				return &Error{Status: http.StatusUnauthorized, Challenge: ch}
			}
		}
		if req.MaxAge > 0 {
			// Whole seconds, as sent: auth_time has one-second resolution.
			limit := ch.MaxAge
			if t.AuthTime.IsZero() || v.now().Unix()-t.AuthTime.Unix() > limit {
				ch.Description = "More recent authentication is required"
				return &Error{Status: http.StatusUnauthorized, Challenge: ch}
			}
		}
	}
	for _, s := range req.Scopes {
		if !slices.Contains(t.Scopes, s) {
			ch := v.challenge(ErrInsufficientScope, "the access token lacks a required scope")
			ch.Scope = strings.Join(req.Scopes, " ")
			return &Error{Status: http.StatusForbidden, Challenge: ch}
		}
	}
	return nil
}

type tokenKey struct{}

// Require returns net/http middleware that lets a request through only
// with a valid token meeting req; the token is then in the request's
// context (FromContext). Otherwise it answers the Error.
func (v *Validator) Require(req Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, e := v.Check(r, req)
			if e != nil {
				e.Write(w)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, t)))
		})
	}
}

// FromContext returns the token Require validated.
func FromContext(ctx context.Context) (*Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(*Token)
	return t, ok
}
