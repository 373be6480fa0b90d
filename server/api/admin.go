package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// sessionInfo is a session as the admin API shows it. ID is the session's
// stable handle, which names it in the admin API's paths; since issue 13
// it is not what a browser's cookie holds (that also needs the session's
// key, renewed at every elevation), so it cannot be used as a cookie.
// SID is the sid of the ID tokens issued from the session (PublicSID),
// so an operator can tell which session a token came from.
type sessionInfo struct {
	ID         string   `json:"id"`
	SID        string   `json:"sid"`
	CreatedAt  int64    `json:"created_at"`
	LastSeenAt int64    `json:"last_seen_at"`
	Levels     []string `json:"levels"`
	ClientIDs  []string `json:"client_ids"`
}

// account loads the account named by the path's user_id, answering 404
// when there is none.
func (h *Handler) account(w http.ResponseWriter, r *http.Request) (*session.Account, bool) {
	a, err := h.p.Store().GetAccount(r.Context(), r.PathValue("user_id"))
	if err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return nil, false
	}
	return a, true
}

// liveSessions are the user's sessions that have not timed out.
func (h *Handler) liveSessions(ctx context.Context, sub string) ([]*session.Session, error) {
	all, err := h.p.Store().ListSessions(ctx, sub)
	if err != nil {
		return nil, err
	}
	var out []*session.Session
	for _, s := range all {
		if h.p.Live(s) != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// listSessions is GET /api/v1/users/{user_id}/sessions, with the levels
// each session satisfies now (computed from its verifications, as for an
// authorization request without max_age).
func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authenticate(w, r, ScopeAdmin, false); !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	ss, err := h.liveSessions(r.Context(), a.Subject)
	if err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	out := []sessionInfo{}
	for _, s := range ss {
		info := sessionInfo{ID: s.ID, SID: h.p.PublicSID(s.ID), CreatedAt: s.CreatedAt.Unix(), LastSeenAt: s.LastSeenAt.Unix(),
			Levels: h.p.SatisfiedLevels(s.Verifications, nil, a), ClientIDs: s.ClientIDs}
		if info.Levels == nil {
			info.Levels = []string{}
		}
		if info.ClientIDs == nil {
			info.ClientIDs = []string{}
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// revokeUserSessions is DELETE /api/v1/users/{user_id}/sessions.
func (h *Handler) revokeUserSessions(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if err := h.endSessions(r.Context(), c, a.Subject); err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// endSessions ends everything the user's sign-ins gave: every grant of
// sub, offline ones (offline_access) included, so that their refresh and
// access tokens stop working at once, then every session. The grants go
// first: EndUserGrants alone makes each of them dead, also one that no
// index found.
func (h *Handler) endSessions(ctx context.Context, c *caller, sub string) error {
	if err := h.p.Store().EndUserGrants(ctx, sub); err != nil {
		return err
	}
	all, err := h.p.Store().ListSessions(ctx, sub)
	if err != nil {
		return err
	}
	for _, s := range all {
		if err := h.p.Store().EndSession(ctx, s.ID); err != nil {
			return err
		}
		h.p.Audit(ctx, obs.EventAdminSessionRevoked, "sub", sub, "client_id", c.client.GetID())
	}
	return nil
}

// revokeSession is DELETE /api/v1/sessions/{id}: the session and every
// grant derived from it end.
func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	s, err := h.p.Store().GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return
	}
	// Every grant of the session ends with it, offline ones included: an
	// operator's end is not a sign-out.
	if err := h.p.Store().EndSession(r.Context(), s.ID); err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return
	}
	h.p.Audit(r.Context(), obs.EventAdminSessionRevoked, "sub", s.Subject, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}

// dropElevation is POST /api/v1/sessions/{id}/drop-elevation: every level
// above the lowest falls away at once (authn.Ladder.DropElevation); the
// next authorization must step up again. Tokens already issued keep their
// claims until they expire.
func (h *Handler) dropElevation(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	ctx := r.Context()
	s, err := h.p.Store().GetSession(ctx, r.PathValue("id"))
	if err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return
	}
	keep := h.p.Ladder().DropElevation(s.Verifications, h.p.Now())
	if err := h.p.Store().ReplaceVerifications(ctx, s.ID, s.Subject, keep); err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return
	}
	h.p.Audit(ctx, obs.EventElevationDropped, "sub", s.Subject, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}

// lock is POST /api/v1/users/{user_id}/lock: every attempt to prove a
// factor is refused (429, on the hosted pages and the APIs alike) until
// unlock, and the user's sessions and grants end (endSessions).
func (h *Handler) lock(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if err := h.p.Store().LockAccount(r.Context(), a.Subject); err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return
	}
	h.p.Audit(r.Context(), obs.EventAccountLocked, "sub", a.Subject, "client_id", c.client.GetID())
	if err := h.endSessions(r.Context(), c, a.Subject); err != nil {
		// The lock holds; the sessions could not all be ended.
		h.storeFailure(w, r, err, "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// unlock is POST /api/v1/users/{user_id}/unlock: lifts an operator's lock
// and resets the failure budget (ends a lockout).
func (h *Handler) unlock(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if err := h.p.Store().UnlockAccount(r.Context(), a.Subject); err != nil && !errors.Is(err, session.ErrNotFound) {
		h.storeFailure(w, r, err, "")
		return
	}
	h.p.Audit(r.Context(), obs.EventAccountUnlocked, "sub", a.Subject, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}

// recoveryLink is POST /api/v1/users/{user_id}/recovery-link (PRODUCT.md
// §11): a one-time link, valid for an hour, for a user who lost every
// factor. Opened, it asks for a new password only (the operator vouched
// for the user), removes the account's second factors, ends its sessions
// and grants, and the next sign-in must enroll a new second factor. Only
// a hash of the link's secret is stored; the link is in this answer
// alone.
func (h *Handler) recoveryLink(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if a.Disabled {
		fail(w, http.StatusConflict, "user_disabled", "the account is disabled; enable it first")
		return
	}
	link, exp, err := h.p.IssueRecoveryLink(r.Context(), a)
	if err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	h.p.Audit(r.Context(), obs.EventRecoveryLink, "sub", a.Subject, "client_id", c.client.GetID(), "expires_at", exp.Unix())
	writeJSON(w, http.StatusCreated, map[string]any{"url": link, "expires_at": exp.Unix()})
}
