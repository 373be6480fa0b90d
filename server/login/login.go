// Package login serves stepup's hosted pages: sign-in, the factor forms of
// a step-up, TOTP enrollment, cancel, sign-out confirmation and error
// pages. Every page is decided by the same policy call
// (op.Provider.Decide): a handler verifies one factor, records it in the
// session, and asks the policy again what comes next.
package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/i18n"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/static"
	"github.com/stepup-dev/stepup/templates"
)

// Handler serves the hosted pages.
type Handler struct {
	p       *op.Provider
	pages   *templates.Renderer
	csrfKey []byte
}

// New returns the hosted pages of p and registers them as p's Pages.
// csrfKey must be shared by every instance.
func New(p *op.Provider, pages *templates.Renderer, csrfKey []byte) *Handler {
	h := &Handler{p: p, pages: pages, csrfKey: csrfKey}
	p.SetPages(h)
	return h
}

// Register adds the hosted pages to mux. POSTs are guarded twice against
// cross-site requests: Go's CrossOriginProtection (Origin/Sec-Fetch-Site)
// and a token bound to the browser's session id.
func (h *Handler) Register(mux *http.ServeMux) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Error(w, r, http.StatusForbidden, "error.cross_site")
	}))
	post := func(pattern string, fn http.HandlerFunc) {
		mux.Handle("POST "+pattern, cop.Handler(h.requireCSRF(fn)))
	}
	mux.HandleFunc("GET /login/{id}", h.show)
	post("/login/{id}/password", h.password)
	post("/login/{id}/totp", h.totp)
	post("/login/{id}/enroll/totp", h.enrollTOTP)
	post("/login/{id}/cancel", h.cancel)
	post("/login/{id}/switch", h.switchUser)
	post("/login/{id}/recovery", h.recovery)
	post("/login/{id}/sms", h.verifyCode(authn.SMS))
	post("/login/{id}/email", h.verifyCode(authn.Email))
	post("/login/{id}/resend/{factor}", h.resend)
	post("/login/{id}/enroll/phone", h.enrollPhone)
	post("/login/{id}/enroll/sms", h.enrollSMS)
	post("/login/{id}/ciba/approve", h.cibaApprove)
	post("/login/{id}/ciba/deny", h.cibaDeny)
	post(op.PathLogoutConfirm, h.logout)
	// The README's sign-out link: the same confirmation as an
	// RP-initiated logout without a client.
	mux.HandleFunc("GET "+op.PathLogoutConfirm, func(w http.ResponseWriter, r *http.Request) {
		h.ConfirmLogout(w, r, "", "", "", "")
	})
	h.registerPasskeys(mux, cop)
	h.registerAccount(mux, cop, post)
	h.registerReset(mux, post)
	h.registerRegistration(mux, post)
	mux.Handle("GET /static/", http.StripPrefix("/static/", filesOnly(static.FS)))
	mux.Handle("GET /branding/", h.pages.Branding())
}

// filesOnly serves the files of fsys and nothing else: a directory (the
// root included) is 404, not a listing, so what is deployed there is
// never enumerated.
func filesOnly(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fi, err := fs.Stat(fsys, r.URL.Path)
		if err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// csrfToken binds forms to the browser's session id.
func (h *Handler) csrfToken(sid string) string {
	mac := hmac.New(sha256.New, h.csrfKey)
	mac.Write([]byte("csrf\x00" + sid))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (h *Handler) requireCSRF(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sid := h.p.Sessions().ID(r)
		got := r.PostFormValue("csrf_token")
		if sid == "" || got == "" || !hmac.Equal([]byte(got), []byte(h.csrfToken(sid))) {
			h.Error(w, r, http.StatusForbidden, "error.csrf")
			return
		}
		next(w, r)
	}
}

// browserID returns the id the browser's cookie carries, minting one for a
// first visit. The id is not stored until the user signs in: it only
// anchors the CSRF token, and is replaced at sign-in (no fixation).
func (h *Handler) browserID(w http.ResponseWriter, r *http.Request) string {
	if id := h.p.Sessions().ID(r); id != "" {
		return id
	}
	id := session.NewID()
	if err := h.p.Sessions().Set(w, id, ""); err != nil {
		return ""
	}
	return id
}

// msgOtherBrowser answers a sign-in link opened in another browser than
// the one that started it. It names nothing of the flow: not the
// application, not the user.
const msgOtherBrowser = "error.other_browser"

// state is what every flow handler loads first.
type state struct {
	flow *op.Flow
	c    *op.Client
	sess *session.Session
	acct *session.Account
}

// load fetches the flow, session and account, answering the error page or
// 503 itself when it returns false.
func (h *Handler) load(w http.ResponseWriter, r *http.Request) (*state, bool) {
	st, ok := h.loadFlow(w, r)
	if !ok {
		return nil, false
	}
	return st, h.loadAccount(w, r, st)
}

// loadFlow is load's first half: the flow and the session, no account.
func (h *Handler) loadFlow(w http.ResponseWriter, r *http.Request) (*state, bool) {
	f, c, sess, err := h.p.FlowAndSession(r, r.PathValue("id"))
	if errors.Is(err, session.ErrNotFound) {
		h.Error(w, r, http.StatusBadRequest, "error.flow_expired")
		return nil, false
	} else if errors.Is(err, op.ErrOtherBrowser) {
		h.Error(w, r, http.StatusForbidden, msgOtherBrowser)
		return nil, false
	} else if err != nil {
		h.p.Unavailable(w, r, err)
		return nil, false
	}
	return &state{flow: f, c: c, sess: sess}, true
}

// loadAccount is load's second half: the session's account.
func (h *Handler) loadAccount(w http.ResponseWriter, r *http.Request, st *state) bool {
	acct, err := h.p.LoadAccount(r.Context(), st.sess)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return false
	}
	st.acct = acct
	if !st.flow.IsCIBA() && !st.flow.IsReset() {
		// The account was read anyway: a session view it contradicts is
		// refreshed (one write, only then), and a page /authorize decided
		// from the old one is decided again (Flow.ShownFor).
		h.p.RefreshView(r.Context(), st.sess, acct)
	}
	return true
}

// showShown renders the TOTP page /authorize decided on (op.ShownStep)
// without reading the account, when the flow was decided for the
// session as it still is and the TOTP form is the page asked for. It
// shows a form and nothing else: the post reads the account and decides
// again. It reports whether it rendered.
func (h *Handler) showShown(w http.ResponseWriter, r *http.Request, st *state) bool {
	f := st.flow
	if f.IsCIBA() || f.IsReset() || f.Account || f.Cancelled {
		return false
	}
	sh := f.ShownFor(st.sess)
	if sh == nil {
		return false
	}
	if want := r.URL.Query().Get("factor"); want != "" && want != string(authn.TOTP) {
		return false
	}
	d := authn.Decision{Outcome: authn.Need, Need: sh.Need, Alternatives: sh.Alternatives, Target: sh.Target}
	// The name in "Signed in as" is all the page takes of the account.
	view := &state{flow: f, c: st.c, sess: st.sess, acct: &session.Account{Subject: st.sess.Subject, Username: sh.Username}}
	h.renderFactor(w, r, view, d, authn.TOTP, http.StatusOK, "")
	return true
}

func (h *Handler) flowURL(f *op.Flow, suffix string) string {
	return op.PathLoginPrefix + f.ID + suffix
}

// next asks the policy what comes after a verification: the answer to the
// client, or the next page (Post/Redirect/Get).
func (h *Handler) next(w http.ResponseWriter, r *http.Request, st *state) {
	h.decided(w, r, st, h.p.Decide(st.flow, st.c, st.sess, st.acct))
}

func (h *Handler) decided(w http.ResponseWriter, r *http.Request, st *state, d authn.Decision) {
	if d.Outcome == authn.OK || d.Outcome == authn.Fail {
		h.p.Finish(w, r, st.flow, st.c, st.sess, d)
		return
	}
	http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
}

// show renders the page the policy asks for.
func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	st, ok := h.loadFlow(w, r)
	if !ok || h.showShown(w, r, st) || !h.loadAccount(w, r, st) {
		return
	}
	if st.flow.IsReset() && !st.flow.Reset.EmailVerified(st.flow) {
		// A reset's emailed code is asked on its own page, before
		// anything is decided: an address with an account and one without
		// look the same until then.
		http.Redirect(w, r, op.PathReset+"/"+st.flow.ID, http.StatusSeeOther)
		return
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	switch d.Outcome {
	case authn.OK, authn.Fail:
		h.p.Finish(w, r, st.flow, st.c, st.sess, d)
	case authn.Enroll:
		if h.enrollChoice(r, st, d) == authn.SMS {
			h.renderEnrollPhone(w, r, st, d, http.StatusOK, "")
			return
		}
		h.renderEnroll(w, r, st, d, http.StatusOK, "")
	default:
		factor := d.Need[0]
		if want := authn.Factor(r.URL.Query().Get("factor")); want != "" && slices.Contains(d.Alternatives, want) {
			factor = want
		}
		if factor == authn.SMS || factor == authn.Email {
			h.showCode(w, r, st, d, factor)
			return
		}
		h.renderFactor(w, r, st, d, factor, http.StatusOK, "")
	}
}

// page is what every page of a flow (st) or of the browser (st nil)
// shows. title and errMsg are catalogue keys (a text that is not a key
// shows as it is), rendered in the request's language.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, st *state, title, errMsg string) templates.Page {
	l := h.loc(r, st)
	pg := templates.Page{Title: l.T(title), CSRF: h.csrfToken(h.browserID(w, r)), Error: l.T(errMsg), Lang: l.Lang()}
	if errMsg == msgLocked {
		// Say when, as Retry-After does: the form is disabled until then.
		win := h.p.LockoutWindow()
		pg.Status = "locked"
		pg.Error = l.T("login.locked_until", "Count", int(win.Round(time.Minute)/time.Minute), "Time", h.p.Now().Add(win).UTC().Format("15:04"))
	}
	if st != nil {
		pg.ClientName, pg.Client = st.c.Name(), st.c.GetID()
		// An approval and a reset sign nobody in: their session is the
		// flow's own, and "Not you?" would sign out the browser's.
		if st.sess != nil && st.acct != nil && !st.flow.IsCIBA() && !st.flow.IsReset() {
			pg.SignedInAs, pg.NotYouURL = st.acct.Username, op.PathLogoutConfirm
			if !st.flow.Account {
				// In a relying party's sign-in, "Not you?" signs out and
				// goes on with the same request; /account's own
				// verification is the signed-in user's, so it signs out.
				pg.NotYouURL, pg.NotYouPost = h.flowURL(st.flow, "/switch"), true
				// /account's own verification is on the way there
				// already; elsewhere the signed-in user may go there.
				pg.AccountURL = op.PathAccount
			}
		}
	}
	return pg
}

// loc is the language of a request: the flow's ui_locales, then the
// browser's Accept-Language, then English.
func (h *Handler) loc(r *http.Request, st *state) *i18n.Localizer {
	var ui []string
	if st != nil && st.flow != nil {
		ui = st.flow.UILocales
	} else if v := r.URL.Query().Get("ui_locales"); v != "" && len(v) <= maxUILocales {
		// A page outside a flow (forgot password, registration) opened
		// from one carries the flow's ui_locales in its URLs.
		ui = strings.Fields(v)
	}
	return i18n.For(i18n.Match(ui, r.Header.Get("Accept-Language")))
}

// renderFactor shows the form for one factor of a Need decision.
func (h *Handler) renderFactor(w http.ResponseWriter, r *http.Request, st *state, d authn.Decision, factor authn.Factor, status int, errMsg string) {
	cancel := h.flowURL(st.flow, "/cancel")
	if factor == authn.Password {
		username := st.flow.LoginHint
		if st.acct != nil {
			username = st.acct.Username
		}
		if typed := strings.TrimSpace(r.PostFormValue("username")); r.Method == http.MethodPost && typed != "" && !st.flow.IsCIBA() {
			// A failed attempt keeps what the user typed.
			username = typed
		}
		h.pages.Render(w, status, "login", templates.LoginData{
			Page:         h.page(w, r, st, "login.title", errMsg),
			Action:       h.flowURL(st.flow, "/password"),
			Username:     username,
			CancelAction: cancel,
			Passkey:      h.loginPasskey(st),
			ForgotURL:    h.forgotURL(st),
			RegisterURL:  h.registerURL(st),
		})
		return
	}
	var alts []templates.FactorLink
	for _, f := range append([]authn.Factor{d.Need[0]}, d.Alternatives...) {
		if f != factor {
			alts = append(alts, templates.FactorLink{Factor: string(f), Label: factorLabel(f), URL: h.flowURL(st.flow, "?factor="+string(f))})
		}
	}
	step := "step.confirm"
	if d.Target != "" {
		step = h.loc(r, st).T("step.required", "Client", st.c.Name())
	}
	if factor == authn.WebAuthn {
		h.renderWebAuthn(w, r, st, alts, step, status, errMsg)
		return
	}
	data := templates.CodeData{
		Page:         h.page(w, r, st, factorLabel(factor), errMsg),
		Factor:       string(factor),
		Action:       h.flowURL(st.flow, "/"+string(factor)),
		Hint:         factorHint(factor),
		Alternatives: alts,
		CancelAction: cancel,
		Step:         step,
	}
	switch factor {
	case authn.SMS:
		data.Hint = h.loc(r, st).T("code.hint_sms", "Phone", maskPhone(destination(st.acct, factor)))
		data.ResendAction = h.flowURL(st.flow, "/resend/sms")
	case authn.Email:
		data.Hint = h.loc(r, st).T("code.hint_email", "Email", maskEmail(destination(st.acct, factor)))
		data.ResendAction = h.flowURL(st.flow, "/resend/email")
	}
	h.pages.Render(w, status, "code", data)
}

func factorLabel(f authn.Factor) string {
	switch f {
	case authn.TOTP:
		return "factor.totp"
	case authn.SMS:
		return "factor.sms"
	case authn.Email:
		return "factor.email"
	case authn.Recovery:
		return "factor.recovery"
	case authn.WebAuthn:
		return "factor.webauthn"
	}
	return "Password"
}

func factorHint(f authn.Factor) string {
	switch f {
	case authn.TOTP:
		return "code.hint_totp"
	case authn.Recovery:
		return "code.hint_recovery"
	}
	return ""
}

// failed re-renders the current page after a failed attempt: 401 with an
// alert.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, st *state, factor authn.Factor, status int, msg string) {
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if d.Outcome != authn.Need {
		// The session moved on meanwhile (a concurrent submission of the
		// same flow succeeded): a failed attempt still answers as one and
		// never completes the flow, or one request would yield two codes.
		h.pages.Render(w, status, "error", templates.ErrorData{
			Page:    h.page(w, r, st, http.StatusText(status), msg),
			Message: "error.flow_moved_on",
		})
		return
	}
	h.renderFactor(w, r, st, d, factor, status, msg)
}

// password verifies the username and password (the first factor, or a
// re-authentication for max_age / prompt=login).
func (h *Handler) password(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	if st.flow.IsReset() {
		// A reset never asks for the password it replaces.
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	username := strings.TrimSpace(r.PostFormValue("username"))
	pw := r.PostFormValue("password")
	var acct *session.Account
	var err error
	if st.flow.IsCIBA() {
		// An approval is for the user the request named: the password is
		// checked against that account, whatever name the form carries.
		acct, err = h.p.Store().GetAccount(ctx, st.flow.HintSubject)
		if acct != nil {
			username = acct.Username
		}
	} else {
		acct, err = h.p.Store().AccountByUsername(ctx, username)
	}
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		h.p.Unavailable(w, r, err)
		return
	}
	subject := ""
	if acct != nil {
		subject = acct.Subject
	}
	try, ok := h.reserve(w, r, subject, username, func(status int, msg string) {
		h.failed(w, r, st, authn.Password, status, msg)
	})
	if !ok {
		return
	}
	good := false
	if acct == nil || acct.PasswordHash == "" {
		// Unknown users cost the same as a wrong password (no enumeration).
		err = h.p.Hashes().DummyVerify(ctx, pw)
	} else {
		good, err = h.p.Hashes().Verify(ctx, acct.PasswordHash, pw)
	}
	if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
		// Nothing was checked (busy hashers, or the client gave up): the
		// attempt is not a failure.
		try.succeeded()
		h.p.Audit(ctx, obs.EventThrottled, "reason", "busy", "client_id", st.c.GetID())
		w.Header().Set("Retry-After", "1")
		h.renderBusy(w, r, st)
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventLoginFailed, "reason", "bad_credentials", "sub", subject, "client_id", st.c.GetID())
		h.failed(w, r, st, authn.Password, http.StatusUnauthorized, "login.bad_credentials")
		return
	}
	try.succeeded()
	if acct.Disabled {
		// Only a right password learns it; a wrong one stays a 401.
		h.p.Audit(ctx, obs.EventLoginFailed, "reason", "disabled", "sub", acct.Subject, "client_id", st.c.GetID())
		h.failed(w, r, st, authn.Password, http.StatusForbidden, op.MsgDisabled)
		return
	}
	h.p.RehashPassword(ctx, acct, pw)
	now := h.p.Now()
	v := authn.Verification{Factor: authn.Password, At: now}
	if st.sess != nil && st.sess.Subject == acct.Subject {
		// A re-authentication (prompt=login, max_age): the cookie's key
		// is renewed with it (for an approval: kept in the flow).
		if err := h.p.RecordVerification(ctx, w, st.flow, st.sess, v); err != nil {
			h.storeFailure(w, r, err)
			return
		}
		st.sess.Verifications = upsert(st.sess.Verifications, v)
	} else {
		if st.sess != nil {
			// Another user signs in on this browser: the old session ends.
			_ = h.p.Store().DeleteSession(ctx, st.sess.ID)
		}
		s := &session.Session{ID: session.NewID(), Subject: acct.Subject, CreatedAt: now, LastSeenAt: now, Verifications: []authn.Verification{v}, Device: deviceName(r.UserAgent()),
			View: h.p.AccountView(acct)}
		if err := h.p.StartSession(ctx, w, s); err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		fresh, err := h.confirmStarted(ctx, w, s)
		if errors.Is(err, op.ErrDisabled) {
			h.p.Audit(ctx, obs.EventLoginFailed, "reason", "disabled", "sub", acct.Subject, "client_id", st.c.GetID())
			st.sess = nil
			h.failed(w, r, st, authn.Password, http.StatusForbidden, op.MsgDisabled)
			return
		} else if err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		st.sess, acct = s, fresh
	}
	st.acct = acct
	h.p.Audit(ctx, obs.EventLogin, "sub", acct.Subject, "client_id", st.c.GetID())
	h.next(w, r, st)
}

// confirmStarted reads the account of a session this request has just
// started, after an earlier read of the account (the password's, the
// passkey's): a disable or delete that swept the user's sessions between
// that read and the session's creation did not find it, so the session
// ends here instead of outliving the disable (its account is disabled or
// gone: op.ErrDisabled). On any error the session is ended and the
// cookie cleared: fail closed. The codes of a sign-in still read the
// account at their exchange (s.AccountChecked stays false), so that a
// disable whose Redis half failed, or a database write by hand, still
// stops them (TestDisabledInTheDatabaseOnlyIsEnough): one read more per
// sign-in, beside an argon2id hash or a passkey ceremony.
func (h *Handler) confirmStarted(ctx context.Context, w http.ResponseWriter, s *session.Session) (*session.Account, error) {
	acct, err := h.p.LoadAccount(ctx, s)
	s.AccountChecked = false
	if err == nil && acct == nil {
		err = op.ErrDisabled // deleted meanwhile
	}
	if err != nil {
		_ = h.p.Store().DeleteSession(context.WithoutCancel(ctx), s.ID)
		h.p.Sessions().Clear(w)
		return nil, err
	}
	h.p.RefreshView(ctx, s, acct) // changed since the sign-in's read: rare
	return acct, nil
}

func (h *Handler) renderBusy(w http.ResponseWriter, r *http.Request, st *state) {
	h.pages.Render(w, http.StatusServiceUnavailable, "login", templates.LoginData{
		Page:         h.page(w, r, st, "login.title", "login.busy"),
		Action:       h.flowURL(st.flow, "/password"),
		Username:     r.PostFormValue("username"),
		CancelAction: h.flowURL(st.flow, "/cancel"),
	})
}

// endedAnswer is the status and message of a flow that ran out while it
// kept its verifications (op.ErrApprovalEnded): a reset says so in the
// words of the reset's other pages, an approval in its own.
func endedAnswer(err error) (int, string) {
	if errors.Is(err, op.ErrResetEnded) {
		return http.StatusBadRequest, "forgot.expired"
	}
	return http.StatusGone, "error.ciba_ended"
}

// otherPasskeyMsg answers the passkey of another account than the one a
// flow is for (an approval's, a reset's).
func otherPasskeyMsg(f *op.Flow) string {
	if f.IsReset() {
		return "passkey.other_account_reset"
	}
	return "passkey.other_account"
}

// storeFailure handles a failed session write: a session that vanished
// (expired, signed out elsewhere) starts over; one whose key another
// request of this browser renewed first goes on with the cookie that
// request set (nothing was written); an outage answers 503.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, op.ErrApprovalEnded) {
		// A CIBA approval or a reset ran out: its page says so; the
		// browser's own session is not touched.
		status, msg := endedAnswer(err)
		h.Error(w, r, status, msg)
		return
	}
	if errors.Is(err, session.ErrKeyChanged) {
		http.Redirect(w, r, op.PathLoginPrefix+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	if errors.Is(err, session.ErrNotFound) {
		h.p.Sessions().Clear(w)
		http.Redirect(w, r, op.PathLoginPrefix+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	h.p.Unavailable(w, r, err)
}

func upsert(vs []authn.Verification, v authn.Verification) []authn.Verification {
	out := slices.DeleteFunc(slices.Clone(vs), func(x authn.Verification) bool { return x.Factor == v.Factor })
	return append(out, v)
}

// checkTOTP verifies a code against secret and spends its time step, so
// the same code cannot be used twice (a replay is a failure like a wrong
// code).
func (h *Handler) checkTOTP(ctx context.Context, subject, secret, code string) (bool, error) {
	step, ok := totp.Verify(secret, strings.TrimSpace(code), h.p.Now())
	if !ok {
		return false, nil
	}
	return h.p.Store().UseTOTPStep(ctx, subject, step, totpStepMemory)
}

// totpStepMemory outlives the ±1 step window in which a code is accepted.
const totpStepMemory = 150 * time.Second

// totp verifies an authenticator-app code for the signed-in user.
func (h *Handler) totp(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	if st.sess == nil || st.acct == nil || st.acct.TOTPSecret == "" || !h.p.FactorEnabled(authn.TOTP) {
		// No TOTP to verify (reset or removed since the page was decided,
		// or the user is gone): the page is decided again from the
		// account, not shown again from the flow's decision, which would
		// send the browser back here forever.
		if st.flow.Shown != nil {
			st.flow.Shown = nil
			if err := h.p.SaveFlow(r.Context(), st.flow); err != nil {
				h.p.Unavailable(w, r, err)
				return
			}
		}
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	// The code is verified in memory first; its outcome takes effect only
	// through the store's count (reserveTOTP): one round trip counts the
	// attempt, and only an attempt within the budgets claims the step and
	// is given back, as Reserve, UseTOTPStep and Refund did in three.
	step, good := totp.Verify(st.acct.TOTPSecret, strings.TrimSpace(r.PostFormValue("code")), h.p.Now())
	if !good {
		step = -1
	}
	try, good, ok := h.reserveTOTP(w, r, st.acct.Subject, step, func(status int, msg string) {
		h.failed(w, r, st, authn.TOTP, status, msg)
	})
	if !ok {
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventStepUpFailed, "reason", "bad_code", "factor", "totp", "sub", st.acct.Subject, "client_id", st.c.GetID())
		h.failed(w, r, st, authn.TOTP, http.StatusUnauthorized, "code.bad_totp")
		return
	}
	// The IP budget's attempt is given back in the write that records
	// the verification (the user's was, with the claim).
	h.verified(w, r, st, authn.Verification{Factor: authn.TOTP, At: h.p.Now()}, try.others()...)
}

// verified records a second-factor verification, gives refund's attempt
// back, and moves on. In a browser's sign-in the verification, the
// refund and, when the flow ends here, its code are one store write
// (op.Provider.ElevateAndFinish): decided on the session as it will be,
// and answered only once the elevation is recorded.
func (h *Handler) verified(w http.ResponseWriter, r *http.Request, st *state, v authn.Verification, refund ...session.Budget) {
	if st.flow.IsCIBA() || st.flow.IsReset() {
		// An approval or a reset keeps its verifications in its flow.
		h.p.Refund(r.Context(), refund...)
		if h.record(w, r, st, v) {
			h.proceed(w, r, st)
		}
		return
	}
	before := st.sess.Verifications
	st.sess.Verifications = upsert(before, v)
	// Decided as after the record, whose account write (the last factor,
	// which orders the factors still asked) follows the store's.
	acct := *st.acct
	acct.LastFactor = v.Factor
	d := h.p.Decide(st.flow, st.c, st.sess, &acct)
	finished, err := h.p.ElevateAndFinish(w, r, st.flow, st.c, st.sess, v, d, refund, func() {
		h.recorded(r.Context(), st, v)
		if d.Outcome == authn.OK {
			h.p.Audit(r.Context(), obs.EventStepUpDone, "acr", d.ACR, "sub", st.acct.Subject, "client_id", st.c.GetID())
		}
	})
	if err != nil {
		st.sess.Verifications = before
		h.storeFailure(w, r, err)
		return
	}
	if !finished {
		h.decided(w, r, st, d)
	}
}

// record stores a second-factor verification in the session; when it
// returns false it has answered.
func (h *Handler) record(w http.ResponseWriter, r *http.Request, st *state, v authn.Verification) bool {
	ctx := r.Context()
	if err := h.p.RecordVerification(ctx, w, st.flow, st.sess, v); err != nil {
		h.storeFailure(w, r, err)
		return false
	}
	st.sess.Verifications = upsert(st.sess.Verifications, v)
	h.recorded(ctx, st, v)
	return true
}

// recorded is what follows a verification's record: the account's last
// factor and the audit record.
func (h *Handler) recorded(ctx context.Context, st *state, v authn.Verification) {
	// Written only when it changes: a returning user's step-up costs no
	// account write.
	if st.acct.LastFactor != v.Factor {
		if err := h.p.Store().SetLastFactor(ctx, st.acct.Subject, v.Factor); err == nil {
			st.acct.LastFactor = v.Factor
		}
	}
	h.p.Audit(ctx, obs.EventStepUp, "factor", string(v.Factor), "sub", st.acct.Subject, "client_id", st.c.GetID())
}

// proceed asks the policy what comes after a recorded verification.
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, st *state) {
	ctx := r.Context()
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if d.Outcome == authn.OK {
		h.p.Audit(ctx, obs.EventStepUpDone, "acr", d.ACR, "sub", st.acct.Subject, "client_id", st.c.GetID())
	}
	h.decided(w, r, st, d)
}

// renderEnroll offers TOTP enrollment; the secret is kept in the flow
// until a code confirms it.
func (h *Handler) renderEnroll(w http.ResponseWriter, r *http.Request, st *state, d authn.Decision, status int, errMsg string) {
	if d.EnrollFactor == authn.WebAuthn && st.acct != nil && h.passkeysOn() {
		h.renderEnrollPasskey(w, r, st, d, status, errMsg)
		return
	}
	if !h.enrollAllowed(d, authn.TOTP) || st.acct == nil {
		h.Error(w, r, http.StatusInternalServerError, "error.cannot_continue")
		return
	}
	if st.flow.EnrollSecret == "" {
		secret, err := totp.NewSecret()
		if err != nil {
			h.Error(w, r, http.StatusInternalServerError, "error.cannot_continue")
			return
		}
		st.flow.EnrollSecret, st.flow.EnrollSubject = secret, st.acct.Subject
		if err := h.p.SaveFlow(r.Context(), st.flow); err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
	}
	uri := totp.URI(issuerLabel(h.p.Issuer()), st.acct.Username, st.flow.EnrollSecret)
	png, err := totp.QRPNG(uri, 200)
	if err != nil {
		h.Error(w, r, http.StatusInternalServerError, "error.cannot_continue")
		return
	}
	data := templates.EnrollTOTPData{
		Page:         h.page(w, r, st, "enroll_totp.title", errMsg),
		Action:       h.flowURL(st.flow, "/enroll/totp"),
		Secret:       st.flow.EnrollSecret,
		QRDataURI:    template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
		Alternatives: h.enrollLinks(st, d, authn.TOTP),
	}
	if d.Skippable {
		data.CancelAction = h.flowURL(st.flow, "/cancel")
		data.SkipFails = h.skipFails(st)
	}
	h.pages.Render(w, status, "enroll_totp", data)
}

// skipFails reports whether skipping the enrollment offered in st can
// only end the sign-in without success (an essential level, the client's
// floor, mfa.login: always): the policy is asked what a cancel would
// give, without cancelling.
func (h *Handler) skipFails(st *state) bool {
	f := *st.flow
	f.Cancelled = true
	return h.p.Decide(&f, st.c, st.sess, st.acct).Outcome != authn.OK
}

func issuerLabel(issuer string) string {
	if i := strings.Index(issuer, "://"); i >= 0 {
		issuer = issuer[i+3:]
	}
	return issuer
}

// enrollTOTP confirms a TOTP enrollment: the confirming code is the
// factor's verification, so the user is not asked again.
func (h *Handler) enrollTOTP(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if !h.enrollAllowed(d, authn.TOTP) || st.flow.EnrollSecret == "" {
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	try, ok := h.reserve(w, r, st.acct.Subject, "", func(status int, msg string) {
		h.renderEnroll(w, r, st, d, status, msg)
	})
	if !ok {
		return
	}
	good, err := h.checkTOTP(ctx, st.acct.Subject, st.flow.EnrollSecret, r.PostFormValue("code"))
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_code", "factor", "totp", "sub", st.acct.Subject, "client_id", st.c.GetID())
		h.renderEnroll(w, r, st, d, http.StatusUnauthorized, "enroll_totp.bad_code")
		return
	}
	try.succeeded()
	if err := h.p.Store().SetTOTPSecret(ctx, st.acct.Subject, st.flow.EnrollSecret); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	st.acct.TOTPSecret = st.flow.EnrollSecret
	st.flow.EnrollSecret = ""
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "totp", "sub", st.acct.Subject, "client_id", st.c.GetID())
	h.enrolled(w, r, st, authn.Verification{Factor: authn.TOTP, At: h.p.Now()})
}

// enrolled records the verification that confirmed an enrollment, shows
// new recovery codes once when the user has none, and moves on.
func (h *Handler) enrolled(w http.ResponseWriter, r *http.Request, st *state, v authn.Verification) {
	if !h.record(w, r, st, v) {
		return
	}
	if h.offerRecoveryCodes(w, r, st) {
		return
	}
	h.proceed(w, r, st)
}

// cancel ends the flow with what has been reached (voluntary), or with
// unmet_authentication_requirements (essential) / access_denied (no
// sign-in at all).
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	if d := h.p.Decide(st.flow, st.c, st.sess, st.acct); d.Outcome == authn.Enroll && !d.Skippable && !st.flow.IsCIBA() {
		// force_enroll: enroll now, no skip (PRODUCT.md §3). The page has
		// no cancel control; a posted cancel changes nothing, or it would
		// complete the request at the level reached without enrolling. (A
		// cancelled approval is a denial: it grants nothing.)
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	st.flow.Cancelled = true
	sub := ""
	if st.sess != nil {
		sub = st.sess.Subject
	}
	h.p.Audit(r.Context(), obs.EventCancelled, "sub", sub, "client_id", st.c.GetID())
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if d.Outcome != authn.OK && d.Outcome != authn.Fail {
		d = authn.Decision{Outcome: authn.Fail, Error: "access_denied", Description: "the user cancelled"}
	}
	h.p.Finish(w, r, st.flow, st.c, st.sess, d)
}

// switchUser is "Not you?" on a step-up page: the browser's session ends
// (as a sign-out would) and the same sign-in request starts again at the
// password form, for whoever is at the keyboard. The flow binding stays:
// the request is still this browser's.
func (h *Handler) switchUser(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	if st.flow.IsCIBA() || st.flow.Account {
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	if st.sess != nil {
		if err := h.p.Store().DeleteSession(r.Context(), st.sess.ID); err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		h.p.Audit(r.Context(), obs.EventLogout, "sub", st.sess.Subject, "reason", "not_you", "client_id", st.c.GetID())
	}
	h.p.Sessions().Clear(w)
	http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
}

// logout is the confirmed RP-initiated logout.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	plr, state := r.PostFormValue("post_logout_redirect_uri"), r.PostFormValue("state")
	if _, ok := h.p.LogoutTarget(r.PostFormValue("client_id"), plr); !ok {
		h.Error(w, r, http.StatusBadRequest, "error.unknown_logout_redirect")
		return
	}
	sess, err := h.p.CurrentSession(r)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Logout(w, r, sess, plr, state)
}

// Error implements op.Pages. The page is headed by what happened in
// words (not "Bad Request"), and carries a reference id that is logged
// with the status, path and message, so support can find what a user
// quotes.
func (h *Handler) Error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	l := h.loc(r, nil)
	ref := errorRef()
	h.p.Log().WarnContext(r.Context(), "error page", "ref", ref, "status", status, "method", r.Method, "path", op.LogPath(r), "msg", i18n.For(i18n.Default).T(msg))
	h.pages.Render(w, status, "error", templates.ErrorData{
		Page:    templates.Page{Title: l.T(errorTitle(status)), Lang: l.Lang()},
		Message: l.T(msg),
		Ref:     ref,
		BackURL: op.PathAccount,
	})
}

// errorTitle is the heading key of an error page.
func errorTitle(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "error.title_400"
	case http.StatusForbidden:
		return "error.title_403"
	case http.StatusNotFound:
		return "error.title_404"
	case http.StatusMethodNotAllowed:
		return "error.title_405"
	case http.StatusGone:
		return "error.title_410"
	case http.StatusRequestEntityTooLarge:
		return "error.title_413"
	case http.StatusTooManyRequests:
		return "error.title_429"
	case http.StatusServiceUnavailable:
		return "error.title_503"
	}
	return "error.title"
}

// errorRef is a short id to quote to support: 8 characters, no
// look-alikes.
func errorRef() string {
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// ConfirmLogout implements op.Pages. The page names the account that
// would be signed out; with no session there is nothing to confirm and
// the signed-out page says so.
func (h *Handler) ConfirmLogout(w http.ResponseWriter, r *http.Request, clientID, clientName, plr, state string) {
	sess, err := h.p.CurrentSession(r)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	var acct *session.Account
	if sess != nil {
		if acct, err = h.p.LoadAccount(r.Context(), sess); err != nil && !errors.Is(err, op.ErrDisabled) {
			h.p.Unavailable(w, r, err)
			return
		}
	}
	pg := h.page(w, r, nil, "logout.submit", "")
	pg.ClientName, pg.Client = clientName, clientID
	username := ""
	if acct != nil {
		username = acct.Username
	}
	h.pages.Render(w, http.StatusOK, "logout", templates.LogoutData{
		Page:          pg,
		Username:      username,
		StayURL:       op.PathAccount,
		Action:        op.PathLogoutConfirm,
		ClientID:      clientID,
		PostLogoutURI: plr,
		State:         state,
	})
}

// LoggedOut implements op.Pages.
func (h *Handler) LoggedOut(w http.ResponseWriter, r *http.Request) {
	l := h.loc(r, nil)
	h.pages.Render(w, http.StatusOK, "info", templates.InfoData{
		Page:    templates.Page{Title: l.T("logout.done_title"), Lang: l.Lang()},
		Message: l.T("logout.done"),
		// A way forward: /account signs in first.
		ContinueURL:   op.PathAccount,
		ContinueLabel: "logout.sign_in_again",
	})
}
