package op

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"time"
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
}

// grantData is the payload of a grant (token family).
type grantData struct {
	authClaims
	Scopes []string `json:"scopes"`
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

// grantOf returns the grant id embedded in a token id ("<grant>.<random>"),
// "" for tokens outside any grant (client_credentials).
func grantOf(id string) string {
	g, _, ok := strings.Cut(id, ".")
	if !ok || g == "cc" {
		return ""
	}
	return g
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
