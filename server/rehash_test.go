package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
)

// djangoHash is Django's PBKDF2 format, made by Python's hashlib (not by
// stepup), for the password "django password 1":
//
//	python3 -c "import hashlib,base64; s='c2VwYXJhdGVzYWx0';
//	  print('pbkdf2_sha256\$60000\$'+s+'\$'+base64.b64encode(
//	  hashlib.pbkdf2_hmac('sha256',b'django password 1',s.encode(),60000)).decode())"
const (
	djangoHash     = "pbkdf2_sha256$60000$c2VwYXJhdGVzYWx0$eAByaTYLc2CytTNRQFYnuADtRa3acTySHZGkXGz8y0E="
	djangoPassword = "django password 1"
)

// A hash imported from another system (PRODUCT.md §9) signs the user in
// and is replaced, at that first sign-in, by an argon2id hash at the
// default parameters; a wrong password changes nothing.
func TestImportedHashRehashedAtSignIn(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	s := e.store()
	bob, err := s.AccountByUsername(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, bob.Subject, bob.PasswordHash, djangoHash); err != nil || !ok {
		t.Fatalf("planting the imported hash: %v, %v", ok, err)
	}
	stored := func() string {
		t.Helper()
		a, err := s.GetAccount(ctx, bob.Subject)
		if err != nil {
			t.Fatal(err)
		}
		return a.PasswordHash
	}

	b, r := e.browser(), e.rp("spa", "")
	if p := b.login(b.get(r.authURL(nil).url), "bob", "not it"); p.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.status)
	}
	if stored() != djangoHash {
		t.Fatal("a wrong password changed the hash")
	}

	wantClaims(t, signIn(t, e, b, r, nil, "bob", djangoPassword), oneFA, []string{"pwd"})
	h := stored()
	if !strings.HasPrefix(h, "$argon2id$") || password.NeedsRehash(h, password.DefaultParams) {
		t.Fatalf("after the first sign-in the hash is %.30s…, want argon2id at the default parameters", h)
	}
	if ok, err := password.Verify(h, djangoPassword); err != nil || !ok {
		t.Fatalf("the new hash does not verify the password: %v, %v", ok, err)
	}
	// The next sign-in uses the new hash and keeps it.
	wantClaims(t, signIn(t, e, e.browser(), r, nil, "bob", djangoPassword), oneFA, []string{"pwd"})
	if stored() != h {
		t.Fatal("a second sign-in rehashed again")
	}
}

// An argon2id hash with other parameters than the default ones is
// rehashed too (the parameters were raised since it was made).
func TestWeakerArgon2Rehashed(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	s := e.store()
	bob, err := s.AccountByUsername(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	old, err := password.HashWith(password.Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}, bobPass)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, bob.Subject, bob.PasswordHash, old); err != nil || !ok {
		t.Fatal(ok, err)
	}
	signIn(t, e, e.browser(), e.rp("spa", ""), nil, "bob", bobPass)
	a, err := s.GetAccount(ctx, bob.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if a.PasswordHash == old || password.NeedsRehash(a.PasswordHash, password.DefaultParams) {
		t.Fatalf("hash after sign-in %.40s…, want a fresh one at the default parameters", a.PasswordHash)
	}
}

// passwords.argon2id is what new hashes use; a hash made with the
// parameters before a change is replaced at the next sign-in.
func TestConfiguredArgon2Params(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Passwords.Argon2id = config.Argon2id{Memory: "47MiB", Time: 1, Threads: 1}
	})
	ctx := t.Context()
	s := e.store()
	bob, err := s.AccountByUsername(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// The harness seeded bob with the default parameters.
	if !strings.Contains(bob.PasswordHash, "$m=65536,t=1,p=2$") {
		t.Fatalf("seeded hash %.40s…, want the default parameters", bob.PasswordHash)
	}
	signIn(t, e, e.browser(), e.rp("spa", ""), nil, "bob", bobPass)
	a, err := s.GetAccount(ctx, bob.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.PasswordHash, "$m=48128,t=1,p=1$") {
		t.Fatalf("hash after sign-in %.40s…, want m=48128,t=1,p=1 (47 MiB, the configured parameters)", a.PasswordHash)
	}
}
