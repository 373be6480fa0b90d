package password

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
)

// ErrBusy is returned by a Limiter when too many verifications are already
// waiting for a slot. Callers answer it like a rate limit (429/503); the
// request was not checked, so it is neither a success nor a failure.
var ErrBusy = errors.New("password: too many concurrent hash verifications")

// queueFactor bounds how many callers may wait per slot.
const queueFactor = 4

// Limiter bounds the number of argon2id computations running at once, and
// the number of callers waiting for one, so that memory use stays at most
// n × the hash's memory. Use NewLimiter; the zero value is not usable.
// A Limiter is safe for concurrent use.
type Limiter struct {
	slots   chan struct{}
	waiting atomic.Int64
	maxWait int64
}

// NewLimiter returns a Limiter that runs at most n hashes at once and lets
// at most 4n more callers wait. n ≤ 0 means GOMAXPROCS.
func NewLimiter(n int) *Limiter {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Limiter{slots: make(chan struct{}, n), maxWait: int64(queueFactor * n)}
}

// Verify is the package's Verify run in a slot. A malformed hash is
// reported at once without taking a slot. It waits for a slot until ctx is done
// (returning ctx's error) and returns ErrBusy at once when the wait queue is
// full.
func (l *Limiter) Verify(ctx context.Context, hash, password string) (bool, error) {
	h, err := parseAny(hash)
	if err != nil {
		return false, err
	}
	if err := l.acquire(ctx); err != nil {
		return false, err
	}
	defer l.release()
	return h.matches(password), nil
}

// DummyVerify is the package's DummyVerify run in a slot, with the same
// waiting rules as Verify, so an unknown username also queues like a known
// one.
func (l *Limiter) DummyVerify(ctx context.Context, password string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	DummyVerify(password)
	return nil
}

// Hash is HashWith(p, password) run in a slot, with the same waiting
// rules as Verify: rehashing on sign-in costs what a verification does.
func (l *Limiter) Hash(ctx context.Context, p Params, password string) (string, error) {
	if err := l.acquire(ctx); err != nil {
		return "", err
	}
	defer l.release()
	return HashWith(p, password)
}

func (l *Limiter) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.waiting.Add(1) > l.maxWait {
		l.waiting.Add(-1)
		return ErrBusy
	}
	defer l.waiting.Add(-1)
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Limiter) release() { <-l.slots }
