// Package secrets seals values that must not be readable from a copy of
// the database (TOTP secrets) with AES-256-GCM under the operator's
// encryption keys.
//
// A Keyring holds one or more 32-byte keys. The first one seals; every one
// of them opens, so a new key can be put first while values sealed under
// the old ones stay readable until they are written again (Current tells
// the caller which values to re-seal). Each sealed value names its key by
// a short id derived from the key, never the key itself:
//
//	v1.<key id>.<base64url(nonce || ciphertext)>
//
// A caller binds each value to where it belongs with associated data (for
// example the account's subject), so a ciphertext copied to another row
// does not open there.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of an encryption key: AES-256.
const KeySize = 32

const version = "v1"

// ErrUnknownKey is returned by Open for a value sealed under a key the
// keyring does not hold (a key removed from the configuration too soon).
var ErrUnknownKey = errors.New("secrets: sealed under a key that is not configured")

// Keyring seals with its first key and opens with any of them.
type Keyring struct {
	keys []key
}

type key struct {
	id   string
	aead cipher.AEAD
}

// NewKeyring returns a keyring of keys, the first of which seals. Each key
// must be KeySize bytes; two equal keys are an error.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secrets: no encryption key")
	}
	k := &Keyring{}
	seen := map[string]int{}
	for i, raw := range keys {
		if len(raw) != KeySize {
			return nil, fmt.Errorf("secrets: key %d is %d bytes, want %d", i, len(raw), KeySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i, err)
		}
		id := KeyID(raw)
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("secrets: keys %d and %d are the same key", j, i)
		}
		seen[id] = i
		k.keys = append(k.keys, key{id: id, aead: aead})
	}
	return k, nil
}

// ParseKey decodes a key written as standard base64 (with or without
// padding) of KeySize bytes, as `openssl rand -base64 32` prints it.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("%d bytes, want %d (base64 of 32 random bytes: openssl rand -base64 32)", len(b), KeySize)
	}
	return b, nil
}

// NewKey returns a fresh random key.
func NewKey() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// KeyID is the public name of a key: the first 8 bytes of a SHA-256 of
// it, in hex. It identifies the key without revealing it.
func KeyID(raw []byte) string {
	sum := sha256.Sum256(append([]byte("stepup secrets key id\x00"), raw...))
	return hex.EncodeToString(sum[:8])
}

// SealingKeyID is the id of the key that seals (the first).
func (k *Keyring) SealingKeyID() string { return k.keys[0].id }

// Seal encrypts plaintext under the first key, bound to ad.
func (k *Keyring) Seal(plaintext, ad []byte) string {
	first := k.keys[0]
	nonce := make([]byte, first.aead.NonceSize())
	_, _ = rand.Read(nonce)
	ct := first.aead.Seal(nonce, nonce, plaintext, ad)
	return version + "." + first.id + "." + base64.RawURLEncoding.EncodeToString(ct)
}

// Open decrypts a value of Seal with the key it names, checking ad.
func (k *Keyring) Open(sealed string, ad []byte) ([]byte, error) {
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		ct, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil || len(ct) < key.aead.NonceSize() {
			return nil, errors.New("secrets: malformed sealed value")
		}
		n := key.aead.NonceSize()
		pt, err := key.aead.Open(nil, ct[:n], ct[n:], ad)
		if err != nil {
			return nil, errors.New("secrets: sealed value does not open (altered, or bound to something else)")
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
}

// Current reports whether sealed was sealed under the first key; a value
// that is not must be sealed again when it is next written.
func (k *Keyring) Current(sealed string) bool {
	id, _, err := split(sealed)
	return err == nil && id == k.keys[0].id
}

func split(sealed string) (id, body string, err error) {
	v, rest, ok := strings.Cut(sealed, ".")
	if !ok || v != version {
		return "", "", errors.New("secrets: not a sealed value")
	}
	id, body, ok = strings.Cut(rest, ".")
	if !ok || id == "" || body == "" {
		return "", "", errors.New("secrets: malformed sealed value")
	}
	return id, body, nil
}
