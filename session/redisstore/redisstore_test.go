package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

func TestConformance(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		sessiontest.Run(t, func(t *testing.T) session.Store {
			s, err := redisstore.Open(config.Redis{}, redisstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	t.Run("redis", func(t *testing.T) {
		if !sessiontest.RealRedis() {
			t.Skip("neither " + sessiontest.EnvRedisURL + " nor " + sessiontest.EnvRedisAddrs + " is set")
		}
		t.Parallel()
		sessiontest.Run(t, func(t *testing.T) session.Store { return sessiontest.NewStore(t) })
	})
}

// An unreachable Redis answers ErrUnavailable from every method, quickly.
func TestUnreachableIsUnavailable(t *testing.T) {
	for name, cfg := range map[string]config.Redis{
		"url":   {URL: "redis://127.0.0.1:1/0"},
		"addrs": {Addrs: []string{"127.0.0.1:1"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := redisstore.Open(cfg, redisstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			for op, err := range calls(t.Context(), s) {
				if !errors.Is(err, session.ErrUnavailable) {
					t.Errorf("%s = %v, want ErrUnavailable", op, err)
				}
				if errors.Is(err, session.ErrNotFound) {
					t.Errorf("%s = %v, also ErrNotFound", op, err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answering an outage took %v", d)
			}
		})
	}
}

// calls calls every method of the store once, returning their errors by
// name.
func calls(ctx context.Context, s session.Store) map[string]error {
	errs := map[string]error{}
	record := func(op string, err error) { errs[op] = err }
	record("Ping", s.Ping(ctx))
	record("CreateSession", s.CreateSession(ctx, &session.Session{ID: "s", Subject: "u"}, time.Minute))
	_, err := s.GetSession(ctx, "s")
	record("GetSession", err)
	record("AddVerification", s.AddVerification(ctx, "s", "u", authn.Verification{Factor: authn.Password}, time.Minute))
	record("Touch", s.Touch(ctx, "s", "u", time.Now(), "web", time.Minute))
	record("DeleteSession", s.DeleteSession(ctx, "s"))
	_, err = s.ListSessions(ctx, "u")
	record("ListSessions", err)
	_, err = s.SeedAccount(ctx, &session.Account{Subject: "u", Username: "alice"})
	record("SeedAccount", err)
	_, err = s.GetAccount(ctx, "u")
	record("GetAccount", err)
	_, err = s.AccountByUsername(ctx, "alice")
	record("AccountByUsername", err)
	record("SetTOTPSecret", s.SetTOTPSecret(ctx, "u", "X"))
	record("SetLastFactor", s.SetLastFactor(ctx, "u", authn.TOTP))
	_, err = s.UseTOTPStep(ctx, "u", 1, time.Minute)
	record("UseTOTPStep", err)
	record("PutFlow", s.PutFlow(ctx, "f", nil, time.Minute))
	_, err = s.GetFlow(ctx, "f")
	record("GetFlow", err)
	record("DeleteFlow", s.DeleteFlow(ctx, "f"))
	record("PutCode", s.PutCode(ctx, "c", "g", "binding", nil, time.Minute, time.Minute))
	_, _, err = s.TakeCode(ctx, "c", "binding")
	record("TakeCode", err)
	record("PutGrant", s.PutGrant(ctx, &session.Grant{ID: "g", ExpiresAt: time.Now().Add(time.Minute)}))
	_, err = s.GetGrant(ctx, "g")
	record("GetGrant", err)
	_, err = s.RotateRefresh(ctx, "g", "a", "b")
	record("RotateRefresh", err)
	record("DeleteGrant", s.DeleteGrant(ctx, "g"))
	record("RevokeToken", s.RevokeToken(ctx, "j", time.Minute))
	_, err = s.IsRevoked(ctx, "j")
	record("IsRevoked", err)
	_, err = s.InitSecret(ctx, "k", []byte("v"))
	record("InitSecret", err)
	return errs
}

// Redis going away and coming back: unavailable meanwhile, then the same
// store works again with the data kept.
func TestOutage(t *testing.T) {
	e, err := redisstore.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := redisstore.Open(config.Redis{URL: e.URL()}, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	sess := &session.Session{ID: "outage", Subject: "u", CreatedAt: time.Now()}
	if err := s.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("GetSession during outage = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Ping during outage = %v, want ErrUnavailable", err)
	}
	if err := e.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, sess.ID); err != nil {
		t.Fatalf("GetSession after the outage = %v", err)
	}
}

// Two instances on one Redis share everything, and their races on one
// record have one winner.
func TestTwoInstances(t *testing.T) {
	b := sessiontest.NewBackend(t)
	s1, s2 := b.Store(t), b.Store(t)
	ctx := t.Context()

	a1, err := s1.SeedAccount(ctx, &session.Account{Subject: "sub-1", Username: "Dana"})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s2.SeedAccount(ctx, &session.Account{Subject: "sub-2", Username: "dana"})
	if err != nil {
		t.Fatal(err)
	}
	if a1.Subject != "sub-1" || a2.Subject != "sub-1" {
		t.Fatalf("seeding one username from two instances gave subjects %q and %q, want sub-1", a1.Subject, a2.Subject)
	}

	sess := &session.Session{ID: "shared", Subject: "sub-1", CreatedAt: time.Now()}
	if err := s1.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s2.Touch(ctx, sess.ID, sess.Subject, time.Now(), "web", time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s1.GetSession(ctx, sess.ID)
	if err != nil || len(got.ClientIDs) != 1 {
		t.Fatalf("session written by two instances = %+v, %v", got, err)
	}

	if err := s1.PutCode(ctx, "code", "grant", "binding", []byte("payload"), time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	type take struct {
		data  []byte
		grant string
		err   error
	}
	res := make(chan take, 2)
	for _, s := range []session.Store{s1, s2} {
		go func() {
			d, g, err := s.TakeCode(ctx, "code", "binding")
			res <- take{d, g, err}
		}()
	}
	r1, r2 := <-res, <-res
	if r1.err != nil || r2.err != nil || (r1.data == nil) == (r2.data == nil) {
		t.Fatalf("TakeCode from two instances = %+v and %+v, want one payload", r1, r2)
	}

	k1, err := s1.InitSecret(ctx, "signing", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s2.InitSecret(ctx, "signing", []byte("two"))
	if err != nil || string(k1) != "one" || string(k2) != "one" {
		t.Fatalf("InitSecret from two instances = %q and %q (%v), want one", k1, k2, err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]config.Redis{
		"scheme":     {URL: "http://127.0.0.1:6379"},
		"db":         {URL: "redis://127.0.0.1:6379/x"},
		"cluster db": {Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, DB: 2},
	} {
		if s, err := redisstore.Open(cfg, redisstore.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", name)
		}
	}
}

// sessiontest's Backend can stage an outage for other packages' tests.
func TestBackendStopRestart(t *testing.T) {
	b := sessiontest.NewBackend(t)
	if b.Real() {
		t.Skip("a real Redis cannot be stopped")
	}
	s1, s2 := b.Store(t), b.Store(t)
	ctx := t.Context()
	if err := s1.PutFlow(ctx, "f", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	b.Stop(t)
	if _, err := s2.GetFlow(ctx, "f"); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("GetFlow while stopped = %v, want ErrUnavailable", err)
	}
	b.Restart(t)
	if got, err := s2.GetFlow(ctx, "f"); err != nil || string(got) != "x" {
		t.Fatalf("GetFlow after restart = %q, %v; want x", got, err)
	}
}
