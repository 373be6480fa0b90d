package sessiontest

import (
	"errors"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// factorTests cover the stores of the SMS, email and recovery-code
// factors (PhoneStore, RecoveryStore, OTPStore).
var factorTests = []struct {
	name string
	fn   func(t *testing.T, s session.Store)
}{
	{"SetPhone", testSetPhone},
	{"ReplacePasswordHash", testReplacePasswordHash},
	{"SetEmailMFA", testSetEmailMFA},
	{"RecoveryCodes", testRecoveryCodes},
	{"RecoveryCodeConcurrent", testRecoveryCodeConcurrent},
	{"OTP", testOTP},
	{"OTPCooldownAndExpiry", testOTPCooldownAndExpiry},
	{"OTPConcurrent", testOTPConcurrent},
	{"IssueCodeClaimsFlow", testIssueCodeClaimsFlow},
}

func testSetPhone(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "dave-" + newID(), Phone: "+15555550100"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Phone != "+15555550100" {
		t.Fatalf("seeded phone = %q", a.Phone)
	}
	if err := s.SetPhone(ctx, a.Subject, "+15555550199"); err != nil {
		t.Fatalf("SetPhone: %v", err)
	}
	// A seed without a phone keeps the one the user enrolled.
	got, err := s.SeedAccount(ctx, &session.Account{Subject: a.Subject, Username: a.Username})
	if err != nil || got.Phone != "+15555550199" {
		t.Fatalf("after a seed without phone: %+v, %v; want the enrolled phone", got, err)
	}
	if err := s.SetPhone(ctx, newID(), "+15555550100"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetPhone(unknown) = %v, want ErrNotFound", err)
	}
}

// testSetEmailMFA: the user's own switch, which a seed of an existing
// account leaves alone; a new account takes the seed's.
func testSetEmailMFA(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "fay-" + newID(), Email: "fay@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if a.EmailMFA {
		t.Fatal("a new account seeded without email_mfa has email codes on")
	}
	check := func(step string, want bool) {
		t.Helper()
		got, err := s.GetAccount(ctx, a.Subject)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got.EmailMFA != want || got.Email != "fay@example.com" || got.Username != a.Username {
			t.Fatalf("%s: account %+v, want email_mfa %v and the rest unchanged", step, got, want)
		}
	}
	if err := s.SetEmailMFA(ctx, a.Subject, true); err != nil {
		t.Fatalf("SetEmailMFA(on): %v", err)
	}
	check("after turning it on", true)
	if _, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: a.Username, Email: "fay@example.com"}); err != nil {
		t.Fatal(err)
	}
	check("after a seed without email_mfa", true)
	if err := s.SetEmailMFA(ctx, a.Subject, false); err != nil {
		t.Fatalf("SetEmailMFA(off): %v", err)
	}
	check("after turning it off", false)
	if _, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: a.Username, Email: "fay@example.com"}); err != nil {
		t.Fatal(err)
	}
	check("after another seed without email_mfa", false)
	// The seed creates only: email_mfa: true in it leaves the user's
	// choice too.
	if _, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: a.Username, Email: "fay@example.com", EmailMFA: true}); err != nil {
		t.Fatal(err)
	}
	check("after a seed with email_mfa: true", false)
	if b, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "gil-" + newID(), EmailMFA: true}); err != nil || !b.EmailMFA {
		t.Fatalf("a new account seeded with email_mfa: true = %+v, %v; want email codes on", b, err)
	}
	sub := newID()
	if err := s.SetEmailMFA(ctx, sub, true); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetEmailMFA(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccount(ctx, sub); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetEmailMFA(unknown) created an account: %v", err)
	}
}

func testRecoveryCodes(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "erin-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	if a.RecoveryCodes != 0 {
		t.Fatalf("fresh account has %d recovery codes", a.RecoveryCodes)
	}
	if err := s.SetRecoveryCodes(ctx, a.Subject, []string{"h1", "h2", "h3"}); err != nil {
		t.Fatalf("SetRecoveryCodes: %v", err)
	}
	if n, err := s.CountRecoveryCodes(ctx, a.Subject); err != nil || n != 3 {
		t.Fatalf("CountRecoveryCodes = %d, %v; want 3", n, err)
	}
	for _, c := range []struct {
		hash string
		want bool
	}{{"h2", true}, {"h2", false}, {"nope", false}, {"h1", true}} {
		if got, err := s.UseRecoveryCode(ctx, a.Subject, c.hash); err != nil || got != c.want {
			t.Errorf("UseRecoveryCode(%s) = %v, %v; want %v", c.hash, got, err, c.want)
		}
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || got.RecoveryCodes != 1 {
		t.Fatalf("GetAccount().RecoveryCodes = %+v, %v; want 1", got, err)
	}
	// A new set replaces the old one whole.
	if err := s.SetRecoveryCodes(ctx, a.Subject, []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, a.Subject, "h3"); ok {
		t.Error("a code of the replaced set still worked")
	}
	if n, _ := s.CountRecoveryCodes(ctx, a.Subject); n != 2 {
		t.Errorf("after replacing: %d codes, want 2", n)
	}
	// Codes are per user.
	other, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "frank-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UseRecoveryCode(ctx, other.Subject, "n1"); ok {
		t.Error("another user's code hash worked")
	}
	// No account, no codes: nothing is written.
	ghost := newID()
	if err := s.SetRecoveryCodes(ctx, ghost, []string{"g"}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetRecoveryCodes(unknown) = %v, want ErrNotFound", err)
	}
	if n, _ := s.CountRecoveryCodes(ctx, ghost); n != 0 {
		t.Errorf("an unknown subject has %d codes", n)
	}
}

func testRecoveryCodeConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "gina-" + newID()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecoveryCodes(ctx, a.Subject, []string{"only"}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	oks := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) { oks[i], errs[i] = s.UseRecoveryCode(ctx, a.Subject, "only") })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := count(oks, true); c != 1 {
		t.Fatalf("%d of %d concurrent uses of one recovery code succeeded, want 1", c, n)
	}
}

func testOTP(t *testing.T, s session.Store) {
	ctx := t.Context()
	sid, other := newID(), newID()
	if ok, err := s.HasOTP(ctx, sid, "login:sms"); err != nil || ok {
		t.Fatalf("HasOTP before any = %v, %v", ok, err)
	}
	if ok, err := s.PutOTP(ctx, sid, "login:sms", "hash-1", ttl, time.Millisecond); err != nil || !ok {
		t.Fatalf("PutOTP = %v, %v", ok, err)
	}
	if ok, _ := s.HasOTP(ctx, sid, "login:sms"); !ok {
		t.Fatal("HasOTP after PutOTP = false")
	}
	// Bound to the session and the purpose.
	for _, c := range []struct{ sid, purpose string }{{other, "login:sms"}, {sid, "login:email"}, {sid, "enroll:sms"}} {
		if ok, err := s.UseOTP(ctx, c.sid, c.purpose, "hash-1", 5); err != nil || ok {
			t.Errorf("UseOTP(%s, %s) of another binding = %v, %v", c.sid, c.purpose, ok, err)
		}
	}
	if ok, err := s.UseOTP(ctx, sid, "login:sms", "wrong", 5); err != nil || ok {
		t.Fatalf("UseOTP(wrong) = %v, %v", ok, err)
	}
	if ok, err := s.UseOTP(ctx, sid, "login:sms", "hash-1", 5); err != nil || !ok {
		t.Fatalf("UseOTP(right) = %v, %v", ok, err)
	}
	if ok, _ := s.UseOTP(ctx, sid, "login:sms", "hash-1", 5); ok {
		t.Fatal("a code was used twice")
	}
	if ok, _ := s.HasOTP(ctx, sid, "login:sms"); ok {
		t.Fatal("HasOTP after use = true")
	}

	// A used code ends its cooldown: the next step-up may send at once.
	if ok, err := s.PutOTP(ctx, sid, "login:sms", "hash-2", ttl, ttl); err != nil || !ok {
		t.Fatalf("PutOTP after a used code = %v, %v; want stored", ok, err)
	}
	// The maxWrong-th mismatch deletes the code: the right one fails after.
	for range 3 {
		if ok, _ := s.UseOTP(ctx, sid, "login:sms", "wrong", 3); ok {
			t.Fatal("a wrong code was accepted")
		}
	}
	if ok, _ := s.UseOTP(ctx, sid, "login:sms", "hash-2", 3); ok {
		t.Fatal("the code still worked after maxWrong mismatches")
	}
}

func testOTPCooldownAndExpiry(t *testing.T, s session.Store) {
	ctx := t.Context()
	sid := newID()
	if ok, err := s.PutOTP(ctx, sid, "login:email", "h1", shortTTL, shortTTL); err != nil || !ok {
		t.Fatalf("PutOTP = %v, %v", ok, err)
	}
	// During the cooldown nothing is replaced.
	if ok, err := s.PutOTP(ctx, sid, "login:email", "h2", ttl, shortTTL); err != nil || ok {
		t.Fatalf("PutOTP during the cooldown = %v, %v; want false", ok, err)
	}
	if ok, _ := s.UseOTP(ctx, sid, "login:email", "h2", 5); ok {
		t.Fatal("a code refused by the cooldown was stored")
	}
	// Another purpose has its own cooldown.
	if ok, err := s.PutOTP(ctx, sid, "enroll:sms", "e1", ttl, shortTTL); err != nil || !ok {
		t.Fatalf("PutOTP of another purpose = %v, %v", ok, err)
	}
	time.Sleep(afterShortTTL)
	if ok, _ := s.UseOTP(ctx, sid, "login:email", "h1", 5); ok {
		t.Fatal("an expired code was accepted")
	}
	if ok, err := s.PutOTP(ctx, sid, "login:email", "h3", ttl, shortTTL); err != nil || !ok {
		t.Fatalf("PutOTP after the cooldown = %v, %v", ok, err)
	}
	if ok, _ := s.UseOTP(ctx, sid, "login:email", "h3", 5); !ok {
		t.Fatal("the new code was refused")
	}
}

func testOTPConcurrent(t *testing.T, s session.Store) {
	ctx := t.Context()
	sid := newID()
	if _, err := s.PutOTP(ctx, sid, "login:sms", "h", ttl, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	const n = 16
	oks := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) { oks[i], errs[i] = s.UseOTP(ctx, sid, "login:sms", "h", 5) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if c := count(oks, true); c != 1 {
		t.Fatalf("%d of %d concurrent uses of one code succeeded, want 1", c, n)
	}
}

// Of concurrent IssueCode calls ending one flow exactly one stores its
// code; the others get ErrFlowEnded and leave no code behind.
func testIssueCodeClaimsFlow(t *testing.T, s session.Store) {
	ctx := t.Context()
	sess := newSession(newID())
	mustCreate(t, s, sess, ttl)
	flow := newID()
	if err := s.PutFlow(ctx, flow, []byte("f"), ttl); err != nil {
		t.Fatal(err)
	}
	const n = 8
	codes := make([]string, n)
	errs := make([]error, n)
	for i := range codes {
		codes[i] = newID()
	}
	race(n, func(i int) {
		_, errs[i] = s.IssueCode(ctx,
			session.Code{Hash: codes[i], GrantID: "g", Binding: "binding", Data: []byte("c"), TTL: ttl, SpentTTL: ttl},
			session.Activity{SessionID: sess.ID, Subject: sess.Subject, At: time.Now(), TTL: ttl}, flow)
	})
	won := 0
	for i, err := range errs {
		_, _, takeErr := s.TakeCode(ctx, codes[i], "binding")
		switch {
		case err == nil:
			won++
			if takeErr != nil {
				t.Errorf("the winner's code is not stored: %v", takeErr)
			}
		case errors.Is(err, session.ErrFlowEnded):
			if !errors.Is(takeErr, session.ErrNotFound) {
				t.Errorf("a loser's code was left behind: %v", takeErr)
			}
		default:
			t.Errorf("IssueCode: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent IssueCode calls ended one flow, want 1", won, n)
	}
}

// testReplacePasswordHash: a rehash on sign-in replaces the hash it read,
// never one that changed meanwhile, and creates no account.
func testReplacePasswordHash(t *testing.T, s session.Store) {
	ctx := t.Context()
	a, err := s.SeedAccount(ctx, &session.Account{Subject: newID(), Username: "hank-" + newID(), PasswordHash: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, a.Subject, "stale", "x"); err != nil || ok {
		t.Fatalf("ReplacePasswordHash over another hash = %v, %v; want false", ok, err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, a.Subject, "old", "new"); err != nil || !ok {
		t.Fatalf("ReplacePasswordHash = %v, %v; want true", ok, err)
	}
	if got, err := s.GetAccount(ctx, a.Subject); err != nil || got.PasswordHash != "new" {
		t.Fatalf("after ReplacePasswordHash: %+v, %v", got, err)
	}
	ghost := newID()
	if ok, err := s.ReplacePasswordHash(ctx, ghost, "", "new"); err != nil || ok {
		t.Fatalf("ReplacePasswordHash(unknown) = %v, %v; want false", ok, err)
	}
	if _, err := s.GetAccount(ctx, ghost); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("ReplacePasswordHash created an account: %v", err)
	}
}
