package login

import (
	"context"
	"errors"
	"github.com/stepup-dev/stepup/i18n"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/templates"
)

// Purposes of one-time codes: a code is good only for what it was sent
// for.
const (
	purposeLoginSMS   = "login:sms"
	purposeLoginEmail = "login:email"
	purposeEnrollSMS  = "enroll:sms"
)

// Answers about sending codes.
const (
	msgSendCapped = "code.send_capped"
	msgSendFailed = "code.send_failed"
	msgBadCode    = "code.bad"
)

// sendTimeout bounds a provider call made while the user waits.
const sendTimeout = 15 * time.Second

// loginPurpose is the purpose of a login code of f.
func loginPurpose(f authn.Factor) string {
	if f == authn.Email {
		return purposeLoginEmail
	}
	return purposeLoginSMS
}

// destination is where codes of f go for acct: a stored phone is a
// verified one; an email is used only where the policy counts it.
func destination(acct *session.Account, f authn.Factor) string {
	if acct == nil {
		return ""
	}
	switch f {
	case authn.SMS:
		return acct.Phone
	case authn.Email:
		return acct.Email
	}
	return ""
}

// offered reports whether the decision asks for f now (as the page's
// factor or one of its alternatives).
func offered(d authn.Decision, f authn.Factor) bool {
	return d.Outcome == authn.Need && len(d.Need) > 0 && (d.Need[0] == f || slices.Contains(d.Alternatives, f))
}

// problem is a code that could not be sent: the status and alert of the
// page that says so.
type problem struct {
	status     int
	msg        string
	retryAfter time.Duration
	// down: the store failed; answer the 503 page.
	down error
}

// send makes a code for (session, purpose, to), within the send caps and
// the resend cooldown, and hands it to the factor's provider.
func (h *Handler) send(r *http.Request, st *state, f authn.Factor, purpose, to string) *problem {
	return h.sendCode(r, h.loc(r, st).Lang(), st.sess.ID, st.acct.Subject, st.c.GetID(), f, purpose, to)
}

// sendCode is send for the browser session sid of the user sub, on
// behalf of clientID (the flow's client, or /account's); the message is
// in lang.
func (h *Handler) sendCode(r *http.Request, lang, sid, sub, clientID string, f authn.Factor, purpose, to string) *problem {
	ctx := r.Context()
	sender := h.p.Sender(f)
	if sender == nil || to == "" {
		return &problem{status: http.StatusConflict, msg: msgSendFailed}
	}
	pol := h.p.CodePolicy()
	budgets := h.p.SendBudgets(sub, to, h.p.ClientIP(r))
	_, over, err := h.p.Reserve(ctx, pol.SendWindow.D(), budgets...)
	if err != nil {
		return &problem{down: err}
	}
	refund := func(bs ...session.Budget) { h.p.Refund(ctx, bs...) }
	if len(over) > 0 {
		for _, b := range over {
			h.p.Audit(ctx, obs.EventLocked, "budget", string(b.Kind), "factor", string(f), "sub", sub, "client_id", clientID)
		}
		return &problem{status: http.StatusTooManyRequests, msg: msgSendCapped, retryAfter: pol.SendWindow.D()}
	}
	code, err := h.p.Codes().Issue(ctx, otpcode.Binding{Session: sid, Purpose: purpose, To: to})
	if errors.Is(err, otpcode.ErrCooldown) {
		refund(budgets...)
		wait := h.p.Codes().Cooldown()
		return &problem{status: http.StatusTooManyRequests, retryAfter: wait,
			msg: i18n.For(lang).T("code.cooldown", "Seconds", int(wait.Seconds()))}
	}
	if err != nil {
		refund(budgets...)
		return &problem{down: err}
	}
	var m notify.Message
	host := issuerLabel(h.p.Issuer())
	if f == authn.Email {
		if m, err = notify.EmailIn(lang, to, code, host, h.p.Codes().TTL()); err != nil {
			h.p.Log().ErrorContext(ctx, "composing a code email failed", "err", err)
			return &problem{status: http.StatusInternalServerError, msg: msgSendFailed}
		}
	} else {
		m = notify.SMSIn(lang, to, code, host, h.p.Codes().TTL())
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	if err := sender.Send(sctx, m); err != nil {
		// The code stays stored but undelivered; the user may ask for a
		// new one after the cooldown. The send stays counted: a failing
		// provider is no reason to lift the caps.
		h.p.Audit(ctx, obs.EventCodeSendFailed, "factor", string(f), "purpose", purpose, "sub", sub, "client_id", clientID, "err", err.Error())
		return &problem{status: http.StatusServiceUnavailable, msg: msgSendFailed, retryAfter: h.p.Codes().Cooldown()}
	}
	h.p.Audit(ctx, obs.EventCodeSent, "factor", string(f), "purpose", purpose, "sub", sub, "client_id", clientID)
	return nil
}

// answer writes a problem's headers and returns its status and alert; a
// store failure answers the 503 page itself and returns ok=false.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, pr *problem) (status int, msg string, ok bool) {
	if pr.down != nil {
		h.p.Unavailable(w, r, pr.down)
		return 0, "", false
	}
	if pr.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(pr.retryAfter.Seconds())))
	}
	return pr.status, pr.msg, true
}

// showCode renders the form of an SMS or email code, sending a code first
// when none is pending for this session (a reload sends nothing new).
func (h *Handler) showCode(w http.ResponseWriter, r *http.Request, st *state, d authn.Decision, f authn.Factor) {
	status, msg := http.StatusOK, ""
	if st.sess != nil && st.acct != nil {
		b := otpcode.Binding{Session: st.sess.ID, Purpose: loginPurpose(f), To: destination(st.acct, f)}
		pending, err := h.p.Codes().Pending(r.Context(), b)
		if err != nil {
			h.p.Unavailable(w, r, err)
			return
		}
		if !pending {
			if pr := h.send(r, st, f, b.Purpose, b.To); pr != nil {
				var ok bool
				if status, msg, ok = h.answer(w, r, pr); !ok {
					return
				}
			}
		}
	}
	h.renderFactor(w, r, st, d, f, status, msg)
}

// verifyCode is the POST of an SMS or email code: counted in the user's
// one budget before it is checked, consumed atomically.
func (h *Handler) verifyCode(f authn.Factor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, ok := h.load(w, r)
		if !ok {
			return
		}
		if st.sess == nil || st.acct == nil || !offered(h.p.Decide(st.flow, st.c, st.sess, st.acct), f) {
			http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
			return
		}
		ctx := r.Context()
		try, ok := h.reserve(w, r, st.acct.Subject, "", func(status int, msg string) {
			h.failed(w, r, st, f, status, msg)
		})
		if !ok {
			return
		}
		b := otpcode.Binding{Session: st.sess.ID, Purpose: loginPurpose(f), To: destination(st.acct, f)}
		good, err := h.p.Codes().Verify(ctx, b, r.PostFormValue("code"))
		if err != nil {
			try.succeeded() // nothing was checked
			h.p.Unavailable(w, r, err)
			return
		}
		if !good {
			try.failed()
			h.p.Audit(ctx, obs.EventStepUpFailed, "reason", "bad_code", "factor", string(f), "sub", st.acct.Subject, "client_id", st.c.GetID())
			h.failed(w, r, st, f, http.StatusUnauthorized, msgBadCode)
			return
		}
		try.succeeded()
		h.verified(w, r, st, authn.Verification{Factor: f, At: h.p.Now()})
	}
}

// resend sends a new code on request (data-action="resend"), within the
// cooldown and the caps: {factor} is sms or email for a login code, or
// enroll-sms for the code of a phone being enrolled.
func (h *Handler) resend(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	if st.sess == nil || st.acct == nil {
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	switch which := r.PathValue("factor"); which {
	case "enroll-sms":
		if !h.enrollAllowed(d, authn.SMS) || st.flow.EnrollPhone == "" {
			break
		}
		if pr := h.send(r, st, authn.SMS, purposeEnrollSMS, st.flow.EnrollPhone); pr != nil {
			if status, msg, ok := h.answer(w, r, pr); ok {
				h.renderEnrollPhone(w, r, st, d, status, msg)
			}
			return
		}
		http.Redirect(w, r, h.flowURL(st.flow, "?enroll=sms"), http.StatusSeeOther)
		return
	case string(authn.SMS), string(authn.Email):
		f := authn.Factor(which)
		if !offered(d, f) {
			break
		}
		if pr := h.send(r, st, f, loginPurpose(f), destination(st.acct, f)); pr != nil {
			if status, msg, ok := h.answer(w, r, pr); ok {
				h.renderFactor(w, r, st, d, f, status, msg)
			}
			return
		}
		http.Redirect(w, r, h.flowURL(st.flow, "?factor="+which), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
}

// enrollOptions are the factors an Enroll decision may be met with: the
// one the policy picked and, when that is TOTP or a phone, the other of
// the two if the flow can enroll it (both add possession).
func (h *Handler) enrollOptions(d authn.Decision) []authn.Factor {
	if d.Outcome != authn.Enroll {
		return nil
	}
	opts := []authn.Factor{d.EnrollFactor}
	if d.EnrollFactor != authn.TOTP && d.EnrollFactor != authn.SMS {
		return opts
	}
	for _, f := range h.p.Enrollable() {
		if (f == authn.TOTP || f == authn.SMS) && f != d.EnrollFactor {
			opts = append(opts, f)
		}
	}
	return opts
}

func (h *Handler) enrollAllowed(d authn.Decision, f authn.Factor) bool {
	return slices.Contains(h.enrollOptions(d), f)
}

// enrollChoice is the factor the enrollment page shows: ?enroll=… when
// the decision allows it, else the policy's pick.
func (h *Handler) enrollChoice(r *http.Request, st *state, d authn.Decision) authn.Factor {
	if want := authn.Factor(r.URL.Query().Get("enroll")); h.enrollAllowed(d, want) {
		return want
	}
	if st.flow.EnrollPhone != "" && h.enrollAllowed(d, authn.SMS) {
		// Back on the page after a phone was texted a code: stay there.
		return authn.SMS
	}
	return d.EnrollFactor
}

// enrollLinks are the other enrollment options, as data-enroll links.
func (h *Handler) enrollLinks(st *state, d authn.Decision, shown authn.Factor) []templates.FactorLink {
	var links []templates.FactorLink
	for _, f := range h.enrollOptions(d) {
		if f == shown {
			continue
		}
		label := "enroll.alt_totp"
		if f == authn.SMS {
			label = "enroll.alt_sms"
		}
		links = append(links, templates.FactorLink{Factor: string(f), Label: label, URL: h.flowURL(st.flow, "?enroll="+string(f))})
	}
	return links
}

// renderEnrollPhone shows phone enrollment: the number form, or, once a
// code was texted, the code form.
func (h *Handler) renderEnrollPhone(w http.ResponseWriter, r *http.Request, st *state, d authn.Decision, status int, errMsg string) {
	data := templates.EnrollPhoneData{
		Page:         h.page(w, r, st, "enroll_phone.title", errMsg),
		PhoneAction:  h.flowURL(st.flow, "/enroll/phone"),
		Phone:        st.flow.EnrollPhone,
		CodeAction:   h.flowURL(st.flow, "/enroll/sms"),
		Alternatives: h.enrollLinks(st, d, authn.SMS),
	}
	if data.Phone != "" {
		data.ResendAction = h.flowURL(st.flow, "/resend/enroll-sms")
	}
	if d.Skippable {
		data.CancelAction = h.flowURL(st.flow, "/cancel")
		data.SkipFails = h.skipFails(st)
	}
	h.pages.Render(w, status, templates.PageEnrollPhone, data)
}

// e164 is an international number: + and 8 to 15 digits.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// normalizePhone drops the spaces, dots, dashes and parentheses people
// type in numbers; the result must be E.164.
func normalizePhone(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', '-', '(', ')', '\t':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	return s, e164.MatchString(s)
}

// enrollPhone texts a code to the number the user typed (within the send
// caps: this is where SMS pumping would happen).
func (h *Handler) enrollPhone(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if st.sess == nil || st.acct == nil || !h.enrollAllowed(d, authn.SMS) {
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	phone, valid := normalizePhone(r.PostFormValue("phone"))
	if !valid {
		h.renderEnrollPhone(w, r, st, d, http.StatusBadRequest, "phone.bad_number")
		return
	}
	if pr := h.send(r, st, authn.SMS, purposeEnrollSMS, phone); pr != nil {
		if status, msg, ok := h.answer(w, r, pr); ok {
			h.renderEnrollPhone(w, r, st, d, status, msg)
		}
		return
	}
	st.flow.EnrollPhone, st.flow.EnrollSubject = phone, st.acct.Subject
	if err := h.p.SaveFlow(r.Context(), st.flow); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	http.Redirect(w, r, h.flowURL(st.flow, "?enroll=sms"), http.StatusSeeOther)
}

// enrollSMS confirms a phone with the code texted to it: the phone is
// stored (verified) and the code counts as the SMS factor's verification.
func (h *Handler) enrollSMS(w http.ResponseWriter, r *http.Request) {
	st, ok := h.load(w, r)
	if !ok {
		return
	}
	d := h.p.Decide(st.flow, st.c, st.sess, st.acct)
	if st.sess == nil || st.acct == nil || !h.enrollAllowed(d, authn.SMS) || st.flow.EnrollPhone == "" {
		http.Redirect(w, r, h.flowURL(st.flow, ""), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	try, ok := h.reserve(w, r, st.acct.Subject, "", func(status int, msg string) {
		h.renderEnrollPhone(w, r, st, d, status, msg)
	})
	if !ok {
		return
	}
	phone := st.flow.EnrollPhone
	good, err := h.p.Codes().Verify(ctx, otpcode.Binding{Session: st.sess.ID, Purpose: purposeEnrollSMS, To: phone}, r.PostFormValue("code"))
	if err != nil {
		try.succeeded()
		h.p.Unavailable(w, r, err)
		return
	}
	if !good {
		try.failed()
		h.p.Audit(ctx, obs.EventEnrollFailed, "reason", "bad_code", "factor", "sms", "sub", st.acct.Subject, "client_id", st.c.GetID())
		h.renderEnrollPhone(w, r, st, d, http.StatusUnauthorized, msgBadCode)
		return
	}
	try.succeeded()
	if err := h.p.Store().SetPhone(ctx, st.acct.Subject, phone); err != nil {
		h.p.Unavailable(w, r, err)
		return
	}
	st.acct.Phone = phone
	st.flow.EnrollPhone = ""
	if err := h.p.SaveFlow(ctx, st.flow); err != nil {
		h.p.Log().WarnContext(ctx, "clearing the enrolled phone from the flow failed", "err", err)
	}
	h.p.Audit(ctx, obs.EventEnrolled, "factor", "sms", "sub", st.acct.Subject, "client_id", st.c.GetID())
	h.enrolled(w, r, st, authn.Verification{Factor: authn.SMS, At: h.p.Now()})
}

// maskPhone shows enough of a number to recognise it: +1•••••0100.
func maskPhone(p string) string {
	if len(p) <= 6 {
		return p
	}
	return p[:2] + strings.Repeat("•", len(p)-6) + p[len(p)-4:]
}

// maskEmail shows the first letter and the domain: a•••@example.com.
func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at < 1 {
		return e
	}
	return e[:1] + "•••" + e[at:]
}
