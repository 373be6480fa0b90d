// Package otpcode is the factor of one-time codes sent by SMS or email
// (PRODUCT.md §2: amr "sms" for SMS, "otp" for email).
//
// A code is 6 digits from crypto/rand. The store keeps only an HMAC of it,
// keyed by a secret shared by every instance and bound to what the code
// is for — the browser session, the purpose ("login:sms", "enroll:sms"…)
// and the destination — so a code is worth nothing in another session,
// for another purpose or sent to another number. A code lives TTL, is
// consumed atomically (of concurrent submissions exactly one wins), dies
// after MaxWrong mismatches, and a new one cannot be asked for within
// Cooldown of the last while that one is unused.
//
// The caller delivers the code (package notify), counts wrong codes in
// the user's abuse budget and caps how many codes are sent.
package otpcode

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Defaults of PRODUCT.md / the issue: 5-minute codes, 30 s between sends.
const (
	DefaultTTL      = 5 * time.Minute
	DefaultCooldown = 30 * time.Second
	// MaxWrong mismatches kill a code; the user's lockout budget usually
	// ends the guessing earlier.
	MaxWrong = 5
	// Digits is the length of a code.
	Digits = 6
)

// ErrCooldown is returned by Issue when the last code of the binding was
// sent less than Cooldown ago and is still unused.
var ErrCooldown = errors.New("otpcode: a code was sent moments ago")

// Store keeps code hashes. session.OTPStore satisfies it.
type Store interface {
	PutOTP(ctx context.Context, sessionID, purpose, hash string, ttl, cooldown time.Duration) (bool, error)
	UseOTP(ctx context.Context, sessionID, purpose, hash string, maxWrong int) (bool, error)
	HasOTP(ctx context.Context, sessionID, purpose string) (bool, error)
}

// Binding is what a code is bound to.
type Binding struct {
	// Session is the browser session id.
	Session string
	// Purpose names the use: "login:sms", "login:email", "enroll:sms".
	Purpose string
	// To is the phone number or address the code is sent to.
	To string
}

func (b Binding) valid() bool { return b.Session != "" && b.Purpose != "" && b.To != "" }

// Codes issues and verifies codes in a Store.
type Codes struct {
	store    Store
	key      []byte
	ttl      time.Duration
	cooldown time.Duration
}

// New returns Codes on store. key (at least 32 bytes) must be the same on
// every instance; ttl and cooldown of 0 mean the defaults.
func New(store Store, key []byte, ttl, cooldown time.Duration) (*Codes, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("otpcode: key of %d bytes, want at least 32", len(key))
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if cooldown == 0 {
		cooldown = DefaultCooldown
	}
	return &Codes{store: store, key: key, ttl: ttl, cooldown: cooldown}, nil
}

// TTL is how long a code lives.
func (c *Codes) TTL() time.Duration { return c.ttl }

// Cooldown is how long after a send the next may be asked for.
func (c *Codes) Cooldown() time.Duration { return c.cooldown }

// Issue makes a new code for b, replacing an earlier one, and returns it
// for delivery. ErrCooldown when the last one is too recent.
func (c *Codes) Issue(ctx context.Context, b Binding) (string, error) {
	if !b.valid() {
		return "", errors.New("otpcode: issue: incomplete binding")
	}
	code := Generate()
	ok, err := c.store.PutOTP(ctx, b.Session, b.Purpose, c.hash(b, code), c.ttl, c.cooldown)
	if err != nil {
		return "", fmt.Errorf("otpcode: issue: %w", err)
	}
	if !ok {
		return "", ErrCooldown
	}
	return code, nil
}

// Verify consumes the code of b if typed is it, and reports whether it
// was. Spaces and dashes the user typed are ignored.
func (c *Codes) Verify(ctx context.Context, b Binding, typed string) (bool, error) {
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, typed)
	if !b.valid() || len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return false, nil
	}
	ok, err := c.store.UseOTP(ctx, b.Session, b.Purpose, c.hash(b, code), MaxWrong)
	if err != nil {
		return false, fmt.Errorf("otpcode: verify: %w", err)
	}
	return ok, nil
}

// Pending reports whether an unused, unexpired code exists for b.
func (c *Codes) Pending(ctx context.Context, b Binding) (bool, error) {
	ok, err := c.store.HasOTP(ctx, b.Session, b.Purpose)
	if err != nil {
		return false, fmt.Errorf("otpcode: pending: %w", err)
	}
	return ok, nil
}

// hash binds a code to everything it is for.
func (c *Codes) hash(b Binding, code string) string {
	m := hmac.New(sha256.New, c.key)
	for _, part := range []string{"stepup-otp", b.Session, b.Purpose, b.To, code} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Generate returns a uniformly random code of Digits digits.
func Generate() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("otpcode: crypto/rand failed: " + err.Error()) // never happens
	}
	return fmt.Sprintf("%06d", n.Int64())
}
