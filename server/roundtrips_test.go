package server_test

import (
	"sync/atomic"
	"testing"

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

// The Redis round trips of the flows without a password (issue 4 budget:
// at most 6 per flow), counted from the authorization request to the
// token response.
func TestRoundTripsPerFlow(t *testing.T) {
	e, n := countingEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
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
}
