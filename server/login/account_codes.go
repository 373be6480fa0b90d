package login

import (
	"errors"
	"net/http"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// The code factors on /account: the user's own email_mfa switch and their
// phone. Turning email codes on and adding or replacing a phone first send
// a code to that address or (new) number and change nothing until it
// comes back, so a stored phone and an email that counts are ones the
// user receives codes at. Like every change on /account, each step needs
// a fresh verification; turning email codes off and removing the phone
// are factor removals (refused for the last second factor under a floor).

// Purposes of the codes /account sends: good only for that change.
const (
	purposeAccountEmail = "account:email"
	purposeAccountSMS   = "account:sms"
)

func (h *Handler) registerAccountCodes(post func(string, http.HandlerFunc)) {
	post(op.PathAccount+"/email/on", h.accountEmailOn)
	post(op.PathAccount+"/email/resend", h.accountEmailResend)
	post(op.PathAccount+"/email/confirm", h.accountEmailConfirm)
	post(op.PathAccount+"/email/off", h.accountEmailOff)
	post(op.PathAccount+"/phone", h.accountPhone)
	post(op.PathAccount+"/phone/resend", h.accountPhoneResend)
	post(op.PathAccount+"/phone/confirm", h.accountPhoneConfirm)
	post(op.PathAccount+"/phone/remove", h.accountPhoneRemove)
}

// codesOn reports whether f (SMS or email) can be a factor here: enabled
// in mfa.factors and with a provider configured.
func (h *Handler) codesOn(f authn.Factor) bool {
	return h.p.FactorEnabled(f) && h.p.Sender(f) != nil
}

// fillAccountCodes adds the phone and email sections to the account page.
func (h *Handler) fillAccountCodes(data *templates.AccountData, acct *session.Account) {
	if h.codesOn(authn.SMS) {
		data.PhoneOn = true
		data.Phone = maskPhone(acct.Phone)
		data.PhoneAction = op.PathAccount + "/phone"
		data.PhoneRemove = op.PathAccount + "/phone/remove"
	}
	if h.codesOn(authn.Email) {
		data.EmailOn = true
		data.Email = maskEmail(acct.Email)
		data.EmailMFA = acct.EmailMFA
		data.EmailRequired = h.p.EmailMFARequired(acct)
		data.EmailOnAction = op.PathAccount + "/email/on"
		data.EmailOffAction = op.PathAccount + "/email/off"
	}
}

// accountSend sends an /account code within the same caps and cooldown as
// the hosted flow; it returns false when it has answered (a problem is
// shown by retry, a store failure by the 503 page).
func (h *Handler) accountSend(w http.ResponseWriter, r *http.Request, sess *session.Session, acct *session.Account, f authn.Factor, purpose, to string, retry func(status int, msg string)) bool {
	pr := h.sendCode(r, h.loc(r, nil).Lang(), sess.ID, acct.Subject, h.p.AccountClientID(), f, purpose, to)
	if pr == nil {
		return true
	}
	if status, msg, ok := h.answer(w, r, pr); ok {
		retry(status, msg)
	}
	return false
}

// checkAccountCode verifies an /account code, counted in the user's one
// abuse budget before it is checked. It returns false when it has
// answered (wrong code: retry with 401; locked out: retry with 429).
func (h *Handler) checkAccountCode(w http.ResponseWriter, r *http.Request, acct *session.Account, f authn.Factor, b otpcode.Binding, retry func(status int, msg string)) bool {
	ctx := r.Context()
	try, ok := h.reserve(w, r, acct.Subject, "", retry)
	if !ok {
		return false
	}
	good, err := h.p.Codes().Verify(ctx, b, r.PostFormValue("code"))
	if err != nil {
		try.succeeded() // nothing was checked
		h.p.Unavailable(w, r, err)
		return false
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_code", "factor", string(f), "sub", acct.Subject, "where", "account")
		retry(http.StatusUnauthorized, msgBadCode)
		return false
	}
	try.succeeded()
	return true
}

// verifiedOnAccount records the confirming code as a verification of the
// factor in the session, like the code that confirms a TOTP app.
func (h *Handler) verifiedOnAccount(w http.ResponseWriter, r *http.Request, sess *session.Session, f authn.Factor) bool {
	v := authn.Verification{Factor: f, At: h.p.Now()}
	if err := h.p.Elevate(r.Context(), w, sess, v); err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrKeyChanged) {
		h.p.Unavailable(w, r, err)
		return false
	}
	return true
}

// emailCanTurnOn reports whether the email switch may be turned on now.
func (h *Handler) emailCanTurnOn(acct *session.Account) bool {
	return h.codesOn(authn.Email) && acct.Email != "" && !acct.EmailMFA
}

func (h *Handler) renderAccountEmailCode(w http.ResponseWriter, r *http.Request, acct *session.Account, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageCode, templates.CodeData{
		Page:         h.page(w, r, nil, "account.email_on_title", errMsg),
		Factor:       string(authn.Email),
		Action:       op.PathAccount + "/email/confirm",
		Hint:         h.loc(r, nil).T("account.email_on_hint", "Email", maskEmail(acct.Email)),
		ResendAction: op.PathAccount + "/email/resend",
		CancelAction: op.PathAccount,
		CancelLink:   true,
	})
}

// accountEmailOn starts turning email codes on: a code goes to the
// account's address (unless one is already pending for this session) and
// the page asks for it.
func (h *Handler) accountEmailOn(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.emailCanTurnOn(acct) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	b := otpcode.Binding{Session: sess.ID, Purpose: purposeAccountEmail, To: acct.Email}
	pending, err := h.p.Codes().Pending(r.Context(), b)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	retry := func(status int, msg string) { h.renderAccountEmailCode(w, r, acct, status, msg) }
	if !pending && !h.accountSend(w, r, sess, acct, authn.Email, b.Purpose, b.To, retry) {
		return
	}
	h.renderAccountEmailCode(w, r, acct, http.StatusOK, "")
}

func (h *Handler) accountEmailResend(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.emailCanTurnOn(acct) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	retry := func(status int, msg string) { h.renderAccountEmailCode(w, r, acct, status, msg) }
	if h.accountSend(w, r, sess, acct, authn.Email, purposeAccountEmail, acct.Email, retry) {
		h.renderAccountEmailCode(w, r, acct, http.StatusOK, "")
	}
}

// accountEmailConfirm turns email codes on with the code sent to the
// account's address in this session.
func (h *Handler) accountEmailConfirm(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.emailCanTurnOn(acct) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	b := otpcode.Binding{Session: sess.ID, Purpose: purposeAccountEmail, To: acct.Email}
	if !h.checkAccountCode(w, r, acct, authn.Email, b, func(status int, msg string) {
		h.renderAccountEmailCode(w, r, acct, status, msg)
	}) {
		return
	}
	ctx := r.Context()
	if err := h.p.Store().SetEmailMFA(ctx, acct.Subject, true); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "email", "sub", acct.Subject, "where", "account")
	if h.verifiedOnAccount(w, r, sess, authn.Email) {
		http.Redirect(w, r, op.PathAccount+"?done=email-on", http.StatusSeeOther)
	}
}

// accountEmailOff turns email codes off: a factor removal.
func (h *Handler) accountEmailOff(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !acct.EmailMFA {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	if h.p.EmailMFARequired(acct) {
		h.renderAccount(w, r, sess, acct, http.StatusConflict, "",
			"account.email_required_error")
		return
	}
	if h.refuseLastFactor(w, r, sess, acct) {
		return
	}
	ctx := r.Context()
	if err := h.p.Store().SetEmailMFA(ctx, acct.Subject, false); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventFactorRemoved, "factor", "email", "sub", acct.Subject)
	http.Redirect(w, r, op.PathAccount+"?done=email-off", http.StatusSeeOther)
}

// renderAccountPhone shows the number form (phone == "") or the code
// form for the sealed number.
func (h *Handler) renderAccountPhone(w http.ResponseWriter, r *http.Request, acct *session.Account, phone, sealed string, status int, errMsg string) {
	title := "account.phone_add_title"
	if acct.Phone != "" {
		title = "account.phone_replace_title"
	}
	data := templates.EnrollPhoneData{
		Page:         h.page(w, r, nil, title, errMsg),
		PhoneAction:  op.PathAccount + "/phone",
		Phone:        phone,
		CodeAction:   op.PathAccount + "/phone/confirm",
		CancelAction: op.PathAccount,
		CancelLink:   true,
		Pending:      sealed,
	}
	if phone != "" {
		data.ResendAction = op.PathAccount + "/phone/resend"
	}
	h.pages.Render(w, status, templates.PageEnrollPhone, data)
}

// accountPhone texts a code to a new number (within the send caps: this
// is where SMS pumping would happen) and asks for it.
func (h *Handler) accountPhone(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.codesOn(authn.SMS) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	phone, valid := normalizePhone(r.PostFormValue("phone"))
	if !valid {
		h.renderAccountPhone(w, r, acct, "", "", http.StatusBadRequest, "phone.bad_number")
		return
	}
	if phone == acct.Phone {
		h.renderAccountPhone(w, r, acct, "", "", http.StatusBadRequest, "account.phone_same")
		return
	}
	sealed := h.sealPending("phone", sess.ID, phone, h.p.Now().Add(op.AccountFreshness))
	if !h.accountSend(w, r, sess, acct, authn.SMS, purposeAccountSMS, phone, func(status int, msg string) {
		h.renderAccountPhone(w, r, acct, "", "", status, msg)
	}) {
		return
	}
	h.renderAccountPhone(w, r, acct, phone, sealed, http.StatusOK, "")
}

// pendingPhone is the state of a step after the number form: a fresh
// session, and the number sealed into the form. When it returns false it
// has answered.
func (h *Handler) pendingPhone(w http.ResponseWriter, r *http.Request) (sess *session.Session, acct *session.Account, phone, sealed string, ok bool) {
	sess, acct, ok = h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return nil, nil, "", "", false
	}
	sealed = r.PostFormValue("pending")
	phone = h.openPending("phone", sess.ID, sealed)
	if !h.codesOn(authn.SMS) || phone == "" {
		h.renderAccount(w, r, sess, acct, http.StatusBadRequest, "", "account.change_expired")
		return nil, nil, "", "", false
	}
	return sess, acct, phone, sealed, true
}

func (h *Handler) accountPhoneResend(w http.ResponseWriter, r *http.Request) {
	sess, acct, phone, sealed, ok := h.pendingPhone(w, r)
	if !ok {
		return
	}
	retry := func(status int, msg string) { h.renderAccountPhone(w, r, acct, phone, sealed, status, msg) }
	if h.accountSend(w, r, sess, acct, authn.SMS, purposeAccountSMS, phone, retry) {
		h.renderAccountPhone(w, r, acct, phone, sealed, http.StatusOK, "")
	}
}

// accountPhoneConfirm stores the number the code was texted to: only now,
// verified, does it become the account's phone (replacing the old one).
func (h *Handler) accountPhoneConfirm(w http.ResponseWriter, r *http.Request) {
	sess, acct, phone, sealed, ok := h.pendingPhone(w, r)
	if !ok {
		return
	}
	b := otpcode.Binding{Session: sess.ID, Purpose: purposeAccountSMS, To: phone}
	if !h.checkAccountCode(w, r, acct, authn.SMS, b, func(status int, msg string) {
		h.renderAccountPhone(w, r, acct, phone, sealed, status, msg)
	}) {
		return
	}
	ctx := r.Context()
	if err := h.p.Store().SetPhone(ctx, acct.Subject, phone); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "sms", "sub", acct.Subject, "where", "account", "replaced", acct.Phone != "")
	if h.verifiedOnAccount(w, r, sess, authn.SMS) {
		http.Redirect(w, r, op.PathAccount+"?done=phone", http.StatusSeeOther)
	}
}

// accountPhoneRemove removes the phone: a factor removal.
func (h *Handler) accountPhoneRemove(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if acct.Phone == "" {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	if h.refuseLastFactor(w, r, sess, acct) {
		return
	}
	ctx := r.Context()
	if err := h.p.Store().SetPhone(ctx, acct.Subject, ""); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventFactorRemoved, "factor", "sms", "sub", acct.Subject)
	http.Redirect(w, r, op.PathAccount+"?done=removed", http.StatusSeeOther)
}
