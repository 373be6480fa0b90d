package op

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// Lifetimes of what stepup issues.
const (
	codeLifetime        = 60 * time.Second
	codeSpentMemory     = 10 * time.Minute // a replay within this window revokes the grant
	accessTokenLifetime = 10 * time.Minute
	idTokenLifetime     = 10 * time.Minute
	offlineLifetime     = 30 * 24 * time.Hour
	flowLifetime        = 30 * time.Minute
)

// b64 is unpadded base64url.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// randomID returns n random bytes as base64url.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return b64(b)
}

// hashSecret is how codes and refresh tokens are stored: their SHA-256,
// so a store dump cannot be replayed.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return b64(sum[:])
}

// codeBinding is what a code exchange must present to take a code: the
// client, the redirect URI and the PKCE challenge ("" without PKCE) of the
// authorization request, hashed into one value the store compares (JSON,
// so that no two triples encode alike).
func codeBinding(clientID, redirectURI, challenge string) string {
	b, _ := json.Marshal([]string{clientID, redirectURI, challenge}) // strings always marshal
	return hashSecret(string(b))
}

// pkceVerifier is a code_verifier (RFC 7636 §4.1).
var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authClaims is the truthful record of an authentication: what the code,
// the grant and every token issued from them carry unchanged.
type authClaims struct {
	Subject  string   `json:"sub"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
}

// codeData is the payload of an authorization code.
type codeData struct {
	authClaims
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	CodeChallenge string   `json:"code_challenge,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Scopes        []string `json:"scopes"`
	SessionID     string   `json:"sid"`
	GrantID       string   `json:"grant_id"`
	// Checked is set when the request that issued the code read the
	// account as active after reading its session (SessionID): the
	// exchange then reads no account (see Finish). Codes without it (a
	// session started after the account was read, as a password sign-in
	// does; an earlier version's codes) are checked at the exchange.
	Checked bool `json:"chk,omitempty"`
	// Auth names this authorization among those of the grant (see
	// session.Grant.Auth); "" in codes issued before grants were shared.
	Auth string `json:"auth,omitempty"`
	// SessionExp is when the code's session expires as the code's issue
	// left it (unix ms): an online grant expires with its session, and
	// each later authorization in the session moves it on (see
	// codeActivity). 0 in codes issued before: the absolute timeout.
	SessionExp int64 `json:"sexp,omitempty"`
}

// sessionGrantID is the id of the one grant a session holds for a client
// (issue 18): every authorization of client in the session stores it
// again, so Redis holds one grant per session and client, however often
// the user signs in to it. A hash, so that tokens, which carry the grant
// id, reveal nothing of the session id.
func sessionGrantID(sessionID, clientID, subject string) string {
	b, _ := json.Marshal([]string{"grant", sessionID, clientID, subject}) // strings always marshal
	sum := sha256.Sum256(b)
	return b64(sum[:18])
}

// activityGrain is how recent a session's last touch may be for a code
// to be issued without touching it again (codeActivity): a minute, or a
// thirtieth of the idle timeout when that is shorter, so that the idle
// timeout is shortened by at most that much.
func (p *Provider) activityGrain() time.Duration {
	return min(time.Minute, p.idle/30)
}

// codeActivity is the session's touch that issues the code cd: the
// session's new TTL, and its online grants, which follow it (issue 18:
// an online grant never outlives its session, so Redis memory follows
// live sessions). The session's grants are one per client it served
// (sessionGrantID); cd records the session's new expiry for its grant.
//
// A session that was touched less than activityGrain ago and has served
// the client already is not touched again (issue 18: SSO CPU): its store
// TTL, its user's session index and its online grants' TTL were all
// moved at that touch, and its recorded activity ("seen", the idle
// timeout's clock) would move by less than the grain. The zero Activity
// says so to IssueCode. The session then expires up to activityGrain
// before a touch would have made it, never later, and cd records the
// expiry that the last touch left it: min(seen + idle, created +
// absolute), which the store's TTL is no earlier than (a touch at seen
// gave it TTL SessionTTL, the session's creation idle), so the grant
// still ends no later than its session.
func (p *Provider) codeActivity(sess *session.Session, clientID string, cd *codeData) session.Activity {
	now := p.now()
	if since := now.Sub(sess.LastSeenAt); since >= 0 && since < p.activityGrain() && slices.Contains(sess.ClientIDs, clientID) {
		cd.SessionExp = min(sess.LastSeenAt.Add(p.idle).UnixMilli(), sess.CreatedAt.Add(p.absolute).UnixMilli())
		return session.Activity{}
	}
	ttl := p.SessionTTL(sess.CreatedAt)
	cd.SessionExp = now.Add(ttl).UnixMilli()
	grants := make([]string, 0, len(sess.ClientIDs))
	for _, c := range sess.ClientIDs {
		grants = append(grants, sessionGrantID(sess.ID, c, sess.Subject))
	}
	return session.Activity{SessionID: sess.ID, Subject: sess.Subject, ClientID: clientID, At: now, TTL: ttl, Grants: grants}
}

// codeGrantRef is what a code's spent marker remembers of the grant its
// exchange stores: "<grant>/<authorization>", or the grant id alone for
// codes without an authorization id.
func codeGrantRef(cd *codeData) string {
	if cd.Auth == "" {
		return cd.GrantID
	}
	return cd.GrantID + "/" + cd.Auth
}

// newCodeGrant sets the grant of a code issued now: the session's grant
// for the client, and a new authorization of it.
func newCodeGrant(cd *codeData) {
	cd.GrantID = sessionGrantID(cd.SessionID, cd.ClientID, cd.Subject)
	cd.Auth = randomID(12)
}

// grantData is the payload of a grant (token family).
type grantData struct {
	authClaims
	Scopes []string `json:"scopes"`
}

// grantPayload is grantData as stored: without the subject, which the
// grant holds in a field of its own (issue 18: Redis bytes per login).
// Grants stored before carry "sub" here too.
type grantPayload struct {
	Subject  string   `json:"sub,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	Scopes   []string `json:"scopes"`
}

// encodeGrant is the stored payload of gd: compactGrant, or the JSON of
// grantPayload for values it cannot hold.
func encodeGrant(gd grantData) ([]byte, error) {
	if b, ok := compactGrant(gd); ok {
		return b, nil
	}
	return json.Marshal(grantPayload{ACR: gd.ACR, AMR: gd.AMR, AuthTime: gd.AuthTime, Scopes: gd.Scopes})
}

// A compact grant payload (issue 18: Redis bytes per login) is
// grantCompact, then the acr, the amr values joined by spaces, auth_time
// in decimal and the scopes joined by spaces, separated by grantSep:
// about 50 bytes where the JSON took 95, so that it fits one listpack
// field of a grant (64 B) and the grant jemalloc's 256-byte class. Scope
// tokens hold no space (RFC 6749 §3.3) and neither do amr values; a value
// that holds a space or the separator, or is empty in a list, is stored
// as JSON instead. The JSON earlier versions wrote is still read; an
// earlier version cannot read this form (a refresh on an old instance of
// a grant a new one stored fails, closed, during a rolling upgrade).
const (
	grantCompact = '1'
	grantSep     = "\x1f"
)

// The conversions below are grantData and authClaims as encodeGrant
// stores them (the subject is the grant's own field): they stop compiling
// when either gains, loses or reorders a field, so that a claim the
// stored payload would drop cannot be added without revisiting it (and
// TestGrantPayloadKeepsEveryField).
var (
	_ = struct {
		Subject  string
		ACR      string
		AMR      []string
		AuthTime int64
	}(authClaims{})
	_ = struct {
		authClaims
		Scopes []string
	}(grantData{})
)

// compactGrant is gd's compact payload, when every value fits it.
func compactGrant(gd grantData) ([]byte, bool) {
	if strings.Contains(gd.ACR, grantSep) || gd.AuthTime < 0 {
		return nil, false
	}
	for _, list := range [][]string{gd.AMR, gd.Scopes} {
		for _, v := range list {
			if v == "" || strings.ContainsAny(v, " "+grantSep) {
				return nil, false
			}
		}
	}
	b := []byte{grantCompact}
	b = append(b, gd.ACR...)
	b = append(b, grantSep...)
	b = append(b, strings.Join(gd.AMR, " ")...)
	b = append(b, grantSep...)
	b = strconv.AppendInt(b, gd.AuthTime, 10)
	b = append(b, grantSep...)
	b = append(b, strings.Join(gd.Scopes, " ")...)
	return b, true
}

// decodeGrant reads g's payload; the subject is the grant's.
func decodeGrant(g *session.Grant) (grantData, error) {
	if len(g.Data) > 0 && g.Data[0] == grantCompact {
		parts := strings.Split(string(g.Data[1:]), grantSep)
		if len(parts) != 4 {
			return grantData{}, errors.New("op: an unreadable grant payload")
		}
		at, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || at < 0 {
			return grantData{}, errors.New("op: an unreadable grant payload")
		}
		return grantData{authClaims: authClaims{Subject: g.Subject, ACR: parts[0], AMR: fields(parts[1]), AuthTime: at},
			Scopes: fields(parts[3])}, nil
	}
	var p grantPayload
	if err := json.Unmarshal(g.Data, &p); err != nil {
		return grantData{}, err
	}
	if p.Subject != "" && p.Subject != g.Subject {
		return grantData{}, errors.New("op: a grant's payload names another subject")
	}
	return grantData{authClaims: authClaims{Subject: g.Subject, ACR: p.ACR, AMR: p.AMR, AuthTime: p.AuthTime}, Scopes: p.Scopes}, nil
}

// fields is s split at spaces; nil for "".
func fields(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// idTokenClaims is an OpenID Connect ID token (OIDC Core §2).
type idTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AZP      string   `json:"azp"`
	AtHash   string   `json:"at_hash,omitempty"`
	SID      string   `json:"sid,omitempty"`
}

// accessTokenClaims is an RFC 9068 JWT access token.
type accessTokenClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
}

// grantOf returns the grant id embedded in a token id ("<grant>.<random>"
// or "<grant>.<incarnation>.<random>"), "" for tokens outside any grant
// (client_credentials).
func grantOf(id string) string {
	g, _, ok := strings.Cut(id, ".")
	if !ok || g == "cc" {
		return ""
	}
	return g
}

// incOf returns the grant incarnation embedded in an access token's id
// ("<grant>.<incarnation>.<random>"), "" for ids without one.
func incOf(id string) string {
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}

// tokenID is a new access token id of grant g (see grantOf, incOf).
func tokenID(g *session.Grant) string {
	if g.Inc == "" {
		return g.ID + "." + randomID(12)
	}
	return g.ID + "." + g.Inc + "." + randomID(12)
}

// atHash is the at_hash of OIDC Core §3.1.3.6 for the signing algorithm.
func atHash(accessToken, alg string) string {
	// RS256 and ES256 use SHA-256; EdDSA (Ed25519) uses SHA-512 by the
	// OpenID Foundation's errata, but verifiers disagree, so EdDSA tokens
	// carry no at_hash (it is optional for the code flow).
	if alg == "EdDSA" {
		return ""
	}
	sum := sha256.Sum256([]byte(accessToken))
	return b64(sum[:len(sum)/2])
}
