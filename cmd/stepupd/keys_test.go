package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// storedKeySet reads the key set as the server does (opened under the
// encryption keys) and the raw row as an attacker with the database
// alone would.
func storedKeySet(t *testing.T, cfgPath, dbFile string) (kids []string, raw string) {
	t.Helper()
	return storedKeySetOf(t, cfgPath, dbFile, "ES256")
}

// storedKeySetOf is storedKeySet of the alg key set.
func storedKeySetOf(t *testing.T, cfgPath, dbFile, alg string) (kids []string, raw string) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openAccounts(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.LookupSecret(context.Background(), "signing-keys:"+alg)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			PEM string `json:"pem"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(v, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !strings.Contains(k.PEM, "PRIVATE KEY") {
			t.Fatalf("key %s holds no private key", k.KID)
		}
		kids = append(kids, k.KID)
	}
	db, err := sql.Open("sqlite", dbFile)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT value FROM shared_secrets WHERE name = ?`, "signing-keys:"+alg).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	return kids, raw
}

func TestKeysRotateCommand(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "stepup.db")
	cfg := es256Config(t, "sqlite:"+dbFile, embeddedRedis(t))
	var out, errs bytes.Buffer
	// Both key sets rotate: RS256 (ID tokens of the clients that
	// registered it) and ES256 (access tokens, keys.algorithm here).
	if code := keys([]string{"rotate", "-config", cfg}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "new RS256 signing key ") || !strings.Contains(out.String(), "\nnew ES256 signing key ") {
		t.Fatalf("first rotate: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	first, raw := storedKeySet(t, cfg, dbFile)
	if len(first) != 2 || !strings.Contains(out.String(), first[1]) || !strings.Contains(out.String(), "retiring "+first[0]) {
		t.Fatalf("after one rotation the set is %v; the command said %q", first, out.String())
	}
	firstRS, _ := storedKeySetOf(t, cfg, dbFile, "RS256")
	if len(firstRS) != 2 || !strings.Contains(out.String(), "new RS256 signing key "+firstRS[1]) || !strings.Contains(out.String(), "retiring "+firstRS[0]) {
		t.Fatalf("after one rotation the RS256 set is %v; the command said %q", firstRS, out.String())
	}
	// Sealed: the raw row is neither the JSON nor a PEM.
	if !strings.HasPrefix(raw, "v1.") || strings.Contains(raw, "PRIVATE KEY") || strings.Contains(raw, first[0]) || strings.Contains(raw, "pem") {
		t.Fatalf("the raw key set row is not sealed: %.80q", raw)
	}
	out.Reset()
	if code := keys([]string{"rotate", "-config", cfg}, &out, &errs); code != 0 {
		t.Fatalf("second rotate: exit %d, %q", code, errs.String())
	}
	second, _ := storedKeySet(t, cfg, dbFile)
	if len(second) != 3 || second[0] != first[0] || second[1] != first[1] {
		t.Fatalf("the second rotation lost a key: %v then %v", first, second)
	}
	// -alg rotates one set and leaves the other alone.
	out.Reset()
	if code := keys([]string{"rotate", "-alg", "ES256", "-config", cfg}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "new ES256 signing key ") || strings.Contains(out.String(), "RS256") {
		t.Fatalf("rotate -alg ES256: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	if third, _ := storedKeySet(t, cfg, dbFile); len(third) != 4 {
		t.Fatalf("after rotate -alg ES256 the ES256 set is %v", third)
	}
	if rs, _ := storedKeySetOf(t, cfg, dbFile, "RS256"); len(rs) != 3 {
		t.Fatalf("rotate -alg ES256 changed the RS256 set: %v", rs)
	}
	errs.Reset()
	if code := keys([]string{"rotate", "-config", cfg, "-alg=EdDSA"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "no EdDSA key set") {
		t.Fatalf("rotate -alg EdDSA without an EdDSA set: exit %d, %q", code, errs.String())
	}

	for _, bad := range [][]string{nil, {"rotate"}, {"spin", "-config", cfg}, {"rotate", "-config", cfg, "extra"}, {"rotate", "-config", cfg, "-alg"}} {
		if code := keys(bad, &out, &errs); code != 2 {
			t.Fatalf("keys %q: exit %d, want 2", bad, code)
		}
	}
	mem := filepath.Join(dir, "mem.yaml")
	if err := os.WriteFile(mem, []byte("issuer: http://localhost:8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	if code := keys([]string{"rotate", "-config", mem}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "in memory") {
		t.Fatalf("in-memory database: exit %d, %q", code, errs.String())
	}
}

// es256Config is writeConfigRedis with ES256 keys (quick to generate).
func es256Config(t *testing.T, db, redisURL string) string {
	t.Helper()
	cfg := writeConfigRedis(t, db, redisURL)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, "keys: {algorithm: ES256}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Rotations at once from several places all land: none loses another's
// key (the set is swapped only if it is still the one read).
func TestKeysRotateConcurrently(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "stepup.db")
	redisURL := embeddedRedis(t)
	cfgPath := es256Config(t, "sqlite:"+dbFile, redisURL)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			short, err := redisstore.Open(config.Redis{URL: redisURL}, redisstore.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			durable, err := openAccounts(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				short.Close()
				errs[i] = err
				return
			}
			store := account.Overlay(short, durable)
			defer store.Close()
			_, errs[i] = server.RotateSigningKeys(ctx, cfg, store, "ES256", time.Now())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if kids, _ := storedKeySet(t, cfgPath, dbFile); len(kids) != n+1 {
		t.Fatalf("after %d rotations at once the set has %d keys (%v), want %d", n, len(kids), kids, n+1)
	}
}

// `stepupd keys revoke -config F KID` removes the key from the stored set
// at once and says which key signs now; an unknown kid or a missing one
// is an error and changes nothing.
func TestKeysRevokeCommand(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "stepup.db")
	cfg := es256Config(t, "sqlite:"+dbFile, embeddedRedis(t))
	var out, errs bytes.Buffer
	if code := keys([]string{"rotate", "-config", cfg}, &out, &errs); code != 0 {
		t.Fatalf("rotate: exit %d, %q", code, errs.String())
	}
	set, _ := storedKeySet(t, cfg, dbFile)
	if len(set) != 2 {
		t.Fatalf("after a rotation: %v", set)
	}
	out.Reset()
	if code := keys([]string{"revoke", "-config", cfg, set[1]}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "revoked "+set[1]+":") || !strings.Contains(out.String(), "signs now") {
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	after, raw := storedKeySet(t, cfg, dbFile)
	if slices.Contains(after, set[1]) || len(after) != 2 || after[0] != set[0] || !strings.Contains(out.String(), after[1]) {
		t.Fatalf("after revoking %s the set is %v; the command said %q", set[1], after, out.String())
	}
	if strings.Contains(raw, set[1]) {
		t.Fatal("the raw row names the revoked key")
	}
	errs.Reset()
	if code := keys([]string{"revoke", set[1], "-config", cfg}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "no such signing key") {
		t.Fatalf("revoking it again: exit %d, %q", code, errs.String())
	}
	// A base64url kid may begin with "-": it is a kid, not a flag.
	errs.Reset()
	if code := keys([]string{"revoke", "-config", cfg, "-dashFirstKid"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "no such signing key") {
		t.Fatalf("a kid beginning with -: exit %d, %q", code, errs.String())
	}
	for _, bad := range [][]string{{"revoke", "-config", cfg}, {"revoke", "-config", cfg, "a", "b"}, {"revoke", "kid"}} {
		if code := keys(bad, &out, &errs); code != 2 {
			t.Fatalf("keys %q: exit %d, want 2", bad, code)
		}
	}
	if again, _ := storedKeySet(t, cfg, dbFile); !slices.Equal(again, after) {
		t.Fatalf("a refused revoke changed the set: %v → %v", after, again)
	}
}
