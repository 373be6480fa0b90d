package op

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
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

// publishedKIDs are the kids of the alg keys in k's JWKS.
func publishedKIDs(t *testing.T, k *Keys, alg string) map[string]bool {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, x := range set.Keys {
		if x.Alg == alg {
			out[x.KID] = true
		}
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
	a, err := LoadKeys(ctx, KeyOptions{Algorithm: "ES256"}, store, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKeys(ctx, KeyOptions{Algorithm: "ES256"}, store, clock)
	if err != nil {
		t.Fatal(err)
	}
	kidA := a.SigningKID("ES256")
	if b.SigningKID("ES256") != kidA {
		t.Fatalf("two instances sign with %s and %s", kidA, b.SigningKID("ES256"))
	}
	res, err := RotateKeys(ctx, "ES256", store, now)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(keySetRefresh)
	for _, k := range []*Keys{a, b} {
		if got := publishedKIDs(t, k, "ES256"); !got[kidA] || !got[res.New] || len(got) != 2 {
			t.Fatalf("after the refresh an instance publishes %v", got)
		}
		if k.SigningKID("ES256") != kidA {
			t.Fatal("the new key signs before its signs_from")
		}
	}
	now = res.SignsFrom
	if a.SigningKID("ES256") != res.New || b.SigningKID("ES256") != res.New {
		t.Fatal("the new key does not sign at its signs_from")
	}
	now = res.RetireAt
	if got := publishedKIDs(t, a, "ES256"); got[kidA] || !got[res.New] {
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

// keys.file holds one PEM key per algorithm: a file of one key signs
// every token with it (as before there were two sets); with a P-256 key
// beside the keys.algorithm key, access tokens are ES256.
func TestKeysFile(t *testing.T) {
	rsaPEM, err := generateKey("RS256")
	if err != nil {
		t.Fatal(err)
	}
	ecPEM, _ := generateKey("ES256")
	ec2PEM, _ := generateKey("ES256")
	for _, c := range []struct {
		name, alg string
		file      []byte
		algs      []string
		at        string
		err       string
	}{
		{"one RSA key", "RS256", rsaPEM, []string{"RS256"}, "RS256", ""},
		{"one P-256 key", "ES256", ecPEM, []string{"ES256"}, "ES256", ""},
		{"both", "RS256", append(append([]byte{}, ecPEM...), rsaPEM...), []string{"RS256", "ES256"}, "ES256", ""},
		{"no key of keys.algorithm", "RS256", ecPEM, nil, "", "no RS256 key"},
		{"two of one algorithm", "ES256", append(append([]byte{}, ecPEM...), ec2PEM...), nil, "", "two ES256 keys"},
		{"no key", "RS256", []byte("nothing"), nil, "", "no PEM block"},
	} {
		k, err := fileKeys(c.alg, c.file)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(k.Algorithms(), c.algs) || k.AccessAlgorithm() != c.at || k.Algorithm() != c.alg {
			t.Errorf("%s: algorithms %v, access %s, default %s", c.name, k.Algorithms(), k.AccessAlgorithm(), k.Algorithm())
		}
		var claims struct{ X string }
		at, _ := k.signAccess(map[string]string{"X": "at"})
		id, _ := k.signID("", map[string]string{"X": "id"})
		if err := k.verify(at, "at+jwt", &claims); err != nil || claims.X != "at" {
			t.Errorf("%s: access token: %v", c.name, err)
		}
		if err := k.verify(id, "JWT", &claims); err != nil || claims.X != "id" {
			t.Errorf("%s: ID token: %v", c.name, err)
		}
	}
}

// A token is verified only with a key of its header's algorithm, found
// by kid in that algorithm's set.
func TestVerifyPicksTheSetOfTheAlgorithm(t *testing.T) {
	ctx := context.Background()
	store := &memSecrets{m: map[string][]byte{}}
	k, err := LoadKeys(ctx, KeyOptions{Algorithm: "RS256"}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.Algorithms(), []string{"RS256", "ES256"}) || k.AccessAlgorithm() != "ES256" {
		t.Fatalf("algorithms %v, access %s", k.Algorithms(), k.AccessAlgorithm())
	}
	var claims map[string]any
	for _, alg := range []string{"RS256", "ES256"} {
		id, err := k.signID(alg, map[string]string{"a": alg})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.verify(id, "JWT", &claims); err != nil || claims["a"] != alg {
			t.Fatalf("%s ID token: %v %v", alg, err, claims)
		}
	}
	if _, err := k.signID("EdDSA", map[string]string{}); err == nil {
		t.Fatal("signed with an algorithm that has no key set")
	}
	// A token of another issuer's key with our RS256 kid.
	other, _ := generateKey("ES256")
	ok, _ := parseKey("ES256", other)
	ok.kid = k.SigningKID("RS256")
	forged := goJoseToken(t, mustSigner(t, ok.kid, other), map[string]string{"a": "x"})
	if err := k.verify(forged, "JWT", &claims); err == nil {
		t.Fatal("a token signed by another key under our RS256 kid verified")
	}
	if ed := KeyAlgorithms("EdDSA", nil); !slices.Equal(ed, []string{"RS256", "ES256", "EdDSA"}) {
		t.Fatalf("KeyAlgorithms with keys.algorithm EdDSA: %v", ed)
	}
	if es := KeyAlgorithms("ES256", []string{"ES256", "RS256"}); !slices.Equal(es, []string{"RS256", "ES256"}) {
		t.Fatalf("KeyAlgorithms: %v", es)
	}
}

func mustSigner(t *testing.T, kid string, pemBytes []byte) jose.Signer {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	key, err := parsePrivate(block)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// An upgrade from one key set: a store that a version signing every token
// with keys.algorithm's key left behind keeps verifying what that key
// signed (access tokens and ID token hints), the key goes on signing the
// ID tokens of keys.algorithm, and the ES256 set it adds (for an RS256
// deployment) is published at once but signs access tokens only after
// RotationDelay(), as a rotated key would: resource servers that cache
// the JWKS see it first. A new deployment signs with ES256 at once.
func TestUpgradeKeepsTheStoredKeySet(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	for _, alg := range []string{"RS256", "ES256"} {
		now = time.Unix(1_800_000_000, 0)
		store := &memSecrets{m: map[string][]byte{}}
		// What f51beb0 stored: the single-key slot and the set made from it.
		raw, _, err := initKeySet(ctx, alg, store, now.Add(-time.Hour), 0)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := decodeKeySet(raw)
		old, err := NewKeys(alg, []byte(rec.Keys[0].PEM))
		if err != nil {
			t.Fatal(err)
		}
		oldAT, _ := old.signAccess(map[string]string{"k": "at"})
		oldID, _ := old.signID("", map[string]string{"k": "id"})

		k, err := LoadKeys(ctx, KeyOptions{Algorithm: alg}, store, clock)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]string
		if err := k.verify(oldAT, "at+jwt", &c); err != nil || c["k"] != "at" {
			t.Fatalf("%s: an access token of the old key: %v", alg, err)
		}
		if err := k.verify(oldID, "JWT", &c); err != nil || c["k"] != "id" {
			t.Fatalf("%s: an ID token of the old key: %v", alg, err)
		}
		if k.SigningKID(alg) != rec.Keys[0].KID {
			t.Fatalf("%s: the stored key no longer signs the ID tokens of keys.algorithm", alg)
		}
		if !publishedKIDs(t, k, "ES256")[k.SigningKID("ES256")] || !publishedKIDs(t, k, "RS256")[k.SigningKID("RS256")] {
			t.Fatalf("%s: the JWKS lacks a key: %s", alg, k.JWKS())
		}
		at, _ := k.signAccess(map[string]string{})
		if h := tokenHeader(t, at); h["alg"] != alg || h["kid"] != rec.Keys[0].KID {
			t.Fatalf("%s: right after the upgrade access tokens are signed %v, want the stored key", alg, h)
		}
		now = now.Add(RotationDelay() + time.Second)
		at, _ = k.signAccess(map[string]string{})
		if h := tokenHeader(t, at); h["alg"] != "ES256" || h["kid"] != k.SigningKID("ES256") {
			t.Fatalf("%s: after the publication delay access tokens are signed %v, want ES256", alg, h)
		}
	}
	// A new deployment: ES256 access tokens from the start.
	now = time.Unix(1_800_000_000, 0)
	k, err := LoadKeys(ctx, KeyOptions{Algorithm: "RS256"}, &memSecrets{m: map[string][]byte{}}, clock)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := k.signAccess(map[string]string{})
	if h := tokenHeader(t, at); h["alg"] != "ES256" {
		t.Fatalf("a new deployment signs access tokens %v, want ES256", h)
	}
}

func tokenHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	return map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
}
