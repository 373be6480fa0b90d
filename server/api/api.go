// Package api serves stepup's JSON APIs under /api/v1/ (PRODUCT.md §7):
//
//   - step-up grants (scope stepup:grants): a backend verifies a factor
//     for a user and an action and gets a grant it checks later;
//   - API-first authentication sessions (scope stepup:authn for
//     confidential backends, or a user's own access token for native
//     apps): factors are verified by stepup through the API and the
//     session ends in a PKCE-bound authorization code redeemed at
//     /oauth/token;
//   - the operator's admin API (scope stepup:admin): sessions, elevation,
//     account locks, factor resets, disabling and deleting accounts.
//
// Every call carries a bearer access token of this issuer; the grants and
// admin APIs take only a client's own client_credentials token with the
// scope. Errors are {"error", "error_description"} with 400 (invalid
// input), 401 (no or bad token), 403 (missing scope), 404 (unknown), 429
// (rate limited) or 503 (store down). Factor checks share the hosted
// pages' abuse budgets: a wrong code or password counts against the
// user's one lockout budget.
package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/stepup-dev/stepup/rs"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/server/strictjson"
	"github.com/stepup-dev/stepup/session"
)

// Scopes a client needs (config clients[].scopes) for each API; op
// defines them, since it keeps every API scope out of users' tokens.
const (
	ScopeGrants = op.ScopeGrants
	ScopeAdmin  = op.ScopeAdmin
	ScopeAuthn  = op.ScopeAuthn
)

// EndUserIPHeader carries the end user's address when a backend calls on
// the user's behalf: the per-IP budget and IP binding apply to it.
const EndUserIPHeader = "Stepup-End-User-Ip"

// Handler serves /api/v1/.
type Handler struct {
	p *op.Provider
	// factors are the factors the APIs can verify, by request name.
	factors map[string]factor
}

// New returns the API handler of p.
func New(p *op.Provider) *Handler {
	fs := defaultFactors()
	for name, f := range codeFactors() {
		fs[name] = f
	}
	return &Handler{p: p, factors: fs}
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/step-up/verify-totp", h.verifyTOTP)
	mux.HandleFunc("POST /api/v1/step-up/verify-factor", h.verifyGrantFactor)
	mux.HandleFunc("POST /api/v1/step-up/verify-grant", h.verifyGrant)

	mux.HandleFunc("GET /api/v1/users/{user_id}/sessions", h.listSessions)
	mux.HandleFunc("DELETE /api/v1/users/{user_id}/sessions", h.revokeUserSessions)
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", h.revokeSession)
	mux.HandleFunc("POST /api/v1/sessions/{id}/drop-elevation", h.dropElevation)
	mux.HandleFunc("POST /api/v1/users/{user_id}/lock", h.lock)
	mux.HandleFunc("POST /api/v1/users/{user_id}/unlock", h.unlock)
	mux.HandleFunc("POST /api/v1/users/{user_id}/recovery-link", h.recoveryLink)
	mux.HandleFunc("DELETE /api/v1/users/{user_id}/factors/{kind}", h.resetFactor)
	mux.HandleFunc("POST /api/v1/users/{user_id}/disable", h.disable)
	mux.HandleFunc("POST /api/v1/users/{user_id}/enable", h.enable)
	mux.HandleFunc("DELETE /api/v1/users/{user_id}", h.deleteUser)

	mux.HandleFunc("POST /api/v1/authn/sessions", h.startSession)
	mux.HandleFunc("GET /api/v1/authn/sessions/{id}", h.getSession)
	mux.HandleFunc("POST /api/v1/authn/sessions/{id}/send", h.sendCode)
	mux.HandleFunc("POST /api/v1/authn/sessions/{id}/verify", h.verifyFactor)
	mux.HandleFunc("POST /api/v1/authn/sessions/{id}/complete", h.complete)
}

// Error codes of the APIs (besides the OAuth ones).
const (
	errInvalidRequest = "invalid_request"
	errInvalidToken   = "invalid_token"
	errScope          = "insufficient_scope"
	errInvalidCode    = "invalid_code"
	errInvalidCreds   = "invalid_credentials"
	errNotEnrolled    = "user_not_enrolled"
	errRateLimited    = "rate_limited"
	errGrantNotFound  = "grant_not_found"
	errUserNotFound   = "user_not_found"
	errSessionGone    = "session_not_found"
	errIPMismatch     = "ip_mismatch"
	errLocked         = "user_locked"
	errUnavailable    = "temporarily_unavailable"
	errBusy           = "busy"
)

type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, apiError{Error: code, Description: desc})
}

// storeFailure answers a store error: 503 while it is down (nothing was
// half-written: every change is one atomic store call), 404 for a record
// that vanished.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	if errors.Is(err, session.ErrNotFound) && notFound != "" {
		fail(w, http.StatusNotFound, notFound, "no such "+strings.TrimSuffix(strings.ReplaceAll(notFound, "_", " "), " not found"))
		return
	}
	h.p.Audit(r.Context(), obs.EventStoreDown, "path", r.URL.Path, "err", err.Error(), "reason", "store_unavailable")
	w.Header().Set("Retry-After", "5")
	fail(w, http.StatusServiceUnavailable, errUnavailable, "the service is temporarily unavailable")
}

// caller is who called: a validated access token and its client.
type caller struct {
	tok    *op.AccessToken
	client *op.Client
}

// authenticate checks the bearer token. scope, when not "", must be
// granted to a client_credentials token; with userOK a user's own
// access token is accepted instead (native apps).
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, scope string, userOK bool) (*caller, bool) {
	raw := rs.BearerToken(r)
	refuse := func(status int, code, desc string) (*caller, bool) {
		ch := rs.Challenge{Error: code, Description: desc}
		if scope != "" && code == errScope {
			ch.Scope = scope
		}
		w.Header().Set("WWW-Authenticate", ch.String())
		h.p.Audit(r.Context(), obs.EventAPIAuthFailed, "path", r.URL.Path, "reason", code)
		fail(w, status, code, desc)
		return nil, false
	}
	if raw == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		fail(w, http.StatusUnauthorized, errInvalidToken, "a bearer access token is required")
		return nil, false
	}
	tok, err := h.p.VerifyAccessToken(r.Context(), raw)
	if errors.Is(err, op.ErrBadToken) {
		return refuse(http.StatusUnauthorized, errInvalidToken, "the access token is invalid, expired or revoked")
	}
	if err != nil {
		h.storeFailure(w, r, err, "")
		return nil, false
	}
	c, ok := h.p.Client(tok.ClientID)
	if !ok {
		return refuse(http.StatusUnauthorized, errInvalidToken, "the access token's client is no longer registered")
	}
	if tok.ClientCredentials() {
		// A client's own token holds only the scopes the client still has.
		if scope == "" || !slices.Contains(tok.Scopes, scope) || !c.HasScope(scope) {
			return refuse(http.StatusForbidden, errScope, "this API needs a client_credentials token with scope "+scope)
		}
		return &caller{tok: tok, client: c}, true
	}
	if !userOK {
		return refuse(http.StatusForbidden, errScope, "this API needs a client_credentials token with scope "+scope)
	}
	return &caller{tok: tok, client: c}, true
}

// decode reads a JSON body strictly (strictjson): unknown fields are an
// error, so a misspelt field never silently changes the meaning of a
// call, and a name given twice or in another case is refused, so a WAF
// in front of stepup and stepup read the same values. The body is capped
// at op.MaxBodyBytes (413 beyond).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	op.LimitBody(w, r)
	if err := decodeJSON(r.Body, v); err != nil {
		if op.BodyTooLarge(err) {
			fail(w, http.StatusRequestEntityTooLarge, errInvalidRequest, "the body is larger than "+strconv.Itoa(op.MaxBodyBytes)+" bytes")
			return false
		}
		fail(w, http.StatusBadRequest, errInvalidRequest, "the body is not the expected JSON object: "+err.Error())
		return false
	}
	return true
}

func decodeJSON(body io.Reader, v any) error { return strictjson.Decode(body, v) }

// endUserIP is the address of the end user an API call is about: the
// caller's own address for a native app (a user's token); for a backend,
// the address it passes in the Stepup-End-User-Ip header (invalid → ok
// false; absent → the zero Addr).
func (h *Handler) endUserIP(r *http.Request, c *caller) (netip.Addr, bool) {
	if !c.tok.ClientCredentials() {
		return h.p.ClientIP(r), true
	}
	v := strings.TrimSpace(r.Header.Get(EndUserIPHeader))
	if v == "" {
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func retryAfter(w http.ResponseWriter, h *Handler) {
	w.Header().Set("Retry-After", strconv.Itoa(int(h.p.LockoutWindow().Seconds())))
}
