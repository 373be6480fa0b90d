package server_test

import (
	"strings"
	"testing"
	"time"

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
	e.clock.Advance(time.Second)
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
