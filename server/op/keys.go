package op

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stepup-dev/stepup/session"
)

// Keys signs the tokens stepup issues and verifies the ones it gets back
// (access tokens at userinfo and introspection, id_token_hint). It holds
// one key set per algorithm: ID tokens are signed with the algorithm the
// client registered (id_token_signed_response_alg, keys.algorithm when
// it registered none), access tokens with ES256 (AccessAlgorithm), and
// the JWKS publishes the keys of every set.
type Keys struct {
	sets  map[string]*algKeys // by algorithm
	algs  []string            // the algorithms of sets, in algorithmOrder
	idAlg string              // ID tokens of clients that registered none
	atAlg string              // access tokens
	jwks  atomic.Pointer[jwksView]
	// verifyAlgs are the algorithms of tokens verify parses.
	verifyAlgs []jose.SignatureAlgorithm
}

func (k *Keys) ready() *Keys {
	for _, a := range k.algs {
		k.verifyAlgs = append(k.verifyAlgs, jose.SignatureAlgorithm(a))
	}
	return k
}

// algorithmOrder is the order in which discovery lists the ID token
// algorithms and the JWKS its keys: RS256 first, OIDC's default.
var algorithmOrder = []string{"RS256", "ES256", "EdDSA"}

// AccessTokenAlgorithm signs access tokens when the key sets are in the
// store: stepup signs one per token request, and ES256 signs about 20
// times faster than RS256 (a resource server verifies it in ≈0.1 ms
// against ≈0.04 ms for RS256; docs/decisions.md).
const AccessTokenAlgorithm = "ES256"

// jwksView is the published JWKS, built from the views of the sets it
// was made of (rebuilt when one of them changes).
type jwksView struct {
	views []*keyView
	body  []byte
}

// KeyAlgorithms lists the algorithms whose key sets the store holds for
// a configuration: RS256 and ES256 always (RS256 is OIDC's default ID
// token algorithm, ES256 signs access tokens), plus keys.algorithm and
// the clients' id_token_signed_response_alg (EdDSA when one names it).
func KeyAlgorithms(defaultAlg string, clientAlgs []string) []string {
	var out []string
	for _, a := range algorithmOrder {
		if a == "RS256" || a == AccessTokenAlgorithm || a == defaultAlg || slices.Contains(clientAlgs, a) {
			out = append(out, a)
		}
	}
	return out
}

// KeyOptions says which keys LoadKeys loads.
type KeyOptions struct {
	// Algorithm is keys.algorithm: the ID token algorithm of clients
	// that registered none.
	Algorithm string
	// File is keys.file: one PEM private key per algorithm, instead of
	// the key sets in the store.
	File string
	// ClientAlgorithms are the clients' id_token_signed_response_alg.
	ClientAlgorithms []string
}

// algKeys is the key set of one algorithm.
//
// It parses each private key and serializes the JWKS once per change
// of the key set, so neither costs anything per request. With keys.file
// there is one key; otherwise the key set lives in the store (see
// RotateKeys) and every instance reloads it every keySetRefresh, so
// instances converge on a rotation without a restart.
type algKeys struct {
	alg   jose.SignatureAlgorithm
	store session.SecretStore // nil: one static key
	name  string
	now   func() time.Time

	mu   sync.Mutex // serializes reloads
	raw  []byte
	set  []*signingKey
	view atomic.Pointer[keyView]
}

// signingKey is one parsed key of the set.
type signingKey struct {
	kid       string
	public    crypto.PublicKey
	jwk       jose.JSONWebKey
	jws       *jwsSigner
	signsFrom time.Time // zero: from the start
	retireAt  time.Time // zero: not retiring
}

// keyView is the key set as seen at one moment: the key that signs, the
// keys that verify (the published ones) and their JWKS.
type keyView struct {
	signing *signingKey
	// pending: no key of the set may sign yet; signing is the first
	// that will (published already).
	pending bool
	byKID   map[string]*signingKey
	jwks    []jose.JSONWebKey
	from    time.Time
	until   time.Time // rebuild once now reaches it
}

// keySetRefresh is how often an instance reloads the key set from the
// store.
const keySetRefresh = 30 * time.Second

// JWKSMaxAge is the Cache-Control max-age of the JWKS document.
const JWKSMaxAge = 300 * time.Second

// RotationDelay is how long a new key is published before it signs: a
// client that fetched the JWKS just before the rotation, or holds a
// token from an instance that has not reloaded yet, sees it in time.
func RotationDelay() time.Duration {
	return max(accessTokenLifetime, idTokenLifetime, JWKSMaxAge)
}

// longestTokenLifetime bounds how long a token signed by a key verifies.
func longestTokenLifetime() time.Duration { return max(accessTokenLifetime, idTokenLifetime) }

// keySetRecord is the stored key set (sealed by the store with every
// other shared secret).
type keySetRecord struct {
	Keys []keyRecord `json:"keys"`
}

type keyRecord struct {
	KID       string `json:"kid"`
	Alg       string `json:"alg"`
	PEM       string `json:"pem"`
	CreatedAt int64  `json:"created_at"`
	PublishAt int64  `json:"publish_at"`
	SignsFrom int64  `json:"signs_from"`
	RetireAt  int64  `json:"retire_at,omitempty"` // 0: not retiring
}

func keySetName(alg string) string { return "signing-keys:" + alg }

// LoadKeys returns the signing keys: the ones in o.File when set,
// otherwise the key sets shared through the store, one per algorithm of
// KeyAlgorithms. The first instance creates each set from the single key
// earlier versions shared ("signing-key:ALG"), so tokens already issued
// keep verifying. now is the clock (nil: time.Now).
func LoadKeys(ctx context.Context, o KeyOptions, secrets session.SecretStore, now func() time.Time) (*Keys, error) {
	if o.File != "" {
		b, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("keys.file: %w", err)
		}
		k, err := fileKeys(o.Algorithm, b)
		if err != nil {
			return nil, fmt.Errorf("keys.file: %w", err)
		}
		return k, nil
	}
	if now == nil {
		now = time.Now
	}
	k := &Keys{sets: map[string]*algKeys{}, idAlg: o.Algorithm, atAlg: AccessTokenAlgorithm}
	// keys.algorithm's set first: a key of it in the store already is a
	// deployment that has issued tokens, whose clients and resource
	// servers may cache its JWKS; a set it did not have yet (ES256, on the
	// first start after the upgrade that brought two key sets) is then
	// published first and signs only after RotationDelay(), as a rotated
	// key does. Until then access tokens are signed with keys.algorithm's
	// key, as before.
	algs := KeyAlgorithms(o.Algorithm, o.ClientAlgorithms)
	order := append([]string{o.Algorithm}, slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return a == o.Algorithm })...)
	var pending time.Duration
	for i, alg := range order {
		raw, existed, err := initKeySet(ctx, alg, secrets, now(), pending)
		if err != nil {
			return nil, err
		}
		if i == 0 && existed {
			pending = RotationDelay()
		}
		set, err := parseKeySet(alg, raw)
		if err != nil {
			return nil, err
		}
		ak := &algKeys{alg: jose.SignatureAlgorithm(alg), store: secrets, name: keySetName(alg), now: now, raw: raw, set: set}
		if _, err := ak.build(now()); err != nil {
			return nil, err
		}
		k.sets[alg] = ak
	}
	k.algs = algs
	return k.ready(), nil
}

// fileKeys reads keys.file: one PEM private key per algorithm (an RSA
// key signs RS256, a P-256 key ES256, an Ed25519 key EdDSA). It must
// hold a key of alg (keys.algorithm); access tokens are signed with its
// ES256 key, or with the alg key when it has none (a file of one key
// signs everything with it, as before there were two).
func fileKeys(alg string, b []byte) (*Keys, error) {
	k := &Keys{sets: map[string]*algKeys{}, idAlg: alg}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		one := pem.EncodeToMemory(block)
		ka, err := keyAlgorithm(block)
		if err != nil {
			return nil, err
		}
		if k.sets[ka] != nil {
			return nil, fmt.Errorf("two %s keys: give one key per algorithm", ka)
		}
		sk, err := parseKey(ka, one)
		if err != nil {
			return nil, err
		}
		ak := &algKeys{alg: jose.SignatureAlgorithm(ka), now: time.Now, set: []*signingKey{sk}}
		if _, err := ak.build(time.Unix(0, 0)); err != nil {
			return nil, err
		}
		k.sets[ka] = ak
	}
	if len(k.sets) == 0 {
		return nil, errors.New("signing key: no PEM block")
	}
	if k.sets[alg] == nil {
		return nil, fmt.Errorf("no %s key (keys.algorithm)", alg)
	}
	for _, a := range algorithmOrder {
		if k.sets[a] != nil {
			k.algs = append(k.algs, a)
		}
	}
	k.atAlg = alg
	if k.sets[AccessTokenAlgorithm] != nil {
		k.atAlg = AccessTokenAlgorithm
	}
	return k.ready(), nil
}

// keyAlgorithm is the algorithm a PEM private key signs.
func keyAlgorithm(block *pem.Block) (string, error) {
	key, err := parsePrivate(block)
	if err != nil {
		return "", err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "RS256", nil
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return "ES256", nil
		}
		return "", errors.New("signing key: ES256 needs a P-256 key")
	case ed25519.PrivateKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("signing key: unsupported key type %T", key)
}

// initKeySet returns the stored key set of alg, creating it from the
// single shared key when there is none (created too when missing). A set
// it creates signs from now + pending (published from now). existed
// reports whether the single shared key was in the store already.
func initKeySet(ctx context.Context, alg string, secrets session.SecretStore, now time.Time, pending time.Duration) (raw []byte, existed bool, err error) {
	fresh, err := generateKey(alg)
	if err != nil {
		return nil, false, err
	}
	first, err := secrets.InitSecret(ctx, "signing-key:"+alg, fresh)
	if err != nil {
		return nil, false, fmt.Errorf("sharing the signing key through the store: %w", err)
	}
	existed = !bytes.Equal(first, fresh)
	k, err := parseKey(alg, first)
	if err != nil {
		return nil, existed, err
	}
	r := keyRecord{KID: k.kid, Alg: alg, PEM: string(first), CreatedAt: now.Unix()}
	if pending > 0 {
		r.PublishAt, r.SignsFrom = now.Unix(), now.Add(pending).Truncate(time.Second).Add(time.Second).Unix()
	}
	initial, err := json.Marshal(keySetRecord{Keys: []keyRecord{r}})
	if err != nil {
		return nil, existed, err
	}
	raw, err = secrets.InitSecret(ctx, keySetName(alg), initial)
	if err != nil {
		return nil, existed, fmt.Errorf("sharing the signing key set through the store: %w", err)
	}
	return raw, existed, nil
}

func decodeKeySet(raw []byte) (keySetRecord, error) {
	var rec keySetRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("signing key set: %w", err)
	}
	if len(rec.Keys) == 0 {
		return rec, errors.New("signing key set: no key")
	}
	return rec, nil
}

func parseKeySet(alg string, raw []byte) ([]*signingKey, error) {
	rec, err := decodeKeySet(raw)
	if err != nil {
		return nil, err
	}
	out := make([]*signingKey, 0, len(rec.Keys))
	for _, r := range rec.Keys {
		if r.Alg != alg {
			continue // keys of another keys.algorithm stay for it
		}
		k, err := parseKey(alg, []byte(r.PEM))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", r.KID, err)
		}
		if r.SignsFrom != 0 {
			k.signsFrom = time.Unix(r.SignsFrom, 0)
		}
		if r.RetireAt != 0 {
			k.retireAt = time.Unix(r.RetireAt, 0)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("signing key set: no %s key", alg)
	}
	return out, nil
}

// build computes the view at now from the parsed set and installs it.
func (k *algKeys) build(now time.Time) (*keyView, error) {
	v := &keyView{byKID: map[string]*signingKey{}, from: now, until: now.Add(keySetRefresh)}
	var next *signingKey
	if k.store == nil {
		v.until = time.Unix(1<<62, 0)
	}
	for _, s := range k.set {
		if !s.retireAt.IsZero() {
			if !now.Before(s.retireAt) {
				continue
			}
			if s.retireAt.Before(v.until) {
				v.until = s.retireAt
			}
		}
		v.byKID[s.kid] = s
		v.jwks = append(v.jwks, s.jwk)
		if s.signsFrom.After(now) {
			if s.signsFrom.Before(v.until) {
				v.until = s.signsFrom
			}
			if next == nil || s.signsFrom.Before(next.signsFrom) {
				next = s
			}
			continue
		}
		if v.signing == nil || s.signsFrom.After(v.signing.signsFrom) {
			v.signing = s
		}
	}
	if v.signing == nil && next != nil {
		// Only keys published ahead of their time (a set a running
		// deployment just added): the first of them signs what must be
		// of this algorithm, and Keys signs access tokens with another.
		v.signing, v.pending = next, true
	}
	if v.signing == nil {
		return nil, errors.New("signing key set: no key signs now")
	}
	k.view.Store(v)
	return v, nil
}

// current returns the view of now, reloading the set from the store
// when keySetRefresh has passed. A store that does not answer leaves the
// set as it was: signing goes on with the keys already known.
func (k *algKeys) current() *keyView {
	now := k.now()
	if v := k.view.Load(); !now.Before(v.from) && now.Before(v.until) {
		return v
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if v := k.view.Load(); !now.Before(v.from) && now.Before(v.until) {
		return v
	}
	if k.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// InitSecret with the set in hand reads the stored one, and puts
		// it back if the store lost it.
		raw, err := k.store.InitSecret(ctx, k.name, k.raw)
		cancel()
		if err == nil && !bytes.Equal(raw, k.raw) {
			if set, err := parseKeySet(string(k.alg), raw); err == nil {
				k.raw, k.set = raw, set
			}
		}
	}
	v, err := k.build(now)
	if err != nil {
		// No key signs now (a clock far off the rotation's): keep the
		// last view until the next reload rather than failing every
		// request or reloading at each.
		last := *k.view.Load()
		last.from, last.until = now, now.Add(keySetRefresh)
		k.view.Store(&last)
		return &last
	}
	return v
}

// KeySet is what RotateKeys did.
type KeySet struct {
	Alg       string    // the algorithm of the set
	New       string    // kid of the new key
	SignsFrom time.Time // when it starts signing
	Retiring  []string  // kids of the keys that stop
	RetireAt  time.Time // when they leave the JWKS
	Pruned    []string  // kids removed, their tokens all expired
}

// RotateKeys adds a new key to the stored set of alg: published now,
// signing from now + RotationDelay(). Every key that was not yet retiring
// leaves the JWKS once the last token it can sign has expired (the new
// key's signs_from + the longest token lifetime); keys past that are
// removed. Two rotations at once both land: the store swaps the set only
// if it is still the one read.
func RotateKeys(ctx context.Context, alg string, secrets session.SecretStore, now time.Time) (KeySet, error) {
	for range 20 {
		raw, _, err := initKeySet(ctx, alg, secrets, now, RotationDelay())
		if err != nil {
			return KeySet{}, err
		}
		rec, err := decodeKeySet(raw)
		if err != nil {
			return KeySet{}, err
		}
		pemBytes, err := generateKey(alg)
		if err != nil {
			return KeySet{}, err
		}
		nk, err := parseKey(alg, pemBytes)
		if err != nil {
			return KeySet{}, err
		}
		// Whole seconds (as stored), rounded up: never sooner than the delay.
		signsFrom := now.Add(RotationDelay())
		if signsFrom.Nanosecond() != 0 {
			signsFrom = signsFrom.Truncate(time.Second).Add(time.Second)
		}
		res := KeySet{Alg: alg, New: nk.kid, SignsFrom: signsFrom}
		res.RetireAt = res.SignsFrom.Add(longestTokenLifetime())
		kept := rec.Keys[:0:0]
		for _, r := range rec.Keys {
			if r.RetireAt != 0 && r.RetireAt <= now.Unix() {
				res.Pruned = append(res.Pruned, r.KID)
				continue
			}
			if r.Alg == alg && r.RetireAt == 0 {
				r.RetireAt = res.RetireAt.Unix()
				res.Retiring = append(res.Retiring, r.KID)
			}
			kept = append(kept, r)
		}
		rec.Keys = append(kept, keyRecord{KID: nk.kid, Alg: alg, PEM: string(pemBytes), CreatedAt: now.Unix(), PublishAt: now.Unix(), SignsFrom: res.SignsFrom.Unix()})
		next, err := json.Marshal(rec)
		if err != nil {
			return KeySet{}, err
		}
		ok, err := secrets.SwapSecret(ctx, keySetName(alg), raw, next)
		if err != nil {
			return KeySet{}, fmt.Errorf("storing the signing key set: %w", err)
		}
		if ok {
			return res, nil
		}
	}
	return KeySet{}, errors.New("storing the signing key set: it kept changing; try again")
}

// ErrNoSuchKey is a kid that is not in the stored key set.
var ErrNoSuchKey = errors.New("no such signing key")

// Revocation is what RevokeKey did.
type Revocation struct {
	Alg     string // the algorithm of the set
	Revoked string // kid removed from the set
	Signer  string // kid that signs from now on
	New     bool   // Signer was generated by the revocation
}

// RevokeKey removes the key kid from the stored set of alg at once: an
// emergency for a key that may have leaked, unlike RotateKeys, which
// keeps a replaced key published until its tokens expire. The key
// leaves the JWKS and stops signing as soon as each instance reloads the
// set (keySetRefresh), and its private key is deleted from the store,
// including the single-key slot of earlier versions, from which the set
// could otherwise be rebuilt. If no remaining key may sign (none that is
// not retiring), the newest remaining one signs at once, or a new key is
// generated and signs at once: without the usual publication delay,
// since the leaked key must not sign a moment longer. Tokens the key
// signed stop verifying at stepup when it reloads, at a relying party or
// resource server when it fetches the JWKS again (go-oidc and rs do on
// the first token with the new kid).
func RevokeKey(ctx context.Context, alg, kid string, secrets session.SecretStore, now time.Time) (Revocation, error) {
	for range 20 {
		raw, _, err := initKeySet(ctx, alg, secrets, now, RotationDelay())
		if err != nil {
			return Revocation{}, err
		}
		rec, err := decodeKeySet(raw)
		if err != nil {
			return Revocation{}, err
		}
		res := Revocation{Alg: alg, Revoked: kid}
		kept := rec.Keys[:0:0]
		for _, r := range rec.Keys {
			if r.KID == kid {
				continue
			}
			kept = append(kept, r)
		}
		if len(kept) == len(rec.Keys) {
			return Revocation{}, fmt.Errorf("%w %q in the %s key set", ErrNoSuchKey, kid, alg)
		}
		signer := -1
		for i, r := range kept {
			if r.Alg == alg && r.RetireAt == 0 && (signer < 0 || r.SignsFrom > kept[signer].SignsFrom) {
				signer = i
			}
		}
		var signerPEM string
		if signer >= 0 {
			kept[signer].SignsFrom = min(kept[signer].SignsFrom, now.Unix())
			res.Signer, signerPEM = kept[signer].KID, kept[signer].PEM
		} else {
			pemBytes, err := generateKey(alg)
			if err != nil {
				return Revocation{}, err
			}
			nk, err := parseKey(alg, pemBytes)
			if err != nil {
				return Revocation{}, err
			}
			kept = append(kept, keyRecord{KID: nk.kid, Alg: alg, PEM: string(pemBytes), CreatedAt: now.Unix(), PublishAt: now.Unix(), SignsFrom: now.Unix()})
			res.Signer, res.New, signerPEM = nk.kid, true, string(pemBytes)
		}
		rec.Keys = kept
		next, err := json.Marshal(rec)
		if err != nil {
			return Revocation{}, err
		}
		ok, err := secrets.SwapSecret(ctx, keySetName(alg), raw, next)
		if err != nil {
			return Revocation{}, fmt.Errorf("storing the signing key set: %w", err)
		}
		if !ok {
			continue
		}
		// The single key of earlier versions seeds the set when it is
		// missing: it must not be the revoked one.
		legacy := "signing-key:" + alg
		for range 20 {
			cur, err := secrets.InitSecret(ctx, legacy, []byte(signerPEM))
			if err != nil {
				return res, fmt.Errorf("the key was revoked; replacing the %s slot failed: %w", legacy, err)
			}
			if k, err := parseKey(alg, cur); err == nil && k.kid != kid {
				return res, nil
			}
			if ok, err := secrets.SwapSecret(ctx, legacy, cur, []byte(signerPEM)); err != nil {
				return res, fmt.Errorf("the key was revoked; replacing the %s slot failed: %w", legacy, err)
			} else if ok {
				return res, nil
			}
		}
		return res, fmt.Errorf("the key was revoked; the %s slot kept changing", legacy)
	}
	return Revocation{}, errors.New("storing the signing key set: it kept changing; try again")
}

func generateKey(alg string) ([]byte, error) {
	var key any
	var err error
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("keys.algorithm: unsupported %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating a %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// NewKeys returns one static key: a PEM private key (PKCS#8, PKCS#1 or
// SEC 1) for alg, which signs every token.
func NewKeys(alg string, pemBytes []byte) (*Keys, error) {
	sk, err := parseKey(alg, pemBytes)
	if err != nil {
		return nil, err
	}
	ak := &algKeys{alg: jose.SignatureAlgorithm(alg), now: time.Now, set: []*signingKey{sk}}
	if _, err := ak.build(time.Unix(0, 0)); err != nil {
		return nil, err
	}
	k := &Keys{sets: map[string]*algKeys{alg: ak}, algs: []string{alg}, idAlg: alg, atAlg: alg}
	return k.ready(), nil
}

func parsePrivate(block *pem.Block) (any, error) {
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return key, nil
}

// parseKey parses a PEM private key for alg; its kid is derived from
// its thumbprint.
func parseKey(alg string, pemBytes []byte) (*signingKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("signing key: no PEM block")
	}
	key, err := parsePrivate(block)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("signing key: not a signing key")
	}
	a := jose.SignatureAlgorithm(alg)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if a != jose.RS256 {
			return nil, fmt.Errorf("signing key: an RSA key cannot sign %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, errors.New("signing key: RSA keys must have at least 2048 bits")
		}
	case *ecdsa.PrivateKey:
		if a != jose.ES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key: %s needs a P-256 key", alg)
		}
	case ed25519.PrivateKey:
		if a != jose.EdDSA {
			return nil, fmt.Errorf("signing key: an Ed25519 key cannot sign %s", alg)
		}
	default:
		return nil, fmt.Errorf("signing key: unsupported key type %T", key)
	}
	pub := jose.JSONWebKey{Key: signer.Public(), Algorithm: alg, Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	k := &signingKey{public: signer.Public()}
	k.kid = b64(thumb)[:16]
	pub.KeyID = k.kid
	k.jwk = pub
	if k.jws, err = newJWSSigner(alg, k.kid, signer); err != nil {
		return nil, err
	}
	return k, nil
}

// Algorithm is keys.algorithm: the ID token algorithm of clients that
// registered none.
func (k *Keys) Algorithm() string { return k.idAlg }

// AccessAlgorithm is the algorithm of access tokens.
func (k *Keys) AccessAlgorithm() string { return k.atAlg }

// Algorithms are the algorithms an ID token can be signed with, RS256
// first: those of the key sets.
func (k *Keys) Algorithms() []string { return slices.Clone(k.algs) }

// Has reports whether alg has a key set.
func (k *Keys) Has(alg string) bool { return k.sets[alg] != nil }

// JWKS is the serialized public key set: every key not retired, of
// every algorithm.
func (k *Keys) JWKS() []byte {
	views := make([]*keyView, len(k.algs))
	for i, a := range k.algs {
		views[i] = k.sets[a].current()
	}
	if j := k.jwks.Load(); j != nil && slices.Equal(j.views, views) {
		return j.body
	}
	var set jose.JSONWebKeySet
	for _, v := range views {
		set.Keys = append(set.Keys, v.jwks...)
	}
	body, err := json.Marshal(set)
	if err != nil {
		// Marshalling keys that marshalled when parsed cannot fail.
		panic(err)
	}
	k.jwks.Store(&jwksView{views: views, body: body})
	return body
}

// SigningKID is the kid of the key of alg that signs now ("" when alg
// has no key set).
func (k *Keys) SigningKID(alg string) string {
	if s := k.sets[alg]; s != nil {
		return s.current().signing.kid
	}
	return ""
}

func (k *Keys) signAccess(claims any) (string, error) {
	v := k.sets[k.atAlg].current()
	if v.pending {
		// The ES256 set a running deployment just added is not signing
		// yet: keys.algorithm's key signs access tokens until it does.
		if d := k.sets[k.idAlg].current(); !d.pending {
			v = d
		}
	}
	return v.signing.jws.sign(v.signing.jws.atHeader, claims)
}

// signID signs an ID token with the key of alg ("": keys.algorithm).
func (k *Keys) signID(alg string, claims any) (string, error) {
	if alg == "" {
		alg = k.idAlg
	}
	s := k.sets[alg]
	if s == nil {
		return "", fmt.Errorf("signing: no %s key", alg)
	}
	j := s.current().signing.jws
	return j.sign(j.idHeader, claims)
}

// errBadToken is every reason a token we get back is not ours or not valid.
var errBadToken = errors.New("invalid token")

// verify checks a compact JWS signed by a published key of ours (by its
// kid) with the header typ wantTyp and decodes its payload into claims.
func (k *Keys) verify(token, wantTyp string, claims any) error {
	// Compact serialization only, at every site (access tokens, ID token
	// hints): ParseSigned would also take the JSON serialization, which
	// we never issue and which a proxy or WAF in front of us may not read
	// the way go-jose does.
	jws, err := jose.ParseSignedCompact(token, k.verifyAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return errBadToken
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != wantTyp {
		return errBadToken
	}
	// The header's alg picks the set: a kid of another algorithm's set is
	// not looked for, so a key is only ever used with its own algorithm.
	set := k.sets[h.Algorithm]
	if set == nil {
		return errBadToken
	}
	key, ok := set.current().byKID[h.KeyID]
	if !ok {
		return errBadToken
	}
	payload, err := jws.Verify(key.public)
	if err != nil {
		return errBadToken
	}
	if err := json.Unmarshal(payload, claims); err != nil {
		return errBadToken
	}
	return nil
}
