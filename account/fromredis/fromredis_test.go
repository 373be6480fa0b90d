package fromredis_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/fromredis"
	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// fillLegacy writes accounts into Redis with the Redis store's own
// account methods, as stepup did before the account database: seeded
// users, then what users and operators changed at runtime.
func fillLegacy(t *testing.T, s session.Store) []*session.Account {
	t.Helper()
	ctx := t.Context()
	var subs []string
	for i, u := range []session.Account{
		{Username: "Alice", Email: "alice@example.com", Name: "Alice", TOTPSecret: "JBSWY3DPEHPK3PXP", Phone: "+15555550100",
			PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"},
		{Username: "bob", Email: "bob@example.com", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$Ym9i"},
		{Username: "carol"},
	} {
		u.Subject = fmt.Sprintf("legacy-sub-%d", i)
		a, err := s.SeedAccount(ctx, &u)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, a.Subject)
	}
	// Runtime changes: bob enrolled TOTP, a passkey, recovery codes, email
	// codes, used TOTP last; alice changed her phone; carol was locked.
	for _, err := range []error{
		s.SetTOTPSecret(ctx, subs[1], "KRUGS4ZANFZSAYJA"),
		s.PutPasskey(ctx, subs[1], session.StoredPasskey{ID: "cred-1", Data: []byte{0, 1, 2, 0xff}}),
		s.SetRecoveryCodes(ctx, subs[1], []string{"rh1", "rh2", "rh3"}),
		s.SetEmailMFA(ctx, subs[1], true),
		s.SetLastFactor(ctx, subs[1], authn.TOTP),
		s.SetPhone(ctx, subs[0], "+15555550199"),
		s.LockAccount(ctx, subs[2]),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.UseRecoveryCode(ctx, subs[1], "rh2"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	var out []*session.Account
	for _, sub := range subs {
		a, err := s.GetAccount(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func TestMoveAccountsFromRedis(t *testing.T) {
	ctx := t.Context()
	backend := sessiontest.NewBackend(t)
	legacy := backend.Store(t).(*redisstore.Store)
	want := fillLegacy(t, legacy)

	db := accounttest.NewStore(t)
	rep, err := fromredis.Run(ctx, legacy, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != len(want) || rep.Present != 0 || len(rep.Conflicts) != 0 {
		t.Fatalf("report %+v, want %d imported", rep, len(want))
	}
	for _, w := range want {
		got, err := db.GetAccount(ctx, w.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("in the database: %+v\nin Redis:        %+v", got, w)
		}
	}
	// The recovery codes themselves came over, not just their number.
	if ok, err := db.UseRecoveryCode(ctx, want[1].Subject, "rh3"); err != nil || !ok {
		t.Errorf("a recovery code from Redis does not work: %v, %v", ok, err)
	}
	if ok, _ := db.UseRecoveryCode(ctx, want[1].Subject, "rh2"); ok {
		t.Error("a recovery code used in Redis works again")
	}

	// Through the overlay, the lock still closes the budget (the mark
	// stayed in Redis) and the seed of the same users changes nothing.
	s := account.Overlay(backend.Store(t).(account.Short), db)
	b := session.Budget{Kind: session.BudgetUser, ID: want[2].Subject, Max: 3}
	if n, err := s.Reserve(ctx, 3600e9, b); err != nil || n[0] <= b.Max {
		t.Errorf("carol's lock after the move: Reserve = %v, %v", n, err)
	}
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "new-sub", Username: "ALICE"})
	if err != nil || a.Subject != want[0].Subject || a.Phone != "+15555550199" {
		t.Errorf("seeding alice after the move: %+v, %v; want her old subject and phone", a, err)
	}

	// A second start finds the marker and reads nothing.
	rep, err = fromredis.Run(ctx, legacy, db, nil)
	if err != nil || !rep.Skipped {
		t.Fatalf("second run: %+v, %v; want skipped", rep, err)
	}
}

// Instances starting at once: each account lands once and whole.
func TestMoveAccountsConcurrently(t *testing.T) {
	backend := sessiontest.NewBackend(t)
	legacy := backend.Store(t).(*redisstore.Store)
	want := fillLegacy(t, legacy)
	url, keys := accounttest.NewURL(t), accounttest.Keys(t)
	const n = 4
	reps := make([]fromredis.Report, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = fromredis.Run(context.Background(), backend.Store(t).(*redisstore.Store), accounttest.Open(t, url, keys), nil)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	imported := 0
	for _, r := range reps {
		imported += r.Imported
		if len(r.Conflicts) != 0 {
			t.Fatalf("conflicts: %+v", reps)
		}
	}
	if imported != len(want) {
		t.Fatalf("%d imports in all (%+v), want %d: each account once", imported, reps, len(want))
	}
	if bad := leftovers(t, rawRedis(t, backend), backend.Prefix()); len(bad) > 0 {
		t.Fatalf("left in Redis after moves at once: %v", bad)
	}
	db := accounttest.Open(t, url, keys)
	for _, w := range want {
		if got, err := db.GetAccount(t.Context(), w.Subject); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %+v, %v", w.Subject, got, err)
		}
	}
}

// An account whose username is another subject's in the database stays
// out, is reported, and keeps the marker unset so a later start retries.
func TestMoveAccountsConflict(t *testing.T) {
	ctx := t.Context()
	backend := sessiontest.NewBackend(t)
	legacy := backend.Store(t).(*redisstore.Store)
	want := fillLegacy(t, legacy)
	db := accounttest.NewStore(t)
	if _, err := db.SeedAccount(ctx, &session.Account{Subject: "other", Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	rep, err := fromredis.Run(ctx, legacy, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 2 || !reflect.DeepEqual(rep.Conflicts, []string{want[1].Subject}) {
		t.Fatalf("report %+v, want 2 imported and bob in conflict", rep)
	}
	if err := db.Delete(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	rep, err = fromredis.Run(ctx, legacy, db, nil)
	if err != nil || rep.Skipped || rep.Imported != 1 || rep.Present != 2 {
		t.Fatalf("after resolving the conflict: %+v, %v; want bob imported", rep, err)
	}
	if done, _ := db.StepDone(ctx, fromredis.Marker); !done {
		t.Fatal("no marker after a clean pass")
	}
}
