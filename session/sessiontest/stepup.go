package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// stepUpTests cover ElevateAndIssue, a step-up's whole write in one round
// trip (issue 18): the elevation, the attempt given back and the code.
var stepUpTests = []struct {
	name string
	fn   func(t *testing.T, s session.Store)
}{
	{"ElevateAndIssue", testElevateAndIssue},
	{"ElevateAndIssueRefused", testElevateAndIssueRefused},
	{"ElevateAndIssueConcurrent", testElevateAndIssueConcurrent},
	{"ElevateAndIssueClaimsFlow", testElevateAndIssueClaimsFlow},
	{"ElevateAndIssueEmptyScriptCache", testElevateAndIssueEmptyScriptCache},
}

// stepUpFixture is a session held by key-0, a pending flow and an IP
// budget with two attempts counted.
type stepUpFixture struct {
	sess *session.Session
	flow string
	ip   session.Budget
}

func newStepUpFixture(t *testing.T, s session.Store) stepUpFixture {
	t.Helper()
	ctx := t.Context()
	sess := newSession(newID())
	sess.KeyHash = session.KeyDigest("key-0")
	sess.ClientIDs = []string{"web"}
	mustCreate(t, s, sess, ttl)
	flow := newID()
	if err := s.PutFlow(ctx, flow, []byte("f"), ttl); err != nil {
		t.Fatal(err)
	}
	ip := session.Budget{Kind: session.BudgetIP, ID: "192.0.2.9-" + newID(), Max: 10}
	for range 2 {
		if _, err := s.Reserve(ctx, ttl, ip); err != nil {
			t.Fatal(err)
		}
	}
	return stepUpFixture{sess: sess, flow: flow, ip: ip}
}

// stepUp is the write of a TOTP post from key-0 that ends f's flow with
// code (nil: none).
func (f stepUpFixture) stepUp(next string, v authn.Verification, code *session.Code) session.StepUp {
	return session.StepUp{
		SessionID: f.sess.ID, Subject: f.sess.Subject,
		OldKeyHash: session.KeyDigest("key-0"), NewKeyHash: session.KeyDigest(next),
		V: v, TTL: ttl, Refund: []session.Budget{f.ip},
		Code: code, ClientID: "bank", At: v.At, FlowID: f.flow,
	}
}

func newCode() *session.Code {
	return &session.Code{Hash: newID(), GrantID: "g", Binding: "binding", Data: []byte("c"), TTL: ttl, SpentTTL: ttl}
}

// assertBudget checks that b has counted want attempts: the next Reserve
// answers want+1 (and counts it).
func assertBudget(t *testing.T, s session.Store, b session.Budget, want int64, what string) {
	t.Helper()
	got, err := s.Reserve(t.Context(), ttl, b)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != want+1 {
		t.Fatalf("%s: the budget holds %d attempts, want %d", what, got[0]-1, want)
	}
}

// assertNoCode checks that a code was not left behind (TakeCode finds
// neither it nor its spent marker).
func assertNoCode(t *testing.T, s session.Store, c *session.Code, what string) {
	t.Helper()
	if data, grant, err := s.TakeCode(t.Context(), c.Hash, c.Binding); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("%s: TakeCode = %q, %q, %v; want ErrNotFound (no code issued)", what, data, grant, err)
	}
}

// A successful step-up write: the session holds the verification under
// the new key and records the client, the code is stored, the flow is
// ended, the attempt given back once. Without a code: the elevation and
// the refund, no activity.
func testElevateAndIssue(t *testing.T, s session.Store) {
	ctx := t.Context()
	f := newStepUpFixture(t, s)
	// An online grant of the session follows its new TTL, as with
	// IssueCode (Activity.Grants).
	online := &session.Grant{ID: newID(), ClientID: "web", Subject: f.sess.Subject, SessionID: f.sess.ID, ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.PutGrant(ctx, online); err != nil {
		t.Fatal(err)
	}
	v := authn.Verification{Factor: authn.TOTP, At: f.sess.CreatedAt.Add(time.Second)}
	code := newCode()
	u := f.stepUp("key-1", v, code)
	u.Grants = []string{online.ID}
	done, err := s.ElevateAndIssue(ctx, u)
	if !done.Elevated || !done.FlowEnded || done.Bookkeeping != nil || err != nil {
		t.Fatalf("ElevateAndIssue = %+v, %v", done, err)
	}
	if g, err := s.GetGrant(ctx, online.ID); err != nil || g.ExpiresAt.Sub(time.Now().Add(ttl)).Abs() > 5*time.Second {
		t.Fatalf("the session's online grant after the step-up: %+v, %v; want it to expire with the session", g, err)
	}
	want := *f.sess
	want.KeyHash = session.KeyDigest("key-1")
	want.Verifications = append(slices.Clone(f.sess.Verifications), v)
	want.ClientIDs = []string{"bank", "web"}
	want.LastSeenAt = v.At
	assertSession(t, mustGet(t, s, f.sess.ID), &want)
	if _, err := s.GetFlow(ctx, f.flow); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the flow outlived its code: %v", err)
	}
	if data, _, err := s.TakeCode(ctx, code.Hash, code.Binding); err != nil || string(data) != "c" {
		t.Fatalf("TakeCode = %q, %v", data, err)
	}
	assertBudget(t, s, f.ip, 1, "after one refund")

	// No code: the elevation and the refund alone.
	g := newStepUpFixture(t, s)
	u = g.stepUp("key-1", v, nil)
	if done, err := s.ElevateAndIssue(ctx, u); !done.Elevated || done.FlowEnded || done.Bookkeeping != nil || err != nil {
		t.Fatalf("ElevateAndIssue(no code) = %+v, %v", done, err)
	}
	want = *g.sess
	want.KeyHash = session.KeyDigest("key-1")
	want.Verifications = append(slices.Clone(g.sess.Verifications), v)
	assertSession(t, mustGet(t, s, g.sess.ID), &want)
	if _, err := s.GetFlow(ctx, g.flow); err != nil {
		t.Fatalf("a write without a code ended the flow: %v", err)
	}
	assertBudget(t, s, g.ip, 1, "after one refund without a code")
}

// An elevation refused (a stale key, another subject, a session gone)
// issues no code — never a code whose acr/amr the session did not record
// — and touches nothing of the session; the attempt is still given back,
// once.
func testElevateAndIssueRefused(t *testing.T, s session.Store) {
	ctx := t.Context()
	v := authn.Verification{Factor: authn.TOTP, At: time.Now().Add(time.Second)}
	for _, c := range []struct {
		name  string
		write func(u *session.StepUp)
		want  error
	}{
		{"stale key", func(u *session.StepUp) { u.OldKeyHash = session.KeyDigest("key-stale") }, session.ErrKeyChanged},
		{"other subject", func(u *session.StepUp) { u.Subject = newID() }, session.ErrNotFound},
		{"session gone", func(u *session.StepUp) { u.SessionID = newID() }, session.ErrNotFound},
	} {
		f := newStepUpFixture(t, s)
		code := newCode()
		u := f.stepUp("key-1", v, code)
		c.write(&u)
		done, err := s.ElevateAndIssue(ctx, u)
		if done.Elevated || !errors.Is(err, c.want) {
			t.Fatalf("%s: ElevateAndIssue = %+v, %v; want not elevated, %v", c.name, done, err, c.want)
		}
		// The flow was ended with the code; the caller puts it back.
		if _, err := s.GetFlow(ctx, f.flow); !done.FlowEnded || !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("%s: FlowEnded %v, the flow: %v; want ended and said so", c.name, done.FlowEnded, err)
		}
		assertNoCode(t, s, code, c.name)
		assertSession(t, mustGet(t, s, f.sess.ID), f.sess)
		if c.name == "session gone" {
			assertNoSession(t, s, u.SessionID)
		}
		assertBudget(t, s, f.ip, 1, c.name)
	}
}

// Of concurrent step-ups from one key (two tabs, a double submission),
// exactly one elevates, and only its code is issued.
func testElevateAndIssueConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	f := newStepUpFixture(t, s)
	const n = 8
	codes := make([]*session.Code, n)
	elevated := make([]bool, n)
	errs := make([]error, n)
	flows := make([]string, n)
	for i := range n {
		codes[i] = newCode()
		flows[i] = newID()
		if err := s.PutFlow(ctx, flows[i], []byte("f"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	race(n, func(i int) {
		u := f.stepUp(fmt.Sprint("key-", i+1), authn.Verification{Factor: authn.TOTP, At: f.sess.CreatedAt.Add(time.Duration(i+1) * time.Second)}, codes[i])
		u.FlowID, u.Refund = flows[i], nil
		var done session.StepUpDone
		done, errs[i] = s.ElevateAndIssue(ctx, u)
		elevated[i] = done.Elevated
	})
	won := -1
	for i := range n {
		switch {
		case elevated[i] && errs[i] == nil:
			if won >= 0 {
				t.Fatalf("step-ups %d and %d both elevated from one key", won, i)
			}
			won = i
			if _, _, err := s.TakeCode(ctx, codes[i].Hash, codes[i].Binding); err != nil {
				t.Fatalf("the winner's code is not stored: %v", err)
			}
		case !elevated[i] && errors.Is(errs[i], session.ErrKeyChanged):
			assertNoCode(t, s, codes[i], "a loser's code")
		default:
			t.Fatalf("ElevateAndIssue = %v, %v", elevated[i], errs[i])
		}
	}
	if won < 0 {
		t.Fatal("no step-up elevated")
	}
	if got := mustGet(t, s, f.sess.ID); !got.HeldBy(fmt.Sprint("key-", won+1)) {
		t.Fatalf("the session is not held by the winner's key")
	}
}

// Of concurrent step-ups that finish one flow and all elevate (the same
// new key: the elevation is idempotent), exactly one issues its code: a
// code is issued at most once per flow.
func testElevateAndIssueClaimsFlow(t *testing.T, s session.Store) {
	ctx := t.Context()
	f := newStepUpFixture(t, s)
	const n = 8
	codes := make([]*session.Code, n)
	elevated := make([]bool, n)
	ended := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		codes[i] = newCode()
	}
	v := authn.Verification{Factor: authn.TOTP, At: f.sess.CreatedAt.Add(time.Second)}
	race(n, func(i int) {
		u := f.stepUp("key-1", v, codes[i])
		u.Refund = nil
		var done session.StepUpDone
		done, errs[i] = s.ElevateAndIssue(ctx, u)
		elevated[i] = done.Elevated
		ended[i] = done.FlowEnded
	})
	won := 0
	for i := range n {
		if !elevated[i] {
			t.Fatalf("ElevateAndIssue with the same new key did not elevate: %v", errs[i])
		}
		switch {
		case errs[i] == nil:
			won++
			if _, _, err := s.TakeCode(ctx, codes[i].Hash, codes[i].Binding); err != nil {
				t.Fatalf("the winner's code is not stored: %v", err)
			}
		case errors.Is(errs[i], session.ErrFlowEnded):
			assertNoCode(t, s, codes[i], "a loser's code")
			if ended[i] {
				t.Fatal("a step-up that lost the flow says it ended it: its caller would put it back")
			}
		default:
			t.Fatalf("ElevateAndIssue: %v", errs[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent step-ups ended one flow with a code, want 1", won, n)
	}
}

// ScriptFlusher is a store whose script cache a test can empty, as a
// Redis restart or failover does (redisstore.Store.FlushScripts).
type ScriptFlusher interface {
	FlushScripts(ctx context.Context) error
}

// After a restart or failover the scripts are not cached: the write is
// sent again, whole. It still elevates, issues the code and ends the
// flow once, and gives the attempt back once, not once per send.
func testElevateAndIssueEmptyScriptCache(t *testing.T, s session.Store) {
	fl, ok := s.(ScriptFlusher)
	if !ok {
		t.Skip("the store cannot empty its script cache")
	}
	ctx := t.Context()
	f := newStepUpFixture(t, s)
	// One more attempt: a refund applied twice would leave 1, not 2.
	if _, err := s.Reserve(ctx, ttl, f.ip); err != nil {
		t.Fatal(err)
	}
	if err := fl.FlushScripts(ctx); err != nil {
		t.Fatal(err)
	}
	v := authn.Verification{Factor: authn.TOTP, At: f.sess.CreatedAt.Add(time.Second)}
	code := newCode()
	done, err := s.ElevateAndIssue(ctx, f.stepUp("key-1", v, code))
	if !done.Elevated || !done.FlowEnded || done.Bookkeeping != nil || err != nil {
		t.Fatalf("ElevateAndIssue after an emptied script cache = %+v, %v", done, err)
	}
	if got := mustGet(t, s, f.sess.ID); !got.HeldBy("key-1") || len(got.Verifications) != 2 {
		t.Fatalf("session after the resend: %+v", got)
	}
	if _, _, err := s.TakeCode(ctx, code.Hash, code.Binding); err != nil {
		t.Fatalf("the code after the resend: %v", err)
	}
	assertBudget(t, s, f.ip, 2, "a refund sent with a pipeline sent twice")

	// A refused elevation after an emptied cache still issues nothing.
	g := newStepUpFixture(t, s)
	if err := fl.FlushScripts(ctx); err != nil {
		t.Fatal(err)
	}
	code = newCode()
	u := g.stepUp("key-1", v, code)
	u.OldKeyHash = session.KeyDigest("key-stale")
	if done, err := s.ElevateAndIssue(ctx, u); done.Elevated || !errors.Is(err, session.ErrKeyChanged) {
		t.Fatalf("ElevateAndIssue(stale key) after an emptied script cache = %+v, %v", done, err)
	}
	assertNoCode(t, s, code, "stale key after an emptied script cache")
	assertBudget(t, s, g.ip, 1, "a refused elevation's refund, sent twice")
}
