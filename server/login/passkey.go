package login

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"github.com/stepup-dev/stepup/i18n"
	"io"
	"net/http"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/passkey"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// The WebAuthn ceremonies are JSON endpoints called by static/passkey.js:
// begin answers the options for navigator.credentials, finish takes the
// PublicKeyCredential back and answers where to go next. They are POSTs
// guarded like the forms: cross-origin protection, and the CSRF token in
// the X-CSRF-Token header (the body is the credential).

// registerPasskeys adds the ceremony endpoints of the sign-in flow.
func (h *Handler) registerPasskeys(mux *http.ServeMux, cop *http.CrossOriginProtection) {
	mux.Handle("POST /login/{id}/webauthn/begin", cop.Handler(h.requireCSRFHeader(h.passkeyBegin)))
	mux.Handle("POST /login/{id}/webauthn/finish", cop.Handler(h.requireCSRFHeader(h.passkeyFinish)))
	mux.Handle("POST /login/{id}/enroll/webauthn/begin", cop.Handler(h.requireCSRFHeader(h.enrollPasskeyBegin)))
	mux.Handle("POST /login/{id}/enroll/webauthn/finish", cop.Handler(h.requireCSRFHeader(h.enrollPasskeyFinish)))
}

// requireCSRFHeader is requireCSRF for the JSON endpoints.
func (h *Handler) requireCSRFHeader(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sid := h.p.Sessions().ID(r)
		got := r.Header.Get("X-CSRF-Token")
		if sid == "" || got == "" || !hmacEqual(got, h.csrfToken(sid)) {
			writeJSON(w, r, http.StatusForbidden, ceremonyAnswer{Error: "passkey.page_expired"})
			return
		}
		next(w, r)
	}
}

// ceremonyAnswer is what the JSON endpoints answer: Redirect to go on,
// or Error to show in the page's alert.
type ceremonyAnswer struct {
	Redirect string `json:"redirect,omitempty"`
	Error    string `json:"error,omitempty"`
}

// writeJSON answers a ceremony request; an error of a ceremonyAnswer is a
// catalogue key, written in the browser's language (the page's script
// shows it as it is).
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	if a, ok := v.(ceremonyAnswer); ok && a.Error != "" {
		a.Error = i18n.For(i18n.Match(nil, r.Header.Get("Accept-Language"))).T(a.Error)
		v = a
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOptions(w http.ResponseWriter, options []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(options)
}

// binding ties a ceremony to the browser and the page that began it.
func (h *Handler) binding(r *http.Request, place string) string {
	return place + "\x00" + h.p.Sessions().ID(r)
}

// saveCeremony keeps a ceremony under its challenge until its finish.
func (h *Handler) saveCeremony(r *http.Request, cer *passkey.Ceremony) error {
	b, err := json.Marshal(cer)
	if err != nil {
		return err
	}
	return h.p.Store().PutChallenge(r.Context(), cer.Challenge(), b, h.p.Passkeys().Timeout())
}

// takeCeremony reads the credential from the body and consumes the
// ceremony it answers. ok is false when it has answered.
func (h *Handler) takeCeremony(w http.ResponseWriter, r *http.Request, place string) (body []byte, cer *passkey.Ceremony, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, passkey.MaxResponseSize))
	if err != nil {
		writeJSON(w, r, http.StatusRequestEntityTooLarge, ceremonyAnswer{Error: "passkey.too_large"})
		return nil, nil, false
	}
	challenge, err := passkey.ChallengeOf(body)
	if err != nil {
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "passkey.malformed"})
		return nil, nil, false
	}
	b, err := h.p.Store().TakeChallenge(r.Context(), challenge)
	if errors.Is(err, session.ErrNotFound) {
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "passkey.expired"})
		return nil, nil, false
	} else if err != nil {
		h.unavailableJSON(w, r, err)
		return nil, nil, false
	}
	cer = new(passkey.Ceremony)
	if err := json.Unmarshal(b, cer); err != nil || cer.Binding != h.binding(r, place) {
		// Consumed anyway: a ceremony answered from elsewhere is spent.
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "passkey.other_page"})
		return nil, nil, false
	}
	return body, cer, true
}

func (h *Handler) unavailableJSON(w http.ResponseWriter, r *http.Request, err error) {
	h.p.Audit(r.Context(), obs.EventStoreDown, "path", r.URL.Path, "err", err.Error(), "reason", "store_unavailable")
	w.Header().Set("Retry-After", "5")
	writeJSON(w, r, http.StatusServiceUnavailable, ceremonyAnswer{Error: "error.unavailable"})
}

// passkeysOn reports whether passkeys can be used at all.
func (h *Handler) passkeysOn() bool {
	return h.p.Passkeys() != nil && h.p.FactorEnabled(authn.WebAuthn)
}

// passkeyBegin starts an assertion in a sign-in flow: for the signed-in
// user's own credentials (a step-up), or a discoverable one (passwordless
// sign-in; ?mediation=conditional for the autofill of the login page).
func (h *Handler) passkeyBegin(w http.ResponseWriter, r *http.Request) {
	if !h.passkeysOn() {
		writeJSON(w, r, http.StatusNotFound, ceremonyAnswer{Error: "passkey.unavailable"})
		return
	}
	st, ok := h.loadJSON(w, r)
	if !ok {
		return
	}
	place := "flow:" + st.flow.ID
	var options []byte
	var cer *passkey.Ceremony
	var err error
	if st.sess != nil && st.acct != nil && len(st.acct.Passkeys) > 0 && r.URL.Query().Get("mediation") != "conditional" {
		options, cer, err = h.p.Passkeys().BeginLogin(h.p.PasskeyUser(st.acct), h.binding(r, place))
	} else {
		options, cer, err = h.p.Passkeys().BeginDiscoverable(h.binding(r, place), r.URL.Query().Get("mediation") == "conditional")
	}
	if err != nil {
		h.p.Log().ErrorContext(r.Context(), "passkey begin failed", "err", err)
		writeJSON(w, r, http.StatusInternalServerError, ceremonyAnswer{Error: "passkey.cannot_use"})
		return
	}
	if err := h.saveCeremony(r, cer); err != nil {
		h.unavailableJSON(w, r, err)
		return
	}
	writeOptions(w, options)
}

// loadJSON is load for the JSON endpoints.
func (h *Handler) loadJSON(w http.ResponseWriter, r *http.Request) (*state, bool) {
	f, c, sess, err := h.p.FlowAndSession(r, r.PathValue("id"))
	if errors.Is(err, session.ErrNotFound) {
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "error.flow_expired"})
		return nil, false
	} else if errors.Is(err, op.ErrOtherBrowser) {
		writeJSON(w, r, http.StatusForbidden, ceremonyAnswer{Error: msgOtherBrowser})
		return nil, false
	} else if err != nil {
		h.unavailableJSON(w, r, err)
		return nil, false
	}
	acct, err := h.p.LoadAccount(r.Context(), sess)
	if err != nil {
		h.unavailableJSON(w, r, err)
		return nil, false
	}
	return &state{flow: f, c: c, sess: sess, acct: acct}, true
}

// lookupUser loads an account as WebAuthn sees it.
func (h *Handler) lookupUser(r *http.Request, found **session.Account) passkey.Lookup {
	return func(subject string) (*passkey.User, error) {
		a, err := h.p.Store().GetAccount(r.Context(), subject)
		if err != nil {
			return nil, err
		}
		*found = a
		return h.p.PasskeyUser(a), nil
	}
}

// passkeyFinish verifies an assertion of a sign-in flow and records it in
// the browser's session: a passwordless sign-in starts the session, a
// step-up adds to it.
func (h *Handler) passkeyFinish(w http.ResponseWriter, r *http.Request) {
	if !h.passkeysOn() {
		writeJSON(w, r, http.StatusNotFound, ceremonyAnswer{Error: "passkey.unavailable"})
		return
	}
	st, ok := h.loadJSON(w, r)
	if !ok {
		return
	}
	body, cer, ok := h.takeCeremony(w, r, "flow:"+st.flow.ID)
	if !ok {
		return
	}
	ctx := r.Context()
	a, err := passkey.ParseAssertion(body)
	if err != nil || cer.Kind == passkey.KindRegister {
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "passkey.malformed"})
		return
	}
	claimed := cer.Subject
	if claimed == "" {
		claimed = plausibleSubject(a.ClaimedSubject())
	}
	// Every factor shares the user's one budget (PRODUCT.md §3 Lockout).
	try, ok := h.reserve(w, r, claimed, claimed, func(status int, msg string) {
		writeJSON(w, r, status, ceremonyAnswer{Error: msg})
	})
	if !ok {
		return
	}
	var acct *session.Account
	now := h.p.Now()
	res, err := h.p.Passkeys().FinishLogin(h.lookupUser(r, &acct), cer, a, now)
	if res != nil && res.Clone {
		h.p.Audit(ctx, obs.EventPasskeyClone, "sub", res.Subject, "credential", res.Credential.ID(), "refused", errors.Is(err, passkey.ErrPossibleClone))
	}
	if err != nil {
		if errors.Is(err, session.ErrUnavailable) {
			try.succeeded()
			h.unavailableJSON(w, r, err)
			return
		}
		try.failed()
		event := obs.EventStepUpFailed
		if cer.Kind == passkey.KindDiscover {
			event = obs.EventLoginFailed
		}
		h.p.Audit(ctx, event, "reason", "bad_assertion", "factor", "webauthn", "sub", claimed, "client_id", st.c.GetID())
		h.p.Log().InfoContext(ctx, "passkey assertion refused", "err", err)
		msg := "passkey.refused"
		if errors.Is(err, passkey.ErrPossibleClone) {
			msg = "passkey.cloned"
		}
		writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: msg})
		return
	}
	try.succeeded()
	rec, err := res.Credential.Encode()
	if err == nil {
		err = h.p.Store().UpdatePasskey(ctx, res.Subject, session.StoredPasskey{ID: res.Credential.ID(), Data: rec})
	}
	if errors.Is(err, session.ErrNotFound) {
		// Removed while the ceremony ran: it proves nothing any more.
		writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: "passkey.removed"})
		return
	} else if err != nil {
		h.unavailableJSON(w, r, err)
		return
	}
	v := res.Verification(now)
	if err := h.recordPasskey(w, r, st, acct, v); err != nil {
		if errors.Is(err, op.ErrApprovalEnded) {
			status, msg := endedAnswer(err)
			writeJSON(w, r, status, ceremonyAnswer{Error: msg})
			return
		}
		if errors.Is(err, errOtherUsersPasskey) {
			writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: otherPasskeyMsg(st.flow)})
			return
		}
		if errors.Is(err, session.ErrKeyChanged) {
			// Another request of this browser renewed the session first;
			// its cookie goes on.
			writeJSON(w, r, http.StatusConflict, ceremonyAnswer{Error: "passkey.moved_on", Redirect: op.PathLoginPrefix + st.flow.ID})
			return
		}
		if errors.Is(err, session.ErrNotFound) {
			h.p.Sessions().Clear(w)
			writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: "passkey.session_ended", Redirect: op.PathLoginPrefix + st.flow.ID})
			return
		}
		if errors.Is(err, op.ErrDisabled) {
			h.p.Audit(ctx, obs.EventLoginFailed, "reason", "disabled", "factor", "webauthn", "sub", acct.Subject, "client_id", st.c.GetID())
			writeJSON(w, r, http.StatusForbidden, ceremonyAnswer{Error: op.MsgDisabled})
			return
		}
		h.unavailableJSON(w, r, err)
		return
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if d.Outcome == authn.OK && !st.flow.Account {
		h.p.Audit(ctx, obs.EventStepUpDone, "acr", d.ACR, "sub", st.acct.Subject, "client_id", st.c.GetID())
	}
	if !v.UV && d.Outcome == authn.Need && d.Need[0] == authn.WebAuthn {
		// Recorded (it proves possession), but what is asked for needs the
		// authenticator to verify the user.
		writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: "passkey.no_uv"})
		return
	}
	writeJSON(w, r, http.StatusOK, ceremonyAnswer{Redirect: op.PathLoginPrefix + st.flow.ID})
}

// recordPasskey puts a verified assertion into the browser's session: a
// new session when nobody (or someone else) is signed in on it.
func (h *Handler) recordPasskey(w http.ResponseWriter, r *http.Request, st *state, acct *session.Account, v authn.Verification) error {
	ctx := r.Context()
	if (st.flow.IsCIBA() || st.flow.IsReset()) && (st.sess == nil || st.sess.Subject != acct.Subject) {
		// An approval is for the user the request named, never another
		// one whose passkey this is.
		return errOtherUsersPasskey
	}
	if st.sess != nil && st.sess.Subject == acct.Subject {
		if err := h.p.RecordVerification(ctx, w, st.flow, st.sess, v); err != nil {
			return err
		}
		st.sess.Verifications = upsert(st.sess.Verifications, v)
		h.p.Audit(ctx, obs.EventStepUp, "factor", string(v.Factor), "uv", v.UV, "sub", acct.Subject, "client_id", st.c.GetID())
	} else {
		if st.sess != nil {
			_ = h.p.Store().DeleteSession(ctx, st.sess.ID)
		}
		now := v.At
		s := &session.Session{ID: session.NewID(), Subject: acct.Subject, CreatedAt: now, LastSeenAt: now, Verifications: []authn.Verification{v}, Device: deviceName(r.UserAgent()),
			View: h.p.AccountView(acct)}
		if err := h.p.StartSession(ctx, w, s); err != nil {
			return err
		}
		fresh, err := h.confirmStarted(ctx, w, s)
		if err != nil {
			return err
		}
		st.sess, acct = s, fresh
		h.p.Audit(ctx, obs.EventLogin, "factor", string(v.Factor), "uv", v.UV, "sub", acct.Subject, "client_id", st.c.GetID())
	}
	if acct.LastFactor != authn.WebAuthn {
		if err := h.p.Store().SetLastFactor(ctx, acct.Subject, authn.WebAuthn); err == nil {
			acct.LastFactor = authn.WebAuthn
		}
	}
	st.acct = acct
	return nil
}

// errOtherUsersPasskey: a CIBA approval got an assertion of another
// user's passkey.
var errOtherUsersPasskey = errors.New("the passkey is another user's")

func hmacEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// loginPasskey offers passwordless sign-in on the login page.
func (h *Handler) loginPasskey(st *state) *templates.Ceremony {
	if !h.passkeysOn() {
		return nil
	}
	return &templates.Ceremony{
		Kind:   "get",
		Begin:  h.flowURL(st.flow, "/webauthn/begin"),
		Finish: h.flowURL(st.flow, "/webauthn/finish"),
	}
}

// renderWebAuthn shows the passkey step-up form.
func (h *Handler) renderWebAuthn(w http.ResponseWriter, r *http.Request, st *state, alts []templates.FactorLink, step string, status int, errMsg string) {
	h.pages.Render(w, status, "webauthn", templates.WebAuthnData{
		Page: h.page(w, r, st, factorLabel(authn.WebAuthn), errMsg),
		Ceremony: templates.Ceremony{
			Kind:   "get",
			Begin:  h.flowURL(st.flow, "/webauthn/begin"),
			Finish: h.flowURL(st.flow, "/webauthn/finish"),
		},
		Alternatives: alts,
		CancelAction: h.flowURL(st.flow, "/cancel"),
		Step:         step,
	})
}

// renderEnrollPasskey offers to register a passkey in the flow, when the
// level asked for needs one the user does not have.
func (h *Handler) renderEnrollPasskey(w http.ResponseWriter, r *http.Request, st *state, d authn.Decision, status int, errMsg string) {
	data := templates.EnrollPasskeyData{
		Page: h.page(w, r, st, "enroll_passkey.title", errMsg),
		Ceremony: templates.Ceremony{
			Kind:   "create",
			Begin:  h.flowURL(st.flow, "/enroll/webauthn/begin"),
			Finish: h.flowURL(st.flow, "/enroll/webauthn/finish"),
		},
		Step: h.loc(r, st).T("step.passkey_required", "Client", st.c.Name()),
	}
	if d.Skippable {
		data.CancelAction = h.flowURL(st.flow, "/cancel")
		data.SkipFails = h.skipFails(st)
	}
	h.pages.Render(w, status, "enroll_passkey", data)
}

// enrolling loads the flow for an in-flow registration and checks that
// the policy asks for one; ok is false when it has answered.
func (h *Handler) enrolling(w http.ResponseWriter, r *http.Request) (*state, bool) {
	if !h.passkeysOn() {
		writeJSON(w, r, http.StatusNotFound, ceremonyAnswer{Error: "passkey.unavailable"})
		return nil, false
	}
	st, ok := h.loadJSON(w, r)
	if !ok {
		return nil, false
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if st.sess == nil || st.acct == nil || d.Outcome != authn.Enroll || d.EnrollFactor != authn.WebAuthn {
		writeJSON(w, r, http.StatusConflict, ceremonyAnswer{Error: "passkey.nothing_to_set_up", Redirect: op.PathLoginPrefix + st.flow.ID})
		return nil, false
	}
	return st, true
}

func (h *Handler) enrollPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	st, ok := h.enrolling(w, r)
	if !ok {
		return
	}
	options, cer, err := h.p.Passkeys().BeginRegistration(h.p.PasskeyUser(st.acct), h.binding(r, "enroll:"+st.flow.ID))
	if err != nil {
		h.p.Log().ErrorContext(r.Context(), "passkey registration begin failed", "err", err)
		writeJSON(w, r, http.StatusInternalServerError, ceremonyAnswer{Error: "passkey.cannot_create"})
		return
	}
	if err := h.saveCeremony(r, cer); err != nil {
		h.unavailableJSON(w, r, err)
		return
	}
	writeOptions(w, options)
}

// enrollPasskeyFinish stores the new passkey. Registering is not a
// verification (PRODUCT.md §3): the flow goes on to ask for an assertion.
func (h *Handler) enrollPasskeyFinish(w http.ResponseWriter, r *http.Request) {
	st, ok := h.enrolling(w, r)
	if !ok {
		return
	}
	body, cer, ok := h.takeCeremony(w, r, "enroll:"+st.flow.ID)
	if !ok {
		return
	}
	ctx := r.Context()
	c, err := h.p.Passkeys().FinishRegistration(h.p.PasskeyUser(st.acct), cer, body, r.URL.Query().Get("name"), h.p.Now())
	if err != nil {
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_attestation", "factor", "webauthn", "sub", st.acct.Subject, "client_id", st.c.GetID())
		h.p.Log().InfoContext(ctx, "passkey registration refused", "err", err)
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "passkey.create_failed"})
		return
	}
	rec, err := c.Encode()
	if err == nil {
		err = h.p.Store().PutPasskey(ctx, st.acct.Subject, session.StoredPasskey{ID: c.ID(), Data: rec})
	}
	if err != nil {
		h.unavailableJSON(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "webauthn", "sub", st.acct.Subject, "client_id", st.c.GetID(), "credential", c.ID(),
		"aaguid", c.AAGUID(), "uv", c.UV, "hardware", c.Hardware, "synced", c.Synced(), "attestation", c.WebAuthn.AttestationFormat)
	writeJSON(w, r, http.StatusOK, ceremonyAnswer{Redirect: op.PathLoginPrefix + st.flow.ID})
}

// plausibleSubject returns a user handle that could be one of our subjects
// (printable, no Redis hash-tag braces, at most 64 bytes), else "": an
// unverified handle names the budget an attempt is counted against, and
// must not shape a store key.
func plausibleSubject(s string) string {
	if len(s) == 0 || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if r <= ' ' || r > '~' || r == '{' || r == '}' {
			return ""
		}
	}
	return s
}
