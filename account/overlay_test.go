package account_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

func overlayOn(t *testing.T, b *sessiontest.Backend, url string) session.Store {
	t.Helper()
	short, ok := b.Store(t).(account.Short)
	if !ok {
		t.Fatal("the Redis store cannot hold a lock mark")
	}
	return account.Overlay(short, accounttest.Open(t, url, accounttest.Keys(t)))
}

// TestOverlayConformance runs the whole session.Store suite on Redis and
// the SQL account store together, as the server uses them.
func TestOverlayConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) session.Store {
		return overlayOn(t, sessiontest.NewBackend(t), accounttest.NewURL(t))
	})
}

// Accounts live in the database: Redis holds none of them, and a Redis
// that lost everything (a failover to an empty replica) loses no account
// or factor.
func TestOverlayAccountsOutliveRedis(t *testing.T) {
	ctx := t.Context()
	url := accounttest.NewURL(t)
	keys := accounttest.Keys(t)
	b1 := sessiontest.NewBackend(t)
	s1 := account.Overlay(b1.Store(t).(account.Short), accounttest.Open(t, url, keys))
	a, err := s1.SeedAccount(ctx, &session.Account{Subject: "sub-a", Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.SetTOTPSecret(ctx, a.Subject, "JBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetRecoveryCodes(ctx, a.Subject, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b1.Store(t).GetAccount(ctx, a.Subject); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the account is in Redis too: %v", err)
	}
	s2 := account.Overlay(sessiontest.NewBackend(t).Store(t).(account.Short), accounttest.Open(t, url, keys))
	got, err := s2.AccountByUsername(ctx, "ALICE")
	if err != nil || got.Subject != a.Subject || got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.RecoveryCodes != 1 {
		t.Fatalf("on a new, empty Redis: %+v, %v", got, err)
	}
}

// A lock is shown by GetAccount (database) and closes the user's budget
// (Redis); unlocking lifts both. Lock of an unknown subject writes
// nothing anywhere.
func TestOverlayLock(t *testing.T) {
	ctx := context.Background()
	b := sessiontest.NewBackend(t)
	url := accounttest.NewURL(t)
	s := overlayOn(t, b, url)
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-l", Username: "lee"})
	if err != nil {
		t.Fatal(err)
	}
	budget := session.Budget{Kind: session.BudgetUser, ID: a.Subject, Max: 3}
	if err := s.LockAccount(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	// Another instance sees it in both halves.
	other := overlayOn(t, b, url)
	if got, err := other.GetAccount(ctx, a.Subject); err != nil || !got.Locked {
		t.Fatalf("GetAccount on another instance: %+v, %v; want locked", got, err)
	}
	if n, err := other.Reserve(ctx, 3600e9, budget); err != nil || n[0] <= budget.Max {
		t.Fatalf("Reserve while locked = %v, %v; want over the limit", n, err)
	}
	if err := other.UnlockAccount(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAccount(ctx, a.Subject); got == nil || got.Locked {
		t.Fatalf("after unlock: %+v", got)
	}
	if n, err := s.Reserve(ctx, 3600e9, budget); err != nil || n[0] != 1 {
		t.Fatalf("Reserve after unlock = %v, %v; want [1]", n, err)
	}
	if err := s.LockAccount(ctx, "sub-nobody"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("LockAccount(unknown) = %v, want ErrNotFound", err)
	}
	if n, err := s.Reserve(ctx, 3600e9, session.Budget{Kind: session.BudgetUser, ID: "sub-nobody", Max: 3}); err != nil || n[0] != 1 {
		t.Fatalf("a lock of an unknown subject closed its budget: %v, %v", n, err)
	}
}

// When the Redis half of a lock fails, LockAccount says so; locking again
// once Redis is back completes it.
func TestOverlayLockRedisDown(t *testing.T) {
	ctx := context.Background()
	b := sessiontest.NewBackend(t)
	if b.Real() {
		t.Skip("cannot stop a real Redis")
	}
	s := overlayOn(t, b, accounttest.NewURL(t))
	a, err := s.SeedAccount(ctx, &session.Account{Subject: "sub-d", Username: "dee"})
	if err != nil {
		t.Fatal(err)
	}
	b.Stop(t)
	err = s.LockAccount(ctx, a.Subject)
	if err == nil {
		t.Fatal("LockAccount with Redis down succeeded")
	}
	if got, gerr := s.GetAccount(ctx, a.Subject); gerr != nil || !got.Locked {
		t.Fatalf("the database half: %+v, %v", got, gerr)
	}
	b.Restart(t)
	if err := s.LockAccount(ctx, a.Subject); err != nil {
		t.Fatal(err)
	}
	budget := session.Budget{Kind: session.BudgetUser, ID: a.Subject, Max: 3}
	if n, err := s.Reserve(ctx, 3600e9, budget); err != nil || n[0] <= budget.Max {
		t.Fatalf("Reserve after locking again = %v, %v; want over the limit", n, err)
	}
}

// A deployment that kept its shared secrets (signing key, cookie keys) in
// Redis keeps using them: the overlay carries Redis's values into the
// database, and writes none to Redis.
func TestOverlaySecretsFromRedis(t *testing.T) {
	ctx := t.Context()
	b := sessiontest.NewBackend(t)
	legacy := b.Store(t)
	old, err := legacy.InitSecret(ctx, "signing-key:ES256", []byte("old signing key"))
	if err != nil {
		t.Fatal(err)
	}
	url, keys := accounttest.NewURL(t), accounttest.Keys(t)
	s := account.Overlay(b.Store(t).(account.Short), accounttest.Open(t, url, keys))
	if v, err := s.InitSecret(ctx, "signing-key:ES256", []byte("fresh")); err != nil || string(v) != string(old) {
		t.Fatalf("InitSecret over a Redis that has the key = %q, %v; want Redis's", v, err)
	}
	// A new secret goes to the database only.
	fresh, err := s.InitSecret(ctx, "csrf", []byte("new csrf key"))
	if err != nil || string(fresh) != "new csrf key" {
		t.Fatalf("InitSecret(new) = %q, %v", fresh, err)
	}
	if _, err := b.Store(t).(account.Short).LegacySecret(ctx, "csrf"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a new secret was written to Redis: %v", err)
	}
	// Another instance on an empty Redis (a failover) gets the same values.
	other := account.Overlay(sessiontest.NewBackend(t).Store(t).(account.Short), accounttest.Open(t, url, keys))
	for name, want := range map[string][]byte{"signing-key:ES256": old, "csrf": fresh} {
		if v, err := other.InitSecret(ctx, name, []byte("other")); err != nil || string(v) != string(want) {
			t.Fatalf("%s on an empty Redis = %q, %v; want %q", name, v, err, want)
		}
	}
}
