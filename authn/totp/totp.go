// Package totp implements time-based one-time passwords (RFC 6238) as
// authenticator apps expect them: HMAC-SHA1, 6 digits, 30-second steps.
//
// Verify accepts the code of the current step and of one step either side
// (clock drift) and returns the step that matched. The caller must accept
// each step at most once per user — an atomic SET NX on the step in the
// store — or a code seen over a shoulder can be replayed within its
// 90-second window. The caller stores the secret (base32) with the account.
package totp

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// The parameters every authenticator app supports; they are written into
// the otpauth URI as well.
const (
	Period = 30 // seconds per step
	Digits = 6
	// skew is how many steps either side of now are accepted.
	skew = 1
)

// secretSize is RFC 4226's recommended 160-bit key, the HMAC-SHA1 block.
const secretSize = 20

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var opts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// NewSecret returns a new random secret: 20 bytes, base32 without padding
// (32 characters).
func NewSecret() (string, error) {
	b := make([]byte, secretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("totp: reading random secret: %w", err)
	}
	return b32.EncodeToString(b), nil
}

// Step returns the RFC 6238 time step of t.
func Step(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return (u - Period + 1) / Period
	}
	return u / Period
}

// Code returns the code of the step containing t.
func Code(secret string, t time.Time) (string, error) {
	s, err := normalize(secret)
	if err != nil {
		return "", err
	}
	step := Step(t)
	if step < 0 {
		return "", errors.New("totp: time before the Unix epoch")
	}
	return hotp.GenerateCodeCustom(s, uint64(step), opts)
}

// Verify reports whether code is the code of the step containing now or of
// the step before or after it, and returns the step that matched so that
// the caller can accept each step only once. Anything but exactly six ASCII
// digits, and an invalid secret, are rejected. The comparison is constant
// time and the same work is done whichever step matches.
func Verify(secret, code string, now time.Time) (step int64, ok bool) {
	if !sixDigits(code) {
		return 0, false
	}
	s, err := normalize(secret)
	if err != nil {
		return 0, false
	}
	cur := Step(now)
	matched := false
	// The current step first, so that a code valid for two steps (one in a
	// million) is charged to the step the user most likely saw.
	for _, d := range [...]int64{0, -1, 1} {
		st := cur + d*skew
		if st < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(s, uint64(st), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !matched {
			step, matched = st, true
		}
	}
	return step, matched
}

func sixDigits(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// normalize accepts what people paste and apps print: any case, spaces or
// hyphens between groups, with or without padding. It returns the canonical
// unpadded upper-case form, or an error when that is not base32 or encodes
// fewer than 10 bytes. RFC 4226 asks for 16; 10 (80 bits) is still what
// many deployed authenticators were enrolled with, so it is accepted.
func normalize(secret string) (string, error) {
	s := strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(secret))
	b, err := b32.DecodeString(s)
	if err != nil {
		return "", errors.New("totp: secret is not base32")
	}
	if len(b) < 10 {
		return "", fmt.Errorf("totp: secret of %d bytes is too short (minimum 10)", len(b))
	}
	return s, nil
}

// URI returns the otpauth:// URI that authenticator apps read from a QR
// code (Google Authenticator's key URI format), with the label
// "issuer:account" and the issuer, algorithm, digits and period parameters.
func URI(issuer, account, secret string) string {
	label := account
	if issuer != "" {
		label = issuer + ":" + account
	}
	q := url.Values{}
	q.Set("secret", secret)
	if issuer != "" {
		q.Set("issuer", issuer)
	}
	q.Set("algorithm", "SHA1")
	q.Set("digits", strconv.Itoa(Digits))
	q.Set("period", strconv.Itoa(Period))
	// url.Values writes spaces as "+", which some apps show literally;
	// RFC 3986's %20 is what the key URI format asks for. A literal "+" is
	// already %2B, so every "+" here is a space.
	return "otpauth://totp/" + url.PathEscape(label) + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

// Bounds on QRPNG's size: below the minimum a URI's QR code no longer has a
// pixel per module; above the maximum is a waste of memory.
const (
	minQRSize = 64
	maxQRSize = 2048
)

// quietZone is the white border, in modules, that QR readers need around
// the code (ISO/IEC 18004 asks for 4).
const quietZone = 4

// QRPNG renders uri as a size×size PNG QR code (error correction level M)
// with a white quiet zone around it. size must be within 64..2048.
func QRPNG(uri string, size int) ([]byte, error) {
	if size < minQRSize || size > maxQRSize {
		return nil, fmt.Errorf("totp: QR size %d outside %d..%d", size, minQRSize, maxQRSize)
	}
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("totp: encoding QR code: %w", err)
	}
	modules := code.Bounds().Dx()
	scale := size / (modules + 2*quietZone)
	if scale < 1 {
		return nil, fmt.Errorf("totp: QR code of %d modules does not fit in %d pixels", modules, size)
	}
	offset := (size - modules*scale) / 2

	// Two colours: the PNG encoder writes a 1-bit image.
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	for y := range modules {
		for x := range modules {
			r, _, _, _ := code.At(x, y).RGBA()
			if r != 0 {
				continue // white module
			}
			for dy := range scale {
				row := img.Pix[(offset+y*scale+dy)*img.Stride:]
				for dx := range scale {
					row[offset+x*scale+dx] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp: encoding PNG: %w", err)
	}
	return buf.Bytes(), nil
}
