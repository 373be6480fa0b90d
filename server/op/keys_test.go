package op

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// memSecrets is a session.SecretStore in memory that counts reads.
type memSecrets struct {
	mu    sync.Mutex
	m     map[string][]byte
	reads int
}

func (s *memSecrets) InitSecret(_ context.Context, name string, value []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if _, ok := s.m[name]; !ok {
		s.m[name] = bytes.Clone(value)
	}
	return bytes.Clone(s.m[name]), nil
}

func (s *memSecrets) SwapSecret(_ context.Context, name string, old, value []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[name]; !ok || !bytes.Equal(cur, old) {
		return false, nil
	}
	s.m[name] = bytes.Clone(value)
	return true, nil
}

func publishedKIDs(t *testing.T, k *Keys) map[string]bool {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, x := range set.Keys {
		out[x.KID] = true
	}
	return out
}

// Two instances on one store converge on a rotation without a restart,
// and a view in which no key signs neither fails signing nor reloads
// the store at every request.
func TestKeySetConverges(t *testing.T) {
	ctx := context.Background()
	store := &memSecrets{m: map[string][]byte{}}
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, err := LoadKeys(ctx, "ES256", "", store, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKeys(ctx, "ES256", "", store, clock)
	if err != nil {
		t.Fatal(err)
	}
	kidA := a.SigningKID()
	if b.SigningKID() != kidA {
		t.Fatalf("two instances sign with %s and %s", kidA, b.SigningKID())
	}
	res, err := RotateKeys(ctx, "ES256", store, now)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(keySetRefresh)
	for _, k := range []*Keys{a, b} {
		if got := publishedKIDs(t, k); !got[kidA] || !got[res.New] || len(got) != 2 {
			t.Fatalf("after the refresh an instance publishes %v", got)
		}
		if k.SigningKID() != kidA {
			t.Fatal("the new key signs before its signs_from")
		}
	}
	now = res.SignsFrom
	if a.SigningKID() != res.New || b.SigningKID() != res.New {
		t.Fatal("the new key does not sign at its signs_from")
	}
	now = res.RetireAt
	if got := publishedKIDs(t, a); got[kidA] || !got[res.New] {
		t.Fatalf("at retire_at the JWKS is %v", got)
	}

	// Every key retired (a set edited by hand, a clock far ahead): the
	// last view stays, and the store is asked once per refresh.
	var rec keySetRecord
	_ = json.Unmarshal(store.m[keySetName("ES256")], &rec)
	for i := range rec.Keys {
		rec.Keys[i].RetireAt = now.Add(time.Second).Unix()
	}
	store.m[keySetName("ES256")], _ = json.Marshal(rec)
	now = now.Add(keySetRefresh + 2*time.Second)
	before := store.reads
	for range 5 {
		if _, err := a.signAccess(map[string]string{"x": "y"}); err != nil {
			t.Fatal(err)
		}
	}
	if store.reads-before != 1 {
		t.Fatalf("%d reads of the store for 5 tokens, want 1", store.reads-before)
	}
}
