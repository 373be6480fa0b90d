package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/i18n"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
)

// SMS and email codes through the API: POST …/send makes a code bound to
// the API session's stepup session, its purpose and the destination, and
// hands it to the configured provider under the hosted pages' send caps
// (mfa.codes: per user, per destination, and per end-user address when it
// is known); POST …/verify checks it like any factor, under the user's
// one lockout budget.

// Purposes of API codes: a code sent through the API is good only there.
const (
	purposeSMS   = "api:sms"
	purposeEmail = "api:email"
)

// sendTimeout bounds a provider call.
const sendTimeout = 15 * time.Second

// codeFactor is a factor proved by a code stepup sends.
func codeFactor(kind authn.Factor, purpose string, to func(*session.Account) string, enrolled func(*op.Provider, *session.Account) bool) factor {
	return factor{
		kind: kind,
		enrolled: func(p *op.Provider, a *session.Account) bool {
			return to(a) != "" && p.FactorEnabled(kind) && p.Sender(kind) != nil && enrolled(p, a)
		},
		check: func(ctx context.Context, p *op.Provider, a *session.Account, pr proof) (bool, error) {
			if pr.Session == "" {
				return false, nil
			}
			return p.Codes().Verify(ctx, otpcode.Binding{Session: pr.Session, Purpose: purpose, To: to(a)}, pr.Code)
		},
		purpose: purpose,
		to:      to,
		badCode: errInvalidCode, badDesc: "the code is not valid or has expired (a code can be used only once)",
	}
}

func codeFactors() map[string]factor {
	return map[string]factor{
		// A stored phone is a verified one.
		"sms": codeFactor(authn.SMS, purposeSMS, func(a *session.Account) string { return a.Phone },
			func(*op.Provider, *session.Account) bool { return true }),
		// An email address is a factor only when the user turned email
		// codes on (PRODUCT.md §2).
		"email": codeFactor(authn.Email, purposeEmail, func(a *session.Account) string { return a.Email },
			func(_ *op.Provider, a *session.Account) bool { return a.EmailMFA }),
	}
}

type sendRequest struct {
	Factor string `json:"factor"`
}

// sendCode is POST /api/v1/authn/sessions/{id}/send.
func (h *Handler) sendCode(w http.ResponseWriter, r *http.Request) {
	c, _, _, sess, acct, ok := h.load(w, r)
	if !ok {
		return
	}
	var req sendRequest
	if !decode(w, r, &req) {
		return
	}
	f, known := h.factors[req.Factor]
	if !known || f.purpose == "" {
		fail(w, http.StatusBadRequest, errInvalidRequest, "factor must be sms or email")
		return
	}
	if !f.enrolled(h.p, acct) {
		fail(w, http.StatusBadRequest, errNotEnrolled, "the user has no "+req.Factor+" factor")
		return
	}
	ctx := r.Context()
	to := f.to(acct)
	pol := h.p.CodePolicy()
	ip, _ := h.endUserIP(r, c)
	budgets := h.p.SendBudgets(acct.Subject, to, ip)
	_, over, err := h.p.Reserve(ctx, pol.SendWindow.D(), budgets...)
	if err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	refund := func(bs ...session.Budget) { h.p.Refund(ctx, bs...) }
	if len(over) > 0 {
		for _, b := range over {
			h.p.Audit(ctx, obs.EventLocked, "budget", string(b.Kind), "factor", string(f.kind), "sub", acct.Subject, "client_id", c.client.GetID(), "via", "api")
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(pol.SendWindow.D().Seconds())))
		fail(w, http.StatusTooManyRequests, errRateLimited, "too many codes were sent; try again later")
		return
	}
	code, err := h.p.Codes().Issue(ctx, otpcode.Binding{Session: sess.ID, Purpose: f.purpose, To: to})
	if errors.Is(err, otpcode.ErrCooldown) {
		refund(budgets...)
		w.Header().Set("Retry-After", strconv.Itoa(int(h.p.Codes().Cooldown().Seconds())))
		fail(w, http.StatusTooManyRequests, errRateLimited, "a code was sent moments ago; wait before asking for another")
		return
	}
	if err != nil {
		refund(budgets...)
		h.storeFailure(w, r, err, "")
		return
	}
	host := h.p.Issuer()
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	// An API session has no ui_locales; the caller's Accept-Language
	// (a native app passes the device's) picks the text, then English.
	lang := i18n.Match(nil, r.Header.Get("Accept-Language"))
	var m notify.Message
	if f.kind == authn.Email {
		if m, err = notify.EmailIn(lang, to, code, host, h.p.Codes().TTL()); err != nil {
			h.p.Log().ErrorContext(ctx, "composing a code email failed", "err", err)
			fail(w, http.StatusInternalServerError, "server_error", "the code could not be sent")
			return
		}
	} else {
		m = notify.SMSIn(lang, to, code, host, h.p.Codes().TTL())
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	if err := h.p.Sender(f.kind).Send(sctx, m); err != nil {
		// The send stays counted: a failing provider is no reason to lift
		// the caps.
		h.p.Audit(ctx, obs.EventCodeSendFailed, "factor", string(f.kind), "purpose", f.purpose, "sub", acct.Subject, "client_id", c.client.GetID(), "err", err.Error())
		w.Header().Set("Retry-After", strconv.Itoa(int(h.p.Codes().Cooldown().Seconds())))
		fail(w, http.StatusServiceUnavailable, "send_failed", "the code could not be sent; try again shortly")
		return
	}
	h.p.Audit(ctx, obs.EventCodeSent, "factor", string(f.kind), "purpose", f.purpose, "sub", acct.Subject, "client_id", c.client.GetID(), "via", "api")
	writeJSON(w, http.StatusAccepted, map[string]any{"sent": true, "factor": req.Factor, "expires_in": int(h.p.Codes().TTL().Seconds())})
}
