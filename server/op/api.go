package op

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/totp"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// What the JSON APIs under /api/v1/ (server/api) need of the provider.

// ErrBadToken is every reason an access token presented to stepup is not
// valid (bad signature, expired, revoked, not ours).
var ErrBadToken = errBadToken

// AccessToken is a validated access token of this issuer.
type AccessToken struct {
	Subject  string
	ClientID string
	Scopes   []string
	ACR      string
	AMR      []string
	AuthTime int64
	// GrantID is the token family of a user's token; "" for a
	// client_credentials token (whose Subject is the client id).
	GrantID string
}

// ClientCredentials reports whether the token is a client's own
// (client_credentials) rather than a user's.
func (t *AccessToken) ClientCredentials() bool { return t.GrantID == "" }

// VerifyAccessToken validates one of our access tokens: signature, issuer,
// expiry, and that neither it nor its grant is revoked. ErrBadToken when
// it is not valid; a store failure otherwise.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (*AccessToken, error) {
	at, err := p.activeAccessToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return &AccessToken{
		Subject: at.Subject, ClientID: at.ClientID, Scopes: strings.Fields(at.Scope),
		ACR: at.ACR, AMR: at.AMR, AuthTime: at.AuthTime, GrantID: grantOf(at.JTI),
	}, nil
}

// Live returns s unless it has passed its idle or absolute timeout.
func (p *Provider) Live(s *session.Session) *session.Session { return p.live(s) }

// UserBudget is the per-user abuse budget of subject.
func (p *Provider) UserBudget(subject string) session.Budget {
	return session.Budget{Kind: session.BudgetUser, ID: subject, Max: int64(p.lockout.MaxFailures)}
}

// IPBudget is the per-client-IP budget of ip (IPv6 per /64).
func (p *Provider) IPBudget(ip netip.Addr) session.Budget {
	ip = ip.Unmap()
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return session.Budget{Kind: session.BudgetIP, ID: ip.String(), Max: int64(p.lockout.IPMaxFailures)}
}

// TOTPStepMemory outlives the ±1 step window in which a code is accepted.
const TOTPStepMemory = 150 * time.Second

// CheckTOTP verifies a code against secret and spends its time step, so
// a code is accepted once per user: a replay is a failure like a wrong
// code.
func (p *Provider) CheckTOTP(ctx context.Context, subject, secret, code string) (bool, error) {
	step, ok := totp.Verify(secret, strings.TrimSpace(code), p.now())
	if !ok {
		return false, nil
	}
	return p.store.UseTOTPStep(ctx, subject, step, TOTPStepMemory)
}

// NativeDecision is the policy's answer for an API authentication
// session: what it has reached, as if the user stopped there (nothing is
// asked for). acrValues, when given, are essential: the first one the
// verifications satisfy is issued, or the decision fails with
// unmet_authentication_requirements. The client's floor and mfa.login
// apply as at /authorize. maxAge (nil for none) counts from start.
func (p *Provider) NativeDecision(c *Client, acrValues []string, maxAge *time.Duration, verifs []authn.Verification, acct *session.Account, start time.Time) authn.Decision {
	req := authn.Request{
		ACRValues:    acrValues,
		Essential:    len(acrValues) > 0,
		MaxAge:       maxAge,
		ClientMinACR: c.MinACR(),
		MFAAlways:    p.mfaAlways,
		Unenrolled:   c.Unenrolled(),
		Cancelled:    true,
		Start:        start,
	}
	return p.ladder.Evaluate(req, p.countable(verifs, c, acct), p.PolicyAccount(acct), p.now())
}

// NativeCode is an authorization code issued through the API.
type NativeCode struct {
	Client        *Client
	Session       *session.Session
	Decision      authn.Decision
	CodeChallenge string // S256, required
	RedirectURI   string // a registered one; /token must repeat it
	Scopes        []string
	Nonce         string
	// FlowID, when set, names the flow-store record the code ends: storing
	// the code claims it, so of racing completions exactly one gets a code
	// (the others get session.ErrFlowEnded).
	FlowID string
}

// IssueNativeCode stores an authorization code for an API authentication
// session: exchanged at the token endpoint like any code (single use,
// PKCE-bound), its tokens carry exactly the decision's acr, amr and
// auth_time.
func (p *Provider) IssueNativeCode(ctx context.Context, n NativeCode) (string, error) {
	d := n.Decision
	if d.Outcome != authn.OK || d.ACR == "" || len(d.AMR) == 0 || n.Session == nil {
		return "", errors.New("op: no authentication to issue a code for")
	}
	if !pkceChallenge.MatchString(n.CodeChallenge) {
		return "", errors.New("op: a native code needs an S256 code_challenge")
	}
	code := randomID(32)
	cd := codeData{
		authClaims:    authClaims{Subject: n.Session.Subject, ACR: d.ACR, AMR: d.AMR, AuthTime: d.AuthTime.Unix()},
		ClientID:      n.Client.GetID(),
		RedirectURI:   n.RedirectURI,
		CodeChallenge: n.CodeChallenge,
		Nonce:         n.Nonce,
		Scopes:        n.Scopes,
		SessionID:     n.Session.ID,
	}
	newCodeGrant(&cd)
	activity := p.codeActivity(n.Session, n.Client.GetID(), &cd)
	payload, err := json.Marshal(cd)
	if err != nil {
		return "", err
	}
	bookkeeping, err := p.store.IssueCode(ctx,
		session.Code{Hash: hashSecret(code), GrantID: codeGrantRef(&cd), Binding: codeBinding(cd.ClientID, cd.RedirectURI, cd.CodeChallenge), Data: payload, TTL: codeLifetime, SpentTTL: codeSpentMemory},
		activity,
		n.FlowID)
	if err != nil {
		return "", err
	}
	if bookkeeping != nil {
		p.log.WarnContext(ctx, "session touch failed", "err", bookkeeping)
	}
	p.Audit(ctx, obs.EventAuthorized, "client_id", n.Client.GetID(), "sub", n.Session.Subject,
		"acr", d.ACR, "amr", d.AMR, "auth_time", d.AuthTime.Unix(), "via", "api")
	return code, nil
}

// AllowedScopes filters the scopes requested for a user's token to those
// the client may get (no API scope).
func (c *Client) AllowedScopes(requested []string) []string { return c.allowedScopes(requested) }

// HasScope reports whether the client's configuration lists scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.cfg.Scopes, scope) }
