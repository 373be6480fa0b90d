// Package password hashes and verifies secrets (user passwords, client
// secrets) with argon2id, stored as PHC strings:
//
//	$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>
//
// where salt and hash are standard base64 without padding. The parameters
// travel with each hash, so raising DefaultParams later leaves existing
// hashes verifiable.
//
// Verify also accepts hashes imported from other systems (bcrypt, argon2i,
// passlib's PBKDF2 and scrypt, Django's PBKDF2; see CheckHash), each with
// caps on its cost; NeedsRehash tells when a verified password's hash
// should be replaced by a fresh argon2id one.
//
// One hash at the default parameters takes 64 MiB of memory and tens of
// milliseconds of CPU. Servers must not run them unbounded: verify through a
// Limiter, which turns a burst into fast ErrBusy answers instead of
// exhausting memory. For an unknown username call DummyVerify (or
// Limiter.DummyVerify) so that a wrong username costs the same time as a
// wrong password.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/stepup-dev/stepup/authn/password/internal/argon2"
)

// Params are the argon2id cost parameters and sizes of a hash.
type Params struct {
	Time      uint32 // iterations (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // parallelism (p)
	SaltLen   uint32 // salt length in bytes
	KeyLen    uint32 // hash length in bytes
}

// DefaultParams are the parameters Hash uses. 64 MiB with one pass is above
// OWASP's argon2id minimum for t=1 (46 MiB) and keeps one verification in
// the tens of milliseconds.
var DefaultParams = Params{Time: 1, MemoryKiB: 64 * 1024, Threads: 2, SaltLen: 16, KeyLen: 32}

// Bounds on parameters accepted from a PHC string or HashWith. They exist so
// that a hash in a configuration file or a store cannot make every Verify
// allocate gigabytes or spin for seconds.
const (
	maxTime      = 10
	maxMemoryKiB = 1 << 20 // 1 GiB
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
	// maxWork bounds memory × passes (KiB): about half a second of one
	// core, so that no hash (an imported one included) makes a sign-in
	// attempt cost seconds.
	maxWork = 1 << 20
)

// ErrMalformedHash is wrapped by the errors of ParsePHC, CheckHash and
// Verify for a string that is not an acceptable hash.
var ErrMalformedHash = errors.New("malformed or unsupported password hash")

// Hash hashes password with DefaultParams and a fresh random salt and
// returns the PHC string.
func Hash(password string) (string, error) {
	return HashWith(DefaultParams, password)
}

// HashWith hashes password with p and a fresh random salt and returns the
// PHC string. Parameters outside the bounds Verify accepts are an error, so
// every hash made here can be verified.
func HashWith(p Params, password string) (string, error) {
	return hashWith(nil, p, password)
}

// hashWith is HashWith working in mem (nil: fresh memory).
func hashWith(mem *argon2.Memory, p Params, password string) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	return hashWithSalt(mem, p, password, salt), nil
}

// hashWithSalt hashes in mem (nil: fresh memory).
func hashWithSalt(mem *argon2.Memory, p Params, password string, salt []byte) string {
	key := argon2.IDKey(mem, []byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return encode(p, salt, key)
}

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches hash, an argon2id PHC string or
// an imported format (CheckHash). The hash is compared in constant time. A
// malformed, unsupported or out-of-bounds hash is an error (wrapping
// ErrMalformedHash), never a silent false.
func Verify(hash, password string) (bool, error) {
	h, err := parseAny(hash)
	if err != nil {
		return false, err
	}
	return h.matches(nil, password), nil
}

// ParsePHC checks that s is an argon2id (v=19) PHC string with parameters
// within bounds: 1 ≤ t ≤ 10, 8·p KiB ≤ m ≤ 1 GiB, m·t ≤ 1 GiB, p ≥ 1, a
// salt of 8–64 bytes and a hash of 16–64 bytes. Configuration validation uses it to
// reject a bad password_hash or secret_hash at start-up.
func ParsePHC(s string) error {
	_, err := parse(s)
	return err
}

// dummyHash is a hash of a random, forgotten password made with
// DefaultParams; DummyVerify spends the same work on it as Verify spends on
// a real hash.
const dummyHash = "$argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo"

var dummy = mustParse(dummyHash)

// DummyVerify performs the argon2id work of a Verify against a hash made
// with DefaultParams and discards the result. Call it when the account does
// not exist so that a wrong username takes as long as a wrong password.
func DummyVerify(password string) {
	dummy.matches(nil, password)
}

// b64 is the PHC encoding: standard alphabet, no padding, and (Strict) no
// stray bits, so every hash has exactly one spelling.
var b64 = base64.RawStdEncoding.Strict()

type phcHash struct {
	variant string // FormatArgon2id or FormatArgon2i
	p       Params
	salt    []byte
	key     []byte
}

func (h phcHash) format() string { return h.variant }

func (h phcHash) matches(mem *argon2.Memory, password string) bool {
	key := argon2Key(mem, h.variant, password, h.salt, h.p)
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

func mustParse(s string) phcHash {
	h, err := parse(s)
	if err != nil {
		panic(err)
	}
	return h
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("password: %w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
}

// parse decodes an argon2id PHC string. The error never repeats the
// input: it is a secret's hash.
func parse(s string) (phcHash, error) {
	return parsePHC(s, FormatArgon2id)
}

// parsePHC decodes a PHC string of the argon2 variant given.
func parsePHC(s, variant string) (phcHash, error) {
	var h phcHash
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return h, malformed("want 5 '$'-separated fields, got %d", len(f)-1)
	}
	if f[1] != variant {
		return h, malformed("algorithm is not %s", variant)
	}
	v, ok := strings.CutPrefix(f[2], "v=")
	if !ok {
		return h, malformed("missing version")
	}
	if n, err := parseUint(v, 32); err != nil || n != argon2.Version {
		return h, malformed("unsupported version (want v=%d)", argon2.Version)
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return h, malformed("want parameters m,t,p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		raw, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return h, malformed("want parameters m,t,p in that order")
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := parseUint(raw, bits)
		if err != nil {
			return h, malformed("parameter %s: %v", name, err)
		}
		vals[i] = n
	}
	// encoding/base64 skips CR and LF; a hash must have one spelling.
	if strings.ContainsAny(f[4]+f[5], "\r\n") {
		return h, malformed("line break in salt or hash")
	}
	salt, err := b64.DecodeString(f[4])
	if err != nil {
		return h, malformed("salt is not unpadded base64")
	}
	key, err := b64.DecodeString(f[5])
	if err != nil {
		return h, malformed("hash is not unpadded base64")
	}
	h = phcHash{
		variant: variant,
		p: Params{
			MemoryKiB: uint32(vals[0]),
			Time:      uint32(vals[1]),
			Threads:   uint8(vals[2]),
			SaltLen:   uint32(len(salt)),
			KeyLen:    uint32(len(key)),
		},
		salt: salt,
		key:  key,
	}
	if err := h.p.validate(); err != nil {
		return phcHash{}, fmt.Errorf("password: %w: %w", ErrMalformedHash, err)
	}
	return h, nil
}

// parseUint accepts only canonical decimal: digits, no sign, no leading
// zero.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a canonical decimal number")
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, errors.New("number out of range")
	}
	return n, nil
}

func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time t=%d outside 1..%d", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("parallelism p must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("memory m=%d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case uint64(p.MemoryKiB)*uint64(p.Time) > maxWork:
		return fmt.Errorf("memory × passes m·t = %d KiB above %d", uint64(p.MemoryKiB)*uint64(p.Time), maxWork)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d outside %d..%d bytes", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("hash length %d outside %d..%d bytes", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}
