package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// stepUpWrite is a store whose step-up write (ElevateAndIssue) is
// preceded, while armed, by before: what happens between the TOTP post's
// read of the session and its write.
type stepUpWrite struct {
	adminStore
	armed  *atomic.Bool
	before func(ctx context.Context, s session.Store, u session.StepUp) session.Store
}

func (w stepUpWrite) ElevateAndIssue(ctx context.Context, u session.StepUp) (session.StepUpDone, error) {
	s := session.Store(w.adminStore)
	if w.armed.Load() {
		s = w.before(ctx, s, u)
	}
	return s.ElevateAndIssue(ctx, u)
}

func stepUpWriteEnv(t *testing.T, before func(ctx context.Context, s session.Store, u session.StepUp) session.Store) (*env, *atomic.Bool) {
	var armed atomic.Bool
	backend := sessiontest.NewBackend(t)
	dbURL, keys := accounttest.NewURL(t), accounttest.Keys(t)
	e := newEnvWith(t, envOptions{open: func() session.Store {
		return stepUpWrite{adminStore{account.Overlay(backend.Store(t).(account.Short), accounttest.Open(t, dbURL, keys))}, &armed, before}
	}})
	return e, &armed
}

// Issue 18 item 1: the TOTP post's elevation and its code are one write.
// When the elevation loses — another tab's step-up renewed the session's
// key between this post's read and its write — no code reaches the RP
// (an acr/amr the session did not record in this request's name), and
// the flow is still there to go on with.
func TestStepUpLosingTheElevationIssuesNoCode(t *testing.T) {
	e, armed := stepUpWriteEnv(t, func(ctx context.Context, s session.Store, u session.StepUp) session.Store {
		v := authn.Verification{Factor: authn.TOTP, At: u.V.At}
		if err := s.Elevate(ctx, u.SessionID, u.Subject, u.OldKeyHash, session.KeyDigest("other-tab"), v, time.Hour); err != nil {
			panic(err)
		}
		return s
	})
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, nil, "alice", alicePass)
	cookie := b.sessionCookie()
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	armed.Store(true)
	post := b.code(p, "totp", e.totpCode(aliceTOTP))
	armed.Store(false)
	if post.loc != nil && strings.HasPrefix(post.loc.String(), rpCallback) {
		t.Fatalf("a step-up whose elevation lost reached the RP: %s", post.loc)
	}
	if b.sessionCookie() != cookie {
		t.Fatal("a step-up whose elevation lost renewed the browser's cookie")
	}
	// The flow was put back: its page answers (the browser, whose key
	// the other tab renewed, is asked to sign in again), not "expired".
	if again := b.get(p.url.String()); again.status != http.StatusOK {
		t.Fatalf("the flow after a lost elevation: status %d\n%s", again.status, excerpt(again.body))
	}
}

// A store that fails at the step-up's write answers 503 and writes
// nothing: the session is neither elevated nor renewed, no code is
// issued, and the same flow completes with the next code once the store
// answers.
func TestStepUpWriteFailureIs503AndHalfWritesNothing(t *testing.T) {
	down, err := redisstore.Open(config.Redis{URL: "redis://127.0.0.1:1/0"}, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.Close() })
	e, armed := stepUpWriteEnv(t, func(context.Context, session.Store, session.StepUp) session.Store { return down })
	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, nil, "alice", alicePass)
	cookie := b.sessionCookie()
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.get(a.url)
	armed.Store(true)
	post := b.code(p, "totp", e.totpCode(aliceTOTP))
	armed.Store(false)
	if post.status != http.StatusServiceUnavailable {
		t.Fatalf("step-up write with the store down: status %d at %s, want 503", post.status, post.url)
	}
	if b.sessionCookie() != cookie {
		t.Fatal("a failed step-up write renewed the browser's cookie")
	}
	list, err := e.store().ListSessions(t.Context(), tk.claims.Sub)
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %v, %v", list, err)
	}
	if slices.ContainsFunc(list[0].Verifications, func(v authn.Verification) bool { return v.Factor == authn.TOTP }) {
		t.Fatal("a failed step-up write recorded the TOTP verification")
	}
	// The step was spent by the failed post (counted first); the next
	// code finishes the same authorization request.
	e.clock.Advance(30 * time.Second)
	tk = r.mustExchange(a, b.code(b.get(p.url.String()), "totp", e.totpCode(aliceTOTP)).result(t))
	if tk.claims.ACR != mfaACR || !slices.Contains(tk.claims.AMR, "otp") {
		t.Fatalf("after the store came back: acr %q amr %v", tk.claims.ACR, tk.claims.AMR)
	}
}
