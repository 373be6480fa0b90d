package op

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// Reset is the state of a password reset (forgot password, PRODUCT.md
// §11) kept in its flow. A reset is a step-up of its own: an emailed
// code, then the account's strongest second factor, then a new
// password. Like a CIBA approval, its verifications live in the flow
// (Flow.Verifications) and never in a browser session: a reset signs
// nobody in. Whoever finishes it signs in afterwards with the new
// password, at whatever level the application then asks for.
type Reset struct {
	// Email is the address the code was sent to, as typed.
	Email string `json:"email"`
	// Factor is the second factor the account must verify after the
	// email code, chosen when the reset starts: the strongest it has
	// enrolled (webauthn, totp, sms), "" when it has none.
	Factor authn.Factor `json:"factor,omitempty"`
	// Admin marks a reset opened from an administrator's recovery link:
	// the link stands for the email code and the second factor, and the
	// account's factors are removed with the new password (the user lost
	// them), so the next sign-in enrolls new ones.
	Admin bool `json:"admin,omitempty"`
}

// EmailVerified reports whether the reset flow f has verified its emailed
// code (an administrator's recovery link stands for it).
func (r *Reset) EmailVerified(f *Flow) bool {
	if r.Admin {
		return true
	}
	return slices.ContainsFunc(f.Verifications, func(v authn.Verification) bool { return v.Factor == authn.Email })
}

// PathReset is the prefix of the forgot-password pages.
const PathReset = "/reset"

// IsReset reports whether f is a password reset.
func (f *Flow) IsReset() bool { return f.Reset != nil }

// keepsVerifications reports whether f keeps its verifications itself
// instead of in the browser's session: a CIBA approval, a reset.
func (f *Flow) keepsVerifications() bool { return f.CIBA != nil || f.Reset != nil }

// ResetFactor is the second factor a reset of acct asks for: the
// strongest enrolled, passkey, then TOTP, then SMS (PRODUCT.md §11: a
// reset is never weaker than a step-up); "" when it has none of them.
// Recovery codes and email codes are not asked: the email code is the
// reset's first step, and recovery codes are for a lost second factor,
// which an administrator's recovery link covers.
func (p *Provider) ResetFactor(acct *session.Account) authn.Factor {
	enrolled := p.PolicyAccount(acct).Enrolled
	for _, f := range []authn.Factor{authn.WebAuthn, authn.TOTP, authn.SMS} {
		if slices.ContainsFunc(enrolled, func(e authn.Enrollment) bool { return e.Factor == f }) {
			return f
		}
	}
	return ""
}

// NewReset returns a new reset flow bound to the browser of r, for the
// account sub ("" for an address that has none: the flow then goes on
// like any other and can never succeed), not yet stored (SaveFlow).
// returnTo is where the user goes afterwards (a sign-in page, or
// /account).
func (p *Provider) NewReset(w http.ResponseWriter, r *http.Request, reset Reset, sub, returnTo string) *Flow {
	f := &Flow{ID: randomID(24), ClientID: p.account.GetID(), Account: true, ReturnTo: returnTo, Start: p.now(),
		Scopes: []string{"openid"}, HintSubject: sub, Reset: &reset}
	p.bindFlow(w, r, f)
	return f
}

// StartReset is NewReset, stored.
func (p *Provider) StartReset(w http.ResponseWriter, r *http.Request, reset Reset, sub, returnTo string) (*Flow, error) {
	f := p.NewReset(w, r, reset, sub, returnTo)
	if err := p.SaveFlow(r.Context(), f); err != nil {
		return nil, err
	}
	return f, nil
}

// ResetFlow loads the reset flow id of the browser of r.
// ErrNotFound when it has ended (or is no reset), ErrOtherBrowser as for
// FlowAndSession.
func (p *Provider) ResetFlow(r *http.Request, id string) (*Flow, error) {
	b, err := p.store.GetFlow(r.Context(), id)
	if err != nil {
		return nil, err
	}
	f, _, err := p.decodeFlow(b)
	if err != nil {
		return nil, err
	}
	if f.Reset == nil {
		return nil, session.ErrNotFound
	}
	if !p.boundTo(r, f) {
		return nil, ErrOtherBrowser
	}
	return f, nil
}

// ResetSession is the session a reset flow is evaluated with: the
// account the address belongs to, holding only the verifications made
// in this flow. Its id names the flow, so one-time codes and WebAuthn
// challenges bound to it belong to this reset alone.
func (p *Provider) ResetSession(f *Flow) *session.Session {
	return &session.Session{ID: "reset-" + f.ID, Subject: f.HintSubject, CreatedAt: f.Start, LastSeenAt: p.now(), Verifications: f.Verifications}
}

// resetFresh bounds how old a verification of a reset may be when the
// new password is set: the flow's own lifetime.
const resetFresh = flowLifetime

// decideReset is the policy of a reset flow: the emailed code, then
// the second factor chosen at its start. There are no alternatives and
// nothing to enroll: what is asked for is exactly the strongest factor.
func (p *Provider) decideReset(f *Flow, acct *session.Account) authn.Decision {
	if f.Cancelled {
		return authn.Decision{Outcome: authn.Fail, Error: "access_denied", Description: "the user cancelled"}
	}
	if !f.Reset.EmailVerified(f) {
		return authn.Decision{Outcome: authn.Need, Need: []authn.Factor{authn.Email}}
	}
	if acct == nil || f.HintSubject == "" || acct.Subject != f.HintSubject {
		return authn.Decision{Outcome: authn.Fail, Error: "access_denied", Description: "no such account"}
	}
	if f.Reset.Admin {
		return authn.Decision{Outcome: authn.OK}
	}
	if !p.ResetAddressCurrent(f, acct) {
		return authn.Decision{Outcome: authn.Fail, Error: "access_denied", Description: "the account's address changed"}
	}
	now := p.now()
	has := func(fa authn.Factor) bool {
		return slices.ContainsFunc(f.Verifications, func(v authn.Verification) bool {
			return v.Factor == fa && now.Sub(v.At) <= resetFresh
		})
	}
	if !has(authn.Email) {
		return authn.Decision{Outcome: authn.Need, Need: []authn.Factor{authn.Email}}
	}
	// The strongest factor the account has now: one enrolled since the
	// reset began is asked for too (never weaker than a step-up now).
	if want := p.ResetFactor(acct); want != "" && !has(want) {
		return authn.Decision{Outcome: authn.Need, Need: []authn.Factor{want}, Target: "reset"}
	}
	return authn.Decision{Outcome: authn.OK}
}

// ResetAddressCurrent reports whether the address a reset's code goes
// to is still acct's (ignoring case, as addresses are unique): an
// account that moved to another address meanwhile is not reset through
// the old one. A recovery link's reset has no code and always is.
func (p *Provider) ResetAddressCurrent(f *Flow, acct *session.Account) bool {
	return f.Reset.Admin || strings.EqualFold(acct.Email, f.Reset.Email)
}

// ResetReady reports whether the reset flow f has verified everything it
// asks for, so the new password may be set.
func (p *Provider) ResetReady(f *Flow, acct *session.Account) bool {
	return f.Reset != nil && p.decideReset(f, acct).Outcome == authn.OK
}

// EndEverything ends every grant of sub (refresh and access tokens,
// offline ones included) and then every session, as an administrator's
// revocation does: after a password reset nothing signed in with the old
// password goes on. The grants go first: EndUserGrants alone makes each
// of them dead, also one that no index found. An error leaves some
// sessions alive; the caller says so (the password is already changed).
func (p *Provider) EndEverything(ctx context.Context, sub string) error {
	if err := p.store.EndUserGrants(ctx, sub); err != nil {
		return err
	}
	all, err := p.store.ListSessions(ctx, sub)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range all {
		if err := p.store.EndSession(ctx, s.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	p.Audit(ctx, obs.EventSessionRevoked, "sub", sub, "sessions", len(all), "reason", "password_reset")
	return errors.Join(errs...)
}

// finishReset ends the step-up part of a reset: done, the reset page asks
// for the new password; cancelled or failed, the flow ends.
func (p *Provider) finishReset(w http.ResponseWriter, r *http.Request, f *Flow, d authn.Decision) {
	if d.Outcome == authn.OK {
		target := p.issuer + PathReset + "/" + f.ID
		if len(f.UILocales) > 0 {
			target += "?ui_locales=" + url.QueryEscape(strings.Join(f.UILocales, " "))
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	p.dropFlow(r.Context(), f)
	p.pages.Error(w, r, http.StatusOK, "forgot.not_changed")
}

// DropFlow ends a flow (a reset once the password is set).
func (p *Provider) DropFlow(ctx context.Context, f *Flow) { p.dropFlow(ctx, f) }

// ResetLinkLifetime is how long an administrator's recovery link can be
// opened.
const ResetLinkLifetime = time.Hour

// StartEnrollment stores an /account verification for acct that ends
// only with a second factor enrolled (force_enroll at the lowest
// multi-factor level) and returns the URL of its hosted page: where the
// user goes after an administrator's recovery link.
func (p *Provider) StartEnrollment(w http.ResponseWriter, r *http.Request, acct *session.Account) (string, error) {
	f := p.accountFlow(acct, PathAccount, false)
	f.ID = randomID(24)
	f.ForceEnroll = true
	f.LoginHint = acct.Username
	for _, lv := range p.ladder {
		if lv.MultiFactor() {
			f.ACRValues = []string{lv.ACR}
			break
		}
	}
	p.bindFlow(w, r, f)
	if err := p.SaveFlow(r.Context(), f); err != nil {
		return "", err
	}
	return p.issuer + PathLoginPrefix + f.ID, nil
}

// recoveryLinkAction is the step-up-grant action a recovery link is
// stored under: a one-time grant, so that of concurrent uses exactly one
// succeeds (session.StepUpGrantStore).
const recoveryLinkAction = "stepup:recovery-link"

// IssueRecoveryLink makes a one-time recovery link for sub that can be
// opened until the returned time (PRODUCT.md §11: for a user who lost
// every factor). Only a hash of its secret is stored.
func (p *Provider) IssueRecoveryLink(ctx context.Context, acct *session.Account) (string, time.Time, error) {
	token := randomID(32)
	exp := p.now().Add(ResetLinkLifetime)
	err := p.store.PutStepUpGrant(ctx, hashSecret("recovery-link\x00"+token), &session.StepUpGrant{
		Subject: acct.Subject, Action: recoveryLinkFor(acct), ClientID: p.account.GetID(), OneTime: true, ExpiresAt: exp, Factor: "admin",
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return p.issuer + PathReset + "/link/" + url.PathEscape(acct.Subject) + "/" + token, exp, nil
}

// recoveryLinkFor is the action of acct's recovery links: bound to the
// password the account has when the link is made, so that once a new
// password is set (by one of several links sent, by a forgot-password
// reset, on /account) every link made before it is dead.
func recoveryLinkFor(acct *session.Account) string {
	return recoveryLinkAction + ":" + hashSecret("password\x00" + acct.PasswordHash)[:22]
}

// LogPath is the path of r as a log line may hold it: the secret of a
// recovery link (PathReset/link/{sub}/{token}) sets the password of an
// account for an hour, and whoever reads the logs must not get it.
func LogPath(r *http.Request) string {
	if rest, ok := strings.CutPrefix(r.URL.Path, PathReset+"/link/"); ok {
		sub, _, _ := strings.Cut(rest, "/")
		return PathReset + "/link/" + sub + "/REDACTED"
	}
	return r.URL.Path
}

// UseRecoveryLink uses up the recovery link of acct with token: true
// once, for the first use before it expires, while acct's password is
// the one it had when the link was made.
func (p *Provider) UseRecoveryLink(ctx context.Context, acct *session.Account, token string) (bool, error) {
	if acct == nil || acct.Subject == "" || token == "" {
		return false, nil
	}
	_, ok, err := p.store.UseStepUpGrant(ctx, hashSecret("recovery-link\x00"+token), acct.Subject, recoveryLinkFor(acct), p.account.GetID(), p.now())
	return ok, err
}
