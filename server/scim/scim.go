// Package scim serves /scim/v2 (RFC 7643/7644, PRODUCT.md §10): Users on
// the account database, for provisioning clients such as Microsoft Entra
// ID and Okta. Every call carries a client_credentials access token of
// this issuer with scope stepup:scim; answers and errors are
// application/scim+json.
package scim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/rs"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
)

// Schema URNs.
const (
	SchemaUser      = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaError     = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaList      = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatch     = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaSPConfig  = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaSchema    = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	SchemaResType   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	contentType     = "application/scim+json"
	defaultCount    = 100
	maxCount        = 200
	maxPatchOps     = 100
	conflictRetries = 5
)

// Handler serves /scim/v2.
type Handler struct{ p *op.Provider }

// New returns the SCIM handler of p.
func New(p *op.Provider) *Handler { return &Handler{p: p} }

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /scim/v2/ServiceProviderConfig", h.auth(h.spConfig))
	mux.HandleFunc("GET /scim/v2/Schemas", h.auth(h.schemas))
	mux.HandleFunc("GET /scim/v2/ResourceTypes", h.auth(h.resourceTypes))
	mux.HandleFunc("GET /scim/v2/Users", h.auth(h.list))
	mux.HandleFunc("POST /scim/v2/Users", h.auth(h.create))
	mux.HandleFunc("GET /scim/v2/Users/{id}", h.auth(h.get))
	mux.HandleFunc("PUT /scim/v2/Users/{id}", h.auth(h.replace))
	mux.HandleFunc("PATCH /scim/v2/Users/{id}", h.auth(h.patch))
	mux.HandleFunc("DELETE /scim/v2/Users/{id}", h.auth(h.delete))
}

type scimError struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, scimType, detail string) {
	writeJSON(w, status, scimError{Schemas: []string{SchemaError}, Status: strconv.Itoa(status), ScimType: scimType, Detail: detail})
}

type caller struct{ client string }

type ctxKey struct{}

// auth checks the bearer token: a client_credentials token of a client
// that has scope stepup:scim (401 without a valid token, 403 otherwise).
func (h *Handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, code, detail string) {
			ch := rs.Challenge{Error: code, Description: detail}
			if code == "insufficient_scope" {
				ch.Scope = op.ScopeSCIM
			}
			w.Header().Set("WWW-Authenticate", ch.String())
			h.p.Audit(r.Context(), obs.EventAPIAuthFailed, "path", r.URL.Path, "reason", code)
			fail(w, status, "", detail)
		}
		raw := rs.BearerToken(r)
		if raw == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			fail(w, http.StatusUnauthorized, "", "a bearer access token is required")
			return
		}
		tok, err := h.p.VerifyAccessToken(r.Context(), raw)
		if errors.Is(err, op.ErrBadToken) {
			refuse(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
			return
		}
		if err != nil {
			h.unavailable(w, r, err)
			return
		}
		c, ok := h.p.Client(tok.ClientID)
		if !ok {
			refuse(http.StatusUnauthorized, "invalid_token", "the access token's client is no longer registered")
			return
		}
		if !tok.ClientCredentials() || !slices.Contains(tok.Scopes, op.ScopeSCIM) || !c.HasScope(op.ScopeSCIM) {
			refuse(http.StatusForbidden, "insufficient_scope", "SCIM needs a client_credentials token with scope "+op.ScopeSCIM)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, caller{client: c.GetID()})))
	}
}

func clientOf(ctx context.Context) string { c, _ := ctx.Value(ctxKey{}).(caller); return c.client }

func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	h.p.Audit(r.Context(), obs.EventStoreDown, "path", r.URL.Path, "err", err.Error(), "reason", "store_unavailable")
	w.Header().Set("Retry-After", "5")
	fail(w, http.StatusServiceUnavailable, "", "the service is temporarily unavailable")
}

// admin is what SCIM needs of the server's store: the account database
// behind it and the overlay's disable and delete.
type admin interface {
	Durable() account.Store
	SetActive(ctx context.Context, subject string, active bool) error
	DeleteAccount(ctx context.Context, subject string) error
}

func (h *Handler) store(w http.ResponseWriter) (admin, bool) {
	s, ok := h.p.Store().(admin)
	if !ok {
		fail(w, http.StatusNotImplemented, "", "this store keeps no account database")
	}
	return s, ok
}

// endSessions ends every grant (refresh tokens included) and session of
// sub, as the admin API's disable does.
func (h *Handler) endSessions(ctx context.Context, sub string) error {
	st := h.p.Store()
	if err := st.EndUserGrants(ctx, sub); err != nil {
		return err
	}
	all, err := st.ListSessions(ctx, sub)
	if err != nil {
		return err
	}
	for _, s := range all {
		if err := st.EndSession(ctx, s.ID); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, session.ErrNotFound):
		fail(w, http.StatusNotFound, "", "no such user")
	case errors.Is(err, account.ErrTaken):
		fail(w, http.StatusConflict, "uniqueness", "the userName or email is already another user's")
	case errors.Is(err, account.ErrConflict):
		fail(w, http.StatusPreconditionFailed, "", "the user changed since the version given in If-Match")
	default:
		h.unavailable(w, r, err)
	}
}

func randomSubject() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
