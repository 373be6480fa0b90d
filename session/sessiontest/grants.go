package sessiontest

import (
	"errors"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// grantEndTests cover how grants end with what they derive from: their
// session (DeleteSession, EndSession) and their subject (EndUserGrants).
var grantEndTests = []struct {
	name string
	fn   func(t *testing.T, s session.Store)
}{
	{"PutGrantNeedsItsSession", testPutGrantNeedsItsSession},
	{"DeleteSessionEndsOnlineGrants", testDeleteSessionEndsOnlineGrants},
	{"EndSessionEndsEveryGrant", testEndSessionEndsEveryGrant},
	{"EndUserGrants", testEndUserGrants},
	{"EndSessionConcurrentPut", testEndSessionConcurrentPut},
	{"AccessTokenLive", testAccessTokenLive},
	{"PutGrantAgain", testPutGrantAgain},
	{"OnlineGrantFollowsSession", testOnlineGrantFollowsSession},
	{"OfflineGrantSurvivesLateExchange", testOfflineGrantSurvivesLateExchange},
}

// putGrant stores a grant derived from sess and returns it.
func putGrant(t *testing.T, s session.Store, sess *session.Session, offline bool) *session.Grant {
	t.Helper()
	g := &session.Grant{ID: newID(), ClientID: "web", Subject: sess.Subject, SessionID: sess.ID, Offline: offline,
		RefreshHash: "rt-" + newID(), ExpiresAt: time.Now().Add(ttl)}
	if err := s.PutGrant(t.Context(), g); err != nil {
		t.Fatalf("PutGrant: %v", err)
	}
	return g
}

// assertLive checks a grant as a refresh (LiveGrant) and an access token
// (AccessTokenLive) see it.
func assertLive(t *testing.T, s session.Store, g *session.Grant, want bool, what string) {
	t.Helper()
	ctx := t.Context()
	got, err := s.LiveGrant(ctx, g.ID)
	switch {
	case want && err != nil:
		t.Errorf("%s: LiveGrant(%s) = %v, want the grant", what, g.ID, err)
	case want && got.ID != g.ID:
		t.Errorf("%s: LiveGrant(%s) returned grant %s", what, g.ID, got.ID)
	case !want && err == nil:
		t.Errorf("%s: LiveGrant(%s) returned a grant, want it ended", what, g.ID)
	case !want && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrGrantEnded):
		t.Errorf("%s: LiveGrant(%s) = %v, want ErrNotFound or ErrGrantEnded", what, g.ID, err)
	}
	live, err := s.AccessTokenLive(ctx, g.ID, g.Inc, g.Subject, g.ID+"."+newID())
	if err != nil || live != want {
		t.Errorf("%s: AccessTokenLive(%s) = %v, %v; want %v", what, g.ID, live, err, want)
	}
}

// A code's exchange stores its grant only while the session it was
// issued in lives and is its subject's.
func testPutGrantNeedsItsSession(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	for name, g := range map[string]*session.Grant{
		"no such session":          {ID: newID(), Subject: sess.Subject, SessionID: newID(), ExpiresAt: time.Now().Add(ttl)},
		"another subject's":        {ID: newID(), Subject: newID(), SessionID: sess.ID, ExpiresAt: time.Now().Add(ttl)},
		"offline, no such session": {ID: newID(), Subject: sess.Subject, SessionID: newID(), Offline: true, ExpiresAt: time.Now().Add(ttl)},
	} {
		if err := s.PutGrant(ctx, g); !errors.Is(err, session.ErrGrantEnded) {
			t.Errorf("PutGrant (%s) = %v, want ErrGrantEnded", name, err)
		}
		if _, err := s.GetGrant(ctx, g.ID); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("PutGrant (%s) stored the grant: %v", name, err)
		}
	}
	assertLive(t, s, putGrant(t, s, sess, false), true, "a grant of a live session")
}

// A sign-out: the session's online grants end with it, its offline ones
// (offline_access) outlive it; other sessions' grants are untouched, and
// no grant can be derived from the session any more.
func testDeleteSessionEndsOnlineGrants(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess, other := newSession(newID()), newSession("")
	other.Subject = sess.Subject
	mustCreate(t, s, sess, ttl)
	mustCreate(t, s, other, ttl)
	online, offline, otherOnline := putGrant(t, s, sess, false), putGrant(t, s, sess, true), putGrant(t, s, other, false)
	if err := s.DeleteSession(ctx, sess.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	assertNoSession(t, s, sess.ID)
	assertLive(t, s, online, false, "online grant after DeleteSession")
	if _, err := s.GetGrant(ctx, online.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetGrant(online grant of a deleted session) = %v, want ErrNotFound", err)
	}
	assertLive(t, s, offline, true, "offline grant after DeleteSession")
	assertLive(t, s, otherOnline, true, "another session's grant after DeleteSession")
	for _, off := range []bool{false, true} {
		g := &session.Grant{ID: newID(), Subject: sess.Subject, SessionID: sess.ID, Offline: off, ExpiresAt: time.Now().Add(ttl)}
		if err := s.PutGrant(ctx, g); !errors.Is(err, session.ErrGrantEnded) {
			t.Errorf("PutGrant (offline %v) after DeleteSession = %v, want ErrGrantEnded", off, err)
		}
	}
	if list, err := s.ListSessions(ctx, sess.Subject); err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("ListSessions after DeleteSession = %v, %v; want [%s]", ids(list), err, other.ID)
	}
}

// An operator's end of one session: every grant of it ends, offline ones
// too; the subject's other sessions keep theirs.
func testEndSessionEndsEveryGrant(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess, other := newSession(newID()), newSession("")
	other.Subject = sess.Subject
	mustCreate(t, s, sess, ttl)
	mustCreate(t, s, other, ttl)
	online, offline := putGrant(t, s, sess, false), putGrant(t, s, sess, true)
	otherOffline := putGrant(t, s, other, true)
	if err := s.EndSession(ctx, sess.ID); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	assertNoSession(t, s, sess.ID)
	assertLive(t, s, online, false, "online grant after EndSession")
	assertLive(t, s, offline, false, "offline grant after EndSession")
	assertLive(t, s, otherOffline, true, "another session's grant after EndSession")
	if err := s.EndSession(ctx, sess.ID); err != nil {
		t.Errorf("EndSession(ended) = %v, want nil", err)
	}
	if err := s.EndSession(ctx, newID()); err != nil {
		t.Errorf("EndSession(unknown) = %v, want nil", err)
	}
}

// An operator's end of a user's grants: all of them, offline ones and
// those of sessions that are already gone; another user's stay, and a
// grant stored afterwards lives.
func testEndUserGrants(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, b, gone := newSession(newID()), newSession(newID()), newSession("")
	gone.Subject = a.Subject
	for _, sess := range []*session.Session{a, b, gone} {
		mustCreate(t, s, sess, ttl)
	}
	mine := []*session.Grant{putGrant(t, s, a, false), putGrant(t, s, a, true), putGrant(t, s, gone, true)}
	// The offline grant outlives its session's sign-out; the user's end
	// must still reach it.
	if err := s.DeleteSession(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	theirs := putGrant(t, s, b, true)
	if err := s.EndUserGrants(ctx, a.Subject); err != nil {
		t.Fatalf("EndUserGrants: %v", err)
	}
	mustGet(t, s, a.ID)
	for _, g := range mine {
		assertLive(t, s, g, false, "after EndUserGrants")
		// The offline ones are deleted; an online one may stay, dead,
		// until its session ends (every caller ends the sessions next).
		if _, err := s.GetGrant(ctx, g.ID); g.Offline && !errors.Is(err, session.ErrNotFound) {
			t.Errorf("GetGrant(%s) after EndUserGrants = %v, want ErrNotFound", g.ID, err)
		}
	}
	if err := s.DeleteSession(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetGrant(ctx, mine[0].ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetGrant(online) after EndUserGrants and its session's end = %v, want ErrNotFound", err)
	}
	a = newSession(a.Subject)
	mustCreate(t, s, a, ttl)
	assertLive(t, s, theirs, true, "another user's grant after EndUserGrants")
	// EndUserGrants leaves sessions alone; a grant stored after it lives.
	mustGet(t, s, b.ID)
	assertLive(t, s, putGrant(t, s, a, true), true, "a grant stored after EndUserGrants")
	if err := s.EndUserGrants(ctx, newID()); err != nil {
		t.Errorf("EndUserGrants(unknown) = %v, want nil", err)
	}
}

// Grants stored while their session ends (a code exchanged during the
// sign-out): whatever the interleaving, none outlives the end — the
// exchange either fails or its grant is ended with the others.
func testEndSessionConcurrentPut(t *testing.T, s session.Store) {
	ctx := t.Context()
	for _, operator := range []bool{false, true} {
		sess := newSession(newID())
		mustCreate(t, s, sess, ttl)
		const n = 16
		grants := make([]*session.Grant, n)
		errs := make([]error, n+1)
		race(n+1, func(i int) {
			if i == n {
				if operator {
					errs[i] = s.EndSession(ctx, sess.ID)
				} else {
					errs[i] = s.DeleteSession(ctx, sess.ID)
				}
				return
			}
			// Online grants only for a sign-out, whose offline ones live on.
			grants[i] = &session.Grant{ID: newID(), Subject: sess.Subject, SessionID: sess.ID, Offline: operator && i%2 == 0, ExpiresAt: time.Now().Add(ttl)}
			errs[i] = s.PutGrant(ctx, grants[i])
		})
		for i, err := range errs {
			if err != nil && !errors.Is(err, session.ErrGrantEnded) {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		for i, g := range grants {
			if errs[i] == nil {
				assertLive(t, s, g, false, "a grant stored while its session ended")
			}
		}
	}
}

// A client's own token has no grant: only its revocation counts.
func testAccessTokenLive(t *testing.T, s session.Store) {
	ctx := t.Context()
	jti := "cc." + newID()
	if live, err := s.AccessTokenLive(ctx, "", "", "client", jti); err != nil || !live {
		t.Fatalf("AccessTokenLive(client token) = %v, %v; want true", live, err)
	}
	if err := s.RevokeToken(ctx, jti, ttl); err != nil {
		t.Fatal(err)
	}
	if live, err := s.AccessTokenLive(ctx, "", "", "client", jti); err != nil || live {
		t.Fatalf("AccessTokenLive(revoked client token) = %v, %v; want false", live, err)
	}
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	g := putGrant(t, s, sess, false)
	if live, err := s.AccessTokenLive(ctx, g.ID, g.Inc, newID(), g.ID+".x"); err != nil || live {
		t.Errorf("AccessTokenLive(another subject) = %v, %v; want false", live, err)
	}
	if live, err := s.AccessTokenLive(ctx, newID(), "", sess.Subject, "y"); err != nil || live {
		t.Errorf("AccessTokenLive(unknown grant) = %v, %v; want false", live, err)
	}
	revoked := g.ID + "." + newID()
	if err := s.RevokeToken(ctx, revoked, ttl); err != nil {
		t.Fatal(err)
	}
	if live, err := s.AccessTokenLive(ctx, g.ID, g.Inc, sess.Subject, revoked); err != nil || live {
		t.Errorf("AccessTokenLive(revoked token of a live grant) = %v, %v; want false", live, err)
	}
}

// A session's grant for a client is stored again by each authorization
// (issue 18): the incarnation stays while nothing ended it, so access
// tokens issued before stay live; ending one authorization refuses only
// that authorization's store; a grant deleted or cut and stored again is
// a new incarnation, and the old one's access tokens stay dead.
func testPutGrantAgain(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	id := newID()
	put := func(auth, inc string) (*session.Grant, error) {
		g := &session.Grant{ID: id, Auth: auth, Inc: inc, ClientID: "web", Subject: sess.Subject, SessionID: sess.ID,
			RefreshHash: "rt-" + auth, ExpiresAt: time.Now().Add(ttl)}
		return g, s.PutGrant(ctx, g)
	}
	atLive := func(inc string) bool {
		t.Helper()
		live, err := s.AccessTokenLive(ctx, id, inc, sess.Subject, id+"."+inc+"."+newID())
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	if g, err := put("a1", "i1"); err != nil || g.Inc != "i1" {
		t.Fatalf("PutGrant (new) = %v, incarnation %q; want i1", err, g.Inc)
	}
	if g, err := put("a2", "i2"); err != nil || g.Inc != "i1" {
		t.Fatalf("PutGrant (again) = %v, incarnation %q; want i1 kept", err, g.Inc)
	}
	if g, err := s.GetGrant(ctx, id); err != nil || g.RefreshHash != "rt-a2" || g.Auth != "a2" || g.Inc != "i1" {
		t.Fatalf("GetGrant after storing again = %+v, %v; want the second authorization's", g, err)
	}
	if !atLive("i1") || atLive("i2") {
		t.Fatal("AccessTokenLive: want the kept incarnation live, no other")
	}
	if err := s.EndAuthorization(ctx, id, "a2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetGrant(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetGrant after EndAuthorization = %v, want ErrNotFound", err)
	}
	if _, err := put("a2", "i9"); !errors.Is(err, session.ErrGrantEnded) {
		t.Fatalf("PutGrant of the ended authorization = %v, want ErrGrantEnded", err)
	}
	if g, err := put("a3", "i3"); err != nil || g.Inc != "i3" {
		t.Fatalf("PutGrant of a later authorization = %v, incarnation %q; want a new one, i3", err, g.Inc)
	}
	if atLive("i1") || !atLive("i3") {
		t.Fatal("AccessTokenLive after the grant was stored again: want only the new incarnation live")
	}
	if err := s.EndUserGrants(ctx, sess.Subject); err != nil {
		t.Fatal(err)
	}
	if g, err := put("a4", "i4"); err != nil || g.Inc != "i4" {
		t.Fatalf("PutGrant after EndUserGrants = %v, incarnation %q; want a new one, i4", err, g.Inc)
	}
	if atLive("i3") || !atLive("i4") {
		t.Fatal("AccessTokenLive after EndUserGrants and a new store: want only the new incarnation live")
	}
	if err := s.DeleteGrant(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := put("a5", "i5"); !errors.Is(err, session.ErrGrantEnded) {
		t.Fatalf("PutGrant after DeleteGrant = %v, want ErrGrantEnded", err)
	}
}

// An online grant's life follows its session's (issue 18): the
// session's touch that issues a code gives the grants it lists the
// session's new TTL; an offline grant listed, or one that does not
// exist, is left alone (nothing is created).
func testOnlineGrantFollowsSession(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	short := time.Now().Add(time.Minute)
	online := &session.Grant{ID: newID(), ClientID: "web", Subject: sess.Subject, SessionID: sess.ID, ExpiresAt: short}
	offline := &session.Grant{ID: newID(), ClientID: "app", Subject: sess.Subject, SessionID: sess.ID, Offline: true, ExpiresAt: short}
	for _, g := range []*session.Grant{online, offline} {
		if err := s.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	missing := newID()
	bk, err := s.IssueCode(ctx,
		session.Code{Hash: newID(), GrantID: online.ID, Binding: "binding", Data: binary, TTL: time.Minute, SpentTTL: time.Minute},
		session.Activity{SessionID: sess.ID, Subject: sess.Subject, ClientID: "web", At: time.Now(), TTL: ttl,
			Grants: []string{online.ID, offline.ID, missing}}, "")
	if err != nil || bk != nil {
		t.Fatalf("IssueCode = %v, %v", bk, err)
	}
	want := time.Now().Add(ttl)
	for _, c := range []struct {
		g    *session.Grant
		want time.Time
	}{{online, want}, {offline, short}} {
		if g, err := s.GetGrant(ctx, c.g.ID); err != nil {
			t.Errorf("GetGrant(offline %v) after its session's touch: %v", c.g.Offline, err)
		} else if g.ExpiresAt.Sub(c.want).Abs() > 5*time.Second {
			t.Errorf("grant (offline %v) after its session's touch expires %v, want %v", c.g.Offline, g.ExpiresAt, c.want)
		}
	}
	if _, err := s.GetGrant(ctx, missing); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a grant that did not exist after its session's touch: %v, want ErrNotFound", err)
	}
}

// An offline grant outlives its session's sign-out (DeleteSession), and
// so does its refresh token: a code issued in the session before the
// sign-out (another authorization of the same client, so the same grant
// id) and exchanged after it is refused (ErrGrantEnded) without
// replacing or ending the offline grant.
func testOfflineGrantSurvivesLateExchange(t *testing.T, s session.Store) {
	ctx := t.Context()
	for _, lateOffline := range []bool{false, true} {
		sess := newSession(newID())
		mustCreate(t, s, sess, ttl)
		g := &session.Grant{ID: newID(), Auth: "a1-" + newID(), Inc: "i1", ClientID: "app", Subject: sess.Subject, SessionID: sess.ID,
			Offline: true, RefreshHash: "rt-1", ExpiresAt: time.Now().Add(ttl)}
		if err := s.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, g.SessionID); err != nil {
			t.Fatal(err)
		}
		late := &session.Grant{ID: g.ID, Auth: "a2-" + newID(), Inc: "i2", ClientID: "app", Subject: sess.Subject, SessionID: g.SessionID,
			Offline: lateOffline, RefreshHash: "rt-2", ExpiresAt: time.Now().Add(ttl)}
		if err := s.PutGrant(ctx, late); !errors.Is(err, session.ErrGrantEnded) {
			t.Errorf("PutGrant (offline %v) after its session's sign-out = %v, want ErrGrantEnded", lateOffline, err)
		}
		got, err := s.LiveGrant(ctx, g.ID)
		if err != nil || got.RefreshHash != "rt-1" || !got.Offline || got.Inc != g.Inc {
			t.Fatalf("the offline grant after a late exchange (offline %v) refused for its ended session: %+v, %v; want it as stored before the sign-out",
				lateOffline, got, err)
		}
		assertLive(t, s, g, true, "the offline grant after a late exchange")
	}
}
