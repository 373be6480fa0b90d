package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/passkey"
	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// The account security page (/account): a signed-in user sees and manages
// their factors and sessions. Looking needs a session; every change of a
// factor needs a verification within op.AccountFreshness (at the
// multi-factor level when the user has a second factor), which the page
// asks for through the same hosted pages as any relying party.

func (h *Handler) registerAccount(mux *http.ServeMux, cop *http.CrossOriginProtection, post func(string, http.HandlerFunc)) {
	mux.HandleFunc("GET "+op.PathAccount, h.account)
	post(op.PathAccount+"/verify", h.accountVerify)
	post(op.PathAccount+"/passkeys/{cred}/rename", h.accountRenamePasskey)
	post(op.PathAccount+"/passkeys/{cred}/remove", h.accountRemovePasskey)
	post(op.PathAccount+"/totp/new", h.accountNewTOTP)
	post(op.PathAccount+"/totp", h.accountConfirmTOTP)
	post(op.PathAccount+"/totp/remove", h.accountRemoveTOTP)
	post(op.PathAccount+"/sessions/{handle}/revoke", h.accountRevokeSession)
	post(op.PathAccount+"/recovery", h.accountRecoveryCodes)
	h.registerAccountCodes(post)
	h.registerAccountProfile(post)
	mux.Handle("POST "+op.PathAccount+"/passkeys/begin", cop.Handler(h.requireCSRFHeader(h.accountPasskeyBegin)))
	mux.Handle("POST "+op.PathAccount+"/passkeys/finish", cop.Handler(h.requireCSRFHeader(h.accountPasskeyFinish)))
}

// accountState loads the signed-in session and account; without one it
// answers itself (GET: sign in first; POST: back to the page).
func (h *Handler) accountState(w http.ResponseWriter, r *http.Request) (*session.Session, *session.Account, bool) {
	sess, err := h.p.CurrentSession(r)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return nil, nil, false
	}
	var acct *session.Account
	if sess != nil {
		if acct, err = h.p.LoadAccount(r.Context(), sess); err != nil {
			h.p.Unavailable(w, r, err)
			return nil, nil, false
		}
	}
	if sess == nil || acct == nil {
		if r.Method != http.MethodGet {
			http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
			return nil, nil, false
		}
		if r.URL.Query().Get("verify") == "cancelled" {
			h.pages.Render(w, http.StatusOK, "info", templates.InfoData{
				Page:        templates.Page{Title: "account.not_signed_in_title"},
				Message:     "account.not_signed_in",
				ContinueURL: op.PathAccount,
			})
			return nil, nil, false
		}
		u, err := h.p.StartAccountVerification(w, r, nil, op.PathAccount, false)
		if err != nil {
			h.p.Unavailable(w, r, err)
			return nil, nil, false
		}
		http.Redirect(w, r, u, http.StatusFound)
		return nil, nil, false
	}
	return sess, acct, true
}

// requireFresh sends the user to verify again when the session's latest
// verification is too old to change a factor; it returns false then.
func (h *Handler) requireFresh(w http.ResponseWriter, r *http.Request, sess *session.Session, acct *session.Account) bool {
	if h.p.AccountFresh(sess, acct) {
		return true
	}
	u, err := h.p.StartAccountVerification(w, r, acct, op.PathAccount, true)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return false
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
	return false
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok {
		return
	}
	notice := ""
	errMsg := ""
	switch r.URL.Query().Get("done") {
	case "passkey":
		notice = "account.done_passkey"
	case "renamed":
		notice = "account.done_renamed"
	case "removed":
		notice = "account.done_removed"
	case "totp":
		notice = "account.done_totp"
	case "revoked":
		notice = "account.done_revoked"
	case "email-on":
		notice = "account.done_email_on"
	case "email-off":
		notice = "account.done_email_off"
	case "phone":
		notice = "account.done_phone"
	case "password":
		notice = "account.done_password"
	case "address":
		notice = "account.done_address"
	}
	if r.URL.Query().Get("verify") == "cancelled" {
		errMsg = "account.verify_cancelled"
	}
	h.renderAccount(w, r, sess, acct, http.StatusOK, notice, errMsg)
}

// sessionHandle names a session on the page without revealing its id (a
// bearer secret).
func (h *Handler) sessionHandle(id string) string {
	mac := hmac.New(sha256.New, h.csrfKey)
	mac.Write([]byte("session-handle\x00" + id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:12])
}

func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, sess *session.Session, acct *session.Account, status int, notice, errMsg string) {
	ctx := r.Context()
	pg := h.page(w, r, nil, "account.title", errMsg)
	l := h.loc(r, nil)
	fmtTime := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return l.DateTime(t)
	}
	data := templates.AccountData{
		Page:           pg,
		Username:       acct.Username,
		Name:           acct.Name,
		Notice:         notice,
		Fresh:          h.p.AccountFresh(sess, acct),
		VerifyAction:   op.PathAccount + "/verify",
		HasPassword:    acct.PasswordHash != "",
		TOTPOn:         h.p.FactorEnabled(authn.TOTP),
		TOTP:           acct.TOTPSecret != "",
		TOTPAction:     op.PathAccount + "/totp/new",
		TOTPRemove:     op.PathAccount + "/totp/remove",
		PasswordAction: op.PathAccount + "/password",
		AccountEmail:   acct.Email,
	}
	if h.canChangeAddress() {
		data.AddressAction = op.PathAccount + "/address"
	}
	h.fillAccountCodes(&data, acct)
	if h.p.FactorEnabled(authn.Recovery) {
		data.RecoveryOn = true
		data.RecoveryLeft = acct.RecoveryCodes
		data.RecoveryAction = op.PathAccount + "/recovery"
	}
	if h.passkeysOn() {
		data.PasskeysOn = true
		data.PasskeyBegin = op.PathAccount + "/passkeys/begin"
		data.PasskeyFinish = op.PathAccount + "/passkeys/finish"
		for _, c := range h.p.PasskeyCredentials(acct) {
			row := templates.PasskeyRow{
				ID:           c.ID(),
				Name:         c.Name,
				Created:      fmtTime(c.CreatedAt),
				LastUsed:     fmtTime(c.LastUsedAt),
				Synced:       c.Synced(),
				UV:           c.UV,
				Hardware:     h.p.Passkeys().Hardware(c),
				RenameAction: op.PathAccount + "/passkeys/" + c.ID() + "/rename",
				RemoveAction: op.PathAccount + "/passkeys/" + c.ID() + "/remove",
			}
			data.Passkeys = append(data.Passkeys, row)
		}
	}
	list, err := h.p.Store().ListSessions(ctx, acct.Subject)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	slices.SortFunc(list, func(a, b *session.Session) int { return b.LastSeenAt.Compare(a.LastSeenAt) })
	for _, s := range list {
		var methods []string
		for _, v := range s.Verifications {
			methods = append(methods, l.T(factorLabel(v.Factor)))
		}
		var clients []string
		for _, id := range s.ClientIDs {
			// People know applications by name, not by client_id.
			if c, ok := h.p.Client(id); ok {
				clients = append(clients, c.Name())
			} else {
				clients = append(clients, id)
			}
		}
		data.Sessions = append(data.Sessions, templates.SessionRow{
			Device:       s.Device,
			Created:      fmtTime(s.CreatedAt),
			LastSeen:     fmtTime(s.LastSeenAt),
			Clients:      strings.Join(clients, ", "),
			Methods:      strings.Join(methods, ", "),
			Current:      s.ID == sess.ID,
			RevokeAction: op.PathAccount + "/sessions/" + h.sessionHandle(s.ID) + "/revoke",
		})
	}
	h.pages.Render(w, status, "account", data)
}

// accountVerify starts a fresh verification for changing factors.
func (h *Handler) accountVerify(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok {
		return
	}
	if h.requireFresh(w, r, sess, acct) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
	}
}

// refuseLastFactor answers 409 when removing one second factor would leave
// none while a client floor or mfa.login: always needs one.
//
// Recovery codes do not count: they are the way back in when the other
// factors are lost, not a factor to sign in with every day.
func (h *Handler) refuseLastFactor(w http.ResponseWriter, r *http.Request, sess *session.Session, acct *session.Account) bool {
	n := 0
	for _, en := range h.p.PolicyAccount(acct).Enrolled {
		if en.Factor != authn.Recovery {
			n++
		}
	}
	if !h.p.NeedsSecondFactor() || n > 1 {
		return false
	}
	h.renderAccount(w, r, sess, acct, http.StatusConflict, "",
		"account.last_factor")
	return true
}

func (h *Handler) findPasskey(acct *session.Account, id string) *passkey.Credential {
	for _, c := range h.p.PasskeyCredentials(acct) {
		if c.ID() == id {
			return c
		}
	}
	return nil
}

func (h *Handler) accountRenamePasskey(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	c := h.findPasskey(acct, r.PathValue("cred"))
	name := passkey.CleanName(r.PostFormValue("name"))
	if c == nil || name == "" {
		h.renderAccount(w, r, sess, acct, http.StatusBadRequest, "", "account.passkey_name_needed")
		return
	}
	c.Name = name
	rec, err := c.Encode()
	if err == nil {
		err = h.p.Store().UpdatePasskey(r.Context(), acct.Subject, session.StoredPasskey{ID: c.ID(), Data: rec})
	}
	if errors.Is(err, session.ErrNotFound) {
		// Removed meanwhile (another tab): nothing was renamed.
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(r.Context(), obs.EventFactorRenamed, "factor", "webauthn", "sub", acct.Subject, "credential", c.ID())
	http.Redirect(w, r, op.PathAccount+"?done=renamed", http.StatusSeeOther)
}

func (h *Handler) accountRemovePasskey(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	c := h.findPasskey(acct, r.PathValue("cred"))
	if c == nil {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	if h.refuseLastFactor(w, r, sess, acct) {
		return
	}
	if err := h.p.Store().DeletePasskey(r.Context(), acct.Subject, c.ID()); err != nil && !errors.Is(err, session.ErrNotFound) {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(r.Context(), obs.EventFactorRemoved, "factor", "webauthn", "sub", acct.Subject, "credential", c.ID())
	http.Redirect(w, r, op.PathAccount+"?done=removed", http.StatusSeeOther)
}

func (h *Handler) accountRemoveTOTP(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if acct.TOTPSecret == "" {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	if h.refuseLastFactor(w, r, sess, acct) {
		return
	}
	if err := h.p.Store().SetTOTPSecret(r.Context(), acct.Subject, ""); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(r.Context(), obs.EventFactorRemoved, "factor", "totp", "sub", acct.Subject)
	http.Redirect(w, r, op.PathAccount+"?done=removed", http.StatusSeeOther)
}

// sealPending seals a value being confirmed on /account (a TOTP secret,
// a phone number) into the form, bound to its purpose, the session and
// the freshness window, so nothing is stored until a code confirms it.
func (h *Handler) sealPending(purpose, sid, value string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return value + "." + e + "." + h.pendingMAC(purpose, sid, value, e)
}

func (h *Handler) pendingMAC(purpose, sid, value, exp string) string {
	mac := hmac.New(sha256.New, h.csrfKey)
	mac.Write([]byte(purpose + "-pending\x00" + sid + "\x00" + value + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// openPending returns the sealed value, or "" when the seal is not for
// this purpose and session, or has expired.
func (h *Handler) openPending(purpose, sid, sealed string) string {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || !hmac.Equal([]byte(parts[2]), []byte(h.pendingMAC(purpose, sid, parts[0], parts[1]))) {
		return ""
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || h.p.Now().After(time.Unix(exp, 0)) {
		return ""
	}
	return parts[0]
}

func (h *Handler) accountNewTOTP(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.p.FactorEnabled(authn.TOTP) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	secret, err := totp.NewSecret()
	if err != nil {
		h.Error(w, r, http.StatusInternalServerError, "error.totp_unavailable")
		return
	}
	h.renderAccountTOTP(w, r, sess, acct, h.sealPending("totp", sess.ID, secret, h.p.Now().Add(op.AccountFreshness)), secret, http.StatusOK, "")
}

func (h *Handler) renderAccountTOTP(w http.ResponseWriter, r *http.Request, sess *session.Session, acct *session.Account, sealed, secret string, status int, errMsg string) {
	png, err := totp.QRPNG(totp.URI(issuerLabel(h.p.Issuer()), acct.Username, secret), 200)
	if err != nil {
		h.Error(w, r, http.StatusInternalServerError, "error.totp_unavailable")
		return
	}
	title := "enroll_totp.title"
	if acct.TOTPSecret != "" {
		title = "account.totp_replace_title"
	}
	h.pages.Render(w, status, "enroll_totp", templates.EnrollTOTPData{
		Page:         h.page(w, r, nil, title, errMsg),
		Action:       op.PathAccount + "/totp",
		Secret:       secret,
		QRDataURI:    template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
		CancelAction: op.PathAccount,
		CancelLink:   true,
		Pending:      sealed,
	})
}

func (h *Handler) accountConfirmTOTP(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	sealed := r.PostFormValue("pending")
	secret := h.openPending("totp", sess.ID, sealed)
	if secret == "" {
		h.renderAccount(w, r, sess, acct, http.StatusBadRequest, "", "account.setup_expired")
		return
	}
	ctx := r.Context()
	try, ok := h.reserve(w, r, acct.Subject, "", func(status int, msg string) {
		h.renderAccountTOTP(w, r, sess, acct, sealed, secret, status, msg)
	})
	if !ok {
		return
	}
	good, err := h.checkTOTP(ctx, acct.Subject, secret, r.PostFormValue("code"))
	if err != nil {
		try.succeeded() // nothing was checked: an outage is not a wrong code
		h.p.Unavailable(w, r, err)
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_code", "factor", "totp", "sub", acct.Subject)
		h.renderAccountTOTP(w, r, sess, acct, sealed, secret, http.StatusUnauthorized, "enroll_totp.bad_code")
		return
	}
	try.succeeded()
	if err := h.p.Store().SetTOTPSecret(ctx, acct.Subject, secret); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "totp", "sub", acct.Subject, "where", "account")
	// The confirming code is a verification of the new factor.
	v := authn.Verification{Factor: authn.TOTP, At: h.p.Now()}
	if err := h.p.Elevate(ctx, w, sess, v); err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrKeyChanged) {
		h.p.Unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, op.PathAccount+"?done=totp", http.StatusSeeOther)
}

func (h *Handler) accountRevokeSession(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	list, err := h.p.Store().ListSessions(ctx, acct.Subject)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	for _, s := range list {
		if s.Subject != acct.Subject || !hmacEqual(h.sessionHandle(s.ID), r.PathValue("handle")) {
			continue
		}
		if err := h.p.Store().DeleteSession(ctx, s.ID); err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		h.p.Audit(ctx, obs.EventSessionRevoked, "sub", acct.Subject, "current", s.ID == sess.ID)
		if s.ID == sess.ID {
			h.p.Sessions().Clear(w)
			h.LoggedOut(w, r)
			return
		}
		http.Redirect(w, r, op.PathAccount+"?done=revoked", http.StatusSeeOther)
		return
	}
	// No session of this user has that handle (already gone): say nothing
	// was signed out.
	http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
}

// accountPasskeyBegin starts registering a passkey for the signed-in
// user; a stale session is sent to verify first ({"redirect": …}).
func (h *Handler) accountPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	if !h.passkeysOn() {
		writeJSON(w, r, http.StatusNotFound, ceremonyAnswer{Error: "passkey.unavailable"})
		return
	}
	acct, ok := h.accountJSON(w, r)
	if !ok {
		return
	}
	options, cer, err := h.p.Passkeys().BeginRegistration(h.p.PasskeyUser(acct), h.binding(r, "account:"+acct.Subject))
	if err != nil {
		h.p.Log().ErrorContext(r.Context(), "passkey registration begin failed", "err", err)
		writeJSON(w, r, http.StatusInternalServerError, ceremonyAnswer{Error: "passkey.cannot_add"})
		return
	}
	if err := h.saveCeremony(r, cer); err != nil {
		h.unavailableJSON(w, r, err)
		return
	}
	writeOptions(w, options)
}

// accountJSON is accountState and requireFresh for the JSON endpoints: the
// signed-in, freshly verified account, or false when it has answered.
func (h *Handler) accountJSON(w http.ResponseWriter, r *http.Request) (*session.Account, bool) {
	sess, err := h.p.CurrentSession(r)
	if err != nil {
		h.unavailableJSON(w, r, err)
		return nil, false
	}
	var acct *session.Account
	if sess != nil {
		if acct, err = h.p.LoadAccount(r.Context(), sess); err != nil {
			h.unavailableJSON(w, r, err)
			return nil, false
		}
	}
	if sess == nil || acct == nil {
		writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: "logout.done", Redirect: op.PathAccount})
		return nil, false
	}
	if !h.p.AccountFresh(sess, acct) {
		u, err := h.p.StartAccountVerification(w, r, acct, op.PathAccount, true)
		if err != nil {
			h.unavailableJSON(w, r, err)
			return nil, false
		}
		writeJSON(w, r, http.StatusUnauthorized, ceremonyAnswer{Error: "passkey.confirm_first", Redirect: u})
		return nil, false
	}
	return acct, true
}

// accountPasskeyFinish verifies and stores a new passkey. Registering is
// not a verification: the session gains nothing from it (PRODUCT.md §3).
func (h *Handler) accountPasskeyFinish(w http.ResponseWriter, r *http.Request) {
	if !h.passkeysOn() {
		writeJSON(w, r, http.StatusNotFound, ceremonyAnswer{Error: "passkey.unavailable"})
		return
	}
	acct, ok := h.accountJSON(w, r)
	if !ok {
		return
	}
	body, cer, ok := h.takeCeremony(w, r, "account:"+acct.Subject)
	if !ok {
		return
	}
	ctx := r.Context()
	c, err := h.p.Passkeys().FinishRegistration(h.p.PasskeyUser(acct), cer, body, r.URL.Query().Get("name"), h.p.Now())
	if err != nil {
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_attestation", "factor", "webauthn", "sub", acct.Subject)
		h.p.Log().InfoContext(ctx, "passkey registration refused", "err", err)
		writeJSON(w, r, http.StatusBadRequest, ceremonyAnswer{Error: "passkey.add_failed"})
		return
	}
	rec, err := c.Encode()
	if err == nil {
		err = h.p.Store().PutPasskey(ctx, acct.Subject, session.StoredPasskey{ID: c.ID(), Data: rec})
	}
	if err != nil {
		h.unavailableJSON(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "webauthn", "sub", acct.Subject, "credential", c.ID(),
		"aaguid", c.AAGUID(), "uv", c.UV, "hardware", c.Hardware, "synced", c.Synced(), "attestation", c.WebAuthn.AttestationFormat)
	writeJSON(w, r, http.StatusOK, ceremonyAnswer{Redirect: op.PathAccount + "?done=passkey"})
}

// accountRecoveryCodes makes a new set of recovery codes, replacing the
// old ones, and shows it once.
func (h *Handler) accountRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	sess, acct, ok := h.accountState(w, r)
	if !ok || !h.requireFresh(w, r, sess, acct) {
		return
	}
	if !h.p.FactorEnabled(authn.Recovery) {
		http.Redirect(w, r, op.PathAccount, http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	codes, err := h.p.Recovery().Generate(ctx, acct.Subject)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "recovery", "sub", acct.Subject, "where", "account", "replaced", acct.RecoveryCodes)
	h.pages.Render(w, http.StatusOK, "info", templates.InfoData{
		Page:          h.page(w, r, nil, "recovery.save_title", ""),
		Message:       "recovery.save_account",
		RecoveryCodes: codes,
		ContinueURL:   op.PathAccount,
	})
}
