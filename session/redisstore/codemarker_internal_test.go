package redisstore

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// Values as the provider makes them: a code's hash and binding are
// base64url SHA-256s, a grant reference "<18 bytes>/<12 bytes>".
func providerValues(seed string) (hash, binding, ref string) {
	h := sha256.Sum256([]byte("code " + seed))
	bd := sha256.Sum256([]byte("binding " + seed))
	g := sha256.Sum256([]byte("grant " + seed))
	return b64.EncodeToString(h[:]), b64.EncodeToString(bd[:]),
		b64.EncodeToString(g[:18]) + "/" + b64.EncodeToString(g[18:30])
}

// Issue 18: the spent marker a code leaves for the spent memory fits in
// fewer bytes (a shorter key, a packed value), and reads back as the
// grant reference stored, for the provider's references and any other.
func TestSpentMarkerCompact(t *testing.T) {
	s := openEmbedded(t)
	ctx := t.Context()
	hash, binding, ref := providerValues("a")
	_, wrong, _ := providerValues("b")
	for _, r := range []string{ref, "g", "grant-id/auth", ""} {
		if err := s.PutCode(ctx, hash, r, binding, []byte("payload"), time.Minute, time.Hour); err != nil {
			t.Fatal(err)
		}
		if data, _, err := s.TakeCode(ctx, hash, binding); err != nil || string(data) != "payload" {
			t.Fatalf("ref %q: first take = %q, %v", r, data, err)
		}
		if _, got, err := s.TakeCode(ctx, hash, binding); err != nil || got != r {
			t.Fatalf("ref %q: replay = %q, %v", r, got, err)
		}
		if _, _, err := s.TakeCode(ctx, hash, wrong); !errors.Is(err, session.ErrCodeMismatch) {
			t.Fatalf("ref %q: replay with another binding = %v, want ErrCodeMismatch", r, err)
		}
	}
	if err := s.PutCode(ctx, hash, ref, binding, []byte("payload"), time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	v, err := s.c.Get(ctx, s.k.codeGrant(hash)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1+markerBindingLen+packedGrantLen+packedAuthLen {
		t.Errorf("marker of a provider's code holds %d bytes, want %d", len(v), 1+markerBindingLen+packedGrantLen+packedAuthLen)
	}
	if k := s.k.codeGrant(hash); strings.Contains(k, hash) || !strings.Contains(k, hash[:codeKeyHashLen]) {
		t.Errorf("marker key %q: want the hash's first %d characters only", k, codeKeyHashLen)
	}
	if ks, _ := s.Keys(ctx, "*code*"); len(ks) != 0 {
		t.Errorf("keys of the earlier layout written: %v", ks)
	}
}

// Codes an earlier version stored (its keys, its "<grant> <binding>"
// marker) are still taken once, their replays still answer their grant,
// and another binding still neither takes nor learns them: a rolling
// upgrade loses no code and takes none twice.
func TestLegacyCodeTakenOnce(t *testing.T) {
	s := openEmbedded(t)
	ctx := t.Context()
	hash, binding, ref := providerValues("legacy")
	_, wrong, _ := providerValues("b")
	if err := s.c.Set(ctx, s.k.legacyCode(hash), "payload", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Set(ctx, s.k.legacyCodeGrant(hash), ref+" "+binding, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeCode(ctx, hash, wrong); !errors.Is(err, session.ErrCodeMismatch) {
		t.Fatalf("take with another binding = %v, want ErrCodeMismatch", err)
	}
	if data, _, err := s.TakeCode(ctx, hash, binding); err != nil || string(data) != "payload" {
		t.Fatalf("first take = %q, %v", data, err)
	}
	if data, got, err := s.TakeCode(ctx, hash, binding); err != nil || data != nil || got != ref {
		t.Fatalf("replay = %q, %q, %v; want the grant %q", data, got, err, ref)
	}
	if _, _, err := s.TakeCode(ctx, hash, wrong); !errors.Is(err, session.ErrCodeMismatch) {
		t.Fatalf("replay with another binding = %v, want ErrCodeMismatch", err)
	}
	// A code no version stored is not found.
	other, _, _ := providerValues("none")
	if _, _, err := s.TakeCode(ctx, other, binding); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown code = %v, want ErrNotFound", err)
	}
}

// A marker this version cannot read refuses the code: its payload is not
// handed out, and a replay is an error, not an empty grant.
func TestUnreadableMarkerRefused(t *testing.T) {
	s := openEmbedded(t)
	ctx := t.Context()
	hash, binding, _ := providerValues("bad")
	mb := markerBinding(binding)
	for _, v := range []string{"x" + mb + "grant", "p" + mb + "short", "", "p"} {
		if err := s.c.Set(ctx, s.k.codeGrant(hash), v, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.c.Del(ctx, s.k.code(hash)).Err(); err != nil {
			t.Fatal(err)
		}
		data, got, err := s.TakeCode(ctx, hash, binding)
		if err == nil || data != nil || got != "" {
			t.Errorf("marker %q: TakeCode = %q, %q, %v; want an error", v, data, got, err)
		}
	}
}

// Markers of the version before this one ("p"/"t", 16 bytes of binding)
// are still read: their codes are taken once, their replays answer their
// grant, another binding is refused. And this version's marker of a
// provider's code is at most 44 bytes, a string Redis embeds in its
// object (issue 18).
func TestSpentMarkerV1Read(t *testing.T) {
	s := openEmbedded(t)
	ctx := t.Context()
	hash, binding, ref := providerValues("v1")
	_, wrong, _ := providerValues("b")
	for _, v1 := range []string{
		"p" + markerBinding(binding) + markerGrant(ref)[1:],
		"t" + markerBinding(binding) + "grant-id/auth",
	} {
		if err := s.c.Set(ctx, s.k.code(hash), "payload", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.c.Set(ctx, s.k.codeGrant(hash), v1, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.TakeCode(ctx, hash, wrong); !errors.Is(err, session.ErrCodeMismatch) {
			t.Fatalf("%q: take with another binding = %v, want ErrCodeMismatch", v1[:1], err)
		}
		if data, _, err := s.TakeCode(ctx, hash, binding); err != nil || string(data) != "payload" {
			t.Fatalf("%q: first take = %q, %v", v1[:1], data, err)
		}
		want := ref
		if v1[0] == 't' {
			want = "grant-id/auth"
		}
		if _, got, err := s.TakeCode(ctx, hash, binding); err != nil || got != want {
			t.Fatalf("%q: replay = %q, %v; want %q", v1[:1], got, err, want)
		}
	}
	if m := spentMarker(ref, binding); len(m) > 44 {
		t.Errorf("marker of a provider's code: %d bytes, want at most 44", len(m))
	}
}
