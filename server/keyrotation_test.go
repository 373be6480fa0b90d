package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

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

// TestSigningKeyRotation rotates the signing keys the way `stepupd keys
// rotate` does while the provider runs: both key sets at once, RS256
// (the ID tokens of "spa", which registered nothing) and ES256 (the ID
// tokens of "es", which registered it, and every access token). Each new
// key is published first and signs only once every client can know it,
// tokens of the old keys keep verifying (go-oidc for ID tokens, rs for
// access tokens, the provider's own userinfo) until they expire, and
// then the old keys leave the JWKS.
func TestSigningKeyRotation(t *testing.T) {
	e, apis, rps := newTwoKeyEnv(t)
	ctx := context.Background()
	kidOf := func(token string) string { s, _ := jwtHeader(t, token)["kid"].(string); return s }
	// A login of each client: the kids of spa's ID token (RS256), and of
	// es's ID token and both access tokens (ES256).
	type logins struct{ spa, es *tokens }
	login := func() (l logins, rsKID, esKID string) {
		t.Helper()
		l.spa = signIn(t, e, e.browser(), rps["spa"], nil, "bob", bobPass) // go-oidc verified the ID token
		l.es = signIn(t, e, e.browser(), rps["es"], nil, "bob", bobPass)
		rsKID, esKID = kidOf(l.spa.idToken), kidOf(l.es.idToken)
		if kidOf(l.spa.tok.AccessToken) != esKID || kidOf(l.es.tok.AccessToken) != esKID {
			t.Fatalf("the access tokens are not signed by the ES256 key of es's ID token")
		}
		return l, rsKID, esKID
	}
	works := func(what string, l logins) {
		t.Helper()
		for c, tk := range map[string]*tokens{"spa": l.spa, "es": l.es} {
			if _, err := rps[c].verifier.Verify(ctx, tk.idToken); err != nil {
				t.Fatalf("%s: %s: go-oidc: %v", what, c, err)
			}
			callAPI(t, "GET", apis[c].URL+"/balance", tk.tok.AccessToken).want(t, what+": "+c+": rs", 200, "")
			if s := userinfoStatus(t, e, tk.tok.AccessToken); s != http.StatusOK {
				t.Fatalf("%s: %s: userinfo %d", what, c, s)
			}
		}
	}

	before, rsA, esA := login()
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, sorted(rsA, esA)) {
		t.Fatalf("JWKS before the rotation: %v, want [%s %s]", got, rsA, esA)
	}
	works("before the rotation", before)

	sets, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), "", e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || sets[0].Alg != "RS256" || sets[1].Alg != "ES256" {
		t.Fatalf("rotated %+v, want the RS256 and the ES256 sets", sets)
	}
	for _, res := range sets {
		old := map[string]string{"RS256": rsA, "ES256": esA}[res.Alg]
		if res.New == old || !slices.Equal(res.Retiring, []string{old}) || res.SignsFrom.Sub(e.clock.Now()) < 10*time.Minute || !res.RetireAt.Equal(res.SignsFrom.Add(10*time.Minute)) {
			t.Fatalf("rotation at %s: %+v", e.clock.Now(), res)
		}
	}
	rsB, esB := sets[0].New, sets[1].New
	all := sorted(rsA, esA, rsB, esB)
	// The running instance sees the new sets within its refresh (30 s),
	// without a restart; so does a new one at once.
	e.clock.Advance(31 * time.Second)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, all) {
		t.Fatalf("JWKS after the rotation: %v, want %v", got, all)
	}
	if got := jwksKIDs(t, e, e.instance()); !slices.Equal(got, all) {
		t.Fatalf("a new instance publishes %v, want %v", got, all)
	}
	published, rsNow, esNow := login()
	if rsNow != rsA || esNow != esA {
		t.Fatalf("a new key signs before its signs_from: %s %s", rsNow, esNow)
	}
	works("A while B is only published", published)

	// Just before B signs: the last tokens of A.
	e.clock.Advance(sets[0].SignsFrom.Sub(e.clock.Now()) - time.Minute)
	lastA, rsNow, esNow := login()
	if rsNow != rsA || esNow != esA {
		t.Fatalf("a new key signs before its signs_from")
	}
	e.clock.Advance(2 * time.Minute)
	first, rsNow, esNow := login()
	if rsNow != rsB || esNow != esB {
		t.Fatalf("after signs_from the kids are %s %s, want B %s %s", rsNow, esNow, rsB, esB)
	}
	works("B", first)
	works("A's last tokens after B took over", lastA)

	// After retire_at A is gone; B stays and signs.
	e.clock.Advance(sets[0].RetireAt.Sub(e.clock.Now()) + time.Second)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, sorted(rsB, esB)) {
		t.Fatalf("JWKS after retire_at: %v, want [%s %s]", got, rsB, esB)
	}
	l, _, _ := login()
	works("B after A retired", l)
	if s := userinfoStatus(t, e, lastA.spa.tok.AccessToken); s == http.StatusOK {
		t.Fatal("a token of a retired key is accepted")
	}

	// The next rotation of ES256 alone removes its A from the stored set
	// and leaves the RS256 set as it was.
	res2, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), "ES256", e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res2) != 1 || !slices.Equal(res2[0].Pruned, []string{esA}) || !slices.Equal(res2[0].Retiring, []string{esB}) {
		t.Fatalf("second rotation: %+v", res2)
	}
	e.clock.Advance(31 * time.Second)
	if got := jwksKIDs(t, e, nil); !slices.Equal(got, sorted(rsB, esB, res2[0].New)) {
		t.Fatalf("JWKS after rotating ES256 alone: %v", got)
	}
	if _, err := server.RotateSigningKeys(ctx, e.cfg, e.open(), "EdDSA", e.clock.Now()); err == nil {
		t.Fatal("rotating a key set the configuration has not")
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }
