package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/rs"
	"github.com/stepup-dev/stepup/server"
)

// jwksKIDs are the kids the issuer publishes now.
// (srv nil: the running instance).
func jwksKIDs(t *testing.T, e *env, srv *server.Server) []string {
	t.Helper()
	var resp *http.Response
	if srv == nil {
		var err error
		if resp, err = http.Get(e.issuer + "/keys"); err != nil {
			t.Fatal(err)
		}
	} else {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, e.issuer+"/keys", nil))
		resp = rec.Result()
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	slices.Sort(out)
	return out
}

func userinfoStatus(t *testing.T, e *env, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSigningKeyRotation rotates the signing key the way `stepupd keys
// rotate` does while the provider runs: the new key is published first
// and signs only once every client can know it, tokens of the old key
// keep verifying (go-oidc for ID tokens, rs for access tokens, the
// provider's own userinfo) until they expire, and then the old key
// leaves the JWKS.
func TestSigningKeyRotation(t *testing.T) {
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
		tk := signIn(t, e, e.browser(), r, nil, "bob", bobPass) // go-oidc verified the ID token
		if kidOf(tk.idToken) != kidOf(tk.tok.AccessToken) {
			t.Fatalf("the ID token and the access token are signed by different keys")
		}
		return tk
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

	before := login()
	kidA := kidOf(before.idToken)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, []string{kidA}) {
		t.Fatalf("JWKS before the rotation: %v, want [%s]", got, kidA)
	}
	works("before the rotation", before)

	res, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	kidB := res.New
	if kidB == kidA || !slices.Equal(res.Retiring, []string{kidA}) || res.SignsFrom.Sub(e.clock.Now()) < 10*time.Minute || !res.RetireAt.Equal(res.SignsFrom.Add(10*time.Minute)) {
		t.Fatalf("rotation at %s: %+v", e.clock.Now(), res)
	}
	// The running instance sees the new set within its refresh (30 s),
	// without a restart; so does a new one at once.
	e.clock.Advance(31 * time.Second)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, sorted(kidA, kidB)) {
		t.Fatalf("JWKS after the rotation: %v, want A and B", got)
	}
	if got := jwksKIDs(t, e, e.instance()); !slices.Equal(got, sorted(kidA, kidB)) {
		t.Fatalf("a new instance publishes %v, want A and B", got)
	}
	published := login()
	if kidOf(published.idToken) != kidA {
		t.Fatalf("B signs before its signs_from: kid %s", kidOf(published.idToken))
	}
	works("A while B is only published", published)

	// Just before B signs: the last tokens of A.
	e.clock.Advance(res.SignsFrom.Sub(e.clock.Now()) - time.Minute)
	lastA := login()
	if kidOf(lastA.idToken) != kidA {
		t.Fatalf("B signs before its signs_from")
	}
	e.clock.Advance(2 * time.Minute)
	first := login()
	if kidOf(first.idToken) != kidB {
		t.Fatalf("after signs_from the kid is %s, want B %s", kidOf(first.idToken), kidB)
	}
	works("B", first)
	works("A's last tokens after B took over", lastA)

	// After retire_at A is gone; B stays and signs.
	e.clock.Advance(res.RetireAt.Sub(e.clock.Now()) + time.Second)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, []string{kidB}) {
		t.Fatalf("JWKS after retire_at: %v, want [%s]", got, kidB)
	}
	works("B after A retired", login())
	if s := userinfoStatus(t, e, lastA.tok.AccessToken); s == http.StatusOK {
		t.Fatal("a token of a retired key is accepted")
	}

	// The next rotation removes A from the stored set.
	res2, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res2.Pruned, []string{kidA}) || !slices.Equal(res2.Retiring, []string{kidB}) {
		t.Fatalf("second rotation: %+v", res2)
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }
