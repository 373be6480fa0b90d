package server_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/authn"
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

// countingAccounts counts the account database's calls a flow makes
// (each is one round trip, or one transaction).
type countingAccounts struct {
	account.Store
	n *atomic.Int64
}

func (c countingAccounts) GetAccount(ctx context.Context, sub string) (*session.Account, error) {
	c.n.Add(1)
	return c.Store.GetAccount(ctx, sub)
}

func (c countingAccounts) AccountByUsername(ctx context.Context, name string) (*session.Account, error) {
	c.n.Add(1)
	return c.Store.AccountByUsername(ctx, name)
}

func (c countingAccounts) SetLastFactor(ctx context.Context, sub string, f authn.Factor) error {
	c.n.Add(1)
	return c.Store.SetLastFactor(ctx, sub, f)
}

func (c countingAccounts) ReplacePasswordHash(ctx context.Context, sub, oldHash, newHash string) (bool, error) {
	c.n.Add(1)
	return c.Store.ReplacePasswordHash(ctx, sub, oldHash, newHash)
}

// The round trips of the flows without a password, counted from the
// authorization request to the token response, as stepupd runs: Redis
// for the short-lived state, the database for accounts. Issue 4's budget
// is 6 Redis round trips per flow; the bounds below are what the code
// does today, so that a change that adds one is seen. Issue 13 added one
// Redis round trip to each: the code exchange indexes the new grant under
// its session and user (one pipeline) before writing it, so that ending
// them ends the grant. With accounts in the database (issue 14) the flows
// make 5 and 12 Redis round trips, where they made 6 and 15 with accounts
// in Redis; item 2 added one database read to each (2 and 4 account
// calls): the code exchange read the account after storing the grant,
// so that an account disabled or deleted meanwhile got no tokens. That
// read is gone for codes whose request read the account after the
// session (op.Finish): the grant is stored only while the session lives,
// and a disable ends the sessions after its database write. SSO makes 1
// account read (at /authorize), the step-up 2 (/authorize and the TOTP
// post; the TOTP page renders from /authorize's decision, op.ShownStep).
// Issue 18 item 1: the TOTP post counts the attempt, claims the code's
// step and gives the user's budget back in one script on the user's slot
// (ReserveTOTP, with the IP budget's count in the same pipeline), where it
// took three round trips (Reserve, UseTOTPStep, Refund): 11. Then the
// code exchange stores its grant in one round trip (PutGrant: the
// session's and the user's index and the write in one pipeline, the
// write undone when an index refuses): SSO 4, step-up 10. And the TOTP
// post's writes went in one round trip (ElevateAndIssue): the elevation,
// the IP budget's refund and the code, where Refund, Elevate and
// IssueCode took three: step-up 8. Then /authorize decided the step-up
// from the session's view of the account's factors (op.AccountView,
// written with the session at sign-in): the TOTP post's account read is
// the step-up's only one.
func TestRoundTripsPerFlow(t *testing.T) {
	var n, db atomic.Int64
	backend := sessiontest.NewBackend(t)
	dbURL, keys := accounttest.NewURL(t), accounttest.Keys(t)
	e := newEnvWith(t, envOptions{open: func() session.Store {
		short := backend.StoreWith(t, redisstore.Options{OnRoundTrip: func(error) { n.Add(1) }})
		return account.Overlay(short.(account.Short), countingAccounts{accounttest.Open(t, dbURL, keys), &db})
	}})
	r := e.rp("bank", bankSecret)
	// A first step-up loads every script into Redis's cache: the counts
	// below are those of a warm server (a cold one adds a NOSCRIPT retry
	// per script, once).
	// An SSO in that session loads the script that moves the session's
	// grants on with it: a minute on, as one within the minute of the
	// session's last touch touches nothing (op.codeActivity).
	w := e.browser()
	signIn(t, e, w, r, map[string]string{"acr_values": mfaACR}, "alice", alicePass)
	e.clock.Advance(time.Minute)
	warm := r.authURL(nil)
	r.mustExchange(warm, w.get(warm.url).result(t))
	e.clock.Advance(30 * time.Second) // the next TOTP step
	b := e.browser()
	signIn(t, e, b, r, nil, "alice", alicePass)

	n.Store(0)
	db.Store(0)
	a := r.authURL(nil)
	r.mustExchange(a, b.get(a.url).result(t))
	sso, ssoDB := n.Load(), db.Load()

	n.Store(0)
	db.Store(0)
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	r.mustExchange(a, b.code(p, "totp", e.totpCode(aliceTOTP)).result(t))
	stepUp, stepUpDB := n.Load(), db.Load()
	t.Logf("SSO flow: %d Redis round trips, %d account reads/writes; TOTP step-up flow: %d Redis, %d account", sso, ssoDB, stepUp, stepUpDB)
	if sso > 4 {
		t.Errorf("SSO flow: %d Redis round trips, want at most 4", sso)
	}
	if stepUp > 8 {
		t.Errorf("TOTP step-up flow: %d Redis round trips, want at most 8", stepUp)
	}
	if ssoDB > 1 {
		t.Errorf("SSO flow: %d account calls, want at most 1", ssoDB)
	}
	if stepUpDB > 1 {
		t.Errorf("TOTP step-up flow: %d account calls, want at most 1", stepUpDB)
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
