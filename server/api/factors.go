package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
)

// proof is what a caller sends to prove a factor; each factor reads the
// fields it needs.
type proof struct {
	Password string
	Code     string
	// Session is the stepup session a sent code is bound to ("" outside
	// an API authentication session).
	Session string
}

// factor is one factor the APIs can verify. Adding a factor (SMS or
// email codes, recovery codes) is adding an entry to defaultFactors.
type factor struct {
	kind authn.Factor
	// enrolled reports whether the account can use the factor now (the
	// configuration enables it and the user has it).
	enrolled func(p *op.Provider, a *session.Account) bool
	// check verifies the proof. An error means nothing was checked
	// (password.ErrBusy, a store failure); the attempt is then not a
	// failure.
	check func(ctx context.Context, p *op.Provider, a *session.Account, pr proof) (bool, error)
	// badCode is the error code of a wrong proof.
	badCode, badDesc string
	// purpose and to are set for factors proved by a code stepup sends
	// (POST …/send): the code's purpose and the account's destination.
	purpose string
	to      func(*session.Account) string
}

func defaultFactors() map[string]factor {
	return map[string]factor{
		"password": {
			kind:     authn.Password,
			enrolled: func(_ *op.Provider, a *session.Account) bool { return a.PasswordHash != "" },
			check: func(ctx context.Context, p *op.Provider, a *session.Account, pr proof) (bool, error) {
				if pr.Password == "" {
					return false, nil
				}
				ok, err := p.Hashes().Verify(ctx, a.PasswordHash, pr.Password)
				if ok && err == nil {
					p.RehashPassword(ctx, a, pr.Password)
				}
				return ok, err
			},
			badCode: errInvalidCreds, badDesc: "the password is not correct",
		},
		"totp": {
			kind: authn.TOTP,
			enrolled: func(p *op.Provider, a *session.Account) bool {
				return a.TOTPSecret != "" && p.FactorEnabled(authn.TOTP)
			},
			check: func(ctx context.Context, p *op.Provider, a *session.Account, pr proof) (bool, error) {
				return p.CheckTOTP(ctx, a.Subject, a.TOTPSecret, pr.Code)
			},
			badCode: errInvalidCode, badDesc: "the code is not valid (a code can be used only once)",
		},
		"recovery": {
			kind: authn.Recovery,
			enrolled: func(p *op.Provider, a *session.Account) bool {
				return a.RecoveryCodes > 0 && p.FactorEnabled(authn.Recovery)
			},
			check: func(ctx context.Context, p *op.Provider, a *session.Account, pr proof) (bool, error) {
				return p.Recovery().Consume(ctx, a.Subject, pr.Code)
			},
			badCode: errInvalidCode, badDesc: "the recovery code is not valid (each code can be used only once)",
		},
	}
}

// verify runs one factor check under the abuse budgets — the user's one
// budget shared with the hosted pages, and the end user's IP budget when
// the address is known — counted before the check and refunded on
// success, exactly as on the hosted pages. It answers every failure
// itself; true means the factor is verified.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request, c *caller, f factor, acct *session.Account, ip netip.Addr, pr proof) bool {
	ctx := r.Context()
	budgets := []session.Budget{h.p.UserBudget(acct.Subject)}
	if ip.IsValid() {
		budgets = append(budgets, h.p.IPBudget(ip))
	}
	counts, over, err := h.p.Reserve(ctx, h.p.LockoutWindow(), budgets...)
	if err != nil {
		h.storeFailure(w, r, err, "")
		return false
	}
	if len(over) > 0 {
		for _, b := range over {
			h.p.Audit(ctx, obs.EventLocked, "budget", string(b.Kind), "sub", acct.Subject, "client_id", c.client.GetID(), "via", "api")
		}
		retryAfter(w, h)
		fail(w, http.StatusTooManyRequests, errRateLimited, "too many failed attempts; try again later")
		return false
	}
	ok, err := f.check(ctx, h.p, acct, pr)
	if err != nil {
		h.p.Refund(ctx, budgets...) // not checked: no failure to count
		if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
			h.p.Audit(ctx, obs.EventThrottled, "reason", "busy", "client_id", c.client.GetID(), "via", "api")
			w.Header().Set("Retry-After", "1")
			fail(w, http.StatusServiceUnavailable, errBusy, "the service is busy; try again in a moment")
			return false
		}
		h.storeFailure(w, r, err, "")
		return false
	}
	if !ok {
		for i, b := range budgets {
			if counts[i] == b.Max {
				h.p.Audit(ctx, obs.EventLockout, "budget", string(b.Kind), "sub", acct.Subject, "failures", counts[i], "via", "api")
			}
		}
		event, reason := obs.EventStepUpFailed, "bad_code"
		if f.kind == authn.Password {
			event, reason = obs.EventLoginFailed, "bad_credentials"
		}
		h.p.Audit(ctx, event, "reason", reason, "factor", string(f.kind), "sub", acct.Subject, "client_id", c.client.GetID(), "via", "api")
		fail(w, http.StatusBadRequest, f.badCode, f.badDesc)
		return false
	}
	h.p.Refund(ctx, budgets...)
	event := obs.EventStepUp
	if f.kind == authn.Password {
		event = obs.EventLogin
	}
	h.p.Audit(ctx, event, "factor", string(f.kind), "sub", acct.Subject, "client_id", c.client.GetID(), "via", "api")
	return true
}
