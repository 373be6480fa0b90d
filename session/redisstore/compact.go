package redisstore

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
)

// Issue 18 (Redis bytes per login): a session's listpack sat just above
// jemalloc's 256-byte class, so a few bytes cut from it save 64. Two
// encodings of the session hash changed; both earlier forms are still
// read (a rolling upgrade: sessions written before keep working):
//
//   - "created" and "seen" in unix seconds (was nanoseconds): 10 digits,
//     which a listpack stores as a 4-byte integer instead of 8. Every
//     reader and script accepts both (unixStamp, parseStamp, and the
//     scripts' stamp comparison, which orders seconds against
//     nanoseconds by their whole seconds).
//   - a verification ("v:<factor>") as its time in unix nanoseconds,
//     followed by its flags ("u" user verification, "h" hardware), with
//     the factor in the field's name: a listpack integer of 8 bytes where
//     the JSON took 48 (verificationValue). JSON is still read, and still
//     written for a time a nanosecond count cannot hold.
//
// An earlier version cannot read these (a verification that is not JSON
// is an error there): during a rolling upgrade a session a new instance
// wrote is refused by an old one, a store error, never a wrong claim.

// unixStamp is a session time as stored: unix seconds.
func unixStamp(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// stampDigits is the most digits a seconds stamp has (year 33658): every
// nanosecond stamp since 2001 has 19.
const stampDigits = 12

// parseStamp reads a session time: unix seconds, or the nanoseconds
// earlier versions wrote; "" (never set) is the zero time.
func parseStamp(s string) (time.Time, error) {
	if len(s) > stampDigits {
		return parseUnixNano(s)
	}
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0), nil
}

// verificationShape is authn.Verification as verificationValue encodes
// it (the factor in the field's name, the time, the flags). The
// conversion below stops compiling when authn.Verification gains, loses
// or reorders a field, so that a field the compact form would drop
// cannot be added without revisiting it (and
// TestVerificationEncodingKeepsEveryField).
type verificationShape struct {
	Factor   authn.Factor
	At       time.Time
	UV       bool
	Hardware bool
}

var _ = verificationShape(authn.Verification{})

// Flags of a compact verification.
const (
	verifyUV       = 'u'
	verifyHardware = 'h'
)

// verificationValue is a verification as a session field holds it (its
// factor is the field's name).
func verificationValue(v authn.Verification) ([]byte, error) {
	if y := v.At.Year(); y < 1970 || y > 2261 {
		return json.Marshal(v) // beyond int64 nanoseconds
	}
	b := strconv.AppendInt(nil, v.At.UnixNano(), 10)
	if v.UV {
		b = append(b, verifyUV)
	}
	if v.Hardware {
		b = append(b, verifyHardware)
	}
	return b, nil
}

var errVerification = errors.New("unreadable verification")

// parseVerification reads a verification field: the compact form, or the
// JSON earlier versions wrote. Anything else is an error (the session is
// refused, failing closed).
func parseVerification(field, v string) (authn.Verification, error) {
	if strings.HasPrefix(v, "{") {
		var ver authn.Verification
		err := json.Unmarshal([]byte(v), &ver)
		return ver, err
	}
	digits := strings.TrimRight(v, string([]rune{verifyUV, verifyHardware}))
	flags := v[len(digits):]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || digits == "" || digits[0] == '+' || digits[0] == '-' {
		return authn.Verification{}, errVerification
	}
	ver := authn.Verification{Factor: authn.Factor(strings.TrimPrefix(field, prefixVerify)), At: time.Unix(0, n).UTC()}
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case verifyUV:
			if ver.UV {
				return authn.Verification{}, errVerification
			}
			ver.UV = true
		case verifyHardware:
			if ver.Hardware {
				return authn.Verification{}, errVerification
			}
			ver.Hardware = true
		}
	}
	return ver, nil
}

// A grant's session id ("sid") is stored as packedSID and the 32 bytes a
// session id of session.NewID stands for (43 base64url characters): 11 B
// less, which with the provider's compact payload puts a sign-in's grant
// in jemalloc's 256-byte class instead of 320 (issue 18). Any other id is
// stored as it is; no id starts with the NUL byte. Earlier versions read
// a packed id as a session that does not exist: during a rolling upgrade
// an old instance refuses a refresh of a grant a new one stored (a
// store's "ended", never a wrong claim).
const packedSID = "\x00"

// packSessionID is a session id as a grant's field holds it.
func packSessionID(id string) string {
	if len(id) == 43 {
		if raw, err := b64.DecodeString(id); err == nil && len(raw) == 32 && b64.EncodeToString(raw) == id {
			return packedSID + string(raw)
		}
	}
	return id
}

// unpackSessionID reads a grant's session id field.
func unpackSessionID(v string) string {
	if len(v) == 1+32 && v[:1] == packedSID {
		return b64.EncodeToString([]byte(v[1:]))
	}
	return v
}
