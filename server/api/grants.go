package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// Grant types of the step-up grants API (PropelAuth's names).
const (
	grantOneTime   = "ONE_TIME_USE"
	grantTimeBased = "TIME_BASED"
)

// maxGrantLifetime bounds valid_for_seconds: a grant is a short-lived
// proof for one action, not a session.
const maxGrantLifetime = 24 * time.Hour

// maxActionLen bounds action_type and user_id.
const maxActionLen = 256

type verifyTOTPRequest struct {
	UserID          string `json:"user_id"`
	ActionType      string `json:"action_type"`
	Code            string `json:"code"`
	GrantType       string `json:"grant_type"`
	ValidForSeconds int64  `json:"valid_for_seconds"`
	// Factor and Password are for verify-factor only.
	Factor   string `json:"factor,omitempty"`
	Password string `json:"password,omitempty"`
}

type verifyTOTPResponse struct {
	StepUpGrant string `json:"step_up_grant"`
	ExpiresAt   int64  `json:"expires_at"`
}

// verifyTOTP is POST /api/v1/step-up/verify-totp: verify the user's TOTP
// code for an action and create a grant for it.
func (h *Handler) verifyTOTP(w http.ResponseWriter, r *http.Request) { h.grant(w, r, "totp") }

// verifyGrantFactor is POST /api/v1/step-up/verify-factor: the same for
// any factor the API can check without sending anything ("factor":
// "totp", "recovery" or "password").
func (h *Handler) verifyGrantFactor(w http.ResponseWriter, r *http.Request) { h.grant(w, r, "") }

// grantFactors are the factors a step-up grant may rest on.
var grantFactors = []string{"password", "recovery", "totp"}

// grant verifies a factor (fixed, or "" for the body's) and creates a
// step-up grant.
func (h *Handler) grant(w http.ResponseWriter, r *http.Request, fixed string) {
	c, ok := h.authenticate(w, r, ScopeGrants, false)
	if !ok {
		return
	}
	var req verifyTOTPRequest
	if !decode(w, r, &req) {
		return
	}
	name := fixed
	if fixed == "" {
		name = req.Factor
	}
	switch {
	case fixed != "" && (req.Factor != "" || req.Password != ""):
		fail(w, http.StatusBadRequest, errInvalidRequest, "verify-totp takes a code only; use verify-factor for other factors")
		return
	case !slices.Contains(grantFactors, name):
		fail(w, http.StatusBadRequest, errInvalidRequest, "factor must be one of "+strings.Join(grantFactors, ", "))
		return
	case req.UserID == "" || len(req.UserID) > maxActionLen:
		fail(w, http.StatusBadRequest, errInvalidRequest, "user_id is required")
		return
	case req.ActionType == "" || len(req.ActionType) > maxActionLen:
		fail(w, http.StatusBadRequest, errInvalidRequest, "action_type is required (at most 256 bytes)")
		return
	case req.GrantType != grantOneTime && req.GrantType != grantTimeBased:
		fail(w, http.StatusBadRequest, errInvalidRequest, "grant_type must be ONE_TIME_USE or TIME_BASED")
		return
	case req.ValidForSeconds < 1 || req.ValidForSeconds > int64(maxGrantLifetime/time.Second):
		fail(w, http.StatusBadRequest, errInvalidRequest, "valid_for_seconds must be between 1 and 86400")
		return
	}
	ip, ok := h.endUserIP(r, c)
	if !ok {
		fail(w, http.StatusBadRequest, errInvalidRequest, EndUserIPHeader+" is not an IP address")
		return
	}
	acct, err := h.p.Store().GetAccount(r.Context(), req.UserID)
	if err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return
	}
	f := h.factors[name]
	if !f.enrolled(h.p, acct) {
		fail(w, http.StatusBadRequest, errNotEnrolled, "the user has no "+name+" factor")
		return
	}
	if !h.verify(w, r, c, f, acct, ip, proof{Code: req.Code, Password: req.Password}) {
		return
	}
	grant := randomToken()
	exp := h.p.Now().Add(time.Duration(req.ValidForSeconds) * time.Second)
	g := &session.StepUpGrant{Subject: acct.Subject, Action: req.ActionType, ClientID: c.client.GetID(), OneTime: req.GrantType == grantOneTime, ExpiresAt: exp, Factor: name}
	if err := h.p.Store().PutStepUpGrant(r.Context(), hashGrant(grant), g); err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	h.p.Audit(r.Context(), obs.EventGrantIssued, "sub", acct.Subject, "client_id", c.client.GetID(), "action", req.ActionType, "grant_type", req.GrantType, "factor", name)
	writeJSON(w, http.StatusOK, verifyTOTPResponse{StepUpGrant: grant, ExpiresAt: exp.Unix()})
}

// verifyGrantResponse says the grant holds, and what it rests on
// ("totp", "recovery" or "password"), so a backend whose actions need
// different proof can tell a password re-entry from an app code.
type verifyGrantResponse struct {
	Success bool   `json:"success"`
	Factor  string `json:"factor"`
}

type verifyGrantRequest struct {
	UserID     string `json:"user_id"`
	ActionType string `json:"action_type"`
	Grant      string `json:"grant"`
}

// verifyGrant is POST /api/v1/step-up/verify-grant: does the grant hold
// for this user and action? A one-time grant is consumed by the call
// that succeeds; a call for another user or action consumes nothing.
func (h *Handler) verifyGrant(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeGrants, false)
	if !ok {
		return
	}
	var req verifyGrantRequest
	if !decode(w, r, &req) {
		return
	}
	if req.UserID == "" || req.ActionType == "" || req.Grant == "" {
		fail(w, http.StatusBadRequest, errInvalidRequest, "user_id, action_type and grant are required")
		return
	}
	// A locked account's grants do not hold (and are not consumed).
	acct, err := h.p.Store().GetAccount(r.Context(), req.UserID)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		h.storeFailure(w, r, err, "")
		return
	}
	ok = false
	var factor string
	if acct != nil && !acct.Locked && !acct.Disabled {
		if factor, ok, err = h.p.Store().UseStepUpGrant(r.Context(), hashGrant(req.Grant), req.UserID, req.ActionType, c.client.GetID(), h.p.Now()); err != nil {
			h.storeFailure(w, r, err, "")
			return
		}
	}
	if !ok {
		h.p.Audit(r.Context(), obs.EventGrantRefused, "sub", req.UserID, "client_id", c.client.GetID(), "action", req.ActionType)
		fail(w, http.StatusNotFound, errGrantNotFound, "no valid grant for this user and action (unknown, expired, used, for another user or action, or the user is locked)")
		return
	}
	h.p.Audit(r.Context(), obs.EventGrantUsed, "sub", req.UserID, "client_id", c.client.GetID(), "action", req.ActionType, "factor", factor)
	writeJSON(w, http.StatusOK, verifyGrantResponse{Success: true, Factor: factor})
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashGrant is how grants are stored: a store dump cannot be replayed.
func hashGrant(g string) string {
	sum := sha256.Sum256([]byte(g))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
