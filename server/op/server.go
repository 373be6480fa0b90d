package op

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// tokenServer implements zitadel's op.Server for the token, introspection,
// userinfo and revocation endpoints. The library parses requests and
// client credentials and writes OAuth errors; we decide and mint.
type tokenServer struct {
	zop.UnimplementedServer
	p *Provider
}

func invalidClient() error {
	return zop.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)
}

func invalidGrant(desc string) error { return oidc.ErrInvalidGrant().WithDescription("%s", desc) }

// storeError maps a store failure to an OAuth error: 503 while the store
// is down, never a half-done answer.
func storeError(err error) error {
	if errors.Is(err, session.ErrUnavailable) {
		return unavailable()
	}
	return oidc.ErrServerError().WithParent(err)
}

// unavailable is 503 temporarily_unavailable: try again shortly.
func unavailable() error {
	e := oidc.ErrServerError().WithDescription("the service is temporarily unavailable")
	e.ErrorType = "temporarily_unavailable"
	return zop.NewStatusError(e, http.StatusServiceUnavailable)
}

// VerifyClient authenticates the client: confidential clients with
// client_secret_basic or client_secret_post, public ones by id alone.
func (s *tokenServer) VerifyClient(ctx context.Context, r *zop.Request[zop.ClientCredentials]) (zop.Client, error) {
	cc := r.Data
	if cc.ClientAssertion != "" {
		return nil, zop.NewStatusError(oidc.ErrInvalidClient().WithDescription("client assertions are not supported"), http.StatusUnauthorized)
	}
	c, ok := s.p.clients[cc.ClientID]
	if !ok {
		return nil, invalidClient()
	}
	if c.Public() {
		if cc.ClientSecret != "" {
			return nil, invalidClient()
		}
		return c, nil
	}
	if err := s.p.checkClient(ctx, c, cc.ClientSecret); err != nil {
		return nil, err
	}
	return c, nil
}

// CodeExchange redeems an authorization code (RFC 6749 §4.1.3). The
// code is taken only by the request that presents what binds it — the
// client it was issued to, the same redirect_uri and, when it has a
// challenge, the PKCE verifier — in the same store script that spends it:
// a stolen code without them is refused and stays redeemable by its
// client, and checking and spending cannot be separated by a race. A
// second exchange with the binding fails and revokes everything the first
// one issued (RFC 9700 §4.5); without it, it revokes nothing.
func (s *tokenServer) CodeExchange(ctx context.Context, r *zop.ClientRequest[oidc.AccessTokenRequest]) (*zop.Response, error) {
	c := r.Client.(*Client)
	verifier := r.Data.CodeVerifier
	if verifier != "" && !pkceVerifier.MatchString(verifier) {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)")
	}
	challenge := ""
	if verifier != "" {
		challenge = oidc.NewSHACodeChallenge(verifier)
	}
	data, replayed, err := s.p.store.TakeCode(ctx, hashSecret(r.Data.Code), codeBinding(c.GetID(), r.Data.RedirectURI, challenge))
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, invalidGrant("the code is invalid or expired")
	case errors.Is(err, session.ErrCodeMismatch):
		s.p.Audit(ctx, obs.EventCodeMismatch, "client_id", c.GetID(), "reason", "code_binding")
		return nil, invalidGrant("the code was not issued to this client, or redirect_uri or code_verifier does not match")
	case err != nil:
		return nil, storeError(err)
	case data == nil:
		// The grant is the session's for this client: the replay ends it
		// whole (later authorizations' tokens too, failing closed), and
		// refuses this authorization's store if it is still in flight.
		gid, auth, _ := strings.Cut(replayed, "/")
		if err := s.p.endGrant(ctx, gid, auth); err != nil && !errors.Is(err, session.ErrNotFound) {
			return nil, storeError(err)
		}
		s.p.Audit(ctx, obs.EventCodeReplay, "client_id", c.GetID(), "reason", "code_replay")
		return nil, invalidGrant("the code was already used; the tokens issued for it are revoked")
	}
	var cd codeData
	if err := json.Unmarshal(data, &cd); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	// The binding matched, so these hold; checked again from the payload
	// so that a binding bug fails closed.
	if cd.ClientID != c.GetID() || cd.RedirectURI != r.Data.RedirectURI || cd.CodeChallenge != challenge {
		return nil, invalidGrant("the code does not match this request")
	}
	now := s.p.now()
	g := &session.Grant{
		ID:        cd.GrantID,
		Auth:      cd.Auth,
		Inc:       randomID(6),
		ClientID:  c.GetID(),
		Subject:   cd.Subject,
		SessionID: cd.SessionID,
		Offline:   slices.Contains(cd.Scopes, oidc.ScopeOfflineAccess),
	}
	// An online grant lives no longer than its session (OIDC Core §11:
	// without offline_access the refresh token is tied to the session):
	// until the session's expiry as the code's authorization left it,
	// moved on with the session by every later authorization in it
	// (codeActivity); a refresh also checks the session (LiveGrant).
	g.ExpiresAt = now.Add(s.p.absolute)
	if exp := time.UnixMilli(cd.SessionExp); cd.SessionExp != 0 && exp.Before(g.ExpiresAt) {
		g.ExpiresAt = exp
	}
	if g.Offline {
		g.ExpiresAt = now.Add(offlineLifetime)
	}
	var refresh string
	if c.allowsGrant(oidc.GrantTypeRefreshToken) {
		refresh = g.ID + "." + randomID(32)
		g.RefreshHash = hashSecret(refresh)
	}
	gd := grantData{authClaims: cd.authClaims, Scopes: cd.Scopes}
	if g.Data, err = encodeGrant(gd); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if err := s.p.store.PutGrant(ctx, g); errors.Is(err, session.ErrGrantEnded) {
		// The session the code was issued in ended (sign-out, an
		// operator) between the authorization and this exchange.
		return nil, invalidGrant("the session this code was issued in has ended")
	} else if err != nil {
		return nil, storeError(err)
	}
	// PutGrant stored the grant only while the code's session lived and
	// was not ending: for a code whose request read the account as
	// active after reading that session (cd.Checked), that is the whole
	// completion check (see Finish). Other codes (a session started
	// after its account was read, as a password sign-in does) read the
	// account after the grant is stored: one disabled or deleted before
	// this read gets no tokens; one disabled after it had its grants
	// ended after the database write, this one included (the admin API
	// writes the database, then ends the grants).
	if !cd.Checked {
		if err := s.p.accountMayComplete(ctx, cd.Subject); err != nil {
			if errors.Is(err, errAccountGone) {
				s.p.Audit(ctx, obs.EventLoginFailed, "client_id", c.GetID(), "sub", cd.Subject, "reason", "disabled")
			}
			// Nothing is issued, and the grant is not left behind.
			if derr := s.p.endGrant(ctx, g.ID, g.Auth); derr != nil && !errors.Is(derr, session.ErrNotFound) {
				return nil, storeError(derr)
			}
			if errors.Is(err, errAccountGone) {
				return nil, invalidGrant("the account is disabled or deleted")
			}
			return nil, storeError(err)
		}
	}
	resp, err := s.p.tokenResponse(c, g, gd, cd.Nonce, refresh, now)
	if err != nil {
		return nil, err
	}
	s.p.Audit(ctx, obs.EventToken, "grant_type", "authorization_code", "client_id", c.GetID(), "sub", cd.Subject, "acr", cd.ACR)
	return zop.NewResponse(resp), nil
}

// errAccountGone is accountMayComplete's answer for an account that is
// disabled or deleted.
var errAccountGone = errors.New("the account is disabled or deleted")

// accountMayComplete reads the account of sub: errAccountGone when it is
// disabled or deleted, the store's error when it cannot be read.
func (p *Provider) accountMayComplete(ctx context.Context, sub string) error {
	a, err := p.store.GetAccount(ctx, sub)
	switch {
	case errors.Is(err, session.ErrNotFound), err == nil && a.Disabled:
		return errAccountGone
	case err != nil:
		return err
	}
	return nil
}

// endGrant deletes grant id and ends its authorization auth: a session's
// grant (auth set) may be stored again by a later authorization; a grant
// without one (a code issued before grants were shared) is ended for good.
func (p *Provider) endGrant(ctx context.Context, id, auth string) error {
	if auth == "" {
		return p.store.DeleteGrant(ctx, id)
	}
	return p.store.EndAuthorization(ctx, id, auth)
}

// tokenResponse mints the access token (and ID token when openid was
// granted) of a grant. Refresh re-uses the grant's claims unchanged (OIDC
// Core §12.2): they are never raised.
func (p *Provider) tokenResponse(c *Client, g *session.Grant, gd grantData, nonce, refresh string, now time.Time) (*oidc.AccessTokenResponse, error) {
	// allowedScopes keeps API scopes out of new grants; a grant stored
	// before that rule still mints none.
	gd.Scopes = slices.DeleteFunc(slices.Clone(gd.Scopes), IsAPIScope)
	at := accessTokenClaims{
		Issuer:   p.issuer,
		Subject:  gd.Subject,
		Audience: c.GetID(),
		Expiry:   now.Add(accessTokenLifetime).Unix(),
		IssuedAt: now.Unix(),
		JTI:      tokenID(g),
		ClientID: c.GetID(),
		Scope:    strings.Join(gd.Scopes, " "),
		AuthTime: gd.AuthTime,
		ACR:      gd.ACR,
		AMR:      gd.AMR,
	}
	access, err := p.keys.signAccess(at)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken:  access,
		TokenType:    oidc.BearerToken,
		ExpiresIn:    uint64(accessTokenLifetime / time.Second),
		RefreshToken: refresh,
		Scope:        gd.Scopes,
	}
	if slices.Contains(gd.Scopes, oidc.ScopeOpenID) {
		// The client's registered id_token_signed_response_alg, else
		// keys.algorithm (RS256 unless the operator chose another).
		alg := c.cfg.IDTokenSignedResponseAlg
		if alg == "" {
			alg = p.keys.Algorithm()
		}
		id := idTokenClaims{
			Issuer:   p.issuer,
			Subject:  gd.Subject,
			Audience: c.GetID(),
			Expiry:   now.Add(idTokenLifetime).Unix(),
			IssuedAt: now.Unix(),
			AuthTime: gd.AuthTime,
			Nonce:    nonce,
			ACR:      gd.ACR,
			AMR:      gd.AMR,
			AZP:      c.GetID(),
			AtHash:   atHash(access, alg),
			SID:      p.PublicSID(g.SessionID),
		}
		if resp.IDToken, err = p.keys.signID(alg, id); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
	}
	return resp, nil
}

// RefreshToken exchanges a refresh token (RFC 6749 §6). Public clients get
// a new refresh token each time; presenting an old one revokes the whole
// family (RFC 9700 §4.14.2). Confidential clients keep theirs.
func (s *tokenServer) RefreshToken(ctx context.Context, r *zop.ClientRequest[oidc.RefreshTokenRequest]) (*zop.Response, error) {
	c := r.Client.(*Client)
	token := r.Data.RefreshToken
	gid := grantOf(token)
	if gid == "" {
		return nil, invalidGrant("the refresh token is invalid")
	}
	// LiveGrant: the grant must not have ended with its session (online
	// grants) or with its user's sessions (an operator's end, a lock).
	g, err := s.p.store.LiveGrant(ctx, gid)
	if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrGrantEnded) {
		return nil, invalidGrant("the refresh token is invalid or revoked")
	} else if err != nil {
		return nil, storeError(err)
	}
	if g.ClientID != c.GetID() || g.RefreshHash == "" {
		return nil, invalidGrant("the refresh token is invalid")
	}
	gd, err := decodeGrant(g)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	// An operator's lock ended every grant of the user; one issued since
	// (a session the lock did not find) is refused while the lock holds.
	// A deleted account's grants were ended before it was deleted; one
	// found anyway is refused like a disabled account's.
	if a, err := s.p.store.GetAccount(ctx, g.Subject); errors.Is(err, session.ErrNotFound) || (err == nil && a.Disabled) {
		s.p.Audit(ctx, obs.EventLoginFailed, "client_id", c.GetID(), "sub", g.Subject, "reason", "disabled")
		return nil, invalidGrant("the account is disabled or deleted")
	} else if err == nil && a.Locked {
		s.p.Audit(ctx, obs.EventLocked, "budget", "account", "client_id", c.GetID(), "sub", g.Subject, "reason", "refresh")
		return nil, invalidGrant("the account is locked")
	} else if err != nil {
		return nil, storeError(err)
	}
	presented := hashSecret(token)
	if len(r.Data.Scopes) > 0 {
		for _, sc := range r.Data.Scopes {
			if !slices.Contains(gd.Scopes, sc) {
				return nil, oidc.ErrInvalidScope().WithDescription("a refresh may not widen the granted scope")
			}
		}
		gd.Scopes = r.Data.Scopes
	}
	refresh := token
	if c.Public() {
		refresh = g.ID + "." + randomID(32)
		res, err := s.p.store.RotateRefresh(ctx, g.ID, presented, hashSecret(refresh))
		if err != nil {
			return nil, storeError(err)
		}
		switch res {
		case session.Reused:
			s.p.Audit(ctx, obs.EventRefreshReuse, "client_id", c.GetID(), "sub", g.Subject, "reason", "refresh_reuse")
			return nil, invalidGrant("the refresh token was already used; its family is revoked")
		case session.Gone:
			return nil, invalidGrant("the refresh token is invalid or revoked")
		}
	} else if subtle.ConstantTimeCompare([]byte(presented), []byte(g.RefreshHash)) != 1 {
		return nil, invalidGrant("the refresh token is invalid")
	}
	resp, err := s.p.tokenResponse(c, g, gd, "", refresh, s.p.now())
	if err != nil {
		return nil, err
	}
	s.p.Audit(ctx, obs.EventToken, "grant_type", "refresh_token", "client_id", c.GetID(), "sub", g.Subject)
	return zop.NewResponse(resp), nil
}

// ClientCredentialsExchange issues a client's own access token (RFC 6749
// §4.4): no user, so no acr, amr or auth_time — and no store round trip.
func (s *tokenServer) ClientCredentialsExchange(ctx context.Context, r *zop.ClientRequest[oidc.ClientCredentialsRequest]) (*zop.Response, error) {
	c := r.Client.(*Client)
	var scopes []string
	for _, sc := range r.Data.Scope {
		if !slices.Contains(c.cfg.Scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed for this client", sc)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	now := s.p.now()
	at := accessTokenClaims{
		Issuer:   s.p.issuer,
		Subject:  c.GetID(),
		Audience: c.GetID(),
		Expiry:   now.Add(accessTokenLifetime).Unix(),
		IssuedAt: now.Unix(),
		JTI:      "cc." + randomID(16),
		ClientID: c.GetID(),
		Scope:    strings.Join(scopes, " "),
	}
	access, err := s.p.keys.signAccess(at)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	s.p.Audit(ctx, obs.EventToken, "grant_type", "client_credentials", "client_id", c.GetID())
	return zop.NewResponse(&oidc.AccessTokenResponse{
		AccessToken: access,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   uint64(accessTokenLifetime / time.Second),
		Scope:       scopes,
	}), nil
}

// activeAccessToken verifies one of our access tokens and that it may
// still be honoured, in one Redis round trip (AccessTokenLive): its id is
// not revoked and, for a user's token, its grant exists and has not ended
// — with its session (a sign-out ends online grants, an operator's end
// every grant of the session) or with all the user's (an operator's end
// of all sessions, a lock). A client_credentials token has no grant; only
// its revocation counts. A JWT that a resource server checks offline
// (rs package) knows none of this and stays valid until its exp.
func (p *Provider) activeAccessToken(ctx context.Context, token string) (*accessTokenClaims, error) {
	var at accessTokenClaims
	if err := p.keys.verify(token, "at+jwt", &at); err != nil {
		return nil, errBadToken
	}
	if at.Issuer != p.issuer || p.now().Unix() >= at.Expiry {
		return nil, errBadToken
	}
	live, err := p.store.AccessTokenLive(ctx, grantOf(at.JTI), incOf(at.JTI), at.Subject, at.JTI)
	if err != nil {
		return nil, err
	}
	if !live {
		return nil, errBadToken
	}
	return &at, nil
}

// introspection is the RFC 7662 response; for an active access token it
// repeats the token's acr, amr and auth_time.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       string   `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
}

// Introspect answers RFC 7662 for confidential clients. Refresh tokens are
// introspected only by the client they were issued to.
func (s *tokenServer) Introspect(ctx context.Context, r *zop.Request[zop.IntrospectionRequest]) (*zop.Response, error) {
	c, err := s.VerifyClient(ctx, &zop.Request[zop.ClientCredentials]{Data: r.Data.ClientCredentials})
	if err != nil {
		return nil, err
	}
	if c.(*Client).Public() {
		return nil, invalidClient()
	}
	token := r.Data.IntrospectionRequest.Token
	if strings.Count(token, ".") == 2 {
		at, err := s.p.activeAccessToken(ctx, token)
		if err != nil && !errors.Is(err, errBadToken) {
			return nil, storeError(err)
		}
		if at == nil {
			return zop.NewResponse(introspection{Active: false}), nil
		}
		return zop.NewResponse(introspection{
			Active: true, Scope: at.Scope, ClientID: at.ClientID, TokenType: oidc.BearerToken,
			Exp: at.Expiry, Iat: at.IssuedAt, Sub: at.Subject, Aud: at.Audience, Iss: at.Issuer,
			JTI: at.JTI, ACR: at.ACR, AMR: at.AMR, AuthTime: at.AuthTime,
		}), nil
	}
	gid := grantOf(token)
	if gid == "" {
		return zop.NewResponse(introspection{Active: false}), nil
	}
	g, err := s.p.store.LiveGrant(ctx, gid)
	if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrGrantEnded) {
		return zop.NewResponse(introspection{Active: false}), nil
	} else if err != nil {
		return nil, storeError(err)
	}
	if g.ClientID != c.GetID() || subtle.ConstantTimeCompare([]byte(hashSecret(token)), []byte(g.RefreshHash)) != 1 {
		return zop.NewResponse(introspection{Active: false}), nil
	}
	gd, err := decodeGrant(g)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return zop.NewResponse(introspection{
		Active: true, Scope: strings.Join(gd.Scopes, " "), ClientID: g.ClientID, TokenType: "refresh_token",
		Exp: g.ExpiresAt.Unix(), Sub: g.Subject, Iss: s.p.issuer, ACR: gd.ACR, AMR: gd.AMR, AuthTime: gd.AuthTime,
	}), nil
}

// UserInfo returns the claims the access token's scopes grant (OIDC Core
// §5.3).
func (s *tokenServer) UserInfo(ctx context.Context, r *zop.Request[oidc.UserInfoRequest]) (*zop.Response, error) {
	at, err := s.p.activeAccessToken(ctx, r.Data.AccessToken)
	if errors.Is(err, errBadToken) || (at != nil && grantOf(at.JTI) == "") {
		// RFC 6750 §3.1 invalid_token; serveUserinfo adds the challenge.
		e := oidc.ErrInvalidRequest().WithDescription("the access token is invalid, expired or revoked")
		e.ErrorType = "invalid_token"
		return nil, zop.NewStatusError(e, http.StatusUnauthorized)
	} else if err != nil {
		return nil, storeError(err)
	}
	scopes := strings.Fields(at.Scope)
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		e := oidc.ErrInvalidRequest().WithDescription("the openid scope was not granted")
		e.ErrorType = "insufficient_scope"
		return nil, zop.NewStatusError(e, http.StatusForbidden)
	}
	info := map[string]any{"sub": at.Subject}
	a, err := s.p.store.GetAccount(ctx, at.Subject)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return nil, storeError(err)
	}
	if a != nil {
		if slices.Contains(scopes, oidc.ScopeProfile) {
			info["preferred_username"] = a.Username
			if a.Name != "" {
				info["name"] = a.Name
			}
		}
		if slices.Contains(scopes, oidc.ScopeEmail) && a.Email != "" {
			// Seeded addresses are set by the operator: treated as verified.
			info["email"], info["email_verified"] = a.Email, true
		}
		if slices.Contains(scopes, oidc.ScopePhone) && a.Phone != "" {
			info["phone_number"], info["phone_number_verified"] = a.Phone, true
		}
	}
	return zop.NewResponse(info), nil
}

// Revocation revokes a refresh token (its whole grant) or an access token
// (RFC 7009). Unknown tokens are answered 200 as the RFC requires.
func (s *tokenServer) Revocation(ctx context.Context, r *zop.ClientRequest[oidc.RevocationRequest]) (*zop.Response, error) {
	c := r.Client.(*Client)
	token := r.Data.Token
	if strings.Count(token, ".") == 2 {
		var at accessTokenClaims
		if err := s.p.keys.verify(token, "at+jwt", &at); err != nil || at.ClientID != c.GetID() {
			return zop.NewResponse(struct{}{}), nil
		}
		ttl := time.Unix(at.Expiry, 0).Sub(s.p.now())
		if ttl > 0 {
			if err := s.p.store.RevokeToken(ctx, at.JTI, ttl); err != nil {
				return nil, storeError(err)
			}
		}
		return zop.NewResponse(struct{}{}), nil
	}
	if gid := grantOf(token); gid != "" {
		g, err := s.p.store.GetGrant(ctx, gid)
		if errors.Is(err, session.ErrNotFound) {
			return zop.NewResponse(struct{}{}), nil
		} else if err != nil {
			return nil, storeError(err)
		}
		if g.ClientID == c.GetID() && subtle.ConstantTimeCompare([]byte(hashSecret(token)), []byte(g.RefreshHash)) == 1 {
			// The authorization the token is of ends; a later one in the
			// same session may store the grant again.
			if err := s.p.endGrant(ctx, gid, g.Auth); err != nil && !errors.Is(err, session.ErrNotFound) {
				return nil, storeError(err)
			}
			s.p.Audit(ctx, obs.EventRevoked, "client_id", c.GetID(), "sub", g.Subject)
		}
	}
	return zop.NewResponse(struct{}{}), nil
}
