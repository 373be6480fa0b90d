package op

import (
	"slices"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// countable returns the verifications that may count for client c:
// an email code counts only where email is a factor (PRODUCT.md §2) —
// the user turned email codes on, or c's policy is email_fallback. A
// session holds one set of verifications for every client, so without
// this an email code entered for an email_fallback client would make the
// session multi-factor, by single sign-on, for a client that requires a
// real second factor.
func (p *Provider) countable(verifs []authn.Verification, c *Client, acct *session.Account) []authn.Verification {
	isEmail := func(v authn.Verification) bool { return v.Factor == authn.Email }
	if !slices.ContainsFunc(verifs, isEmail) {
		return verifs
	}
	if p.FactorEnabled(authn.Email) && ((acct != nil && acct.EmailMFA) || (c != nil && c.Unenrolled() == authn.EmailFallback)) {
		return verifs
	}
	return slices.DeleteFunc(slices.Clone(verifs), isEmail)
}

// SatisfiedLevels returns the levels verifs satisfy now for client c, with
// the email rule of countable. With no client (an operator's view of a
// session) an email code counts only when the user turned email codes on:
// no client's email_fallback policy is assumed.
func (p *Provider) SatisfiedLevels(verifs []authn.Verification, c *Client, acct *session.Account) []string {
	return p.ladder.Satisfied(p.countable(verifs, c, acct), p.now())
}
