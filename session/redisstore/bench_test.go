package redisstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// The session operations every request makes. They run against the
// backend of sessiontest: a real Redis when STEPUP_TEST_REDIS_URL is set
// (the number that matters: it includes the network round trips), an
// embedded miniredis otherwise.
//
// Each benchmark also reports roundtrips/op: the commands and pipelines
// the operation sends, counted by a go-redis hook on a separate,
// instrumented store (embedded, scripts already cached) — a property of
// the code, not of the server.

const benchTTL = 30 * time.Minute

// benchID returns a session id of the real length (32 random bytes,
// base64url: 43 characters), unique per i.
func benchID(i int) string {
	const base = "bench-session-id-0000000000000000000000000"
	n := strconv.Itoa(i)
	return base[:len(base)-len(n)] + n
}

// benchSession is a typical signed-in session: password and TOTP
// verified, one client served.
func benchSession(id, sub string, now time.Time) *session.Session {
	return &session.Session{
		ID:         id,
		Subject:    sub,
		CreatedAt:  now.Add(-5 * time.Minute),
		LastSeenAt: now,
		Verifications: []authn.Verification{
			{Factor: authn.Password, At: now.Add(-5 * time.Minute)},
			{Factor: authn.TOTP, At: now.Add(-time.Minute)},
		},
		ClientIDs: []string{"spa"},
	}
}

// sessionBench is one benchmark: setup runs once, untimed; op runs per
// iteration.
type sessionBench struct {
	setup func(ctx context.Context, s session.Store) error
	op    func(ctx context.Context, s session.Store, i int) error
}

func (sb sessionBench) run(b *testing.B) {
	ctx := b.Context()
	rt := sb.roundTrips(b)

	s := sessiontest.NewBackend(b).Store(b)
	if sb.setup != nil {
		if err := sb.setup(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := sb.op(ctx, s, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// After the loop: b.Loop's first call resets the timer, which drops
	// metrics reported before it.
	b.ReportMetric(rt, "roundtrips/op")
}

// roundTrips returns the round trips one op makes in steady state.
func (sb sessionBench) roundTrips(b *testing.B) float64 {
	e, err := redisstore.StartEmbedded()
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	var counter roundTripCounter
	c := redis.NewClient(&redis.Options{
		Addr:                     e.Addr(),
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	c.AddHook(&counter)
	s := redisstore.New(c, redisstore.Options{})
	defer s.Close()

	ctx := b.Context()
	if sb.setup != nil {
		if err := sb.setup(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	// The first run loads the scripts (EVALSHA, then EVAL); count the
	// ones after it.
	const warm, counted = 1, 20
	for i := range warm + counted {
		if i == warm {
			counter.n.Store(0)
		}
		if err := sb.op(ctx, s, 1_000_000+i); err != nil {
			b.Fatal(err)
		}
	}
	return float64(counter.n.Load()) / counted
}

// roundTripCounter counts what a client sends: each command, and each
// pipeline or MULTI/EXEC transaction as one.
type roundTripCounter struct{ n atomic.Int64 }

func (*roundTripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (rc *roundTripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		rc.n.Add(1)
		return next(ctx, cmd)
	}
}

func (rc *roundTripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		rc.n.Add(1)
		return next(ctx, cmds)
	}
}

// A sign-in: a new session (a fresh id and subject each time) with its
// verifications.
func BenchmarkCreateSession(b *testing.B) {
	now := time.Now()
	sessionBench{
		op: func(ctx context.Context, s session.Store, i int) error {
			return s.CreateSession(ctx, benchSession(benchID(i), "sub-"+strconv.Itoa(i), now), benchTTL)
		},
	}.run(b)
}

// Every request with a session cookie.
func BenchmarkGetSession(b *testing.B) {
	id := benchID(0)
	sessionBench{
		setup: func(ctx context.Context, s session.Store) error {
			return s.CreateSession(ctx, benchSession(id, "sub-0", time.Now()), benchTTL)
		},
		op: func(ctx context.Context, s session.Store, _ int) error {
			got, err := s.GetSession(ctx, id)
			if err == nil && len(got.Verifications) != 2 {
				b.Fatalf("session has %d verifications, want 2", len(got.Verifications))
			}
			return err
		},
	}.run(b)
}

// Activity on a session, with the client it served (the idle timeout
// moves on).
func BenchmarkTouchSession(b *testing.B) {
	id := benchID(0)
	now := time.Now()
	sessionBench{
		setup: func(ctx context.Context, s session.Store) error {
			return s.CreateSession(ctx, benchSession(id, "sub-0", now), benchTTL)
		},
		op: func(ctx context.Context, s session.Store, i int) error {
			return s.Touch(ctx, id, "sub-0", now.Add(time.Duration(i)), "bank", benchTTL)
		},
	}.run(b)
}

// A step-up: a factor verified on an existing session.
func BenchmarkAddVerification(b *testing.B) {
	id := benchID(0)
	now := time.Now()
	sessionBench{
		setup: func(ctx context.Context, s session.Store) error {
			return s.CreateSession(ctx, benchSession(id, "sub-0", now), benchTTL)
		},
		op: func(ctx context.Context, s session.Store, i int) error {
			v := authn.Verification{Factor: authn.WebAuthn, At: now.Add(time.Duration(i)), UV: true}
			return s.AddVerification(ctx, id, "sub-0", v, benchTTL)
		},
	}.run(b)
}
