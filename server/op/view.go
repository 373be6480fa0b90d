package op

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// A session's View (session.Session.View) is what the policy sees of its
// account, as a decimal number of bits (a listpack integer in the session
// hash: 3 bytes, and the session record keeps its 192-byte class).
// /authorize decides a step-up from it, without reading the account, when
// that decision is the TOTP page (ShownStep) — the one page that renders
// without the account — and this instance knows the user's name for it
// (nameCache); the TOTP post reads the account and decides again, so the
// view only ever chooses a page, never grants a level (issue 14: one
// account read per step-up). Every other outcome reads the account, so a
// view with fewer factors than the account costs a read, never a wrong
// answer; one with more (a factor reset or removed) shows a TOTP page
// whose post finds the account without TOTP, refreshes the view and drops
// the page's decision (login's loadAccount and totp), so the browser is
// sent on by the account, not back to the same page.

// viewFactors are the second factors a view names, one bit each from
// viewFactor0 on; the factor used last is its index + 1 from viewLast on.
var viewFactors = []authn.Factor{authn.TOTP, authn.SMS, authn.Email, authn.Recovery, authn.WebAuthn}

const (
	viewPassword uint64 = 1 << iota // authn.Account.HasPassword
	viewHasEmail                    // authn.Account.HasEmail
	viewEmailMFA                    // session.Account.EmailMFA (countable)
	viewUV                          // some passkey performs user verification
	viewHardware                    // some such passkey is trusted as hardware
	viewFactor0
	viewLastShift = 10                         // of the last factor's index + 1
	viewLastMask  = uint64(7) << viewLastShift // its bits
)

// AccountView returns the View of a session of acct ("" for none): what
// PolicyAccount makes of it under the configuration now and whether email
// codes are on. The username goes to this instance's nameCache.
func (p *Provider) AccountView(a *session.Account) string {
	if a == nil {
		return ""
	}
	p.names.put(a.Subject, a.Username)
	pa := p.PolicyAccount(a)
	var bits uint64
	if pa.HasPassword {
		bits |= viewPassword
	}
	if pa.HasEmail {
		bits |= viewHasEmail
	}
	if a.EmailMFA {
		bits |= viewEmailMFA
	}
	for _, en := range pa.Enrolled {
		i := slices.Index(viewFactors, en.Factor)
		if i < 0 {
			return "" // a factor the view cannot name: the account is read
		}
		bits |= viewFactor0 << i
		if en.Factor == authn.WebAuthn && en.UV {
			bits |= viewUV
			if en.Hardware {
				bits |= viewHardware
			}
		}
	}
	if i := slices.Index(viewFactors, pa.LastUsed); i >= 0 {
		bits |= uint64(i+1) << viewLastShift
	}
	return strconv.FormatUint(bits, 10)
}

// parseView reads a View; ok is false for "" or one that does not parse.
func parseView(v string) (bits uint64, ok bool) {
	bits, err := strconv.ParseUint(v, 10, 64)
	if err != nil || bits>>(viewLastShift+3) != 0 {
		return 0, false
	}
	return bits, true
}

// SameView reports whether two views say the same of the account but for
// the factor used last, which the view only uses to order the factors
// (and every verification changes it).
func SameView(a, b string) bool {
	ab, aok := parseView(a)
	bb, bok := parseView(b)
	return aok && bok && ab&^viewLastMask == bb&^viewLastMask
}

// viewPolicy is PolicyAccount of the account as the view describes it.
// The factor used last is the session's latest second-factor
// verification, else the view's.
func (p *Provider) viewPolicy(bits uint64, verifs []authn.Verification) authn.Account {
	pa := authn.Account{HasPassword: bits&viewPassword != 0, HasEmail: bits&viewHasEmail != 0, Enrollable: p.enrollable}
	for i, f := range viewFactors {
		if bits&(viewFactor0<<i) == 0 {
			continue
		}
		en := authn.Enrollment{Factor: f}
		if f == authn.WebAuthn {
			en.UV, en.Hardware = bits&viewUV != 0, bits&viewHardware != 0
		}
		pa.Enrolled = append(pa.Enrolled, en)
	}
	if i := int(bits&viewLastMask>>viewLastShift) - 1; i >= 0 && i < len(viewFactors) {
		pa.LastUsed = viewFactors[i]
	}
	var latest authn.Verification
	for _, v := range verifs {
		if v.Factor != authn.Password && slices.Contains(viewFactors, v.Factor) && !v.At.Before(latest.At) {
			latest = v
		}
	}
	if latest.Factor != "" {
		pa.LastUsed = latest.Factor
	}
	return pa
}

// decideFromView is /authorize's decision for sess from its View, without
// reading the account: ok only when it is the TOTP page (shownStep), the
// page that renders without the account and whose post reads it. Any
// other outcome, a request for another subject (id_token_hint), a
// session without a view or a user whose name this instance does not
// know is decided from the account (ok false).
func (p *Provider) decideFromView(f *Flow, c *Client, sess *session.Session) (authn.Decision, *ShownStep, bool) {
	if sess == nil || f.Reset != nil || f.CIBA != nil || f.Account || (f.HintSubject != "" && f.HintSubject != sess.Subject) {
		return authn.Decision{}, nil, false
	}
	bits, ok := parseView(sess.View)
	if !ok {
		return authn.Decision{}, nil, false
	}
	username, ok := p.names.get(sess.Subject)
	if !ok {
		return authn.Decision{}, nil, false
	}
	// countable reads only EmailMFA of the account.
	emailOnly := &session.Account{EmailMFA: bits&viewEmailMFA != 0}
	d := p.ladder.Evaluate(f.policyRequest(c, p.mfaAlways, false), p.countable(sess.Verifications, c, emailOnly),
		p.viewPolicy(bits, sess.Verifications), p.now())
	sh := shownStep(d, sess, &session.Account{Subject: sess.Subject, Username: username})
	if sh == nil {
		return authn.Decision{}, nil, false
	}
	return d, sh, true
}

// RefreshView stores acct's View in sess when the session's says
// otherwise (a factor enrolled, reset or removed since it was written, a
// session from before views): one write, only then. It
// is best-effort: a view that stays stale costs an account read or a
// refreshed page, never a level. It reports whether the view changed.
func (p *Provider) RefreshView(ctx context.Context, sess *session.Session, acct *session.Account) bool {
	if sess == nil || acct == nil || sess.Subject != acct.Subject {
		return false
	}
	v := p.AccountView(acct)
	if v == sess.View || (v != "" && SameView(v, sess.View)) {
		return false
	}
	if err := p.store.SetView(ctx, sess.ID, sess.Subject, v, p.SessionTTL(sess.CreatedAt)); err != nil {
		p.log.WarnContext(ctx, "session view refresh failed", "err", err)
		return false
	}
	sess.View = v
	return true
}

// nameCache maps subjects to the usernames this instance read last, for
// the step-up page decided from a view ("Signed in as"): at most
// nameCacheSize, emptied when full. A name is shown, never trusted; a
// renamed user's old name shows until this instance reads the account
// again (every factor post does). A miss reads the account.
type nameCache struct {
	mu sync.Mutex
	m  map[string]string
}

const nameCacheSize = 1 << 14

func (c *nameCache) put(sub, name string) {
	if sub == "" || name == "" {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= nameCacheSize {
		c.m = make(map[string]string)
	}
	c.m[sub] = name
	c.mu.Unlock()
}

func (c *nameCache) get(sub string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[sub]
	return n, ok
}
