package login

import (
	"net/http"

	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/templates"
)

// The approval page of a backchannel authentication request (OpenID
// CIBA): the flow op.Provider opens for an approval link runs the same
// factor pages as a step-up, with its verifications kept in the flow;
// once the level is reached, this page shows the client's name, the
// binding message and the level, with approve and deny.

// CIBAApproval implements op.Pages.
func (h *Handler) CIBAApproval(w http.ResponseWriter, r *http.Request, f *op.Flow, clientName, level string) {
	pg := h.page(w, r, nil, "ciba.title", "")
	pg.ClientName = clientName
	h.pages.Render(w, http.StatusOK, templates.PageCIBA, templates.CIBAData{
		Page:           pg,
		BindingMessage: f.CIBA.BindingMessage,
		Level:          level,
		ApproveAction:  h.flowURL(f, "/ciba/approve"),
		DenyAction:     h.flowURL(f, "/ciba/deny"),
	})
}

// CIBAOpen implements op.Pages.
func (h *Handler) CIBAOpen(w http.ResponseWriter, r *http.Request, action string) {
	h.pages.Render(w, http.StatusOK, templates.PageCIBAOpen, templates.CIBAOpenData{
		Page:   h.page(w, r, nil, "ciba_open.title", ""),
		Action: action,
	})
}

// CIBADone implements op.Pages.
func (h *Handler) CIBADone(w http.ResponseWriter, r *http.Request, approved bool) {
	title, msg := "ciba.denied_title", "ciba.denied"
	if approved {
		title, msg = "ciba.approved_title", "ciba.approved"
	}
	h.pages.Render(w, http.StatusOK, templates.PageInfo, templates.InfoData{
		Page:    templates.Page{Title: title},
		Message: msg,
	})
}

// cibaState loads an approval flow; anything else is an error page.
func (h *Handler) cibaState(w http.ResponseWriter, r *http.Request) (*state, bool) {
	st, ok := h.load(w, r)
	if !ok {
		return nil, false
	}
	if !st.flow.IsCIBA() {
		h.Error(w, r, http.StatusNotFound, "error.ciba_none")
		return nil, false
	}
	return st, true
}

// cibaApprove records the approval, if the flow's own verifications
// still reach the level.
func (h *Handler) cibaApprove(w http.ResponseWriter, r *http.Request) {
	st, ok := h.cibaState(w, r)
	if !ok {
		return
	}
	if st.acct == nil || st.acct.Locked || st.acct.Disabled {
		h.p.DenyCIBA(w, r, st.flow, st.c)
		return
	}
	h.p.ApproveCIBA(w, r, st.flow, st.c, st.acct)
}

// cibaDeny records the refusal. It needs no authentication: the link
// reached the user, and refusing grants nothing.
func (h *Handler) cibaDeny(w http.ResponseWriter, r *http.Request) {
	st, ok := h.cibaState(w, r)
	if !ok {
		return
	}
	h.p.DenyCIBA(w, r, st.flow, st.c)
}
