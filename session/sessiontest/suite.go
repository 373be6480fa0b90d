package sessiontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// Run runs the conformance suite against the stores newStore returns.
// Subtests run in parallel, each with a store of its own; newStore must be
// safe to call concurrently and should close its store when t ends.
//
// A few subtests wait on real TTLs of about a second.
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s session.Store)
	}{
		{"Ping", testPing},
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionMissing", testSessionMissing},
		{"SessionDelete", testSessionDelete},
		{"AddVerificationKeepsLatestPerFactor", testAddVerification},
		{"SetView", testSetView},
		{"WritesToMissingSessionCreateNothing", testWritesToMissingSession},
		{"Touch", testTouch},
		{"ListSessions", testListSessions},
		{"TTL", testTTL},
		{"SeedAccount", testSeedAccount},
		{"SeedAccountConcurrent", testSeedAccountConcurrent},
		{"AccountFields", testAccountFields},
		{"UseTOTPStep", testUseTOTPStep},
		{"UseTOTPStepConcurrent", testUseTOTPStepConcurrent},
		{"Flow", testFlow},
		{"Code", testCode},
		{"FlowAndSession", testFlowAndSession},
		{"IssueCode", testIssueCode},
		{"CodeConcurrent", testCodeConcurrent},
		{"Grant", testGrant},
		{"RotateRefresh", testRotateRefresh},
		{"RotateRefreshConcurrent", testRotateRefreshConcurrent},
		{"RevokeToken", testRevokeToken},
		{"InitSecret", testInitSecret},
		{"Budget", testBudget},
		{"BudgetConcurrent", testBudgetConcurrent},
		{"BudgetWindow", testBudgetWindow},
		{"ReserveTOTP", testReserveTOTP},
		{"ReserveTOTPConcurrent", testReserveTOTPConcurrent},
		{"Passkeys", testPasskeys},
		{"Challenge", testChallenge},
		{"ChallengeConcurrent", testChallengeConcurrent},
		{"StepUpGrant", testStepUpGrant},
		{"StepUpGrantConcurrent", testStepUpGrantConcurrent},
		{"ReplaceVerifications", testReplaceVerifications},
		{"LockAccount", testLockAccount},
		{"Elevate", testElevate},
		{"ElevateConcurrent", testElevateConcurrent},
	}
	tests = append(tests, factorTests...)
	tests = append(tests, grantEndTests...)
	tests = append(tests, cibaTests...)
	tests = append(tests, stepUpTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// ttl is long enough never to expire during a test.
const ttl = time.Hour

// shortTTL and afterShortTTL are for the few tests of expiry.
const (
	shortTTL      = time.Second
	afterShortTTL = 1500 * time.Millisecond
)

// binary is a payload that is not text, to catch stores that mangle bytes.
var binary = []byte{0, 1, 2, 0xfe, 0xff, '\n', 0, 'x'}

func testPing(t *testing.T, s session.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testSessionRoundTrip(t *testing.T, s session.Store) {
	now := time.Now()
	want := &session.Session{
		ID:         newID(),
		Subject:    newID(),
		CreatedAt:  now.Add(-time.Minute),
		LastSeenAt: now,
		// Out of order: GetSession sorts by time.
		Verifications: []authn.Verification{
			{Factor: authn.WebAuthn, At: now.Add(-10 * time.Second), UV: true, Hardware: true},
			{Factor: authn.Password, At: now.Add(-50 * time.Second)},
		},
		ClientIDs: []string{"web", "cli", "app"},
		Device:    "Firefox on Linux",
		View:      "4137",
	}
	mustCreate(t, s, want, ttl)
	got := mustGet(t, s, want.ID)
	want.Verifications = []authn.Verification{want.Verifications[1], want.Verifications[0]}
	want.ClientIDs = []string{"app", "cli", "web"}
	assertSession(t, got, want)

	// CreateSession replaces a session with the same id entirely.
	repl := &session.Session{ID: want.ID, Subject: want.Subject, CreatedAt: now, LastSeenAt: now}
	mustCreate(t, s, repl, ttl)
	assertSession(t, mustGet(t, s, want.ID), repl)
}

func testSessionMissing(t *testing.T, s session.Store) {
	if _, err := s.GetSession(t.Context(), newID()); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetSession(unknown) error = %v, want ErrNotFound", err)
	}
}

func testSessionDelete(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	if err := s.DeleteSession(ctx, sess.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	assertNoSession(t, s, sess.ID)
	if err := s.DeleteSession(ctx, sess.ID); err != nil {
		t.Fatalf("DeleteSession(deleted) = %v, want nil", err)
	}
	if err := s.DeleteSession(ctx, newID()); err != nil {
		t.Fatalf("DeleteSession(unknown) = %v, want nil", err)
	}
}

func testAddVerification(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	t0 := sess.CreatedAt
	adds := []authn.Verification{
		{Factor: authn.Password, At: t0.Add(1 * time.Second)},
		{Factor: authn.TOTP, At: t0.Add(2 * time.Second)},
		{Factor: authn.WebAuthn, At: t0.Add(3 * time.Second), UV: true},
		{Factor: authn.Password, At: t0.Add(4 * time.Second)},
		{Factor: authn.WebAuthn, At: t0.Add(5 * time.Second), UV: true, Hardware: true},
	}
	for _, v := range adds {
		if err := s.AddVerification(ctx, sess.ID, sess.Subject, v, ttl); err != nil {
			t.Fatalf("AddVerification(%s): %v", v.Factor, err)
		}
	}
	got := mustGet(t, s, sess.ID)
	want := []authn.Verification{adds[1], adds[3], adds[4]}
	if !equalVerifications(got.Verifications, want) {
		t.Fatalf("Verifications = %v, want %v (latest per factor, by time)", got.Verifications, want)
	}
	if got.Subject != sess.Subject || !got.CreatedAt.Equal(stamp(sess.CreatedAt)) {
		t.Fatalf("AddVerification changed the session: %+v", got)
	}
	// A write that names another subject is refused and changes nothing:
	// a verification can never land on someone else's session.
	late := authn.Verification{Factor: authn.Recovery, At: t0.Add(time.Minute)}
	if err := s.AddVerification(ctx, sess.ID, "someone-else", late, ttl); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("AddVerification(other subject) = %v, want ErrNotFound", err)
	}
	if err := s.Touch(ctx, sess.ID, "someone-else", t0.Add(time.Hour), "other", ttl); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Touch(other subject) = %v, want ErrNotFound", err)
	}
	if again := mustGet(t, s, sess.ID); !equalVerifications(again.Verifications, want) || len(again.ClientIDs) != 0 {
		t.Errorf("writes naming another subject changed the session: %+v", again)
	}
}

// SetView replaces a live session's view of its account and nothing
// else; a session of another subject, or none, is left alone.
func testSetView(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	sess.View = "1"
	mustCreate(t, s, sess, ttl)
	if err := s.SetView(ctx, sess.ID, sess.Subject, "35", ttl); err != nil {
		t.Fatalf("SetView: %v", err)
	}
	want := *sess
	want.View = "35"
	assertSession(t, mustGet(t, s, sess.ID), &want)
	if err := s.SetView(ctx, sess.ID, "someone-else", "7", ttl); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetView(other subject) = %v, want ErrNotFound", err)
	}
	assertSession(t, mustGet(t, s, sess.ID), &want)
	missing := newID()
	if err := s.SetView(ctx, missing, sess.Subject, "7", ttl); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetView(missing) = %v, want ErrNotFound", err)
	}
	assertNoSession(t, s, missing)
}

// Writes to a session that does not exist — never created, deleted, or
// expired — must fail and must not resurrect or half-create it.
func testWritesToMissingSession(t *testing.T, s session.Store) {
	ctx := t.Context()
	deleted := newSession(newID())
	mustCreate(t, s, deleted, ttl)
	if err := s.DeleteSession(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	v := authn.Verification{Factor: authn.TOTP, At: time.Now()}
	for _, id := range []string{newID(), deleted.ID} {
		if err := s.AddVerification(ctx, id, deleted.Subject, v, ttl); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("AddVerification(missing) = %v, want ErrNotFound", err)
		}
		if err := s.Touch(ctx, id, deleted.Subject, time.Now(), "web", ttl); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch(missing) = %v, want ErrNotFound", err)
		}
		if err := s.Touch(ctx, id, deleted.Subject, time.Now(), "", ttl); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch(missing, no client) = %v, want ErrNotFound", err)
		}
		assertNoSession(t, s, id)
	}
	list, err := s.ListSessions(ctx, deleted.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("ListSessions after writes to a deleted session = %v, want none", ids(list))
	}
}

func testTouch(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	at := sess.CreatedAt.Add(time.Minute)
	if err := s.Touch(ctx, sess.ID, sess.Subject, at, "", ttl); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	got := mustGet(t, s, sess.ID)
	if !got.LastSeenAt.Equal(stamp(at)) || len(got.ClientIDs) != 0 {
		t.Fatalf("after Touch(no client): LastSeenAt %v ClientIDs %v, want %v and none", got.LastSeenAt, got.ClientIDs, at)
	}
	for _, c := range []string{"web", "app", "web"} {
		at = at.Add(time.Second)
		if err := s.Touch(ctx, sess.ID, sess.Subject, at, c, ttl); err != nil {
			t.Fatalf("Touch(%s): %v", c, err)
		}
	}
	got = mustGet(t, s, sess.ID)
	if !got.LastSeenAt.Equal(stamp(at)) || !slices.Equal(got.ClientIDs, []string{"app", "web"}) {
		t.Fatalf("after Touch: LastSeenAt %v ClientIDs %v, want %v [app web]", got.LastSeenAt, got.ClientIDs, at)
	}
}

func testListSessions(t *testing.T, s session.Store) {
	ctx := t.Context()
	sub, other := newID(), newID()
	var mine []*session.Session
	for i := range 3 {
		sess := newSession(sub)
		sess.CreatedAt = sess.CreatedAt.Add(time.Duration(i) * time.Second)
		mustCreate(t, s, sess, ttl)
		mine = append(mine, sess)
	}
	mustCreate(t, s, newSession(other), ttl)

	if err := s.DeleteSession(ctx, mine[1].ID); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSessions(ctx, sub)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if got, want := ids(list), []string{mine[0].ID, mine[2].ID}; !sameSet(got, want) {
		t.Fatalf("ListSessions = %v, want %v", got, want)
	}
	for _, sess := range list {
		if sess.Subject != sub {
			t.Errorf("ListSessions(%s) returned a session of %s", sub, sess.Subject)
		}
	}
	if list, err := s.ListSessions(ctx, newID()); err != nil || len(list) != 0 {
		t.Fatalf("ListSessions(unknown) = %v, %v; want none", ids(list), err)
	}
}

// testTTL checks that records expire, and that writes extend a session.
// It sleeps once, for all the records at once.
func testTTL(t *testing.T, s session.Store) {
	ctx := t.Context()
	sub := newID()
	expiring := newSession(sub)
	mustCreate(t, s, expiring, shortTTL)
	kept := newSession(sub)
	mustCreate(t, s, kept, shortTTL)
	if err := s.Touch(ctx, kept.ID, sub, time.Now(), "web", ttl); err != nil {
		t.Fatal(err)
	}
	verified := newSession(sub)
	mustCreate(t, s, verified, shortTTL)
	if err := s.AddVerification(ctx, verified.ID, sub, authn.Verification{Factor: authn.Password, At: time.Now()}, ttl); err != nil {
		t.Fatal(err)
	}
	flow, code, grant, jti := newID(), newID(), newID(), newID()
	if err := s.PutFlow(ctx, flow, binary, shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCode(ctx, code, grant, "binding", binary, shortTTL, shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGrant(ctx, &session.Grant{ID: grant, ClientID: "web", Subject: sub, ExpiresAt: time.Now().Add(shortTTL)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, jti, shortTTL); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UseTOTPStep(ctx, sub, 42, shortTTL); err != nil || !ok {
		t.Fatalf("UseTOTPStep = %v, %v", ok, err)
	}

	time.Sleep(afterShortTTL)

	assertNoSession(t, s, expiring.ID)
	mustGet(t, s, kept.ID)
	mustGet(t, s, verified.ID)
	list, err := s.ListSessions(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(list), []string{kept.ID, verified.ID}; !sameSet(got, want) {
		t.Errorf("ListSessions after expiry = %v, want %v", got, want)
	}
	if _, err := s.GetFlow(ctx, flow); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetFlow(expired) error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.TakeCode(ctx, code, "binding"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("TakeCode(expired) error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetGrant(ctx, grant); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetGrant(expired) error = %v, want ErrNotFound", err)
	}
	if revoked, err := s.IsRevoked(ctx, jti); err != nil || revoked {
		t.Errorf("IsRevoked(expired) = %v, %v; want false", revoked, err)
	}
	if ok, err := s.UseTOTPStep(ctx, sub, 42, shortTTL); err != nil || !ok {
		t.Errorf("UseTOTPStep(expired step) = %v, %v; want true", ok, err)
	}
}

func testSeedAccount(t *testing.T, s session.Store) {
	ctx := t.Context()
	name := "Alice-" + newID()
	first := &session.Account{
		Subject:      newID(),
		Username:     name,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA",
		Email:        "alice@example.com",
		Phone:        "+15550100",
		Name:         "Alice",
		TOTPSecret:   "JBSWY3DPEHPK3PXP",
		EmailMFA:     true,
	}
	got, err := s.SeedAccount(ctx, first)
	if err != nil {
		t.Fatalf("SeedAccount: %v", err)
	}
	assertAccount(t, got, first)

	// Seeding again (a restart, another instance) changes nothing: the
	// configuration never overwrites the stored account, whose subject,
	// password hash, email, phone, TOTP secret and switches stay.
	again := &session.Account{
		Subject:      newID(),
		Username:     name,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$bmV3",
		Email:        "alice@example.org",
		Name:         "Alice B.",
	}
	got, err = s.SeedAccount(ctx, again)
	if err != nil {
		t.Fatalf("SeedAccount(again): %v", err)
	}
	want := *first
	assertAccount(t, got, &want)
	if _, err := s.GetAccount(ctx, again.Subject); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetAccount(subject of the second seed) error = %v, want ErrNotFound", err)
	}

	got, err = s.GetAccount(ctx, first.Subject)
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	assertAccount(t, got, &want)
	for _, u := range []string{name, "alice-" + name[len("Alice-"):], "ALICE-" + name[len("Alice-"):]} {
		got, err := s.AccountByUsername(ctx, u)
		if err != nil {
			t.Fatalf("AccountByUsername(%q): %v", u, err)
		}
		if got.Subject != first.Subject {
			t.Errorf("AccountByUsername(%q).Subject = %q, want %q", u, got.Subject, first.Subject)
		}
	}
	if _, err := s.AccountByUsername(ctx, "nobody-"+newID()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("AccountByUsername(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccount(ctx, newID()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetAccount(unknown) error = %v, want ErrNotFound", err)
	}
}

// Instances that start together seed the same users at once; they must
// agree on one subject per username.
func testSeedAccountConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	name := "bob-" + newID()
	const n = 8
	subs := make([]string, n)
	errs := make([]error, n)
	race(n, func(i int) {
		var a *session.Account
		a, errs[i] = s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: name, Email: "bob@example.com"})
		if a != nil {
			subs[i] = a.Subject
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("SeedAccount #%d: %v", i, err)
		}
	}
	for i := range subs {
		if subs[i] != subs[0] {
			t.Fatalf("concurrent SeedAccount returned subjects %v, want one", subs)
		}
	}
	got, err := s.AccountByUsername(ctx, name)
	if err != nil || got.Subject != subs[0] {
		t.Fatalf("AccountByUsername = %+v, %v; want subject %s", got, err, subs[0])
	}
}

func testAccountFields(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "carol-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	if a.TOTPSecret != "" || a.LastFactor != "" || a.EmailMFA {
		t.Fatalf("fresh account = %+v, want no TOTP, no last factor, no email MFA", a)
	}
	if err := s.SetTOTPSecret(ctx, a.Subject, "JBSWY3DPEHPK3PXP"); err != nil {
		t.Fatalf("SetTOTPSecret: %v", err)
	}
	if err := s.SetLastFactor(ctx, a.Subject, authn.TOTP); err != nil {
		t.Fatalf("SetLastFactor: %v", err)
	}
	got, err := s.GetAccount(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.LastFactor != authn.TOTP || got.Username != a.Username {
		t.Fatalf("account = %+v, want TOTP secret and last factor totp", got)
	}
	if err := s.SetTOTPSecret(ctx, a.Subject, ""); err != nil {
		t.Fatalf("SetTOTPSecret(\"\"): %v", err)
	}
	if got, _ := s.GetAccount(ctx, a.Subject); got == nil || got.TOTPSecret != "" {
		t.Fatalf("after SetTOTPSecret(\"\"): %+v, want no TOTP secret", got)
	}

	// Writes to an unknown subject create no partial account.
	ghost := newID()
	if err := s.SetTOTPSecret(ctx, ghost, "JBSWY3DPEHPK3PXP"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetTOTPSecret(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.SetLastFactor(ctx, ghost, authn.SMS); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetLastFactor(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccount(ctx, ghost); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("GetAccount after writes to an unknown subject: %v, want ErrNotFound", err)
	}
}

func testUseTOTPStep(t *testing.T, s session.Store) {
	ctx := t.Context()
	sub, other := newID(), newID()
	for _, c := range []struct {
		sub  string
		step int64
		want bool
	}{
		{sub, 1000, true},
		{sub, 1000, false}, // replay
		{sub, 1001, true},
		{other, 1000, true}, // steps are per user
		{other, 1000, false},
	} {
		got, err := s.UseTOTPStep(ctx, c.sub, c.step, ttl)
		if err != nil || got != c.want {
			t.Errorf("UseTOTPStep(%s, %d) = %v, %v; want %v", c.sub, c.step, got, err, c.want)
		}
	}
}

func testUseTOTPStepConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	sub := newID()
	const n = 16
	oks := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) { oks[i], errs[i] = s.UseTOTPStep(ctx, sub, 7, ttl) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := count(oks, true); c != 1 {
		t.Fatalf("%d of %d concurrent UseTOTPStep calls accepted the step, want 1", c, n)
	}
}

func testFlow(t *testing.T, s session.Store) {
	ctx := t.Context()
	id := newID()
	if _, err := s.GetFlow(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetFlow(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.PutFlow(ctx, id, binary, ttl); err != nil {
		t.Fatalf("PutFlow: %v", err)
	}
	if got, err := s.GetFlow(ctx, id); err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("GetFlow = %q, %v; want %q", got, err, binary)
	}
	if err := s.PutFlow(ctx, id, []byte("v2"), ttl); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetFlow(ctx, id); err != nil || string(got) != "v2" {
		t.Fatalf("GetFlow after overwrite = %q, %v; want v2", got, err)
	}
	if err := s.DeleteFlow(ctx, id); err != nil {
		t.Fatalf("DeleteFlow: %v", err)
	}
	if _, err := s.GetFlow(ctx, id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetFlow(deleted) error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteFlow(ctx, id); err != nil {
		t.Fatalf("DeleteFlow(deleted) = %v, want nil", err)
	}
}

func testCode(t *testing.T, s session.Store) {
	ctx := t.Context()
	code, grant := newID(), newID()
	if _, _, err := s.TakeCode(ctx, code, "binding"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("TakeCode(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.PutCode(ctx, code, grant, "binding", binary, ttl, ttl); err != nil {
		t.Fatalf("PutCode: %v", err)
	}
	// Another binding (a stolen code without its client, redirect URI or
	// verifier) neither spends the code nor learns its grant.
	for _, other := range []string{"other", "", "binding ", "bindin"} {
		if data, replayed, err := s.TakeCode(ctx, code, other); !errors.Is(err, session.ErrCodeMismatch) || data != nil || replayed != "" {
			t.Fatalf("TakeCode(binding %q) = %q, %q, %v; want ErrCodeMismatch", other, data, replayed, err)
		}
	}
	data, replayed, err := s.TakeCode(ctx, code, "binding")
	if err != nil || !bytes.Equal(data, binary) || replayed != "" {
		t.Fatalf("TakeCode = %q, %q, %v; want the payload", data, replayed, err)
	}
	for range 2 {
		data, replayed, err = s.TakeCode(ctx, code, "binding")
		if err != nil || data != nil || replayed != grant {
			t.Fatalf("TakeCode(replay) = %q, %q, %v; want nil, %q, nil", data, replayed, err, grant)
		}
	}
	// A replay without the binding revokes nothing: it is not told the grant.
	if data, replayed, err := s.TakeCode(ctx, code, "other"); !errors.Is(err, session.ErrCodeMismatch) || data != nil || replayed != "" {
		t.Fatalf("TakeCode(spent, other binding) = %q, %q, %v; want ErrCodeMismatch", data, replayed, err)
	}
}

// Two token requests racing with one code: one gets the payload, the
// others learn which grant to revoke.
func testCodeConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	code, grant := newID(), newID()
	if err := s.PutCode(ctx, code, grant, "binding", binary, ttl, ttl); err != nil {
		t.Fatal(err)
	}
	const n = 16
	datas := make([][]byte, n)
	replays := make([]string, n)
	errs := make([]error, n)
	// Every other racer presents another binding: they fail whatever the
	// order, and the rightful ones still split into one payload and replays.
	race(n, func(i int) {
		binding := "binding"
		if i%2 == 1 {
			binding = "stolen"
		}
		datas[i], replays[i], errs[i] = s.TakeCode(ctx, code, binding)
	})
	payloads := 0
	for i := range n {
		if i%2 == 1 {
			if !errors.Is(errs[i], session.ErrCodeMismatch) || datas[i] != nil || replays[i] != "" {
				t.Errorf("TakeCode #%d with another binding = %q, %q, %v", i, datas[i], replays[i], errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch {
		case datas[i] != nil:
			payloads++
			if !bytes.Equal(datas[i], binary) || replays[i] != "" {
				t.Errorf("TakeCode #%d = %q, %q", i, datas[i], replays[i])
			}
		case replays[i] != grant:
			t.Errorf("TakeCode #%d replayed grant = %q, want %q", i, replays[i], grant)
		}
	}
	if payloads != 1 {
		t.Fatalf("%d of %d concurrent TakeCode calls got the payload, want 1", payloads, n)
	}
}

func testGrant(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	want := &session.Grant{
		ID:          newID(),
		ClientID:    "web",
		Subject:     sess.Subject,
		SessionID:   sess.ID,
		Offline:     true,
		RefreshHash: "rt-1",
		Data:        binary,
		ExpiresAt:   time.Now().Add(ttl),
	}
	if _, err := s.GetGrant(ctx, want.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetGrant(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.PutGrant(ctx, want); err != nil {
		t.Fatalf("PutGrant: %v", err)
	}
	got, err := s.GetGrant(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetGrant: %v", err)
	}
	assertGrant(t, got, want)

	// PutGrant replaces the whole grant.
	repl := &session.Grant{ID: want.ID, ClientID: "cli", Subject: want.Subject, ExpiresAt: time.Now().Add(ttl)}
	if err := s.PutGrant(ctx, repl); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetGrant(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertGrant(t, got, repl)

	if err := s.DeleteGrant(ctx, want.ID); err != nil {
		t.Fatalf("DeleteGrant: %v", err)
	}
	if _, err := s.GetGrant(ctx, want.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetGrant(deleted) error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteGrant(ctx, want.ID); err != nil {
		t.Fatalf("DeleteGrant(deleted) = %v, want nil", err)
	}
	// A deleted id stays deleted: a PutGrant racing the deletion loses.
	if err := s.PutGrant(ctx, repl); !errors.Is(err, session.ErrGrantEnded) {
		t.Fatalf("PutGrant(deleted id) = %v, want ErrGrantEnded", err)
	}
	if _, err := s.GetGrant(ctx, want.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetGrant after PutGrant of a deleted id: %v, want ErrNotFound", err)
	}
}

func testRotateRefresh(t *testing.T, s session.Store) {
	ctx := t.Context()
	g := &session.Grant{ID: newID(), ClientID: "web", Subject: newID(), RefreshHash: "rt-1", ExpiresAt: time.Now().Add(ttl)}
	if err := s.PutGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	rotate := func(old, new string, want session.RotateResult) {
		t.Helper()
		got, err := s.RotateRefresh(ctx, g.ID, old, new)
		if err != nil || got != want {
			t.Fatalf("RotateRefresh(%s → %s) = %v, %v; want %v", old, new, got, err, want)
		}
	}
	rotate("rt-1", "rt-2", session.Rotated)
	got, err := s.GetGrant(ctx, g.ID)
	if err != nil || got.RefreshHash != "rt-2" || got.ClientID != "web" {
		t.Fatalf("after rotation: %+v, %v; want refresh hash rt-2, rest kept", got, err)
	}
	rotate("rt-2", "rt-3", session.Rotated)
	// rt-1 is an old token presented again: the family is revoked.
	rotate("rt-1", "rt-x", session.Reused)
	if _, err := s.GetGrant(ctx, g.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetGrant after reuse error = %v, want ErrNotFound (grant deleted)", err)
	}
	rotate("rt-3", "rt-4", session.Gone)
	if _, err := s.GetGrant(ctx, g.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("RotateRefresh on a gone grant recreated it: %v", err)
	}
	if got, err := s.RotateRefresh(ctx, newID(), "a", "b"); err != nil || got != session.Gone {
		t.Fatalf("RotateRefresh(unknown) = %v, %v; want Gone", got, err)
	}
}

// One refresh token presented twice at once: exactly one rotation; the
// other is reuse (or finds the grant already revoked).
func testRotateRefreshConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	g := &session.Grant{ID: newID(), ClientID: "web", Subject: newID(), RefreshHash: "rt-1", ExpiresAt: time.Now().Add(ttl)}
	if err := s.PutGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	const n = 16
	res := make([]session.RotateResult, n)
	errs := make([]error, n)
	race(n, func(i int) { res[i], errs[i] = s.RotateRefresh(ctx, g.ID, "rt-1", fmt.Sprintf("rt-2-%d", i)) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := count(res, session.Rotated); c != 1 {
		t.Fatalf("results %v: %d Rotated, want 1", res, c)
	}
	if c := count(res, session.Reused); c < 1 {
		t.Fatalf("results %v: no Reused, want the first loser to detect reuse", res)
	}
	if _, err := s.GetGrant(ctx, g.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetGrant after concurrent reuse error = %v, want ErrNotFound", err)
	}
}

func testRevokeToken(t *testing.T, s session.Store) {
	ctx := t.Context()
	jti, other := newID(), newID()
	if err := s.RevokeToken(ctx, jti, ttl); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if got, err := s.IsRevoked(ctx, jti); err != nil || !got {
		t.Fatalf("IsRevoked(revoked) = %v, %v; want true", got, err)
	}
	if got, err := s.IsRevoked(ctx, other); err != nil || got {
		t.Fatalf("IsRevoked(other) = %v, %v; want false", got, err)
	}
}

func testInitSecret(t *testing.T, s session.Store) {
	ctx := t.Context()
	name := "signing-" + newID()
	got, err := s.InitSecret(ctx, name, binary)
	if err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("InitSecret(first) = %q, %v; want %q", got, err, binary)
	}
	got, err = s.InitSecret(ctx, name, []byte("second"))
	if err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("InitSecret(second) = %q, %v; want the first value %q", got, err, binary)
	}
	if got, err := s.InitSecret(ctx, name+"-other", []byte("other")); err != nil || string(got) != "other" {
		t.Fatalf("InitSecret(other name) = %q, %v; want other", got, err)
	}

	CheckSwapSecret(t, s, name, binary)

	// Instances starting together all end up with one value.
	raced := "cookie-" + newID()
	const n = 8
	vals := make([][]byte, n)
	errs := make([]error, n)
	race(n, func(i int) { vals[i], errs[i] = s.InitSecret(ctx, raced, []byte{byte(i)}) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if !bytes.Equal(vals[i], vals[0]) {
			t.Fatalf("concurrent InitSecret returned %v, want one value", vals)
		}
	}
}

func testBudget(t *testing.T, s session.Store) {
	ctx := t.Context()
	user := session.Budget{Kind: session.BudgetUser, ID: newID(), Max: 3}
	ip := session.Budget{Kind: session.BudgetIP, ID: "192.0.2.1-" + newID(), Max: 10}
	for want := int64(1); want <= 4; want++ {
		got, err := s.Reserve(ctx, ttl, user, ip)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []int64{want, want}) {
			t.Fatalf("Reserve #%d = %v, want [%d %d]", want, got, want, want)
		}
	}
	// A success gives its attempt back; failures stay counted.
	if err := s.Refund(ctx, user, ip); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Reserve(ctx, ttl, user); err != nil || got[0] != 4 {
		t.Fatalf("Reserve after Refund = %v, %v; want [4]", got, err)
	}
	// Budgets are separate: another user, the same kind.
	other := session.Budget{Kind: session.BudgetUser, ID: newID(), Max: 3}
	if got, err := s.Reserve(ctx, ttl, other); err != nil || got[0] != 1 {
		t.Fatalf("Reserve(other user) = %v, %v; want [1]", got, err)
	}
	// A refund of a budget that has no window creates nothing.
	fresh := session.Budget{Kind: session.BudgetUser, ID: newID(), Max: 3}
	if err := s.Refund(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Reserve(ctx, ttl, fresh); err != nil || got[0] != 1 {
		t.Fatalf("Reserve after a refund with no window = %v, %v; want [1]", got, err)
	}
	if _, err := s.Reserve(ctx, ttl, session.Budget{Kind: session.BudgetUser, ID: newID()}); err == nil {
		t.Error("Reserve of a budget without a limit succeeded")
	}
}

// ReserveTOTP counts a TOTP attempt before its verified code takes
// effect: a good, unused step is claimed and the user's attempt given
// back in the same operation; a wrong code, a replayed step, an attempt
// over the limit or on a locked account stays counted and claims nothing.
func testReserveTOTP(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "totp-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	sub := a.Subject
	user := session.Budget{Kind: session.BudgetUser, ID: sub, Max: 3}
	ip := session.Budget{Kind: session.BudgetIP, ID: "192.0.2.7-" + newID(), Max: 10}
	bs := []session.Budget{user, ip}
	check := func(name string, step int64, wantCounts []int64, wantClaimed bool) {
		t.Helper()
		got, claimed, err := s.ReserveTOTP(ctx, ttl, bs, sub, step, ttl)
		if err != nil || !slices.Equal(got, wantCounts) || claimed != wantClaimed {
			t.Fatalf("%s: ReserveTOTP = %v, %v, %v; want %v, %v", name, got, claimed, err, wantCounts, wantClaimed)
		}
	}
	check("wrong code", -1, []int64{1, 1}, false)
	check("good code", 42, []int64{2, 2}, true) // the user's attempt is given back
	check("replay", 42, []int64{2, 3}, false)   // counted, as a wrong code
	if ok, err := s.UseTOTPStep(ctx, sub, 42, ttl); err != nil || ok {
		t.Fatalf("UseTOTPStep(claimed step) = %v, %v; want false", ok, err)
	}
	check("wrong code", -1, []int64{3, 4}, false)
	// Over the limit a good code claims nothing and the step stays free.
	check("over the limit", 43, []int64{4, 5}, false)
	if ok, err := s.UseTOTPStep(ctx, sub, 43, ttl); err != nil || !ok {
		t.Fatalf("UseTOTPStep(step refused over the limit) = %v, %v; want true", ok, err)
	}
	// A locked account counts nothing and claims nothing.
	locked, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "totp-locked-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LockAccount(ctx, locked.Subject); err != nil {
		t.Fatal(err)
	}
	lb := session.Budget{Kind: session.BudgetUser, ID: locked.Subject, Max: 3}
	if got, claimed, err := s.ReserveTOTP(ctx, ttl, []session.Budget{lb}, locked.Subject, 44, ttl); err != nil || claimed || got[0] <= lb.Max {
		t.Fatalf("ReserveTOTP(locked) = %v, %v, %v; want over the limit, nothing claimed", got, claimed, err)
	}
	if ok, err := s.UseTOTPStep(ctx, locked.Subject, 44, ttl); err != nil || !ok {
		t.Fatalf("UseTOTPStep after a locked ReserveTOTP = %v, %v; want true", ok, err)
	}
	// The subject's own budget is required.
	if _, _, err := s.ReserveTOTP(ctx, ttl, []session.Budget{ip}, sub, 45, ttl); err == nil {
		t.Error("ReserveTOTP without the subject's budget succeeded")
	}
}

// Concurrent attempts with the same good code: exactly one claims the
// step and is given back; the others stay counted, each once.
func testReserveTOTPConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	sub := newID()
	b := session.Budget{Kind: session.BudgetUser, ID: sub, Max: 100}
	const n = 16
	claimed := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) { _, claimed[i], errs[i] = s.ReserveTOTP(ctx, ttl, []session.Budget{b}, sub, 7, ttl) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := count(claimed, true); c != 1 {
		t.Fatalf("%d of %d concurrent ReserveTOTP calls claimed the step, want 1", c, n)
	}
	if got, err := s.Reserve(ctx, ttl, b); err != nil || got[0] != n {
		t.Fatalf("Reserve after the race = %v, %v; want [%d] (%d replays counted, the good one given back, this one)", got, err, n, n-1)
	}
}

func testBudgetConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	b := session.Budget{Kind: session.BudgetUser, ID: newID(), Max: 5}
	const n = 32
	got := make([]int64, n)
	errs := make([]error, n)
	race(n, func(i int) {
		var c []int64
		c, errs[i] = s.Reserve(ctx, ttl, b)
		if len(c) == 1 {
			got[i] = c[0]
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Every attempt gets its own count: exactly Max of them are allowed to
	// check a secret, however they interleave.
	slices.Sort(got)
	for i, c := range got {
		if c != int64(i+1) {
			t.Fatalf("concurrent Reserve counts = %v, want 1..%d each once", got, n)
		}
	}
}

func testBudgetWindow(t *testing.T, s session.Store) {
	// Real Redis expires in real time, so this test reads the clock around
	// every call instead of trusting its sleeps: on a loaded machine a
	// sleep can overshoot. A run whose timing cannot decide the question
	// is repeated; one that can decide it must give the right answer.
	const window = 2 * time.Second
	ctx := t.Context()
	for try := 1; ; try++ {
		b := session.Budget{Kind: session.BudgetUser, ID: newID(), Max: 2}
		if _, err := s.Reserve(ctx, window, b); err != nil {
			t.Fatal(err)
		}
		firstDone := time.Now() // the first window ends by firstDone+window
		time.Sleep(window / 2)
		limitStart := time.Now() // the restarted window ends after limitStart+window
		// The attempt that reaches the limit starts the window again, so the
		// lockout lasts a whole window from it.
		if got, err := s.Reserve(ctx, window, b); err != nil || got[0] != 2 {
			t.Fatalf("Reserve = %v, %v; want [2]", got, err)
		}
		limitDone := time.Now()
		time.Sleep(time.Until(firstDone.Add(window + 100*time.Millisecond)))
		got, err := s.Reserve(ctx, window, b)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(limitStart.Add(window)) {
			if try == 3 {
				t.Fatalf("the machine is too slow to observe a %v window", window)
			}
			t.Logf("try %d: the check ran after the restarted window could have ended; again", try)
			continue
		}
		if got[0] != 3 {
			t.Fatalf("Reserve after the first window, inside the restarted one = %v; want [3]", got)
		}
		time.Sleep(time.Until(limitDone.Add(window + 200*time.Millisecond)))
		if got, err := s.Reserve(ctx, window, b); err != nil || got[0] != 1 {
			t.Fatalf("Reserve after the window = %v, %v; want [1]", got, err)
		}
		return
	}
}

func testFlowAndSession(t *testing.T, s session.Store) {
	ctx := t.Context()
	flow := newID()
	sess := newSession(newID())
	if _, _, err := s.GetFlowAndSession(ctx, flow, sess.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetFlowAndSession(unknown flow) error = %v, want ErrNotFound", err)
	}
	if err := s.PutFlow(ctx, flow, binary, ttl); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", newID()} {
		b, got, err := s.GetFlowAndSession(ctx, flow, id)
		if err != nil || !bytes.Equal(b, binary) || got != nil {
			t.Fatalf("GetFlowAndSession(flow, no session %q) = %q, %v, %v; want the flow and nil", id, b, got, err)
		}
	}
	mustCreate(t, s, sess, ttl)
	b, got, err := s.GetFlowAndSession(ctx, flow, sess.ID)
	if err != nil || !bytes.Equal(b, binary) || got == nil {
		t.Fatalf("GetFlowAndSession = %q, %v, %v", b, got, err)
	}
	assertSession(t, got, mustGet(t, s, sess.ID))
}

func testIssueCode(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	flow, code, grant := newID(), newID(), newID()
	if err := s.PutFlow(ctx, flow, binary, ttl); err != nil {
		t.Fatal(err)
	}
	at := sess.CreatedAt.Add(time.Minute)
	bk, err := s.IssueCode(ctx,
		session.Code{Hash: code, GrantID: grant, Binding: "binding", Data: binary, TTL: ttl, SpentTTL: ttl},
		session.Activity{SessionID: sess.ID, Subject: sess.Subject, ClientID: "web", At: at, TTL: ttl}, flow)
	if err != nil || bk != nil {
		t.Fatalf("IssueCode = %v, %v", bk, err)
	}
	got := mustGet(t, s, sess.ID)
	if !got.LastSeenAt.Equal(stamp(at)) || !slices.Equal(got.ClientIDs, []string{"web"}) {
		t.Errorf("after IssueCode: LastSeenAt %v ClientIDs %v, want %v [web]", got.LastSeenAt, got.ClientIDs, at)
	}
	if _, err := s.GetFlow(ctx, flow); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the flow outlived IssueCode: %v", err)
	}
	if data, _, err := s.TakeCode(ctx, code, "binding"); err != nil || !bytes.Equal(data, binary) {
		t.Fatalf("TakeCode after IssueCode = %q, %v", data, err)
	}
	if _, replayed, _ := s.TakeCode(ctx, code, "binding"); replayed != grant {
		t.Errorf("replay after IssueCode traced to %q, want %q", replayed, grant)
	}
	// A session that is gone is bookkeeping: the code is stored anyway,
	// and nothing is created for the session.
	gone := newSession(newID())
	code2 := newID()
	bk, err = s.IssueCode(ctx,
		session.Code{Hash: code2, GrantID: grant, Binding: "binding", Data: binary, TTL: ttl, SpentTTL: ttl},
		session.Activity{SessionID: gone.ID, Subject: gone.Subject, ClientID: "web", At: at, TTL: ttl}, "")
	if err != nil || !errors.Is(bk, session.ErrNotFound) {
		t.Fatalf("IssueCode(gone session) = %v, %v; want ErrNotFound bookkeeping", bk, err)
	}
	assertNoSession(t, s, gone.ID)
	if data, _, err := s.TakeCode(ctx, code2, "binding"); err != nil || !bytes.Equal(data, binary) {
		t.Fatalf("TakeCode of a code issued for a gone session = %q, %v", data, err)
	}
	// The zero Activity touches nothing: the code is stored and the flow
	// claimed (one code per flow), the session left as it was.
	flow3, code3 := newID(), newID()
	if err := s.PutFlow(ctx, flow3, binary, ttl); err != nil {
		t.Fatal(err)
	}
	bk, err = s.IssueCode(ctx,
		session.Code{Hash: code3, GrantID: grant, Binding: "binding", Data: binary, TTL: ttl, SpentTTL: ttl}, session.Activity{}, flow3)
	if err != nil || bk != nil {
		t.Fatalf("IssueCode(no activity) = %v, %v", bk, err)
	}
	assertSession(t, mustGet(t, s, sess.ID), got)
	if _, err := s.GetFlow(ctx, flow3); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the flow outlived IssueCode(no activity): %v", err)
	}
	if _, err := s.IssueCode(ctx,
		session.Code{Hash: newID(), GrantID: grant, Binding: "binding", Data: binary, TTL: ttl, SpentTTL: ttl}, session.Activity{}, flow3); !errors.Is(err, session.ErrFlowEnded) {
		t.Errorf("a second IssueCode(no activity) of one flow = %v, want ErrFlowEnded", err)
	}
	if data, _, err := s.TakeCode(ctx, code3, "binding"); err != nil || !bytes.Equal(data, binary) {
		t.Fatalf("TakeCode of a code issued without activity = %q, %v", data, err)
	}
}

// race runs f(0) … f(n-1) in goroutines released at the same moment.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func count[T comparable](xs []T, v T) int {
	c := 0
	for _, x := range xs {
		if x == v {
			c++
		}
	}
	return c
}

// newID returns a random id, so that subtests sharing a Redis never meet.
func newID() string { return randomHex(12) }

func newSession(sub string) *session.Session {
	now := time.Now()
	return &session.Session{
		ID:            newID(),
		Subject:       sub,
		CreatedAt:     now,
		LastSeenAt:    now,
		Verifications: []authn.Verification{{Factor: authn.Password, At: now}},
	}
}

func mustCreate(t *testing.T, s session.Store, sess *session.Session, ttl time.Duration) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess, ttl); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func mustGet(t *testing.T, s session.Store, id string) *session.Session {
	t.Helper()
	got, err := s.GetSession(t.Context(), id)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if got.ID != id {
		t.Fatalf("GetSession(%s).ID = %s", id, got.ID)
	}
	return got
}

func assertNoSession(t *testing.T, s session.Store, id string) {
	t.Helper()
	if got, err := s.GetSession(t.Context(), id); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetSession = %+v, %v; want ErrNotFound", got, err)
	}
}

func assertSession(t *testing.T, got, want *session.Session) {
	t.Helper()
	if got.ID != want.ID || got.Subject != want.Subject ||
		!got.CreatedAt.Equal(stamp(want.CreatedAt)) || !got.LastSeenAt.Equal(stamp(want.LastSeenAt)) ||
		!equalVerifications(got.Verifications, want.Verifications) ||
		!slices.Equal(got.ClientIDs, want.ClientIDs) || got.KeyHash != want.KeyHash || got.Device != want.Device || got.View != want.View {
		t.Fatalf("session = %+v\nwant %+v", got, want)
	}
}

// stamp is a session time as a store keeps it: to the second
// (truncated), where a verification's time is kept to the nanosecond
// (issue 18: Redis bytes per login).
func stamp(t time.Time) time.Time { return t.Truncate(time.Second) }

func equalVerifications(a, b []authn.Verification) bool {
	return slices.EqualFunc(a, b, func(x, y authn.Verification) bool {
		return x.Factor == y.Factor && x.At.Equal(y.At) && x.UV == y.UV && x.Hardware == y.Hardware
	})
}

func assertAccount(t *testing.T, got, want *session.Account) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("account = %+v\nwant %+v", got, want)
	}
}

// assertGrant compares a grant read back with the one stored: its expiry
// to the second (a store may keep it as a TTL, which moves with the
// session's for an online grant: see session.Activity.Grants).
func assertGrant(t *testing.T, got, want *session.Grant) {
	t.Helper()
	if got.ID != want.ID || got.ClientID != want.ClientID || got.Subject != want.Subject ||
		got.SessionID != want.SessionID || got.Offline != want.Offline ||
		got.RefreshHash != want.RefreshHash || !bytes.Equal(got.Data, want.Data) ||
		got.ExpiresAt.Sub(want.ExpiresAt).Abs() > time.Second {
		t.Fatalf("grant = %+v\nwant %+v", got, want)
	}
}

func ids(list []*session.Session) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func testPasskeys(t *testing.T, s session.Store) {
	ctx := t.Context()
	pk := session.StoredPasskey{ID: "cred-b", Data: binary}
	if err := s.PutPasskey(ctx, "nobody-"+newID(), pk); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("PutPasskey on a missing account = %v, want ErrNotFound", err)
	}
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-" + newID(), Username: "pk-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Passkeys) != 0 {
		t.Fatalf("new account has passkeys %v", a.Passkeys)
	}
	if err := s.UpdatePasskey(ctx, a.Subject, pk); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("UpdatePasskey of a missing credential = %v, want ErrNotFound", err)
	}
	if err := s.PutPasskey(ctx, a.Subject, pk); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPasskey(ctx, a.Subject, session.StoredPasskey{ID: "cred-a", Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdatePasskey(ctx, a.Subject, session.StoredPasskey{ID: "cred-a", Data: []byte("a2")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAccount(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	want := []session.StoredPasskey{{ID: "cred-a", Data: []byte("a2")}, pk}
	if !reflect.DeepEqual(got.Passkeys, want) {
		t.Fatalf("passkeys = %v, want %v (sorted by id)", got.Passkeys, want)
	}
	if err := s.DeletePasskey(ctx, a.Subject, "cred-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePasskey(ctx, a.Subject, "cred-a"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("second DeletePasskey = %v, want ErrNotFound", err)
	}
	// A sign-count write racing with the removal must not bring it back.
	if err := s.UpdatePasskey(ctx, a.Subject, session.StoredPasskey{ID: "cred-a", Data: []byte("a3")}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("UpdatePasskey after delete = %v, want ErrNotFound", err)
	}
	got, err = s.GetAccount(ctx, a.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Passkeys, []session.StoredPasskey{pk}) {
		t.Fatalf("passkeys after delete = %v", got.Passkeys)
	}
}

func testChallenge(t *testing.T, s session.Store) {
	ctx := t.Context()
	c := "chal-" + newID()
	if _, err := s.TakeChallenge(ctx, c); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("TakeChallenge of nothing = %v, want ErrNotFound", err)
	}
	if err := s.PutChallenge(ctx, c, binary, ttl); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakeChallenge(ctx, c)
	if err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("TakeChallenge = %q, %v", got, err)
	}
	if _, err := s.TakeChallenge(ctx, c); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("second TakeChallenge = %v, want ErrNotFound", err)
	}
	short := "chal-" + newID()
	if err := s.PutChallenge(ctx, short, binary, shortTTL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(afterShortTTL)
	if _, err := s.TakeChallenge(ctx, short); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("TakeChallenge after its TTL = %v, want ErrNotFound", err)
	}
}

func testChallengeConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	c := "chal-" + newID()
	if err := s.PutChallenge(ctx, c, []byte("state"), ttl); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	won := 0
	race(16, func(int) {
		if b, err := s.TakeChallenge(ctx, c); err == nil && string(b) == "state" {
			mu.Lock()
			won++
			mu.Unlock()
		}
	})
	if won != 1 {
		t.Fatalf("%d of 16 concurrent TakeChallenge calls got the challenge, want exactly 1", won)
	}
}

func testStepUpGrant(t *testing.T, s session.Store) {
	ctx := t.Context()
	now := time.Now()
	sub, hash := newID(), newID()
	g := &session.StepUpGrant{Subject: sub, Action: "withdraw", ClientID: "bank", OneTime: false, ExpiresAt: now.Add(time.Minute), Factor: "totp"}
	if err := s.PutStepUpGrant(ctx, hash, g); err != nil {
		t.Fatal(err)
	}
	use := func(hash, sub, action, client string, at time.Time) bool {
		t.Helper()
		factor, ok, err := s.UseStepUpGrant(ctx, hash, sub, action, client, at)
		if err != nil {
			t.Fatal(err)
		}
		if ok && factor != g.Factor {
			t.Fatalf("UseStepUpGrant factor = %q, want %q", factor, g.Factor)
		}
		return ok
	}
	// Mismatches fail and leave the grant alone.
	for _, m := range [][3]string{{newID(), "withdraw", "bank"}, {sub, "transfer", "bank"}, {sub, "withdraw", "other"}} {
		if use(hash, m[0], m[1], m[2], now) {
			t.Fatalf("grant used with %v", m)
		}
	}
	if use(newID(), sub, "withdraw", "bank", now) {
		t.Fatal("an unknown grant was accepted")
	}
	// A time-based grant holds until it expires, however often it is used.
	for range 3 {
		if !use(hash, sub, "withdraw", "bank", now) {
			t.Fatal("time-based grant refused before expiry")
		}
	}
	if use(hash, sub, "withdraw", "bank", now.Add(time.Minute)) {
		t.Fatal("time-based grant accepted at its expiry")
	}
	// A one-time grant survives mismatches and holds exactly once.
	once := newID()
	g.OneTime = true
	if err := s.PutStepUpGrant(ctx, once, g); err != nil {
		t.Fatal(err)
	}
	if use(once, sub, "transfer", "bank", now) || !use(once, sub, "withdraw", "bank", now) || use(once, sub, "withdraw", "bank", now) {
		t.Fatal("one-time grant: want refused for another action, then one success, then refused")
	}
	if err := s.PutStepUpGrant(ctx, newID(), &session.StepUpGrant{Subject: sub, ExpiresAt: time.Now().Add(-time.Second)}); err == nil {
		t.Error("a grant that has already expired was stored")
	}
}

func testStepUpGrantConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	hash, sub := newID(), newID()
	if err := s.PutStepUpGrant(ctx, hash, &session.StepUpGrant{Subject: sub, Action: "a", ClientID: "c", OneTime: true, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range n {
		wg.Go(func() {
			_, ok, err := s.UseStepUpGrant(ctx, hash, sub, "a", "c", time.Now())
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of %d concurrent uses of a one-time grant succeeded, want 1", wins, n)
	}
}

func testReplaceVerifications(t *testing.T, s session.Store) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	sess := &session.Session{ID: newID(), Subject: newID(), CreatedAt: now, LastSeenAt: now, Verifications: []authn.Verification{
		{Factor: authn.Password, At: now}, {Factor: authn.TOTP, At: now.Add(time.Second)}, {Factor: authn.WebAuthn, At: now, UV: true},
	}}
	if err := s.CreateSession(ctx, sess, ttl); err != nil {
		t.Fatal(err)
	}
	keep := []authn.Verification{{Factor: authn.Password, At: now}}
	if err := s.ReplaceVerifications(ctx, sess.ID, "someone-else", nil); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("ReplaceVerifications for another subject: %v, want ErrNotFound", err)
	}
	if err := s.ReplaceVerifications(ctx, sess.ID, sess.Subject, keep); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Verifications) != 1 || got.Verifications[0].Factor != authn.Password || !got.Verifications[0].At.Equal(now) {
		t.Fatalf("verifications after replace: %+v", got.Verifications)
	}
	if err := s.ReplaceVerifications(ctx, newID(), sess.Subject, keep); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("ReplaceVerifications of a missing session: %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
}

func testLockAccount(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "locked-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	b := session.Budget{Kind: session.BudgetUser, ID: a.Subject, Max: 3}
	ip := session.Budget{Kind: session.BudgetIP, ID: "198.51.100.1-" + newID(), Max: 10}
	if got, err := s.Reserve(ctx, ttl, b); err != nil || got[0] != 1 {
		t.Fatalf("Reserve before lock = %v, %v", got, err)
	}
	if err := s.LockAccount(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || !got.Locked {
		t.Fatalf("GetAccount after LockAccount: locked %v, %v", got != nil && got.Locked, err)
	}
	for range 2 {
		got, err := s.Reserve(ctx, ttl, b, ip)
		if err != nil || got[0] <= b.Max || got[1] != 1 {
			t.Fatalf("Reserve while locked = %v, %v; want the user over its limit and the ip counted once", got, err)
		}
		if err := s.Refund(ctx, ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UnlockAccount(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || got.Locked {
		t.Fatalf("GetAccount after UnlockAccount: %+v, %v", got, err)
	}
	// Unlocking also forgets the failures counted before.
	if got, err := s.Reserve(ctx, ttl, b); err != nil || got[0] != 1 {
		t.Fatalf("Reserve after unlock = %v, %v; want [1]", got, err)
	}
	if err := s.LockAccount(ctx, newID()); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("LockAccount without an account: %v, want ErrNotFound", err)
	}
}

// Elevate records a verification and renews the session's key in one
// step: the session keeps its id and everything else, the old key holds
// nothing, a stale key writes nothing, and another subject's or a missing
// session is refused without being created.
func testElevate(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	sess.KeyHash = session.KeyDigest("key-0")
	sess.ClientIDs = []string{"web"}
	mustCreate(t, s, sess, ttl)
	if ok, err := s.PutOTP(ctx, sess.ID, "login-sms", "code-hash", ttl, time.Second); err != nil || !ok {
		t.Fatalf("PutOTP = %v, %v", ok, err)
	}
	v := authn.Verification{Factor: authn.TOTP, At: sess.CreatedAt.Add(time.Second)}
	if err := s.Elevate(ctx, sess.ID, sess.Subject, session.KeyDigest("key-0"), session.KeyDigest("key-1"), v, ttl); err != nil {
		t.Fatalf("Elevate: %v", err)
	}
	got := mustGet(t, s, sess.ID)
	want := *sess
	want.KeyHash = session.KeyDigest("key-1")
	want.Verifications = append(slices.Clone(sess.Verifications), v)
	assertSession(t, got, &want)
	if !got.HeldBy("key-1") || got.HeldBy("key-0") {
		t.Fatalf("after Elevate the session is held by key-1 %v, by key-0 %v; want only key-1", got.HeldBy("key-1"), got.HeldBy("key-0"))
	}
	if has, err := s.HasOTP(ctx, sess.ID, "login-sms"); err != nil || !has {
		t.Fatalf("Elevate lost the session's one-time code: %v, %v", has, err)
	}
	if list, err := s.ListSessions(ctx, sess.Subject); err != nil || len(list) != 1 || list[0].KeyHash != want.KeyHash {
		t.Fatalf("ListSessions after Elevate = %+v, %v", list, err)
	}

	// The old key renews nothing and records nothing.
	late := authn.Verification{Factor: authn.Recovery, At: v.At.Add(time.Second)}
	if err := s.Elevate(ctx, sess.ID, sess.Subject, session.KeyDigest("key-0"), session.KeyDigest("key-2"), late, ttl); !errors.Is(err, session.ErrKeyChanged) {
		t.Fatalf("Elevate(stale key) = %v, want ErrKeyChanged", err)
	}
	if err := s.Elevate(ctx, sess.ID, "someone-else", want.KeyHash, session.KeyDigest("key-2"), late, ttl); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Elevate(other subject) = %v, want ErrNotFound", err)
	}
	assertSession(t, mustGet(t, s, sess.ID), &want)
	missing := newID()
	if err := s.Elevate(ctx, missing, sess.Subject, want.KeyHash, session.KeyDigest("key-2"), late, ttl); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Elevate(missing) = %v, want ErrNotFound", err)
	}
	assertNoSession(t, s, missing)
}

// Of concurrent elevations from one key, exactly one renews it.
func testElevateConcurrent(t *testing.T, s session.Store) {
	sess := newSession(newID())
	sess.KeyHash = session.KeyDigest("key-0")
	mustCreate(t, s, sess, ttl)
	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      []string
		conflict int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := session.KeyDigest(fmt.Sprint("key-", i+1))
			v := authn.Verification{Factor: authn.TOTP, At: sess.CreatedAt.Add(time.Duration(i+1) * time.Second)}
			err := s.Elevate(t.Context(), sess.ID, sess.Subject, sess.KeyHash, next, v, ttl)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, next)
			case errors.Is(err, session.ErrKeyChanged):
				conflict++
			default:
				t.Errorf("Elevate: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || conflict != n-1 {
		t.Fatalf("%d elevations renewed the key and %d conflicted; want 1 and %d", len(won), conflict, n-1)
	}
	if got := mustGet(t, s, sess.ID); got.KeyHash != won[0] {
		t.Fatalf("key digest %q, want the winner's %q", got.KeyHash, won[0])
	}
}

// SecretSwapper is the compare-and-set half of the shared-secret
// contract that the Redis store and the account database both keep.
type SecretSwapper interface {
	InitSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	SwapSecret(ctx context.Context, name string, old, value []byte) (bool, error)
}

// CheckSwapSecret checks SwapSecret on a name whose value is cur. Both
// conformance suites (this one and account/accounttest) run it, so the
// two stores are held to one contract.
func CheckSwapSecret(t *testing.T, s SecretSwapper, name string, cur []byte) {
	t.Helper()
	ctx := t.Context()
	// SwapSecret: compare and set; of several swaps from one value, one
	// wins; a swap from a stale value or of a missing name changes nothing.
	if ok, err := s.SwapSecret(ctx, name+"-missing", []byte("x"), []byte("y")); err != nil || ok {
		t.Fatalf("SwapSecret(missing) = %v, %v; want false", ok, err)
	}
	const m = 6
	won := make([]bool, m)
	serrs := make([]error, m)
	race(m, func(i int) { won[i], serrs[i] = s.SwapSecret(ctx, name, cur, []byte(fmt.Sprintf("swapped-%d", i))) })
	if err := errors.Join(serrs...); err != nil {
		t.Fatal(err)
	}
	winner := -1
	for i, w := range won {
		if w {
			if winner >= 0 {
				t.Fatalf("two swaps from one value both won: %v", won)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no swap won")
	}
	if v, err := s.InitSecret(ctx, name, []byte("later")); err != nil || string(v) != fmt.Sprintf("swapped-%d", winner) {
		t.Fatalf("after the swap the value is %q, %v; want swapped-%d", v, err, winner)
	}
	if ok, err := s.SwapSecret(ctx, name, cur, []byte("stale")); err != nil || ok {
		t.Fatalf("SwapSecret from a stale value = %v, %v; want false", ok, err)
	}
}
