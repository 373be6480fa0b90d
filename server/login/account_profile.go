package login

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// Changing the password and the email address on /account (PRODUCT.md
// §11). Both need the fresh verification every factor change needs. A
// new password ends the account's other sessions and every grant; a new
// address is stored only once a code sent to it comes back, and the old
// address is told.

const purposeNewEmail = "account:new-email"

// emailSetter changes an account's address: the database overlay. A
// store without it (no database) cannot change addresses.
type emailSetter interface {
	SetEmail(ctx context.Context, subject, email string) error
}

func (h *Handler) registerAccountProfile(post func(string, http.HandlerFunc)) {
	post(op.PathAccount+"/password", h.accountPasswordForm)
	post(op.PathAccount+"/password/set", h.accountPasswordSet)
	post(op.PathAccount+"/address", h.accountAddressForm)
	post(op.PathAccount+"/address/new", h.accountAddressNew)
	post(op.PathAccount+"/address/resend", h.accountAddressResend)
	post(op.PathAccount+"/address/confirm", h.accountAddressConfirm)
}

// sealText is sealPending for a value that may hold dots (an address).
func (h *Handler) sealText(purpose, sid, value string, exp time.Time) string {
	return h.sealPending(purpose, sid, base64.RawURLEncoding.EncodeToString([]byte(value)), exp)
}

// openText opens what sealText sealed ("" when it does not open).
func (h *Handler) openText(purpose, sid, sealed string) string {
	b, err := base64.RawURLEncoding.DecodeString(h.openPending(purpose, sid, sealed))
	if err != nil {
		return ""
	}
	return string(b)
}

func (h *Handler) renderAccountPassword(w http.ResponseWriter, r *http.Request, acct *session.Account, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageNewPassword, templates.NewPasswordData{
		Page:      h.page(w, r, nil, "account.password_title", errMsg),
		Intro:     h.loc(r, nil).T("account.password_intro"),
		Action:    op.PathAccount + "/password/set",
		Username:  acct.Username,
		MinLength: h.minLength(),
		Submit:    h.loc(r, nil).T("account.change_password"),
		CancelURL: op.PathAccount,
	})
}

func (h *Handler) accountPasswordForm(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	h.renderAccountPassword(w, r, acct, http.StatusOK, "")
}

// accountPasswordSet stores a new password under the policy; the
// account's other sessions and all its grants end (this browser's session
// goes on).
func (h *Handler) accountPasswordSet(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	ctx := r.Context()
	pw := r.PostFormValue("password")
	if err := h.p.PasswordPolicy().Check(pw, acct.Username, acct.Email); err != nil {
		h.renderAccountPassword(w, r, acct, http.StatusBadRequest, h.pwMessage(r, err))
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
		h.renderAccount(w, r, sess, acct, http.StatusConflict, "", "account.password_conflict")
		return
	}
	if err := h.endOthers(ctx, acct.Subject, sess.ID); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventPasswordChanged, "sub", acct.Subject)
	if acct.Email != "" {
		l, host := h.loc(r, nil), issuerLabel(h.p.Issuer())
		h.notice(ctx, l.Lang(), acct, acct.Email, l.T("mail.password_changed_subject"),
			l.T("mail.password_changed", "User", acct.Username, "Host", host), l.T("mail.password_changed_warning"))
	}
	http.Redirect(w, r, op.PathAccount+"?done=password", http.StatusSeeOther)
}

// endOthers ends every grant of sub and every session but keep.
func (h *Handler) endOthers(ctx context.Context, sub, keep string) error {
	st := h.p.Store()
	if err := st.EndUserGrants(ctx, sub); err != nil {
		return err
	}
	all, err := st.ListSessions(ctx, sub)
	if err != nil {
		return err
	}
	for _, s := range all {
		if s.ID == keep {
			continue
		}
		if err := st.EndSession(ctx, s.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
			return err
		}
		h.p.Audit(ctx, obs.EventSessionRevoked, "sub", sub, "reason", "password_changed")
	}
	return nil
}

// notice emails a notice (no code) to the address to, after the answer.
func (h *Handler) notice(ctx context.Context, lang string, acct *session.Account, to, subject string, lines ...string) {
	h.mailLater(ctx, "notice", acct.Subject, func(string) (notify.Message, error) {
		return notify.NoticeIn(lang, to, subject, issuerLabel(h.p.Issuer()), lines...)
	}, "")
}

func (h *Handler) renderAccountAddress(w http.ResponseWriter, r *http.Request, email string, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageEmailForm, templates.EmailFormData{
		Page:      h.page(w, r, nil, "account.address_title", errMsg),
		Intro:     h.loc(r, nil).T("account.address_intro"),
		Action:    op.PathAccount + "/address/new",
		Email:     email,
		Submit:    h.loc(r, nil).T("forgot.submit"),
		CancelURL: op.PathAccount,
	})
}

func (h *Handler) renderAccountAddressCode(w http.ResponseWriter, r *http.Request, email, sealed string, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageCode, templates.CodeData{
		Page:         h.page(w, r, nil, "account.address_code_title", errMsg),
		Factor:       string(authn.Email),
		Action:       op.PathAccount + "/address/confirm",
		Hint:         h.loc(r, nil).T("account.address_code_hint", "Email", maskEmail(email)),
		ResendAction: op.PathAccount + "/address/resend",
		CancelAction: op.PathAccount,
		CancelLink:   true,
		Pending:      sealed,
	})
}

func normalLower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (h *Handler) canChangeAddress() bool {
	_, ok := h.p.Store().(emailSetter)
	return ok && h.p.Sender(authn.Email) != nil
}

func (h *Handler) accountAddressForm(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.canChangeAddress() {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	h.renderAccountAddress(w, r, "", http.StatusOK, "")
}

func (h *Handler) sendNewAddressCode(r *http.Request, sess *session.Session, acct *session.Account, email string) *problem {
	b := otpcode.Binding{Session: sess.ID, Purpose: purposeNewEmail, To: email}
	lang := h.loc(r, nil).Lang()
	return h.sendToAddress(r, b, acct.Subject, func(code string) (notify.Message, error) {
		return notify.EmailIn(lang, email, code, issuerLabel(h.p.Issuer()), h.p.Codes().TTL())
	})
}

// accountAddressNew sends a code to the new address (within the send
// caps) and asks for it; the address is sealed into the form until then.
func (h *Handler) accountAddressNew(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.canChangeAddress() {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	email, valid := normalEmail(r.PostFormValue("email"))
	if !valid {
		h.renderAccountAddress(w, r, r.PostFormValue("email"), http.StatusBadRequest, "password.bad_email")
		return
	}
	if email == normalLower(acct.Email) {
		h.renderAccountAddress(w, r, email, http.StatusBadRequest, "account.address_same")
		return
	}
	if pr := h.sendNewAddressCode(r, sess, acct, email); pr != nil {
		if status, msg, ok := h.answer(w, r, pr); ok {
			h.renderAccountAddress(w, r, email, status, msg)
		}
		return
	}
	h.renderAccountAddressCode(w, r, email, h.sealText("address", sess.ID, email, h.p.Now().Add(op.AccountFreshness)), http.StatusOK, "")
}

// pendingAddress is the state of a step after the address form: a fresh
// session and the sealed address. When it returns false it has answered.
func (h *Handler) pendingAddress(w http.ResponseWriter, r *http.Request) (sess *session.Session, acct *session.Account, email, sealed string, ok bool) {
	sess, acct, ok = h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return nil, nil, "", "", false
	}
	sealed = r.PostFormValue("pending")
	email = h.openText("address", sess.ID, sealed)
	if email == "" || !h.canChangeAddress() {
		h.renderAccount(w, r, sess, acct, http.StatusBadRequest, "", "account.change_expired")
		return nil, nil, "", "", false
	}
	return sess, acct, email, sealed, true
}

func (h *Handler) accountAddressResend(w http.ResponseWriter, r *http.Request) {
	sess, acct, email, sealed, ok := h.pendingAddress(w, r)
	if !ok {
		return
	}
	status, msg := http.StatusOK, ""
	if pr := h.sendNewAddressCode(r, sess, acct, email); pr != nil {
		if status, msg, ok = h.answer(w, r, pr); !ok {
			return
		}
	}
	h.renderAccountAddressCode(w, r, email, sealed, status, msg)
}

// accountAddressConfirm makes the address the code went to the account's
// own, and tells the old address.
func (h *Handler) accountAddressConfirm(w http.ResponseWriter, r *http.Request) {
	sess, acct, email, sealed, ok := h.pendingAddress(w, r)
	if !ok {
		return
	}
	b := otpcode.Binding{Session: sess.ID, Purpose: purposeNewEmail, To: email}
	if !h.checkAccountCode(w, r, acct, authn.Email, b, func(status int, msg string) {
		h.renderAccountAddressCode(w, r, email, sealed, status, msg)
	}) {
		return
	}
	ctx := r.Context()
	err := h.p.Store().(emailSetter).SetEmail(ctx, acct.Subject, email)
	if errors.Is(err, account.ErrTaken) {
		// Only whoever reads that mailbox gets here: saying so tells
		// them nothing they could not learn by signing in with it.
		h.renderAccount(w, r, sess, acct, http.StatusConflict, "", "account.address_taken")
		return
	}
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEmailChanged, "sub", acct.Subject)
	if acct.Email != "" {
		l, host := h.loc(r, nil), issuerLabel(h.p.Issuer())
		h.notice(ctx, l.Lang(), acct, acct.Email, l.T("mail.address_changed_subject"),
			l.T("mail.address_changed", "User", acct.Username, "Host", host, "Email", maskEmail(email)), l.T("mail.address_changed_warning"))
	}
	http.Redirect(w, r, op.PathAccount+"?done=address", http.StatusSeeOther)
}
