package login

import (
	"net/http"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/templates"
)

// recovery verifies a recovery code: one use each (the store removes its
// hash atomically), a wrong one counted in the user's one budget.
func (h *Handler) recovery(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	if st.sess == nil || st.acct == nil || !offered(h.p.Decide(st.flow, st.c, st.sess, st.acct), authn.Recovery) {
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	try, ok := h.reserve(w, r, st.acct.Subject, "", func(status int, msg string) {
		h.failed(w, r, st, authn.Recovery, status, msg)
	})
	if !ok {
		return
	}
	good, err := h.p.Recovery().Consume(ctx, st.acct.Subject, r.PostFormValue("code"))
	if err != nil {
		try.succeeded() // nothing was checked
		h.p.Unavailable(w, r, err)
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventStepUpFailed, "reason", "bad_code", "factor", "recovery", "sub", st.acct.Subject, "client_id", st.c.GetID())
		h.failed(w, r, st, authn.Recovery, http.StatusUnauthorized, "code.bad_recovery")
		return
	}
	try.succeeded()
	st.acct.RecoveryCodes--
	h.p.Audit(ctx, obs.EventRecoveryUsed, "sub", st.acct.Subject, "client_id", st.c.GetID(), "left", st.acct.RecoveryCodes)
	h.verified(w, r, st, authn.Verification{Factor: authn.Recovery, At: h.p.Now()})
}

// offerRecoveryCodes is called once a second factor has been enrolled in
// the flow and verified: a user without recovery codes gets a set, shown
// once on a page that continues the flow (PRODUCT.md §5). It reports
// whether it answered; when it did not, the caller moves on.
func (h *Handler) offerRecoveryCodes(w http.ResponseWriter, r *http.Request, st *state) bool {
	if !h.p.FactorEnabled(authn.Recovery) || st.acct == nil || st.acct.RecoveryCodes > 0 {
		return false
	}
	ctx := r.Context()
	codes, err := h.p.Recovery().Generate(ctx, st.acct.Subject)
	if err != nil {
		// The factor is enrolled and verified: the flow goes on without
		// codes, which can be made later (/account).
		h.p.Log().WarnContext(ctx, "generating recovery codes failed", "err", err)
		return false
	}
	st.acct.RecoveryCodes = len(codes)
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "recovery", "sub", st.acct.Subject, "client_id", st.c.GetID())
	h.pages.Render(w, http.StatusOK, "info", templates.InfoData{
		Page:          h.page(w, r, st, "recovery.save_title", ""),
		Message:       "recovery.save_flow",
		RecoveryCodes: codes,
		ContinueURL:   h.flowURL(st.flow, ""),
	})
	return true
}
