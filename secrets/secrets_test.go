package secrets

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k1, k2 := NewKey(), NewKey()
	old, err := NewKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("JBSWY3DPEHPK3PXP")
	sealed := old.Seal(pt, []byte("sub-1"))
	if strings.Contains(sealed, string(pt)) {
		t.Fatalf("sealed value %q holds the plaintext", sealed)
	}
	if got, err := old.Open(sealed, []byte("sub-1")); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := old.Open(sealed, []byte("sub-2")); err == nil {
		t.Fatal("a value bound to sub-1 opened for sub-2")
	}
	// Rotation: a new first key; the old value still opens, is not
	// current, and a new seal is.
	rotated, err := NewKeyring(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed, []byte("sub-1")); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open under the old key after rotation = %q, %v", got, err)
	}
	if rotated.Current(sealed) || !old.Current(sealed) {
		t.Fatal("Current does not tell which key sealed")
	}
	if !rotated.Current(rotated.Seal(pt, nil)) {
		t.Fatal("a fresh seal is not current")
	}
	// The old key removed: its values no longer open, and say why.
	onlyNew, _ := NewKeyring(k2)
	if _, err := onlyNew.Open(sealed, []byte("sub-1")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open without the key = %v, want ErrUnknownKey", err)
	}
	// Tampering is detected.
	b := []byte(sealed)
	b[len(b)-2] ^= 1
	if _, err := old.Open(string(b), []byte("sub-1")); err == nil {
		t.Fatal("an altered value opened")
	}
	for _, bad := range []string{"", "JBSWY3DPEHPK3PXP", "v1.", "v1.abc", "v2." + KeyID(k1) + ".AAAA", "v1." + KeyID(k1) + ".!!"} {
		if _, err := old.Open(bad, nil); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestNewKeyring(t *testing.T) {
	k := NewKey()
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"short":     {make([]byte, 16)},
		"duplicate": {k, k},
	} {
		if _, err := NewKeyring(keys...); err == nil {
			t.Errorf("%s: NewKeyring succeeded", name)
		}
	}
}

func TestParseKey(t *testing.T) {
	if b, err := ParseKey("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); err != nil || len(b) != KeySize {
		t.Fatalf("ParseKey(32 zero bytes) = %d bytes, %v", len(b), err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}
