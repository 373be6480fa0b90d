package op

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
)

// oidcScopes are always allowed; other scopes must be listed in the
// client's configuration.
var oidcScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeOfflineAccess}

// The scopes of stepup's own JSON APIs (server/api). They say what a
// client may do, not what a user allowed, so only a client's own
// client_credentials token carries them, never a user's token.
const (
	ScopeGrants = APIScopePrefix + "grants"
	ScopeAdmin  = APIScopePrefix + "admin"
	ScopeAuthn  = APIScopePrefix + "authn"
	// ScopeSCIM is /scim/v2 (PRODUCT.md §10).
	ScopeSCIM = APIScopePrefix + "scim"
)

// APIScopePrefix is the namespace of the API scopes: every scope in it
// is one, including those of APIs added later, so a new API's scope can
// never end up in a user's token by being left off a list.
const APIScopePrefix = "stepup:"

// IsAPIScope reports whether scope is one of stepup's API scopes.
func IsAPIScope(scope string) bool { return strings.HasPrefix(scope, APIScopePrefix) }

// Client is a registered relying party. It implements zitadel's op.Client
// so the library's token-endpoint plumbing (client authentication, grant
// type checks) can use it.
type Client struct {
	cfg        config.Client
	grantTypes []oidc.GrantType
	unenrolled authn.Unenrolled
	// verified caches sha256(secret) of secrets already checked against
	// secret_hash: argon2id costs ~40 ms, far too much per token request.
	verified sync.Map
}

func newClient(c config.Client, defaultUnenrolled authn.Unenrolled) *Client {
	cl := &Client{cfg: c, unenrolled: defaultUnenrolled}
	for _, g := range c.GrantTypes {
		cl.grantTypes = append(cl.grantTypes, oidc.GrantType(g))
	}
	if c.Unenrolled != "" {
		cl.unenrolled = authn.Unenrolled(c.Unenrolled)
	}
	return cl
}

// Name is what the hosted pages call the client.
func (c *Client) Name() string {
	if c.cfg.Name != "" {
		return c.cfg.Name
	}
	return c.cfg.ID
}

// Public reports whether the client is public (PKCE required, no secret).
func (c *Client) Public() bool { return c.cfg.Public }

// Unenrolled is the client's effective policy for unenrolled users.
func (c *Client) Unenrolled() authn.Unenrolled { return c.unenrolled }

// MinACR is the client's floor.
func (c *Client) MinACR() string { return c.cfg.MinACR }

func (c *Client) allowsGrant(g oidc.GrantType) bool { return slices.Contains(c.grantTypes, g) }

// quickCheck authenticates a confidential client when that needs no
// argon2id: a plain secret (compared in constant time), an empty one, or
// a secret this instance has already verified against secret_hash. fast
// is false when only slowCheck can tell.
func (c *Client) quickCheck(secret string) (fast, ok bool) {
	if c.cfg.Public || secret == "" {
		return true, false
	}
	sum := sha256.Sum256([]byte(secret))
	if c.cfg.Secret != "" {
		want := sha256.Sum256([]byte(c.cfg.Secret))
		return true, subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
	if _, ok := c.verified.Load(sum); ok {
		return true, true
	}
	return false, false
}

// slowCheck verifies secret against secret_hash. An error means the
// secret could not be checked (the hashers are busy).
func (c *Client) slowCheck(ctx context.Context, hashes *password.Limiter, secret string) (bool, error) {
	sum := sha256.Sum256([]byte(secret))
	ok, err := hashes.Verify(ctx, c.cfg.SecretHash, secret)
	if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
		// Not checked: the hashers were busy, or the client gave up.
		if err == nil {
			err = ctx.Err()
		}
		return false, err
	}
	if err != nil || !ok {
		return false, nil
	}
	c.verified.Store(sum, struct{}{})
	return true, nil
}

// RedirectURIAllowed reports whether uri is registered: an exact match,
// except that the port of a loopback IP literal is not compared (RFC 8252
// §7.3).
func (c *Client) RedirectURIAllowed(uri string) bool { return uriRegistered(c.cfg.RedirectURIs, uri) }

// PostLogoutURIAllowed is RedirectURIAllowed for post_logout_redirect_uris.
func (c *Client) PostLogoutURIAllowed(uri string) bool {
	return uriRegistered(c.cfg.PostLogoutRedirectURIs, uri)
}

func uriRegistered(registered []string, uri string) bool {
	if uri == "" {
		return false
	}
	if slices.Contains(registered, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || !loopbackIP(u.Hostname()) {
		return false
	}
	for _, r := range registered {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme != "http" || ru.Hostname() != u.Hostname() {
			continue
		}
		if ru.Path == u.Path && ru.RawQuery == u.RawQuery && ru.Fragment == "" && u.Fragment == "" && ru.User == nil && u.User == nil {
			return true
		}
	}
	return false
}

func loopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// allowedScopes filters the scopes requested for a user's token to those
// the client may get: never an API scope (a resource server that trusts
// `scope` must not read a user's token as the client's admin right).
func (c *Client) allowedScopes(requested []string) []string {
	var out []string
	for _, s := range requested {
		if IsAPIScope(s) {
			continue
		}
		if (slices.Contains(oidcScopes, s) || slices.Contains(c.cfg.Scopes, s)) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// The rest implements zop.Client.

func (c *Client) GetID() string                        { return c.cfg.ID }
func (c *Client) RedirectURIs() []string               { return c.cfg.RedirectURIs }
func (c *Client) PostLogoutRedirectURIs() []string     { return c.cfg.PostLogoutRedirectURIs }
func (c *Client) ApplicationType() zop.ApplicationType { return zop.ApplicationTypeWeb }
func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *Client) GrantTypes() []oidc.GrantType         { return c.grantTypes }
func (c *Client) LoginURL(id string) string            { return "/login/" + url.PathEscape(id) }
func (c *Client) AccessTokenType() zop.AccessTokenType { return zop.AccessTokenTypeJWT }
func (c *Client) IDTokenLifetime() time.Duration       { return idTokenLifetime }
func (c *Client) DevMode() bool                        { return false }
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *Client) ClockSkew() time.Duration             { return 0 }
func (c *Client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.cfg.Scopes, scope) }
func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// AuthMethod is how the client authenticates at the token endpoint.
func (c *Client) AuthMethod() oidc.AuthMethod {
	if c.cfg.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

var _ zop.Client = (*Client)(nil)

func isLoopbackHost(host string) bool {
	return strings.EqualFold(host, "localhost") || loopbackIP(host)
}
