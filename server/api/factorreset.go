package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// resetFactor removes one kind of enrolled factor from an account.
type resetFactor func(ctx context.Context, st session.Store, a *session.Account) error

// factorResets are the kinds DELETE /api/v1/users/{user_id}/factors/{kind}
// takes (PRODUCT.md §10): what support needs to help a user who lost a
// factor.
var factorResets = map[string]resetFactor{
	"totp": func(ctx context.Context, st session.Store, a *session.Account) error {
		return st.SetTOTPSecret(ctx, a.Subject, "")
	},
	// A passkey registered between the read of the account and the
	// deletions survives; it was registered after the reset was asked.
	"webauthn": func(ctx context.Context, st session.Store, a *session.Account) error {
		for _, pk := range a.Passkeys {
			if err := st.DeletePasskey(ctx, a.Subject, pk.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
				return err
			}
		}
		return nil
	},
	"sms": func(ctx context.Context, st session.Store, a *session.Account) error {
		return st.SetPhone(ctx, a.Subject, "")
	},
	// The address stays (it is the account's contact); only its use as
	// a second factor ends.
	"email": func(ctx context.Context, st session.Store, a *session.Account) error {
		return st.SetEmailMFA(ctx, a.Subject, false)
	},
	"recovery": func(ctx context.Context, st session.Store, a *session.Account) error {
		return st.SetRecoveryCodes(ctx, a.Subject, nil)
	},
}

// resetFactor is DELETE /api/v1/users/{user_id}/factors/{kind}: the
// factor is no longer enrolled (204 also when it was not). Sessions that
// already verified it keep those verifications until they end; support
// that suspects a stolen device also ends them (DELETE
// /api/v1/users/{user_id}/sessions).
func (h *Handler) resetFactor(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAdmin, false)
	if !ok {
		return
	}
	kind := r.PathValue("kind")
	reset, known := factorResets[kind]
	if !known {
		fail(w, http.StatusBadRequest, errInvalidRequest, "unknown factor kind (want totp, webauthn, sms, email or recovery)")
		return
	}
	a, ok := h.account(w, r)
	if !ok {
		return
	}
	if err := reset(r.Context(), h.p.Store(), a); err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return
	}
	h.p.Audit(r.Context(), obs.EventAdminFactorReset, "sub", a.Subject, "factor", kind, "client_id", c.client.GetID())
	w.WriteHeader(http.StatusNoContent)
}
