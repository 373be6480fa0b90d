package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session/redisstore"
)

// Issue 18: an online grant (no offline_access) expires with its
// session. OIDC Core §11 ties the refresh token of a grant without
// offline_access to the session; a refresh already checked the session,
// but the grant's record lived for the absolute timeout (12 h) after its
// last authorization, so Redis memory grew with sign-ins for 12 hours
// under steady load. Now the grant's TTL is its session's at the
// exchange, and every later authorization in the session gives the
// session's online grants its new TTL (session.Activity.Grants). An
// offline grant keeps its own lifetime.

// grantTTLs returns the TTL of every grant record and of every session
// record in Redis.
func grantTTLs(t *testing.T, e *env) (grants, sessions map[string]time.Duration) {
	t.Helper()
	st := e.backend.Store(t).(*redisstore.Store)
	ttls := func(match string) map[string]time.Duration {
		ks, err := st.Keys(t.Context(), match)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Duration{}
		for _, k := range ks {
			if strings.HasSuffix(k, "}") { // the record, not its markers or indexes
				d, err := st.TTL(t.Context(), k)
				if err != nil {
					t.Fatal(err)
				}
				out[k] = d
			}
		}
		return out
	}
	return ttls("{grant:*"), ttls("{sess:*")
}

func TestOnlineGrantExpiresWithItsSession(t *testing.T) {
	e := newEnv(t, nil)
	idle := e.cfg.Session.IdleTimeout.D()
	b := e.browser()
	spa, bank := e.rp("spa", ""), e.rp("bank", bankSecret)
	signIn(t, e, b, spa, nil, "alice", alicePass)
	grants, sessions := grantTTLs(t, e)
	if len(grants) != 1 || len(sessions) != 1 {
		t.Fatalf("%d grants and %d sessions after one sign-in, want 1 and 1", len(grants), len(sessions))
	}
	var sessTTL time.Duration
	for _, d := range sessions {
		sessTTL = d
	}
	var online string
	for k, d := range grants {
		online = k
		// The grant's TTL is its session's (as the authorization set it,
		// a few ms earlier), never the absolute timeout's.
		if d <= 0 || d > sessTTL+time.Second || d > idle {
			t.Fatalf("online grant TTL %v, session TTL %v, idle timeout %v: want the grant to expire with its session", d, sessTTL, idle)
		}
	}

	// An offline grant in the same session keeps its own lifetime.
	a := bank.authURL(map[string]string{"scope": "openid offline_access"})
	bank.mustExchange(a, b.get(a.url).result(t))
	grants, _ = grantTTLs(t, e)
	if len(grants) != 2 {
		t.Fatalf("%d grants, want 2", len(grants))
	}
	var offline string
	for k, d := range grants {
		if k != online {
			offline = k
			if d < 24*time.Hour {
				t.Fatalf("offline grant TTL %v, want its own (days)", d)
			}
		}
	}

	// Another authorization in the session (here of the other client)
	// moves the session on, and its online grants with it: the spa's
	// grant, whose TTL is cut short here, gets the session's again, and
	// the offline grant is left alone.
	if err := e.backend.Store(t).(*redisstore.Store).Expire(t.Context(), online, time.Minute); err != nil {
		t.Fatal(err)
	}
	// (A minute on: a session touched less than that ago is not touched
	// again, see TestSSOWithinAMinuteTouchesNothing.)
	e.clock.Advance(time.Minute)
	a = bank.authURL(map[string]string{"scope": "openid offline_access"})
	bank.mustExchange(a, b.get(a.url).result(t))
	grants, sessions = grantTTLs(t, e)
	for _, d := range sessions {
		sessTTL = d
	}
	if d := grants[online]; d < sessTTL-time.Minute || d > sessTTL+time.Second {
		t.Fatalf("online grant TTL %v after another authorization in its session (session TTL %v): want the session's", d, sessTTL)
	}
	if d := grants[offline]; d < 24*time.Hour {
		t.Fatalf("offline grant TTL %v after another authorization in its session: want its own (days)", d)
	}
}

// Issue 18 (SSO CPU): an authorization in a session touched less than a
// minute ago, for a client the session has served, does not touch the
// session again (no store TTL, user's session index or online grants'
// TTL to move: the last touch moved them), and the code records the
// expiry that touch left the session, so its grant still ends no later
// than the session. A minute on, the next authorization touches it.
func TestSSOWithinAMinuteTouchesNothing(t *testing.T) {
	e := newEnv(t, nil)
	idle := e.cfg.Session.IdleTimeout.D()
	b := e.browser()
	spa := e.rp("spa", "")
	signIn(t, e, b, spa, nil, "alice", alicePass)
	st := e.backend.Store(t).(*redisstore.Store)
	grants, sessions := grantTTLs(t, e)
	if len(grants) != 1 || len(sessions) != 1 {
		t.Fatalf("%d grants and %d sessions after one sign-in, want 1 and 1", len(grants), len(sessions))
	}
	var sess, grant string
	for k := range sessions {
		sess = k
	}
	for k := range grants {
		grant = k
	}
	grantExp := func() time.Time {
		t.Helper()
		g, err := st.GetGrant(t.Context(), grant[strings.Index(grant, "{grant:")+len("{grant:"):len(grant)-1])
		if err != nil {
			t.Fatal(err)
		}
		return g.ExpiresAt
	}
	signedIn := e.clock.Now()
	// Redis's clock is not the test's: stand for 20 s of it by cutting
	// the session's TTL by as much.
	e.clock.Advance(20 * time.Second)
	if err := st.Expire(t.Context(), sess, idle-20*time.Second); err != nil {
		t.Fatal(err)
	}
	a := spa.authURL(nil)
	spa.mustExchange(a, b.get(a.url).result(t))
	_, sessions = grantTTLs(t, e)
	if d := sessions[sess]; d > idle-20*time.Second {
		t.Fatalf("session TTL %v after an authorization 20 s after its last touch, want it left (≤ %v)", d, idle-20*time.Second)
	}
	// The grant's expiry is the session's as its last touch left it
	// (sign-in + idle), not the exchange's now + idle (20 s later). The
	// store reads it back from the grant's TTL: within a second.
	if got, limit := grantExp(), signedIn.Add(idle); got.After(limit.Add(time.Second)) {
		t.Fatalf("online grant expires at %v after an untouched authorization, want no later than the session's last touch + idle, %v", got, limit)
	}

	e.clock.Advance(time.Minute)
	a = spa.authURL(nil)
	spa.mustExchange(a, b.get(a.url).result(t))
	_, sessions = grantTTLs(t, e)
	if d := sessions[sess]; d < idle-time.Second {
		t.Fatalf("session TTL %v after an authorization a minute on, want it touched (%v)", d, idle)
	}
	if got, want := grantExp(), e.clock.Now().Add(idle); got.Before(want.Add(-time.Second)) || got.After(want.Add(time.Second)) {
		t.Fatalf("online grant expires at %v after a touching authorization, want the session's new expiry %v", got, want)
	}
	got, err := st.GetSession(t.Context(), sess[strings.Index(sess, "{sess:")+len("{sess:"):len(sess)-1])
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Truncate(time.Second); !got.LastSeenAt.Equal(want) {
		t.Fatalf("session last seen %v after a touching authorization, want %v", got.LastSeenAt, want)
	}
}

// keyKinds counts the keys in Redis by kind: ids replaced by their
// letter ({sess:S}, {grant:G}, {code:H}, {user:U}), the flow's and
// other plain keys by their first part.
func keyKinds(t *testing.T, e *env) map[string]int {
	t.Helper()
	ks, err := e.backend.Store(t).(*redisstore.Store).Keys(t.Context(), "*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, k := range ks {
		kind := k
		for _, tag := range []string{"sess:S", "grant:G", "code:H", "c:H", "user:U", "sgrant:G"} {
			open := "{" + tag[:strings.IndexByte(tag, ':')+1]
			if i := strings.Index(kind, open); i >= 0 {
				if j := strings.IndexByte(kind[i:], '}'); j >= 0 {
					kind = kind[:i] + "{" + tag + kind[i+j:]
				}
			}
		}
		if !strings.HasPrefix(kind, "{") {
			kind, _, _ = strings.Cut(kind, ":")
		}
		out[kind]++
	}
	return out
}

// What one password sign-in of a user leaves in Redis (issue 18, Redis
// bytes per login): the session, its grant, the code's spent marker (for
// RFC 6749 §4.1.2's replay revocation, 10 minutes) and the user's session
// index. Before, also the user's grant index (a key per user for grants
// that the session's end already reaches) and, earlier, the session's
// grant index and a refunded failure budget. A key added to every
// sign-in fails this test, and so does a record back in a larger form
// (a JSON grant payload in two fields, a 47-byte marker: on a real
// Redis).
func TestWhatASignInLeaves(t *testing.T) {
	e := newEnv(t, nil)
	before := keyKinds(t, e)
	signIn(t, e, e.browser(), e.rp("spa", ""), nil, "alice", alicePass)
	after := keyKinds(t, e)
	got := map[string]int{}
	for k, n := range after {
		if d := n - before[k]; d != 0 {
			got[k] = d
		}
	}
	want := map[string]int{"{sess:S}": 1, "{grant:G}": 1, "{c:H}s": 1, "{user:U}:sess": 1}
	if len(got) != len(want) {
		t.Fatalf("one sign-in left %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("one sign-in left %v, want %v", got, want)
		}
	}
	// And each in its compact form (issue 18): the session and the grant
	// are listpacks (every value at most 64 B), the grant's payload is one
	// field, and the marker is at most 44 B, which Redis embeds in its
	// object. The encodings are checked on a real Redis only (miniredis
	// has no OBJECT ENCODING); the sizes are in redisstore's tests.
	st := e.backend.Store(t).(*redisstore.Store)
	ctx := t.Context()
	cfg := e.backend.Config()
	if cfg.URL == "" {
		return // a Cluster or Sentinel of the environment: the counts only
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	for kind, match := range map[string]string{"{sess:S}": "*{sess:*}", "{grant:G}": "*{grant:*}", "{c:H}s": "*{c:*}s"} {
		ks, err := st.Keys(ctx, match)
		if err != nil || len(ks) != 1 {
			t.Fatalf("%s: keys %v, %v; want one", kind, ks, err)
		}
		key := e.backend.Prefix() + ks[0]
		if kind == "{grant:G}" {
			h, err := c.HGetAll(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := h["data1"]; ok || h["data"] == "" || h["data"][0] == '{' {
				t.Errorf("grant payload %q: want one compact field", h["data"]+h["data1"])
			}
		}
		if !e.backend.Real() {
			continue
		}
		enc, err := c.ObjectEncoding(ctx, key).Result()
		if want := map[string]string{"{sess:S}": "listpack", "{grant:G}": "listpack", "{c:H}s": "embstr"}[kind]; err != nil || enc != want {
			t.Errorf("%s: encoding %q, %v; want %s", kind, enc, err, want)
		}
	}
}
