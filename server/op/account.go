package op

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/passkey"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// PathAccount is the account security page.
const PathAccount = "/account"

// AccountFreshness is how recent a verification must be to change a
// factor on /account (PRODUCT.md: step-up on our own pages, max_age 5
// minutes).
const AccountFreshness = 5 * time.Minute

// setUpPasskeys builds the WebAuthn relying party when webauthn is an
// enabled factor. An issuer on an IP address cannot have passkeys: the
// factor is then off, and the policy never offers it.
func (p *Provider) setUpPasskeys(cfg *config.Config) error {
	if !slices.Contains(cfg.MFA.Factors, string(authn.WebAuthn)) {
		return nil
	}
	pc := passkey.Config{
		Issuer:           cfg.Issuer,
		RPName:           cfg.WebAuthn.RPName,
		UserVerification: cfg.WebAuthn.UserVerification,
		HardwareAAGUIDs:  cfg.WebAuthn.HardwareAAGUIDs,
		RefuseClones:     cfg.WebAuthn.SignCount != "warn",
	}
	if cfg.WebAuthn.AttestationRoots != "" {
		roots, err := config.LoadCertPool(cfg.WebAuthn.AttestationRoots)
		if err != nil {
			return fmt.Errorf("webauthn.attestation_roots: %w", err)
		}
		pc.Roots = roots
	}
	if len(cfg.WebAuthn.HardwareAAGUIDs) > 0 && pc.Roots == nil {
		// Without roots the attestation certificate is not anchored: an
		// authenticator (or software posing as one) can sign its own and
		// claim a listed model.
		p.log.Warn("webauthn.hardware_aaguids without webauthn.attestation_roots: phrh rests on the authenticator's own claim of its model; configure attestation_roots to anchor it")
	}
	rp, err := passkey.New(pc)
	if errors.Is(err, passkey.ErrNoRPID) {
		p.log.Warn("passkeys are off: the issuer's host is an IP address; use a host name (localhost for development)", "issuer", cfg.Issuer)
		return nil
	}
	if err != nil {
		return err
	}
	p.passkeys = rp
	// The hosted flow can register a passkey when a level needs one
	// (phr); the flow then asks for an assertion with it.
	p.enrollable = append(p.enrollable, authn.WebAuthn)
	return nil
}

// Passkeys is the WebAuthn relying party, nil when passkeys are off.
func (p *Provider) Passkeys() *passkey.RP { return p.passkeys }

// PasskeyCredentials decodes the account's passkeys. Records that do not
// decode are skipped (and logged): they can never verify anyway.
func (p *Provider) PasskeyCredentials(a *session.Account) []*passkey.Credential {
	var out []*passkey.Credential
	for _, sp := range a.Passkeys {
		c, err := passkey.Decode(sp.Data)
		if err != nil {
			p.log.Error("skipping a stored passkey that does not decode", "sub", a.Subject, "err", err)
			continue
		}
		out = append(out, c)
	}
	return out
}

// PasskeyUser is the account as WebAuthn sees it.
func (p *Provider) PasskeyUser(a *session.Account) *passkey.User {
	return &passkey.User{Subject: a.Subject, Name: a.Username, DisplayName: a.Name, Credentials: p.PasskeyCredentials(a)}
}

func (p *Provider) passkeyEnrollments(a *session.Account) []authn.Enrollment {
	if p.passkeys == nil {
		return nil
	}
	var out []authn.Enrollment
	for _, c := range p.PasskeyCredentials(a) {
		out = append(out, p.passkeys.Enrollment(c))
	}
	return out
}

func (p *Provider) setUpAccount(cfg *config.Config) {
	p.account = newClient(config.Client{ID: "stepup-account", Name: "your account"}, authn.AllowSkip)
	p.accountEnroll = newClient(config.Client{ID: "stepup-account", Name: "your account"}, authn.ForceEnroll)
	for _, c := range cfg.Clients {
		if c.MinACR == "" {
			continue
		}
		if lv, ok := p.ladder.Level(c.MinACR); ok && lv.MultiFactor() {
			p.mfaFloor = true
		}
	}
}

// AccountClientID names /account where a client id is expected (audit
// events of its changes).
func (p *Provider) AccountClientID() string { return p.account.GetID() }

// EmailMFARequired reports whether the configuration turns email codes
// on for acct (users[].email_mfa: true): the seed turns them on again at
// every start, so the user cannot turn them off on /account.
func (p *Provider) EmailMFARequired(acct *session.Account) bool {
	return acct != nil && p.emailRequired[strings.ToLower(acct.Username)]
}

// NeedsSecondFactor reports whether some client's floor or mfa.login:
// always needs every user to keep a second factor, so the last one may
// not be removed.
func (p *Provider) NeedsSecondFactor() bool { return p.mfaAlways || p.mfaFloor }

// accountRequest is the flow of a verification for /account. fresh asks
// for a verification within AccountFreshness, at the lowest multi-factor
// level when the user has a second factor: changing a factor must need
// as much as signing in with it.
func (p *Provider) accountFlow(acct *session.Account, returnTo string, fresh bool) *Flow {
	f := &Flow{Account: true, ClientID: p.account.GetID(), ReturnTo: returnTo, Start: p.now(), Scopes: []string{"openid"}}
	if fresh {
		secs := int64(AccountFreshness / time.Second)
		f.MaxAge = &secs
		if acct != nil && len(p.PolicyAccount(acct).Enrolled) > 0 {
			for _, lv := range p.ladder {
				if lv.MultiFactor() {
					f.ACRValues = []string{lv.ACR}
					break
				}
			}
		}
	}
	return f
}

// AccountFresh reports whether the session was verified recently enough
// to change the account's factors.
func (p *Provider) AccountFresh(sess *session.Session, acct *session.Account) bool {
	if sess == nil || acct == nil {
		return false
	}
	return p.Decide(p.accountFlow(acct, PathAccount, true), p.account, sess, acct).Outcome == authn.OK
}

// StartAccountVerification stores a verification flow for /account and
// returns the URL of its hosted page. returnTo must be a path under
// /account.
func (p *Provider) StartAccountVerification(w http.ResponseWriter, r *http.Request, acct *session.Account, returnTo string, fresh bool) (string, error) {
	if returnTo != PathAccount && !strings.HasPrefix(returnTo, PathAccount+"?") {
		returnTo = PathAccount
	}
	f := p.accountFlow(acct, returnTo, fresh)
	f.ID = randomID(24)
	if acct != nil {
		f.LoginHint = acct.Username
	}
	p.bindFlow(w, r, f)
	if err := p.SaveFlow(r.Context(), f); err != nil {
		return "", err
	}
	return p.issuer + PathLoginPrefix + f.ID, nil
}

// finishAccount ends a verification for /account: back to the page, with
// the outcome in the query when it failed.
func (p *Provider) finishAccount(w http.ResponseWriter, r *http.Request, f *Flow, sess *session.Session, d authn.Decision) {
	p.dropFlow(r.Context(), f)
	target := p.issuer + f.ReturnTo
	if d.Outcome != authn.OK || sess == nil {
		u, _ := url.Parse(target)
		q := u.Query()
		q.Set("verify", "cancelled")
		u.RawQuery = q.Encode()
		target = u.String()
	} else {
		p.Audit(r.Context(), obs.EventAccountVerified, "sub", sess.Subject, "acr", d.ACR)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}
