package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// accountAdmin is what the store needs for disable, enable and delete:
// account.Overlay, with accounts in the database. A store without it
// answers 501.
type accountAdmin interface {
	SetActive(ctx context.Context, subject string, active bool) error
	DeleteAccount(ctx context.Context, subject string) error
}

func (h *Handler) accountAdmin(w http.ResponseWriter) (accountAdmin, bool) {
	s, ok := h.p.Store().(accountAdmin)
	if !ok {
		fail(w, http.StatusNotImplemented, "not_implemented", "this store cannot disable or delete accounts")
	}
	return s, ok
}

// disable is POST /api/v1/users/{user_id}/disable (PRODUCT.md §9). The
// two stores are written in the order that fails closed: the database
// first (every step of a flow, completion and code exchange included,
// and every refresh read it, so nothing new is issued from then on),
// then Redis (every grant and session of the user ends, so whatever was
// issued before stops). A failure half-way answers 503 and leaves the
// account disabled; calling again completes it.
func (h *Handler) disable(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	st, ok := h.accountAdmin(w)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if err := h.disableAndEnd(r.Context(), c, st, a.Subject); err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return
	}
	h.p.Audit(r.Context(), obs.EventAccountDisabled, "sub", a.Subject, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) disableAndEnd(ctx context.Context, c *caller, st accountAdmin, sub string) error {
	if err := st.SetActive(ctx, sub, false); err != nil {
		return err
	}
	return h.endSessions(ctx, c, sub)
}

// enable is POST /api/v1/users/{user_id}/enable: the user can sign in
// again. What disabling ended stays ended.
func (h *Handler) enable(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	st, ok := h.accountAdmin(w)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if err := st.SetActive(r.Context(), a.Subject, true); err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return
	}
	h.p.Audit(r.Context(), obs.EventAccountEnabled, "sub", a.Subject, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}

// deleteUser is DELETE /api/v1/users/{user_id}: the account is disabled
// and everything it has in Redis ended (as disable), then the account and
// its factors are deleted from the database. A failure at any step
// answers 503 with the account at worst disabled and ended; calling
// again completes the deletion.
func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	st, ok := h.accountAdmin(w)
	if !ok {
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := h.disableAndEnd(ctx, c, st, a.Subject); err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return
	}
	// Another call may have deleted it since: the account is gone either way.
	if err := st.DeleteAccount(ctx, a.Subject); err != nil && !errors.Is(err, session.ErrNotFound) {
		h.storeFailure(w, r, err, "")
		return
	}
	h.p.Audit(ctx, obs.EventAccountDeleted, "sub", a.Subject, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}
