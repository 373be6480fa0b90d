package server_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/server/op"
)

// TestSigningKeyRevocation: `stepupd keys revoke KID` is the emergency
// for a leaked key, of either key set. The key leaves the JWKS and stops
// signing at once (each instance within its 30 s reload, a new one
// immediately), another key of its algorithm signs without the
// rotation's publication delay, and the tokens the revoked key signed
// stop verifying at /userinfo, in rs and in go-oidc as soon as they fetch
// the JWKS again (both do on the first token with the new kid); the
// tokens of the other algorithm's key are not touched. Its private key is
// gone from the store, including the single-key slot of earlier versions.
func TestSigningKeyRevocation(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) { testSigningKeyRevocation(t, alg) })
	}
}

// testSigningKeyRevocation revokes keys of alg. "spa" gets RS256 ID
// tokens, "es" ES256 ones; every access token is ES256.
func testSigningKeyRevocation(t *testing.T, alg string) {
	e, apis, rps := newTwoKeyEnv(t)
	ctx := context.Background()
	kidOf := func(token string) string { s, _ := jwtHeader(t, token)["kid"].(string); return s }
	type logins map[string]*tokens
	login := func() logins {
		t.Helper()
		return logins{ // go-oidc verified the ID tokens
			"spa": signIn(t, e, e.browser(), rps["spa"], nil, "bob", bobPass),
			"es":  signIn(t, e, e.browser(), rps["es"], nil, "bob", bobPass),
		}
	}
	// kids: the kid of alg's key and of the other's in l.
	kids := func(l logins) (mine, other string) {
		rsKID, esKID := kidOf(l["spa"].idToken), kidOf(l["es"].idToken)
		if kidOf(l["spa"].tok.AccessToken) != esKID || kidOf(l["es"].tok.AccessToken) != esKID {
			t.Fatal("the access tokens are not signed by the ES256 key")
		}
		if alg == "RS256" {
			return rsKID, esKID
		}
		return esKID, rsKID
	}
	idWorks := func(what, c string, tk *tokens) {
		t.Helper()
		if _, err := rps[c].verifier.Verify(ctx, tk.idToken); err != nil {
			t.Fatalf("%s: %s: go-oidc: %v", what, c, err)
		}
	}
	atWorks := func(what, c string, tk *tokens) {
		t.Helper()
		callAPI(t, "GET", apis[c].URL+"/balance", tk.tok.AccessToken).want(t, what+": "+c+": rs", 200, "")
		if s := userinfoStatus(t, e, tk.tok.AccessToken); s != http.StatusOK {
			t.Fatalf("%s: %s: userinfo %d", what, c, s)
		}
	}
	works := func(what string, l logins) {
		t.Helper()
		for c, tk := range l {
			idWorks(what, c, tk)
			atWorks(what, c, tk)
		}
	}
	idDead := func(what, c string, tk *tokens) {
		t.Helper()
		// go-oidc's RemoteKeySet wakes the verification that fetched the
		// JWKS before it stores the fetched keys in its cache (jwks.go,
		// keysFromRemote: inflight.done, then cachedKeys = keys), so the
		// next verification may still see the old cache for a moment.
		// Wait for that store, bounded, instead of failing on go-oidc's
		// own race; a key that stays accepted still fails the test.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := rps[c].verifier.Verify(ctx, tk.idToken); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s: go-oidc still verifies an ID token of the revoked key", what, c)
			}
		}
	}
	atDead := func(what, c string, tk *tokens) {
		t.Helper()
		if a := callAPI(t, "GET", apis[c].URL+"/balance", tk.tok.AccessToken); a.status != http.StatusUnauthorized || !strings.Contains(a.auth, `error="invalid_token"`) {
			t.Fatalf("%s: %s: rs answers %d %q, want 401 invalid_token", what, c, a.status, a.auth)
		}
		if s := userinfoStatus(t, e, tk.tok.AccessToken); s != http.StatusUnauthorized {
			t.Fatalf("%s: %s: userinfo %d, want 401", what, c, s)
		}
	}
	// dead: what the revoked key signed fails, the rest still works.
	dead := func(what string, l logins) {
		t.Helper()
		if alg == "RS256" {
			idDead(what, "spa", l["spa"])
			atWorks(what+" (ES256 access token)", "spa", l["spa"])
			idWorks(what+" (ES256 ID token)", "es", l["es"])
			atWorks(what+" (ES256 access token)", "es", l["es"])
			return
		}
		idDead(what, "es", l["es"])
		atDead(what, "es", l["es"])
		atDead(what, "spa", l["spa"])
		idWorks(what+" (RS256 ID token)", "spa", l["spa"])
	}
	legacyKID := func() string {
		t.Helper()
		pem, err := e.open().InitSecret(ctx, "signing-key:"+alg, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := op.NewKeys(alg, pem)
		if err != nil {
			t.Fatal(err)
		}
		return k.SigningKID(alg)
	}

	leaked := login()
	kidA, other := kids(leaked)
	works("before the revocation", leaked)
	if legacyKID() != kidA {
		t.Fatal("the single-key slot of earlier versions does not hold the first key; the test assumes it does")
	}

	// A is the only key of alg: a new one is generated and signs at once.
	res, err := server.RevokeSigningKey(ctx, e.cfg, e.open(), kidA, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	kidC := res.Signer
	if res.Revoked != kidA || res.Alg != alg || !res.New || kidC == kidA {
		t.Fatalf("revocation: %+v", res)
	}
	if got := jwksKIDs(t, e, e.instance()); !slices.Equal(got, sorted(kidC, other)) {
		t.Fatalf("a new instance publishes %v, want only %s and the other set's %s", got, kidC, other)
	}
	e.clock.Advance(31 * time.Second) // the running instance reloads; rs may fetch again
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, sorted(kidC, other)) {
		t.Fatalf("the running instance publishes %v after its reload, want only %s and %s", got, kidC, other)
	}
	fresh := login()
	if m, o := kids(fresh); m != kidC || o != other {
		t.Fatalf("after the revocation tokens are signed by %s and %s, want %s and %s", m, o, kidC, other)
	}
	works("the new key", fresh)
	dead("a token of the revoked key", leaked)
	if got := legacyKID(); got == kidA {
		t.Fatal("the revoked private key is still in the single-key slot, from which the set could be rebuilt")
	}

	// After a rotation, revoking the key that signs makes the published
	// one sign at once instead of after the publication delay.
	rots, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), alg, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	rot := rots[0]
	e.clock.Advance(31 * time.Second)
	beforeD := login()
	if m, _ := kids(beforeD); m != kidC {
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
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, sorted(rot.New, other)) {
		t.Fatalf("JWKS %v, want only %s and %s", got, rot.New, other)
	}
	afterD := login()
	if m, _ := kids(afterD); m != rot.New {
		t.Fatalf("signed by %s, want the rotated key %s at once", m, rot.New)
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
