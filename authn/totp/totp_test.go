package totp

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA1 seed of RFC 6238 Appendix B, ASCII "12345678901234567890".
var rfcSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

// RFC 6238 Appendix B, SHA1 column, 8-digit values truncated to their last
// 6 digits (the same HOTP value modulo 10^6).
var rfcVectors = []struct {
	unix int64
	code string
}{
	{59, "287082"},
	{1111111109, "081804"},
	{1111111111, "050471"},
	{1234567890, "005924"},
	{2000000000, "279037"},
	{20000000000, "353130"},
}

func TestCodeRFC6238(t *testing.T) {
	for _, v := range rfcVectors {
		got, err := Code(rfcSecret, time.Unix(v.unix, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got != v.code {
			t.Errorf("RFC 6238 App. B T=%d: Code = %s, want %s", v.unix, got, v.code)
		}
	}
}

func TestVerifyRFC6238(t *testing.T) {
	for _, v := range rfcVectors {
		now := time.Unix(v.unix, 0)
		step, ok := Verify(rfcSecret, v.code, now)
		if !ok || step != v.unix/30 {
			t.Errorf("RFC 6238 App. B T=%d: Verify = %d, %v; want %d, true", v.unix, step, ok, v.unix/30)
		}
	}
}

func TestVerifySkew(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_015, 0) // mid-step
	cur := Step(now)
	for _, tt := range []struct {
		name   string
		offset int64 // steps
		ok     bool
	}{
		{"current step", 0, true},
		{"previous step", -1, true},
		{"next step", 1, true},
		{"two steps back", -2, false},
		{"two steps ahead", 2, false},
		{"ten steps back", -10, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, err := Code(secret, now.Add(time.Duration(tt.offset*Period)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			// A code of another step can equal the current one by chance
			// (1 in 10^6); skip rather than flake.
			if !tt.ok {
				for d := int64(-1); d <= 1; d++ {
					if c, _ := Code(secret, now.Add(time.Duration(d*Period)*time.Second)); c == code {
						t.Skip("random secret produced a colliding code")
					}
				}
			}
			step, ok := Verify(secret, code, now)
			if ok != tt.ok {
				t.Fatalf("Verify ok = %v, want %v", ok, tt.ok)
			}
			if ok && step != cur+tt.offset {
				t.Errorf("Verify step = %d, want %d", step, cur+tt.offset)
			}
			if !ok && step != 0 {
				t.Errorf("Verify step = %d on failure, want 0", step)
			}
		})
	}
}

func TestVerifyStepBoundaries(t *testing.T) {
	// T=59 is the last second of step 1; its code is still valid at T=89
	// (step 2) and no longer at T=90 (step 3).
	if step, ok := Verify(rfcSecret, "287082", time.Unix(89, 0)); !ok || step != 1 {
		t.Errorf("at T=89: Verify = %d, %v; want 1, true", step, ok)
	}
	if _, ok := Verify(rfcSecret, "287082", time.Unix(90, 0)); ok {
		t.Error("at T=90: code of step 1 accepted two steps later")
	}
}

func TestVerifyRejectsGarbage(t *testing.T) {
	now := time.Unix(59, 0)
	for _, code := range []string{
		"", "28708", "2870820", " 287082", "287082 ", "28708a", "２８７０８２",
		"-28708", "+28708", "287 082", "\x00\x00\x00\x00\x00\x00",
	} {
		if _, ok := Verify(rfcSecret, code, now); ok {
			t.Errorf("Verify(code %q) accepted", code)
		}
	}
	for _, secret := range []string{"", "not base32!", "JBSWY3DP", "1", "JBSWY3DPEHPK3PX"} {
		if _, ok := Verify(secret, "287082", now); ok {
			t.Errorf("Verify(secret %q) accepted", secret)
		}
		if _, err := Code(secret, now); err == nil {
			t.Errorf("Code(secret %q) succeeded, want an error", secret)
		}
	}
}

func TestSecretFormsAccepted(t *testing.T) {
	now := time.Unix(59, 0)
	lower := strings.ToLower(rfcSecret)
	grouped := strings.Join(splitEvery(rfcSecret, 4), " ")
	for _, s := range []string{rfcSecret, lower, grouped, rfcSecret + "===="[:len(rfcSecret)%8]} {
		if _, ok := Verify(s, "287082", now); !ok {
			t.Errorf("Verify(secret %q) rejected", s)
		}
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if len(a) != 32 || strings.Contains(a, "=") {
		t.Errorf("NewSecret = %q, want 32 base32 characters without padding", a)
	}
	if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(a); err != nil || len(raw) != 20 {
		t.Errorf("NewSecret decodes to %d bytes, %v; want 20", len(raw), err)
	}
	if a == b {
		t.Error("two secrets are equal")
	}
	if _, err := Code(a, time.Now()); err != nil {
		t.Errorf("Code(NewSecret()) = %v", err)
	}
}

func TestURI(t *testing.T) {
	got := URI("Acme Bank", "alice@example.com", "JBSWY3DPEHPK3PXP")
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Acme Bank:alice@example.com" {
		t.Errorf("URI = %q: scheme, type or label wrong", got)
	}
	if strings.Contains(got, "+") {
		t.Errorf("URI = %q: spaces must be %%20", got)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"secret": "JBSWY3DPEHPK3PXP", "issuer": "Acme Bank",
		"algorithm": "SHA1", "digits": "6", "period": "30",
	} {
		if q.Get(k) != want {
			t.Errorf("URI %q: %s = %q, want %q", got, k, q.Get(k), want)
		}
	}

	noIssuer, _ := url.Parse(URI("", "a/b", "JBSWY3DPEHPK3PXP"))
	if noIssuer.EscapedPath() != "/a%2Fb" || noIssuer.Query().Has("issuer") {
		t.Errorf("URI without issuer = %q", noIssuer)
	}
}

func TestQRPNG(t *testing.T) {
	uri := URI("stepup", "alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
	for _, size := range []int{64, 200, 256} {
		b, err := QRPNG(uri, size)
		if err != nil {
			t.Fatalf("QRPNG(%d) = %v", size, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("QRPNG(%d) is not a PNG: %v", size, err)
		}
		if bnd := img.Bounds(); bnd.Dx() != size || bnd.Dy() != size {
			t.Errorf("QRPNG(%d) is %dx%d", size, bnd.Dx(), bnd.Dy())
		}
		// Quiet zone: the corners are white; the finder pattern is not.
		if r, _, _, _ := img.At(0, 0).RGBA(); r == 0 {
			t.Errorf("QRPNG(%d): corner pixel is black, want a quiet zone", size)
		}
		var black int
		for y := range size {
			for x := range size {
				if r, _, _, _ := img.At(x, y).RGBA(); r == 0 {
					black++
				}
			}
		}
		if black == 0 {
			t.Errorf("QRPNG(%d) is blank", size)
		}
	}
	for _, size := range []int{0, -1, 63, 4096} {
		if _, err := QRPNG(uri, size); err == nil {
			t.Errorf("QRPNG(size %d) succeeded, want an error", size)
		}
	}
	if _, err := QRPNG(strings.Repeat("x", 8000), 256); err == nil {
		t.Error("QRPNG of a URI too long for a QR code succeeded")
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1111111111, 0)
	for b.Loop() {
		Verify(rfcSecret, "050471", now)
	}
}
