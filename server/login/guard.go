package login

import (
	"net/http"
	"strconv"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// attempt is one try at a secret (a password or a code), counted against
// the abuse budgets before the secret is checked, so that concurrent
// attempts can never check more secrets than a budget allows.
type attempt struct {
	h       *Handler
	r       *http.Request
	subject string
	budgets []session.Budget
	counts  []int64
}

// Messages of the failure answers; the 401 one is per factor.
const msgLocked = "login.locked"

// reserve counts an attempt by subject (or, with no account, username).
// When it returns false it has answered: 429 through retry when a budget
// is exhausted — even if the secret would have been right — or 503 when
// the store is down (fail closed: no budget, no check).
func (h *Handler) reserve(w http.ResponseWriter, r *http.Request, subject, username string, retry func(status int, msg string)) (*attempt, bool) {
	return h.reserveAs(w, r, subject, username, retry, "")
}

// reserveAs is reserve whose answer to a spent per-user budget is a plain
// failure (401 with userLockedMsg, no Retry-After) when userLockedMsg is
// set: for a flow that must answer an unknown address exactly as an
// account (forgot password), where an account's lockout, spent perhaps
// by someone else's sign-in attempts, would otherwise tell that the
// address has one. Nothing is checked either way; a spent IP budget
// (the asker's own) still answers 429.
func (h *Handler) reserveAs(w http.ResponseWriter, r *http.Request, subject, username string, retry func(status int, msg string), userLockedMsg string) (*attempt, bool) {
	a := &attempt{h: h, r: r, subject: subject, budgets: h.p.Budgets(r, subject, username)}
	counts, over, err := h.p.Reserve(r.Context(), h.p.LockoutWindow(), a.budgets...)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return nil, false
	}
	a.counts = counts
	if len(over) == 0 {
		return a, true
	}
	h.overBudget(w, r, a, over, retry, userLockedMsg)
	return nil, false
}

// reserveTOTP is reserve for a TOTP code verified in memory (step ≥ 0;
// < 0 for a wrong code): one round trip counts the attempt, claims the
// step and gives the user's budget back when the code is good and unused
// (op.Provider.ReserveTOTP). claimed tells a good code; the caller gives
// the other budgets (attempt.others) back.
func (h *Handler) reserveTOTP(w http.ResponseWriter, r *http.Request, subject string, step int64, retry func(status int, msg string)) (a *attempt, claimed, ok bool) {
	a = &attempt{h: h, r: r, subject: subject, budgets: h.p.Budgets(r, subject, "")}
	counts, over, claimed, err := h.p.ReserveTOTP(r.Context(), a.budgets, subject, step)
	if err != nil {
		h.p.Unavailable(w, r, err)
		return nil, false, false
	}
	a.counts = counts
	if len(over) == 0 {
		return a, claimed, true
	}
	h.overBudget(w, r, a, over, retry, "")
	return nil, false, false
}

// others are the budgets of a good TOTP code's attempt other than the
// user's own, which the store gave back with the claim: the caller gives
// them back (Handler.verified, in the write that records the code).
func (a *attempt) others() []session.Budget {
	var rest []session.Budget
	for _, b := range a.budgets {
		if b.Kind != session.BudgetUser || b.ID != a.subject {
			rest = append(rest, b)
		}
	}
	return rest
}

// overBudget answers an attempt that found budgets exhausted (see
// reserveAs).
func (h *Handler) overBudget(w http.ResponseWriter, r *http.Request, a *attempt, over []session.Budget, retry func(status int, msg string), userLockedMsg string) {
	subject := a.subject
	userOnly := true
	for _, b := range over {
		h.p.Audit(r.Context(), obs.EventLocked, "budget", string(b.Kind), "sub", subject, "ip", a.ip())
		userOnly = userOnly && b.Kind == session.BudgetUser
	}
	if userOnly && userLockedMsg != "" {
		retry(http.StatusUnauthorized, userLockedMsg)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(h.p.LockoutWindow().Seconds())))
	retry(http.StatusTooManyRequests, msgLocked)
}

// ip is the id of the attempt's IP budget (the client address, IPv6 per
// /64), for the audit log.
func (a *attempt) ip() string {
	for _, b := range a.budgets {
		if b.Kind == session.BudgetIP {
			return b.ID
		}
	}
	return ""
}

// failed keeps the attempt counted. The failure that reaches a budget's
// limit is a lockout; it is still answered 401 like any failure.
func (a *attempt) failed() {
	for i, b := range a.budgets {
		if a.counts[i] == b.Max {
			a.h.p.Audit(a.r.Context(), obs.EventLockout, "budget", string(b.Kind), "sub", a.subject, "ip", a.ip(), "failures", a.counts[i])
		}
	}
}

// succeeded gives the attempt back: only failures use the budgets.
func (a *attempt) succeeded() { a.h.p.Refund(a.r.Context(), a.budgets...) }
