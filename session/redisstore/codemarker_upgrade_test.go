package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// A code 8d6a7ec issued (its spent marker: format "p", 16 bytes of
// binding, the packed grant) is taken once by this version, on miniredis
// and on a real Redis (the script's Lua is Redis's there): a binding
// that differs from the stored 16 bytes only past the 13 this version
// keeps is still a mismatch for it (no revocation by a near match), and
// a replay with the right binding answers the grant to revoke.
func TestSpentMarkerFromBeforeOnRealRedis(t *testing.T) {
	for name, s := range openBoth(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			hash, binding, ref := providerValues("upgrade " + name)
			full := markerBinding(binding) // the 16 bytes 8d6a7ec stored
			near := []byte(full)
			near[15] ^= 1 // same first 13 bytes
			old := "p" + full + markerGrant(ref)[1:]
			if err := s.c.Set(ctx, s.k.code(hash), "payload", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.c.Set(ctx, s.k.codeGrant(hash), old, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			take := func(arg string) (*takeResult, error) {
				r, err := scriptTakeCode.Run(ctx, s.c, []string{s.k.code(hash), s.k.codeGrant(hash)}, arg).StringSlice()
				if err != nil {
					return nil, err
				}
				return &takeResult{r[0], r[1]}, nil
			}
			if r, err := take(string(near)); err != nil || r.kind != "mismatch" {
				t.Fatalf("a binding equal in its first 13 bytes only, on an 8d6a7ec marker: %+v, %v; want mismatch", r, err)
			}
			if data, _, err := s.TakeCode(ctx, hash, binding); err != nil || string(data) != "payload" {
				t.Fatalf("first take = %q, %v", data, err)
			}
			if _, got, err := s.TakeCode(ctx, hash, binding); err != nil || got != ref {
				t.Fatalf("replay = %q, %v; want the grant %q", got, err, ref)
			}
			_, wrong, _ := providerValues("other")
			if _, _, err := s.TakeCode(ctx, hash, wrong); !errors.Is(err, session.ErrCodeMismatch) {
				t.Fatalf("replay with another binding = %v, want ErrCodeMismatch", err)
			}
		})
	}
}

type takeResult struct{ kind, value string }
