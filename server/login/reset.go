package login

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// Forgot password (PRODUCT.md §11) is a step-up of its own, kept in a
// reset flow (op.Reset): the address the user types gets an emailed
// code; then the account's strongest second factor is asked on the usual
// step-up pages (/login/{id}); then a new password is set, and every
// session and grant of the account ends. The reset signs nobody in: its
// verifications stay in the flow, and the user signs in afterwards with
// the new password, at whatever level the application then asks for.
//
// An address without an account goes through the same pages with the
// same answers: a flow is made, a code is stored (and never sent), and
// whatever code is typed is wrong.

const purposeReset = "reset:email"

// flowIDPattern is the shape of a flow id in a from= parameter.
var flowIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// returnTo is where a self-service page goes back to: the sign-in flow it
// was opened from (?from=), else /account.
func returnTo(from string) string {
	if flowIDPattern.MatchString(from) {
		return op.PathLoginPrefix + from
	}
	return op.PathAccount
}

func (h *Handler) registerReset(mux *http.ServeMux, post func(string, http.HandlerFunc)) {
	mux.HandleFunc("GET "+op.PathReset, h.forgot)
	post(op.PathReset, h.forgotSubmit)
	mux.HandleFunc("GET "+op.PathReset+"/{id}", h.resetShow)
	post(op.PathReset+"/{id}/code", h.resetCode)
	post(op.PathReset+"/{id}/resend", h.resetResend)
	post(op.PathReset+"/{id}/password", h.resetPassword)
	mux.HandleFunc("GET "+op.PathReset+"/link/{sub}/{token}", h.resetLink)
	post(op.PathReset+"/link/{sub}/{token}", h.resetLinkOpen)
}

// normalEmail checks a typed address: a plain addr-spec, lower-cased
// (addresses are unique ignoring case).
func normalEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 {
		return "", false
	}
	return strings.ToLower(s), true
}

func (h *Handler) renderForgot(w http.ResponseWriter, r *http.Request, from, email string, status int, errMsg string) {
	l := h.loc(r, nil)
	h.pages.Render(w, status, templates.PageEmailForm, templates.EmailFormData{
		Page:      h.page(w, r, nil, "forgot.title", errMsg),
		Intro:     l.T("forgot.intro"),
		Action:    op.PathReset + lq(r),
		Email:     email,
		Hidden:    map[string]string{"from": from},
		Submit:    l.T("forgot.submit"),
		CancelURL: returnTo(from),
	})
}

// forgot is the forgot-password page: the address form.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) {
	from := r.URL.Query().Get("from")
	if !flowIDPattern.MatchString(from) {
		from = ""
	}
	h.renderForgot(w, r, from, "", http.StatusOK, "")
}

// accountByEmail finds the account of an address, nil when there is none
// or it cannot sign in (disabled): both answer like an unknown address.
func (h *Handler) accountByEmail(ctx context.Context, email string) (*session.Account, error) {
	ef, ok := h.p.Store().(session.EmailFinder)
	if !ok {
		return nil, nil
	}
	a, err := ef.AccountByEmail(ctx, email)
	if errors.Is(err, session.ErrNotFound) || (err == nil && a.Disabled) {
		return nil, nil
	}
	return a, err
}

// forgotSubmit starts a reset for the typed address and sends its code.
func (h *Handler) forgotSubmit(w http.ResponseWriter, r *http.Request) {
	from := r.PostFormValue("from")
	if !flowIDPattern.MatchString(from) {
		from = ""
	}
	email, ok := normalEmail(r.PostFormValue("email"))
	if !ok {
		h.renderForgot(w, r, from, r.PostFormValue("email"), http.StatusBadRequest, "password.bad_email")
		return
	}
	ctx := r.Context()
	acct, err := h.accountByEmail(ctx, email)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	sub, factor := "", authn.Factor("")
	if acct != nil {
		sub, factor = acct.Subject, h.p.ResetFactor(acct)
	}
	// The flow is stored only once the send caps let its code through:
	// a flood of addresses fills no memory.
	f := h.p.NewReset(w, r, op.Reset{Email: email, Factor: factor}, sub, returnTo(from))
	if v := r.URL.Query().Get("ui_locales"); len(v) <= maxUILocales {
		f.UILocales = strings.Fields(v)
	}
	if pr := h.sendResetCode(r, f, acct); pr != nil {
		if status, msg, ok := h.answer(w, r, pr); ok {
			h.renderForgot(w, r, from, email, status, msg)
		}
		return
	}
	if err := h.p.SaveFlow(ctx, f); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventResetStarted, "sub", sub, "known", acct != nil, "factor", string(factor))
	http.Redirect(w, r, op.PathReset+"/"+f.ID+lq(r), http.StatusSeeOther)
}

// msgResetBadCode answers every refused reset code alike: a wrong one,
// one for an unknown address, and any code while the address's failure
// budget is spent (which must not tell that the address has an account).
const msgResetBadCode = "forgot.bad_code"

func resetBinding(f *op.Flow) otpcode.Binding {
	return otpcode.Binding{Session: "reset-" + f.ID, Purpose: purposeReset, To: f.Reset.Email}
}

// sendResetCode issues the reset's code and, when the address has an
// account, emails it.
func (h *Handler) sendResetCode(r *http.Request, f *op.Flow, acct *session.Account) *problem {
	var compose func(code string) (notify.Message, error)
	if acct != nil {
		lang := h.loc(r, nil).Lang()
		compose = func(code string) (notify.Message, error) {
			return notify.EmailIn(lang, f.Reset.Email, code, issuerLabel(h.p.Issuer()), h.p.Codes().TTL())
		}
	}
	// No per-user cap here, only per address and per IP: a cap that only
	// addresses with an account have would tell them apart.
	return h.sendToAddress(r, resetBinding(f), "", compose)
}

// sendToAddress makes a code for b within the send caps (per address and
// per client IP, and per user when sub names an account) and the resend
// cooldown, and, when compose is not nil, emails what it makes of the
// code. The email is sent after the answer, in the background: whether
// an address has an account must not show in how long the page takes,
// and a provider failure (audited) must not show on the page either.
func (h *Handler) sendToAddress(r *http.Request, b otpcode.Binding, sub string, compose func(code string) (notify.Message, error)) *problem {
	ctx := r.Context()
	pol := h.p.CodePolicy()
	budgets := h.p.SendBudgets(sub, b.To, h.p.ClientIP(r))
	if sub == "" {
		budgets = budgets[1:] // no account: no per-user cap
	}
	_, over, err := h.p.Reserve(ctx, pol.SendWindow.D(), budgets...)
	if err != nil {
		return &problem{down: err}
	}
	if len(over) > 0 {
		for _, bu := range over {
			h.p.Audit(ctx, obs.EventLocked, "budget", string(bu.Kind), "factor", "email", "purpose", b.Purpose, "sub", sub)
		}
		return &problem{status: http.StatusTooManyRequests, msg: msgSendCapped, retryAfter: pol.SendWindow.D()}
	}
	code, err := h.p.Codes().Issue(ctx, b)
	if errors.Is(err, otpcode.ErrCooldown) {
		h.p.Refund(ctx, budgets...)
		wait := h.p.Codes().Cooldown()
		return &problem{status: http.StatusTooManyRequests, retryAfter: wait, msg: h.loc(r, nil).T("code.cooldown", "Seconds", int(wait.Seconds()))}
	}
	if err != nil {
		h.p.Refund(ctx, budgets...)
		return &problem{down: err}
	}
	if compose != nil {
		h.mailLater(ctx, b.Purpose, sub, compose, code)
	}
	return nil
}

// mailLater sends an email after the answer (see sendToAddress).
func (h *Handler) mailLater(ctx context.Context, purpose, sub string, compose func(code string) (notify.Message, error), code string) {
	sender := h.p.Sender(authn.Email)
	if sender == nil {
		return
	}
	m, err := compose(code)
	if err != nil {
		h.p.Log().ErrorContext(ctx, "composing an email failed", "err", err, "purpose", purpose)
		return
	}
	bg := context.WithoutCancel(ctx)
	go func() {
		sctx, cancel := context.WithTimeout(bg, sendTimeout)
		defer cancel()
		if err := sender.Send(sctx, m); err != nil {
			h.p.Audit(bg, obs.EventCodeSendFailed, "factor", "email", "purpose", purpose, "sub", sub, "err", err.Error())
			return
		}
		h.p.Audit(bg, obs.EventCodeSent, "factor", "email", "purpose", purpose, "sub", sub)
	}()
}

// resetState loads a reset flow and its account (nil for an address
// without one); when it returns false it has answered.
func (h *Handler) resetState(w http.ResponseWriter, r *http.Request) (*op.Flow, *session.Account, bool) {
	f, err := h.p.ResetFlow(r, r.PathValue("id"))
	if errors.Is(err, session.ErrNotFound) {
		h.Error(w, r, http.StatusBadRequest, "forgot.expired")
		return nil, nil, false
	} else if errors.Is(err, op.ErrOtherBrowser) {
		h.Error(w, r, http.StatusForbidden, "forgot.other_browser")
		return nil, nil, false
	} else if err != nil {
		h.p.Unavailable(w, r, err)
		return nil, nil, false
	}
	var acct *session.Account
	if f.HintSubject != "" {
		acct, err = h.p.Store().GetAccount(r.Context(), f.HintSubject)
		if errors.Is(err, session.ErrNotFound) || (err == nil && acct.Disabled) {
			acct, err = nil, nil
		}
		if err != nil {
			h.p.Unavailable(w, r, err)
			return nil, nil, false
		}
		if acct != nil && !h.p.ResetAddressCurrent(f, acct) {
			// The account moved to another address since the reset began
			// (perhaps because the old mailbox is no longer safe): the
			// old address proves nothing, and gets no more codes.
			acct = nil
		}
	}
	return f, acct, true
}

func emailVerified(f *op.Flow) bool { return f.Reset.EmailVerified(f) }

func (h *Handler) renderResetCode(w http.ResponseWriter, r *http.Request, f *op.Flow, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageCode, templates.CodeData{
		Page:         h.page(w, r, nil, "code.title_email", errMsg),
		Factor:       string(authn.Email),
		Action:       op.PathReset + "/" + f.ID + "/code" + lq(r),
		Hint:         h.loc(r, nil).T("forgot.code_hint", "Email", maskEmail(f.Reset.Email)),
		ResendAction: op.PathReset + "/" + f.ID + "/resend" + lq(r),
		CancelAction: f.ReturnTo,
		CancelLink:   true,
	})
}

func (h *Handler) renderResetPassword(w http.ResponseWriter, r *http.Request, f *op.Flow, acct *session.Account, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageNewPassword, templates.NewPasswordData{
		Page:      h.page(w, r, nil, "forgot.new_title", errMsg),
		Intro:     h.loc(r, nil).T("forgot.new_intro"),
		Action:    op.PathReset + "/" + f.ID + "/password" + lq(r),
		Username:  acct.Username,
		MinLength: h.minLength(),
		CancelURL: f.ReturnTo,
	})
}

func (h *Handler) minLength() int {
	if n := h.p.PasswordPolicy().MinLength; n > 0 {
		return n
	}
	return password.DefaultMinLength
}

// resetShow shows the reset's current step: the emailed code, then (on
// the step-up pages) the second factor, then the new password.
func (h *Handler) resetShow(w http.ResponseWriter, r *http.Request) {
	f, acct, ok := h.resetState(w, r)
	if !ok {
		return
	}
	switch {
	case !emailVerified(f) || acct == nil:
		h.renderResetCode(w, r, f, http.StatusOK, "")
	case !h.p.ResetReady(f, acct):
		http.Redirect(w, r, op.PathLoginPrefix+f.ID, http.StatusSeeOther)
	default:
		h.renderResetPassword(w, r, f, acct, http.StatusOK, "")
	}
}

// resetCode verifies the emailed code, counted in the account's one
// failure budget (an unknown address has a budget of its own, as at
// sign-in) before it is checked.
func (h *Handler) resetCode(w http.ResponseWriter, r *http.Request) {
	f, acct, ok := h.resetState(w, r)
	if !ok {
		return
	}
	if emailVerified(f) && acct != nil {
		http.Redirect(w, r, op.PathReset+"/"+f.ID+lq(r), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	retry := func(status int, msg string) { h.renderResetCode(w, r, f, status, msg) }
	try, ok := h.reserveAs(w, r, f.HintSubject, f.Reset.Email, retry, msgResetBadCode)
	if !ok {
		return
	}
	good, err := h.p.Codes().Verify(ctx, resetBinding(f), r.PostFormValue("code"))
	if err != nil {
		try.succeeded() // nothing was checked
		h.p.Unavailable(w, r, err)
		return
	}
	if !good || acct == nil {
		try.failed()
		h.p.Audit(ctx, obs.EventStepUpFailed, "reason", "bad_code", "factor", "email", "purpose", purposeReset, "sub", f.HintSubject)
		retry(http.StatusUnauthorized, msgResetBadCode)
		return
	}
	try.succeeded()
	f.Verifications = append(f.Verifications, authn.Verification{Factor: authn.Email, At: h.p.Now()})
	if err := h.p.SaveFlow(ctx, f); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			h.Error(w, r, http.StatusBadRequest, "forgot.expired")
			return
		}
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventResetVerified, "sub", acct.Subject, "next", string(f.Reset.Factor))
	http.Redirect(w, r, op.PathReset+"/"+f.ID+lq(r), http.StatusSeeOther)
}

func (h *Handler) resetResend(w http.ResponseWriter, r *http.Request) {
	f, acct, ok := h.resetState(w, r)
	if !ok {
		return
	}
	if emailVerified(f) {
		http.Redirect(w, r, op.PathReset+"/"+f.ID+lq(r), http.StatusSeeOther)
		return
	}
	if pr := h.sendResetCode(r, f, acct); pr != nil {
		if status, msg, ok := h.answer(w, r, pr); ok {
			h.renderResetCode(w, r, f, status, msg)
		}
		return
	}
	h.renderResetCode(w, r, f, http.StatusOK, "")
}

// resetPassword sets the new password once the reset has verified all it
// asks for, then ends every session and grant of the account. It signs
// nobody in (see the package comment of this file).
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) {
	f, acct, ok := h.resetState(w, r)
	if !ok {
		return
	}
	if acct == nil || !h.p.ResetReady(f, acct) {
		http.Redirect(w, r, op.PathReset+"/"+f.ID+lq(r), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	pw := r.PostFormValue("password")
	if err := h.p.PasswordPolicy().Check(pw, acct.Username, acct.Email); err != nil {
		h.renderResetPassword(w, r, f, acct, http.StatusBadRequest, h.pwMessage(r, err))
		return
	}
	hash, err := h.p.HashPassword(ctx, pw)
	if err != nil {
		h.busy(w, r, err)
		return
	}
	replaced, err := h.p.Store().ReplacePasswordHash(ctx, acct.Subject, acct.PasswordHash, hash)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	if !replaced {
		// The password changed meanwhile (another reset, /account): this
		// reset proves nothing about the new one.
		h.p.DropFlow(ctx, f)
		h.Error(w, r, http.StatusConflict, "forgot.changed_meanwhile")
		return
	}
	// The flow ends now: a reset sets one password. Whatever fails next,
	// sessions and grants are ended first, then (recovery link) the lost
	// factors removed; an error after that says so with a 503, and another
	// recovery link completes it.
	h.p.DropFlow(ctx, f)
	endErr := h.p.EndEverything(ctx, acct.Subject)
	if f.Reset.Admin {
		endErr = errors.Join(endErr, h.removeFactors(ctx, acct))
	}
	h.p.Sessions().Clear(w)
	h.p.Audit(ctx, obs.EventPasswordReset, "sub", acct.Subject, "admin", f.Reset.Admin, "second_factor", string(f.Reset.Factor))
	if endErr != nil {
		// The password is changed; some sessions may live on. Say so, so
		// the user (or an operator) ends them.
		h.p.Unavailable(w, r, endErr)
		return
	}
	next := f.ReturnTo
	msg := "forgot.done"
	if f.Reset.Admin {
		u, err := h.p.StartEnrollment(w, r, acct)
		if err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		next = u
		msg = "forgot.done_admin"
	}
	h.pages.Render(w, http.StatusOK, templates.PageInfo, templates.InfoData{
		Page:        h.page(w, r, nil, "forgot.done_title", ""),
		Message:     h.loc(r, nil).T(msg),
		ContinueURL: next,
	})
}

// busy answers a hash that could not be made now.
func (h *Handler) busy(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, password.ErrBusy) || r.Context().Err() != nil {
		w.Header().Set("Retry-After", "1")
		h.Error(w, r, http.StatusServiceUnavailable, "login.busy")
		return
	}
	h.p.Unavailable(w, r, err)
}

// removeFactors removes every second factor of acct: after an
// administrator's recovery link the user has lost them, and whoever holds
// them now must not be able to use them.
func (h *Handler) removeFactors(ctx context.Context, acct *session.Account) error {
	st := h.p.Store()
	if err := st.SetTOTPSecret(ctx, acct.Subject, ""); err != nil {
		return err
	}
	if err := st.SetPhone(ctx, acct.Subject, ""); err != nil {
		return err
	}
	if acct.EmailMFA && !h.p.EmailMFARequired(acct) {
		if err := st.SetEmailMFA(ctx, acct.Subject, false); err != nil {
			return err
		}
	}
	if err := st.SetRecoveryCodes(ctx, acct.Subject, nil); err != nil {
		return err
	}
	for _, pk := range acct.Passkeys {
		if err := st.DeletePasskey(ctx, acct.Subject, pk.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
			return err
		}
	}
	h.p.Audit(ctx, obs.EventFactorRemoved, "factor", "all", "sub", acct.Subject, "reason", "recovery_link")
	return nil
}

// resetLink is the page of an administrator's recovery link: one button
// that opens it (a GET changes nothing, so a mail scanner that follows
// links does not use it up). It shows nothing of the account.
func (h *Handler) resetLink(w http.ResponseWriter, r *http.Request) {
	h.pages.Render(w, http.StatusOK, templates.PageCIBAOpen, templates.CIBAOpenData{
		Page:   h.page(w, r, nil, "forgot.link_title", ""),
		Action: op.PathReset + "/link/" + r.PathValue("sub") + "/" + r.PathValue("token"),
	})
}

// resetLinkOpen uses a recovery link up (once, atomically) and starts a
// reset flow bound to this browser that asks only for the new password.
func (h *Handler) resetLinkOpen(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sub := r.PathValue("sub")
	// The account first: a link is bound to the password it had when the
	// link was made (op.UseRecoveryLink).
	acct, err := h.p.Store().GetAccount(ctx, sub)
	if errors.Is(err, session.ErrNotFound) || (err == nil && acct.Disabled) {
		acct, err = nil, nil
	}
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	ok, err := h.p.UseRecoveryLink(ctx, acct, r.PathValue("token"))
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	if !ok {
		h.Error(w, r, http.StatusGone, "forgot.link_used")
		return
	}
	f, err := h.p.StartReset(w, r, op.Reset{Email: acct.Email, Admin: true}, sub, op.PathAccount)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventRecoveryLinkUsed, "sub", sub)
	http.Redirect(w, r, op.PathReset+"/"+f.ID+lq(r), http.StatusSeeOther)
}

// forgotURL is the login page's data-action="forgot" link: none in an
// approval (the user it names signs in there, nobody resets anything).
func (h *Handler) forgotURL(st *state) string {
	if st.flow.IsCIBA() || st.flow.IsReset() {
		return ""
	}
	return op.PathReset + "?from=" + st.flow.ID + langParam(st.flow.UILocales)
}

// registerURL is the login page's data-action="register" link, with
// registration: open.
func (h *Handler) registerURL(st *state) string {
	if !h.p.RegistrationOpen() || st.flow.IsCIBA() || st.flow.IsReset() || st.flow.Account && st.flow.ForceEnroll {
		return ""
	}
	return PathRegister + "?from=" + st.flow.ID + langParam(st.flow.UILocales)
}

// maxUILocales bounds the ui_locales a self-service URL carries.
const maxUILocales = 64

// langParam is "&ui_locales=…" for a flow's ui_locales ("" for none), so
// the self-service pages opened from its sign-in page speak its language.
func langParam(ui []string) string {
	v := strings.Join(ui, " ")
	if v == "" || len(v) > maxUILocales {
		return ""
	}
	return "&ui_locales=" + url.QueryEscape(v)
}

// lq is "?ui_locales=…" when the request carries one: the self-service
// pages pass it on from form to form.
func lq(r *http.Request) string {
	if v := r.URL.Query().Get("ui_locales"); v != "" && len(v) <= maxUILocales {
		return "?ui_locales=" + url.QueryEscape(v)
	}
	return ""
}

// pwMessage is the alert for a new password the policy refused.
func (h *Handler) pwMessage(r *http.Request, err error) string {
	l := h.loc(r, nil)
	switch {
	case errors.Is(err, password.ErrTooShort):
		return l.T("password.too_short", "Count", h.minLength())
	case errors.Is(err, password.ErrTooLong):
		return l.T("password.too_long", "Count", password.MaxBytes)
	case errors.Is(err, password.ErrPersonal):
		return l.T("password.personal")
	}
	return l.T("password.common")
}
