package password

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"strings"

	"github.com/stepup-dev/stepup/authn/password/internal/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Imported formats. Accounts brought over from another system (SCIM,
// `stepupd import`) keep the hash that system made until the user's first
// successful sign-in, which replaces it by an argon2id hash (NeedsRehash).
// Each format is parsed strictly (one spelling per hash) and its cost
// parameters are capped: an import is input from outside, and a hash with
// an absurd cost would make every sign-in attempt of that account burn
// seconds of CPU or gigabytes of memory. The caps keep one verification
// at roughly half a second or less on a 2-core machine (bcrypt cost 13 ≈
// 0.46 s, argon2 1 GiB·pass ≈ 0.5 s, 2 M rounds of PBKDF2-SHA256 ≈ 0.5 s)
// while admitting what the exporting systems use today (bcrypt 10–12,
// Django's 1.2 M PBKDF2 rounds, passlib's scrypt ln=16).
const (
	maxBcryptCost = 13
	// PBKDF2 rounds: SHA-512 rounds cost about twice SHA-256 ones.
	maxPBKDF2SHA256Rounds = 2_000_000
	maxPBKDF2SHA512Rounds = 1_000_000
	// scrypt memory is 128·r·N bytes, work 128·r·N·p.
	maxScryptMemory = 256 << 20
	maxScryptWork   = 1 << 30
	maxScryptP      = 16
	// Salts and derived keys of the imported formats.
	maxForeignSaltLen = 1024
	minForeignKeyLen  = 16
	maxForeignKeyLen  = 64
)

// verifier is a parsed hash of one of the accepted formats.
type verifier interface {
	// matches hashes password; an argon2 hash works in mem when it fits
	// (nil: fresh memory), the other formats ignore it.
	matches(mem *argon2.Memory, password string) bool
	// format names the format ("argon2id", "bcrypt", …).
	format() string
}

// Format names of CheckHash and Format.
const (
	FormatArgon2id     = "argon2id"
	FormatArgon2i      = "argon2i"
	FormatBcrypt       = "bcrypt"
	FormatPBKDF2SHA256 = "pbkdf2-sha256"
	FormatPBKDF2SHA512 = "pbkdf2-sha512"
	FormatScrypt       = "scrypt"
	FormatDjangoPBKDF2 = "django-pbkdf2-sha256"
)

// CheckHash reports whether s is a hash Verify accepts: argon2id as made
// by Hash, or an imported format (PRODUCT.md §9) within the cost caps:
//
//	$2a$ / $2b$ / $2y$                bcrypt, cost 4–13
//	$argon2id$v=19$… / $argon2i$v=19$… PHC, m·t ≤ 1 GiB·pass (and the bounds of ParsePHC)
//	$pbkdf2-sha256$rounds$salt$hash   passlib, ≤ 2 000 000 rounds (adapted base64)
//	$pbkdf2-sha512$rounds$salt$hash   passlib, ≤ 1 000 000 rounds
//	$scrypt$ln=…,r=…,p=…$salt$hash    passlib, 128·r·2^ln ≤ 256 MiB, ×p ≤ 1 GiB, p ≤ 16
//	pbkdf2_sha256$rounds$salt$hash    Django, ≤ 2 000 000 rounds
//
// It returns the format's name. The error wraps ErrMalformedHash and never
// repeats the input.
func CheckHash(s string) (string, error) {
	v, err := parseAny(s)
	if err != nil {
		return "", err
	}
	return v.format(), nil
}

// NeedsRehash reports whether hash should be replaced by HashWith(p, …)
// after the password it was checked against proved right: it is in an
// imported format, or argon2id with other parameters than p (the
// configured ones changed).
func NeedsRehash(hash string, p Params) bool {
	h, err := parse(hash)
	if err != nil {
		return true
	}
	return h.p != p
}

// parseAny parses a hash of any accepted format.
func parseAny(s string) (verifier, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parse(s)
	case strings.HasPrefix(s, "$argon2i$"):
		return parsePHC(s, FormatArgon2i)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$pbkdf2-sha256$"), strings.HasPrefix(s, "$pbkdf2-sha512$"):
		return parsePasslibPBKDF2(s)
	case strings.HasPrefix(s, "$scrypt$"):
		return parsePasslibScrypt(s)
	case strings.HasPrefix(s, "pbkdf2_sha256$"):
		return parseDjango(s)
	}
	return nil, malformed("unsupported hash format")
}

// bcryptHash is a bcrypt hash; x/crypto/bcrypt compares in constant time.
type bcryptHash struct{ s []byte }

func (h bcryptHash) format() string { return FormatBcrypt }

func (h bcryptHash) matches(_ *argon2.Memory, password string) bool {
	return bcrypt.CompareHashAndPassword(h.s, []byte(password)) == nil
}

// bcryptAlphabet is bcrypt's own base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// parseBcrypt accepts $2a$, $2b$ and $2y$ (the same algorithm: the
// letters record fixes of other implementations, not of the hash), two
// cost digits, 22 characters of salt and 31 of hash.
func parseBcrypt(s string) (verifier, error) {
	if len(s) != 60 || s[6] != '$' {
		return nil, malformed("bcrypt hash is not 60 characters in $2x$NN$ form")
	}
	cost, err := parseUint(strings.TrimPrefix(s[4:6], "0"), 8)
	if err != nil || s[4] < '0' || s[4] > '9' {
		return nil, malformed("bcrypt cost is not two digits")
	}
	if cost < uint64(bcrypt.MinCost) || cost > maxBcryptCost {
		return nil, malformed("bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, maxBcryptCost)
	}
	// Unused low bits in the last salt or hash character are left alone:
	// bcrypt ignores them, and refusing them could refuse a real export.
	if strings.Trim(s[7:], bcryptAlphabet) != "" {
		return nil, malformed("bcrypt salt or hash outside its alphabet")
	}
	return bcryptHash{s: []byte(s)}, nil
}

// ab64 is passlib's "adapted base64": the standard alphabet with '.' for
// '+', without padding.
var ab64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./").
	WithPadding(base64.NoPadding).Strict()

func decodeAB64(s, what string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, malformed("line break in %s", what)
	}
	b, err := ab64.DecodeString(s)
	if err != nil {
		return nil, malformed("%s is not passlib's adapted base64", what)
	}
	return b, nil
}

// pbkdf2Hash is a PBKDF2-HMAC hash (passlib or Django).
type pbkdf2Hash struct {
	name   string
	h      func() hash.Hash
	rounds int
	salt   []byte
	key    []byte
}

func (h pbkdf2Hash) format() string { return h.name }

func (h pbkdf2Hash) matches(_ *argon2.Memory, password string) bool {
	key, err := pbkdf2.Key(h.h, password, h.salt, h.rounds, len(h.key))
	return err == nil && subtle.ConstantTimeCompare(key, h.key) == 1
}

// parsePasslibPBKDF2 parses passlib's $pbkdf2-sha256$rounds$salt$hash and
// $pbkdf2-sha512$…, salt and hash in adapted base64.
func parsePasslibPBKDF2(s string) (verifier, error) {
	f := strings.Split(s, "$")
	if len(f) != 5 || f[0] != "" {
		return nil, malformed("want $pbkdf2-<digest>$rounds$salt$hash")
	}
	h := pbkdf2Hash{name: FormatPBKDF2SHA256, h: sha256.New}
	limit := maxPBKDF2SHA256Rounds
	if f[1] == "pbkdf2-sha512" {
		h = pbkdf2Hash{name: FormatPBKDF2SHA512, h: sha512.New}
		limit = maxPBKDF2SHA512Rounds
	}
	rounds, err := parseUint(f[2], 32)
	if err != nil || rounds < 1 || rounds > uint64(limit) {
		return nil, malformed("%s rounds outside 1..%d", h.name, limit)
	}
	h.rounds = int(rounds)
	if h.salt, err = decodeAB64(f[3], "salt"); err != nil {
		return nil, err
	}
	if h.key, err = decodeAB64(f[4], "hash"); err != nil {
		return nil, err
	}
	return h, checkForeignLens(len(h.salt), len(h.key))
}

// parseDjango parses Django's pbkdf2_sha256$rounds$salt$hash: the salt is
// used as its text, the hash is standard base64 with padding.
func parseDjango(s string) (verifier, error) {
	f := strings.Split(s, "$")
	if len(f) != 4 {
		return nil, malformed("want pbkdf2_sha256$rounds$salt$hash")
	}
	rounds, err := parseUint(f[1], 32)
	if err != nil || rounds < 1 || rounds > maxPBKDF2SHA256Rounds {
		return nil, malformed("pbkdf2_sha256 rounds outside 1..%d", maxPBKDF2SHA256Rounds)
	}
	if f[2] == "" || strings.ContainsAny(f[2], "\r\n") {
		return nil, malformed("empty salt or line break in salt")
	}
	if strings.ContainsAny(f[3], "\r\n") {
		return nil, malformed("line break in hash")
	}
	key, err := base64.StdEncoding.Strict().DecodeString(f[3])
	if err != nil {
		return nil, malformed("hash is not padded base64")
	}
	h := pbkdf2Hash{name: FormatDjangoPBKDF2, h: sha256.New, rounds: int(rounds), salt: []byte(f[2]), key: key}
	return h, checkForeignLens(len(h.salt), len(h.key))
}

func checkForeignLens(salt, key int) error {
	if salt > maxForeignSaltLen {
		return malformed("salt longer than %d bytes", maxForeignSaltLen)
	}
	if key < minForeignKeyLen || key > maxForeignKeyLen {
		return malformed("hash length %d outside %d..%d bytes", key, minForeignKeyLen, maxForeignKeyLen)
	}
	return nil
}

// scryptHash is passlib's scrypt hash.
type scryptHash struct {
	n, r, p int
	salt    []byte
	key     []byte
}

func (h scryptHash) format() string { return FormatScrypt }

func (h scryptHash) matches(_ *argon2.Memory, password string) bool {
	// x/crypto/scrypt's work area (V: 128·r·N bytes, and B and XY) is
	// on the Go heap: see SetHeapWork.
	defer onHeap(int64(128*h.r*h.n + 128*h.r*h.p + 256*h.r))()
	key, err := scrypt.Key([]byte(password), h.salt, h.n, h.r, h.p, len(h.key))
	return err == nil && subtle.ConstantTimeCompare(key, h.key) == 1
}

// parsePasslibScrypt parses $scrypt$ln=<log2 N>,r=<r>,p=<p>$salt$hash,
// salt and hash in adapted base64.
func parsePasslibScrypt(s string) (verifier, error) {
	f := strings.Split(s, "$")
	if len(f) != 5 || f[0] != "" {
		return nil, malformed("want $scrypt$ln=…,r=…,p=…$salt$hash")
	}
	params := strings.Split(f[2], ",")
	if len(params) != 3 {
		return nil, malformed("want scrypt parameters ln,r,p")
	}
	var vals [3]uint64
	for i, name := range []string{"ln", "r", "p"} {
		raw, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return nil, malformed("want scrypt parameters ln,r,p in that order")
		}
		n, err := parseUint(raw, 32)
		if err != nil || n < 1 {
			return nil, malformed("scrypt parameter %s is not a positive number", name)
		}
		vals[i] = n
	}
	ln, r, p := vals[0], vals[1], vals[2]
	if ln > 30 || p > maxScryptP || 128*r<<ln > maxScryptMemory || (128*r<<ln)*p > maxScryptWork {
		return nil, malformed("scrypt cost above the caps (memory 256 MiB, work 1 GiB, p ≤ %d)", maxScryptP)
	}
	h := scryptHash{n: 1 << ln, r: int(r), p: int(p)}
	var err error
	if h.salt, err = decodeAB64(f[3], "salt"); err != nil {
		return nil, err
	}
	if h.key, err = decodeAB64(f[4], "hash"); err != nil {
		return nil, err
	}
	return h, checkForeignLens(len(h.salt), len(h.key))
}

// argon2Key derives the key of h's variant.
func argon2Key(mem *argon2.Memory, variant, password string, salt []byte, p Params) []byte {
	if variant == FormatArgon2i {
		return argon2.Key(mem, []byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	}
	return argon2.IDKey(mem, []byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
}
