// Package recovery makes and checks recovery codes: a set of one-use codes
// a user keeps on paper for when their other second factors are out of
// reach. A recovery code is a possession factor with amr "otp"
// (PRODUCT.md §2).
//
// The caller stores only hashes (Store): the codes themselves exist in
// the answer of Generate, to be shown once, and nowhere else. Each code
// carries 60 random bits, so a hash that leaks with a Redis dump cannot be
// reversed by guessing; the hash is salted with the subject, so one
// guess never tests every user's codes at once.
//
// Typical use:
//
//	codes := recovery.New(store)
//	list, err := codes.Generate(ctx, sub) // show list once (data-recovery-code)
//	ok, err := codes.Consume(ctx, sub, typed)
package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Count is the number of codes Generate makes.
const Count = 10

// alphabet has 32 symbols, so each is 5 bits, and none of the look-alikes
// o, 1, l, i: a code read off paper is typed back right (an "o" typed for
// the zero is taken as the zero).
const alphabet = "abcdefghjkmnpqrstuvwxyz023456789"

// groups × groupLen symbols per code: 12 × 5 = 60 bits.
const (
	groups   = 3
	groupLen = 4
)

// Store keeps the hashes of a subject's codes. session.RecoveryStore
// satisfies it.
type Store interface {
	// SetRecoveryCodes replaces the subject's codes atomically.
	SetRecoveryCodes(ctx context.Context, subject string, hashes []string) error
	// UseRecoveryCode removes one hash atomically; true when it was there.
	UseRecoveryCode(ctx context.Context, subject, hash string) (bool, error)
	// CountRecoveryCodes returns the number of unused codes.
	CountRecoveryCodes(ctx context.Context, subject string) (int, error)
}

// Codes makes and checks the recovery codes kept in a Store.
type Codes struct{ store Store }

// New returns Codes on store.
func New(store Store) *Codes { return &Codes{store: store} }

// Generate makes Count new codes for subject, replacing any it had (the
// old ones stop working at once), and returns them formatted for display
// ("abcd-efgh-jkmn"). It is the only time the codes are seen: show them
// once, then forget them. A subject with no account is the store's
// ErrNotFound.
func (c *Codes) Generate(ctx context.Context, subject string) ([]string, error) {
	if subject == "" {
		return nil, fmt.Errorf("recovery: generate: empty subject")
	}
	codes := make([]string, Count)
	hashes := make([]string, Count)
	seen := map[string]bool{}
	for i := 0; i < Count; {
		code := newCode()
		if seen[code] {
			continue // astronomically rare; a set must not lose a member
		}
		seen[code] = true
		codes[i], hashes[i] = code, Hash(subject, code)
		i++
	}
	if err := c.store.SetRecoveryCodes(ctx, subject, hashes); err != nil {
		return nil, fmt.Errorf("recovery: generate: %w", err)
	}
	return codes, nil
}

// Count returns how many unused codes subject has.
func (c *Codes) Count(ctx context.Context, subject string) (int, error) {
	n, err := c.store.CountRecoveryCodes(ctx, subject)
	if err != nil {
		return 0, fmt.Errorf("recovery: count: %w", err)
	}
	return n, nil
}

// Consume spends the code the user typed, if it is one of subject's
// unused codes, and reports whether it was. Case, spaces and dashes do
// not matter. Of concurrent calls with one code exactly one gets true.
// The caller counts a false against the user's abuse budget.
func (c *Codes) Consume(ctx context.Context, subject, typed string) (bool, error) {
	code, ok := Normalize(typed)
	if !ok || subject == "" {
		return false, nil
	}
	used, err := c.store.UseRecoveryCode(ctx, subject, Hash(subject, code))
	if err != nil {
		return false, fmt.Errorf("recovery: consume: %w", err)
	}
	return used, nil
}

// Normalize turns what a user typed into the canonical form of a code,
// and reports whether it can be a code at all.
func Normalize(typed string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(typed) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r == 'o':
			b.WriteByte('0')
		case strings.ContainsRune(alphabet, r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	s := b.String()
	if len(s) != groups*groupLen {
		return "", false
	}
	return format(s), true
}

// Hash is what the store keeps for a code of subject: SHA-256 over the
// subject and the canonical code, hex.
func Hash(subject, code string) string {
	sum := sha256.Sum256([]byte("stepup-recovery\x00" + subject + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// newCode returns a random code in canonical form.
func newCode() string {
	raw := make([]byte, groups*groupLen)
	for i := range raw {
		// 32 divides 256, so the draw is uniform.
		raw[i] = alphabet[randByte()%32]
	}
	return format(string(raw))
}

func randByte() byte {
	var b [1]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return b[0]
}

// format inserts the dashes: "abcdefghjkmn" → "abcd-efgh-jkmn".
func format(s string) string {
	parts := make([]string, 0, groups)
	for i := 0; i < len(s); i += groupLen {
		parts = append(parts, s[i:i+groupLen])
	}
	return strings.Join(parts, "-")
}
