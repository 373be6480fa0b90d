package server_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/rs"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/server/op"
)

// TestSigningKeyRevocation: `stepupd keys revoke KID` is the emergency
// for a leaked key. The key leaves the JWKS and stops signing at once
// (each instance within its 30 s reload, a new one immediately), another
// key signs without the rotation's publication delay, and the tokens
// the revoked key signed stop verifying at /userinfo, in rs and in
// go-oidc as soon as they fetch the JWKS again (both do on the first
// token with the new kid). Its private key is gone from the store,
// including the single-key slot of earlier versions.
func TestSigningKeyRevocation(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Keys.Algorithm = "ES256" })
	ctx := context.Background()
	v, err := rs.New(rs.Config{Issuer: e.issuer, Audience: "spa", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api := bankAPI(t, v)
	r := e.rp("spa", "")
	kidOf := func(token string) string { s, _ := jwtHeader(t, token)["kid"].(string); return s }
	login := func() *tokens {
		t.Helper()
		return signIn(t, e, e.browser(), r, nil, "bob", bobPass) // go-oidc verified the ID token
	}
	works := func(what string, tk *tokens) {
		t.Helper()
		if _, err := r.verifier.Verify(ctx, tk.idToken); err != nil {
			t.Fatalf("%s: go-oidc: %v", what, err)
		}
		callAPI(t, "GET", api.URL+"/balance", tk.tok.AccessToken).want(t, what+": rs", 200, "")
		if s := userinfoStatus(t, e, tk.tok.AccessToken); s != http.StatusOK {
			t.Fatalf("%s: userinfo %d", what, s)
		}
	}
	dead := func(what string, tk *tokens) {
		t.Helper()
		// go-oidc's RemoteKeySet wakes the verification that fetched the
		// JWKS before it stores the fetched keys in its cache (jwks.go,
		// keysFromRemote: inflight.done, then cachedKeys = keys), so the
		// next verification may still see the old cache for a moment.
		// Wait for that store, bounded, instead of failing on go-oidc's
		// own race; a key that stays accepted still fails the test.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := r.verifier.Verify(ctx, tk.idToken); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: go-oidc still verifies an ID token of the revoked key", what)
			}
		}
		if a := callAPI(t, "GET", api.URL+"/balance", tk.tok.AccessToken); a.status != http.StatusUnauthorized || !strings.Contains(a.auth, `error="invalid_token"`) {
			t.Fatalf("%s: rs answers %d %q, want 401 invalid_token", what, a.status, a.auth)
		}
		if s := userinfoStatus(t, e, tk.tok.AccessToken); s != http.StatusUnauthorized {
			t.Fatalf("%s: userinfo %d, want 401", what, s)
		}
	}
	legacyKID := func() string {
		t.Helper()
		pem, err := e.open().InitSecret(ctx, "signing-key:ES256", nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := op.NewKeys("ES256", pem)
		if err != nil {
			t.Fatal(err)
		}
		return k.SigningKID()
	}

	leaked := login()
	kidA := kidOf(leaked.idToken)
	works("before the revocation", leaked)
	if legacyKID() != kidA {
		t.Fatal("the single-key slot of earlier versions does not hold the first key; the test assumes it does")
	}

	// A is the only key: a new one is generated and signs at once.
	res, err := server.RevokeSigningKey(ctx, e.cfg, e.open(), kidA, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	kidC := res.Signer
	if res.Revoked != kidA || !res.New || kidC == kidA {
		t.Fatalf("revocation: %+v", res)
	}
	if got := jwksKIDs(t, e, e.instance()); !slices.Equal(got, []string{kidC}) {
		t.Fatalf("a new instance publishes %v, want only %s", got, kidC)
	}
	e.clock.Advance(31 * time.Second) // the running instance reloads; rs may fetch again
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, []string{kidC}) {
		t.Fatalf("the running instance publishes %v after its reload, want only %s", got, kidC)
	}
	fresh := login()
	if kidOf(fresh.idToken) != kidC || kidOf(fresh.tok.AccessToken) != kidC {
		t.Fatalf("after the revocation tokens are signed by %s, want %s", kidOf(fresh.idToken), kidC)
	}
	works("the new key", fresh)
	dead("a token of the revoked key", leaked)
	if got := legacyKID(); got == kidA {
		t.Fatal("the revoked private key is still in the single-key slot, from which the set could be rebuilt")
	}

	// After a rotation, revoking the key that signs makes the published
	// one sign at once instead of after the publication delay.
	rot, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * time.Second)
	beforeD := login()
	if kidOf(beforeD.idToken) != kidC {
		t.Fatal("the rotated key signs before its time")
	}
	res, err = server.RevokeSigningKey(ctx, e.cfg, e.open(), kidC, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.New || res.Signer != rot.New {
		t.Fatalf("revoking the signer with a published successor: %+v, want %s to sign", res, rot.New)
	}
	e.clock.Advance(31 * time.Second)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, []string{rot.New}) {
		t.Fatalf("JWKS %v, want only %s", got, rot.New)
	}
	afterD := login()
	if kidOf(afterD.idToken) != rot.New {
		t.Fatalf("signed by %s, want the rotated key %s at once", kidOf(afterD.idToken), rot.New)
	}
	works("the rotated key", afterD)
	dead("the second revoked key", beforeD)

	if _, err := server.RevokeSigningKey(ctx, e.cfg, e.open(), kidA, e.clock.Now()); !errors.Is(err, op.ErrNoSuchKey) {
		t.Fatalf("revoking a key no longer in the set: %v", err)
	}
	fileCfg := *e.cfg
	fileCfg.Keys.File = "/etc/stepup/key.pem"
	if _, err := server.RevokeSigningKey(ctx, &fileCfg, e.open(), rot.New, e.clock.Now()); err == nil {
		t.Fatal("revoke with keys.file changed the database's set")
	}
}
