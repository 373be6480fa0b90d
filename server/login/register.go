package login

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Registration (registration: open, PRODUCT.md §11): the address is
// verified by an emailed code before the account exists; the address is
// also the username. An address that already has an account goes through
// the same pages with the same answers, but its owner is emailed a notice
// instead of a code, so the page never tells whether it is taken. Once
// the account is made, the browser is signed in with the password just
// chosen (amr pwd, nothing more) and goes back to the sign-in it came
// from, where the client's policy asks for whatever enrollment it needs.
//
// Between the steps the address is sealed into the form, bound to the
// browser's id (see sealPending); nothing is stored until the account is.

// PathRegister is the registration page.
const PathRegister = "/register"

const purposeRegister = "register:email"

// registerLifetime bounds how long a registration may take.
const registerLifetime = 30 * time.Minute

// registrar creates accounts: the database overlay.
type registrar interface {
	Register(ctx context.Context, a *session.Account) error
}

func (h *Handler) registerRegistration(mux *http.ServeMux, post func(string, http.HandlerFunc)) {
	mux.HandleFunc("GET "+PathRegister, h.register)
	post(PathRegister, h.registerSubmit)
	post(PathRegister+"/resend", h.registerResend)
	post(PathRegister+"/confirm", h.registerConfirm)
	post(PathRegister+"/password", h.registerPassword)
}

func (h *Handler) registrationOpen(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := h.p.Store().(registrar); ok && h.p.RegistrationOpen() && h.p.Sender(authn.Email) != nil {
		return true
	}
	h.Error(w, r, http.StatusNotFound, "register.closed")
	return false
}

func (h *Handler) renderRegister(w http.ResponseWriter, r *http.Request, from, email string, status int, errMsg string) {
	l := h.loc(r, nil)
	h.pages.Render(w, status, templates.PageEmailForm, templates.EmailFormData{
		Page:      h.page(w, r, nil, "register.title", errMsg),
		Intro:     l.T("register.intro"),
		Action:    PathRegister + lq(r),
		Email:     email,
		Hidden:    map[string]string{"from": from},
		Submit:    l.T("forgot.submit"),
		CancelURL: returnTo(from),
	})
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	if !h.registrationOpen(w, r) {
		return
	}
	from := r.URL.Query().Get("from")
	if !flowIDPattern.MatchString(from) {
		from = ""
	}
	h.renderRegister(w, r, from, "", http.StatusOK, "")
}

// regState is what the steps after the address form carry, sealed.
type regState struct{ email, from string }

func (h *Handler) sealReg(purpose, bid string, st regState) string {
	return h.sealText(purpose, bid, st.email+"\n"+st.from, h.p.Now().Add(registerLifetime))
}

func (h *Handler) openReg(w http.ResponseWriter, r *http.Request, purpose string) (regState, string, bool) {
	if !h.registrationOpen(w, r) {
		return regState{}, "", false
	}
	sealed := r.PostFormValue("pending")
	email, from, _ := strings.Cut(h.openText(purpose, h.p.Sessions().ID(r), sealed), "\n")
	if email == "" {
		h.renderRegister(w, r, "", "", http.StatusBadRequest, "register.expired")
		return regState{}, "", false
	}
	return regState{email: email, from: from}, sealed, true
}

func (h *Handler) regBinding(r *http.Request, email string) otpcode.Binding {
	return otpcode.Binding{Session: "register:" + h.p.Sessions().ID(r), Purpose: purposeRegister, To: email}
}

// addressTaken reports whether an account (even a disabled one) has
// email.
func (h *Handler) addressTaken(ctx context.Context, email string) (bool, error) {
	ef, ok := h.p.Store().(session.EmailFinder)
	if !ok {
		return false, nil
	}
	_, err := ef.AccountByEmail(ctx, email)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// sendRegisterCode emails a code to a new address, or a notice to the
// owner of a taken one, within the same caps either way.
func (h *Handler) sendRegisterCode(r *http.Request, email string) *problem {
	ctx := r.Context()
	taken, err := h.addressTaken(ctx, email)
	if err != nil {
		return &problem{down: err}
	}
	l, host := h.loc(r, nil), issuerLabel(h.p.Issuer())
	compose := func(code string) (notify.Message, error) {
		return notify.EmailIn(l.Lang(), email, code, host, h.p.Codes().TTL())
	}
	if taken {
		h.p.Audit(ctx, obs.EventRegisterDuplicate)
		compose = func(string) (notify.Message, error) {
			return notify.NoticeIn(l.Lang(), email, l.T("mail.register_exists_subject"), host,
				l.T("mail.register_exists", "Host", host), l.T("mail.register_exists_hint"))
		}
	}
	return h.sendToAddress(r, h.regBinding(r, email), "", compose)
}

func (h *Handler) renderRegisterCode(w http.ResponseWriter, r *http.Request, st regState, sealed string, status int, errMsg string) {
	h.pages.Render(w, status, templates.PageCode, templates.CodeData{
		Page:         h.page(w, r, nil, "code.title_email", errMsg),
		Factor:       string(authn.Email),
		Action:       PathRegister + "/confirm" + lq(r),
		Hint:         h.loc(r, nil).T("register.code_hint", "Email", maskEmail(st.email)),
		ResendAction: PathRegister + "/resend" + lq(r),
		CancelAction: returnTo(st.from),
		CancelLink:   true,
		Pending:      sealed,
	})
}

// registerSubmit sends the code (or the notice) for the typed address.
func (h *Handler) registerSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.registrationOpen(w, r) {
		return
	}
	from := r.PostFormValue("from")
	if !flowIDPattern.MatchString(from) {
		from = ""
	}
	email, ok := normalEmail(r.PostFormValue("email"))
	if !ok {
		h.renderRegister(w, r, from, r.PostFormValue("email"), http.StatusBadRequest, "password.bad_email")
		return
	}
	if pr := h.sendRegisterCode(r, email); pr != nil {
		if status, msg, ok := h.answer(w, r, pr); ok {
			h.renderRegister(w, r, from, email, status, msg)
		}
		return
	}
	st := regState{email: email, from: from}
	h.renderRegisterCode(w, r, st, h.sealReg("register", h.p.Sessions().ID(r), st), http.StatusOK, "")
}

func (h *Handler) registerResend(w http.ResponseWriter, r *http.Request) {
	st, sealed, ok := h.openReg(w, r, "register")
	if !ok {
		return
	}
	status, msg := http.StatusOK, ""
	if pr := h.sendRegisterCode(r, st.email); pr != nil {
		if status, msg, ok = h.answer(w, r, pr); !ok {
			return
		}
	}
	h.renderRegisterCode(w, r, st, sealed, status, msg)
}

func (h *Handler) renderRegisterPassword(w http.ResponseWriter, r *http.Request, st regState, sealed string, status int, errMsg string) {
	l := h.loc(r, nil)
	h.pages.Render(w, status, templates.PageNewPassword, templates.NewPasswordData{
		Page:      h.page(w, r, nil, "register.password_title", errMsg),
		Intro:     l.T("register.password_intro"),
		Action:    PathRegister + "/password" + lq(r),
		Username:  st.email,
		MinLength: h.minLength(),
		Pending:   sealed,
		Submit:    l.T("register.submit"),
		CancelURL: returnTo(st.from),
	})
}

// registerConfirm checks the code, counted in the address's failure
// budget (as an unknown username's at sign-in) before it is checked. A
// taken address has no code that works.
func (h *Handler) registerConfirm(w http.ResponseWriter, r *http.Request) {
	st, sealed, ok := h.openReg(w, r, "register")
	if !ok {
		return
	}
	ctx := r.Context()
	retry := func(status int, msg string) { h.renderRegisterCode(w, r, st, sealed, status, msg) }
	try, ok := h.reserve(w, r, "", st.email, retry)
	if !ok {
		return
	}
	good, err := h.p.Codes().Verify(ctx, h.regBinding(r, st.email), r.PostFormValue("code"))
	if err == nil && good {
		var taken bool
		if taken, err = h.addressTaken(ctx, st.email); taken {
			good = false
		}
	}
	if err != nil {
		try.succeeded()
		h.p.Unavailable(w, r, err)
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_code", "factor", "email", "purpose", purposeRegister)
		retry(http.StatusUnauthorized, msgBadCode)
		return
	}
	try.succeeded()
	h.renderRegisterPassword(w, r, st, h.sealReg("register-verified", h.p.Sessions().ID(r), st), http.StatusOK, "")
}

// registerPassword creates the account with the chosen password and
// signs the browser in with it.
func (h *Handler) registerPassword(w http.ResponseWriter, r *http.Request) {
	st, sealed, ok := h.openReg(w, r, "register-verified")
	if !ok {
		return
	}
	ctx := r.Context()
	pw := r.PostFormValue("password")
	if err := h.p.PasswordPolicy().Check(pw, st.email); err != nil {
		h.renderRegisterPassword(w, r, st, sealed, http.StatusBadRequest, h.pwMessage(r, err))
		return
	}
	hash, err := h.p.HashPassword(ctx, pw)
	if err != nil {
		h.busy(w, r, err)
		return
	}
	acct := &session.Account{Subject: newSubject(), Username: st.email, Email: st.email, PasswordHash: hash}
	err = h.p.Store().(registrar).Register(ctx, acct)
	if errors.Is(err, account.ErrTaken) {
		// Only whoever read the code sent to the address gets here (an
		// account was made with it meanwhile, or this form was sent twice).
		h.Error(w, r, http.StatusConflict, "register.taken")
		return
	}
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventRegistered, "sub", acct.Subject)
	if old, err := h.p.CurrentSession(r); err == nil && old != nil {
		// Someone else was signed in on this browser: that session ends.
		_ = h.p.Store().DeleteSession(ctx, old.ID)
	}
	now := h.p.Now()
	s := &session.Session{ID: session.NewID(), Subject: acct.Subject, CreatedAt: now, LastSeenAt: now,
		Verifications: []authn.Verification{{Factor: authn.Password, At: now}}, View: h.p.AccountView(acct)}
	if err := h.p.StartSession(ctx, w, s); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventLogin, "sub", acct.Subject, "client_id", h.p.AccountClientID(), "via", "registration")
	to := returnTo(st.from)
	if to == op.PathAccount && h.p.NeedsSecondFactor() {
		// Not started from a sign-in: /account is where it goes, and a
		// sign-in to /account asks what the policy asks of every sign-in
		// (mfa.login: always, a floor): the enrollment, before /account.
		u, err := h.p.StartAccountVerification(w, r, acct, op.PathAccount, false)
		if err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		to = u
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// newSubject is a random, never reassigned subject identifier (as the
// configuration's users get).
func newSubject() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}
