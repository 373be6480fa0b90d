package server_test

import (
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// countingEnv is an env whose stores count their Redis round trips. It
// uses sessiontest's Redis (real when STEPUP_TEST_REDIS_URL is set).
func countingEnv(t *testing.T) (*env, *atomic.Int64) {
	var n atomic.Int64
	backend := sessiontest.NewBackend(t)
	open := func() session.Store {
		return backend.StoreWith(t, redisstore.Options{OnRoundTrip: func(error) { n.Add(1) }})
	}
	return newEnvWith(t, envOptions{open: open}), &n
}

// The Redis round trips of the flows without a password, counted from
// the authorization request to the token response. Issue 4's budget is 6
// per flow; the bounds below are what the code does today (6 and 16), so
// that a change that adds one is seen. Issue 13 added one to each: the
// code exchange indexes the new grant under its session and user (one
// pipeline) before writing it, so that ending them ends the grant.
func TestRoundTripsPerFlow(t *testing.T) {
	e, n := countingEnv(t)
	r := e.rp("bank", bankSecret)
	// A first step-up loads every script into Redis's cache: the counts
	// below are those of a warm server (a cold one adds a NOSCRIPT retry
	// per script, once).
	signIn(t, e, e.browser(), r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	e.clock.Advance(30 * time.Second) // the next TOTP step
	b := e.browser()
	signIn(t, e, b, r, nil, "alice", alicePass)

	n.Store(0)
	a := r.authURL(nil)
	r.mustExchange(a, b.get(a.url).result(t))
	sso := n.Load()

	n.Store(0)
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	r.mustExchange(a, b.code(p, "totp", e.totpCode(aliceTOTP)).result(t))
	stepUp := n.Load()
	t.Logf("Redis round trips: SSO flow %d, TOTP step-up flow %d", sso, stepUp)
	if sso > 6 {
		t.Errorf("SSO flow: %d Redis round trips, want at most 6", sso)
	}
	if stepUp > 16 {
		t.Errorf("TOTP step-up flow: %d Redis round trips, want at most 16", stepUp)
	}
}

// Checking an access token — is its grant alive, its user's grants not
// ended, the token not revoked — is one Redis round trip (issue 13 item
// 8: one pipeline, where it was a grant read then a revocation read), so
// introspection costs 1 and userinfo 2 (the account is the second).
func TestRoundTripsPerTokenCheck(t *testing.T) {
	e, n := countingEnv(t)
	r := e.rp("bank", bankSecret)
	at := signIn(t, e, e.browser(), r, nil, "alice", alicePass).tok.AccessToken
	cc := e.ccToken("bank", bankSecret, "")
	// Warm: the first calls may load scripts or dial connections.
	e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret)
	e.call("GET", "/userinfo", "", "Authorization", "Bearer "+at)

	for _, c := range []struct {
		what string
		want int64
		call func() bool
	}{
		{"introspection of a user's token", 1, func() bool {
			_, in := e.postForm("/oauth/introspect", url.Values{"token": {at}}, "bank", bankSecret)
			return in["active"] == true
		}},
		{"introspection of a client's token", 1, func() bool {
			_, in := e.postForm("/oauth/introspect", url.Values{"token": {cc}}, "bank", bankSecret)
			return in["active"] == true
		}},
		{"userinfo", 2, func() bool {
			return e.call("GET", "/userinfo", "", "Authorization", "Bearer "+at).status == http.StatusOK
		}},
	} {
		n.Store(0)
		if !c.call() {
			t.Fatalf("%s failed", c.what)
		}
		if got := n.Load(); got != c.want {
			t.Errorf("%s: %d Redis round trips, want %d", c.what, got, c.want)
		}
	}
}
