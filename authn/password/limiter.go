package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepup-dev/stepup/authn/password/internal/argon2"
)

// ErrBusy is returned by a Limiter when too many verifications are already
// waiting for a slot. Callers answer it like a rate limit (429/503); the
// request was not checked, so it is neither a success nor a failure.
var ErrBusy = errors.New("password: too many concurrent hash verifications")

// queueFactor bounds how many callers may wait per slot.
const queueFactor = 4

// Limiter bounds the number of argon2 computations running at once, and
// the number of callers waiting for one, and gives each slot one work
// area (argon2 memory) that its hashes reuse: memory stays at n × the
// hash's memory whatever the load, and a hash spends no time on fresh
// memory (page faults, zeroing, garbage collection). Use NewLimiter; the
// zero value is not usable. A Limiter is safe for concurrent use.
type Limiter struct {
	slots chan struct{}
	// mems holds one work area per slot, nil until a slot first needs
	// one; a caller holding a slot takes one (never waits: there are as
	// many as slots) and gives it back.
	mems    chan *argon2.Memory
	memKiB  uint32       // size of a pooled work area
	pooled  atomic.Int64 // work areas ever made for the pool (≤ slots)
	waiting atomic.Int64
	maxWait int64
	// idle gives the work areas' memory back to the system once no hash
	// has run for idleAfter (releaseIdle): a burst of sign-ins does not
	// leave n × the hash's memory resident for good.
	idleMu   sync.Mutex
	idle     *time.Timer
	inFlight int
}

// idleAfter is how long the work areas stay resident after the last
// hash.
const idleAfter = 30 * time.Second

// NewLimiter returns a Limiter that runs at most n hashes at once and lets
// at most 4n more callers wait, with work areas for DefaultParams. n ≤ 0
// means GOMAXPROCS.
func NewLimiter(n int) *Limiter {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return NewLimiterFor(n, queueFactor*n, DefaultParams)
}

// DefaultSlots is how many hashes with p to run at once so that they
// keep every core busy: one per p.Threads cores (an argon2 hash runs its
// lanes in parallel), at least one. More would only add memory.
func DefaultSlots(p Params) int {
	return max(1, runtime.GOMAXPROCS(0)/max(1, int(p.Threads)))
}

// NewLimiterFor returns a Limiter that runs at most n hashes at once (n
// ≤ 0: DefaultSlots(p)) and lets at most queue more callers wait (queue
// ≤ 0: 4 per core), with work areas large enough for hashes with p's
// memory or DefaultParams', whichever is larger. An argon2 hash with more
// memory (an imported one) gets a work area of its own for that hash,
// given back to the system right after it.
func NewLimiterFor(n, queue int, p Params) *Limiter {
	if n <= 0 {
		n = DefaultSlots(p)
	}
	if queue <= 0 {
		queue = queueFactor * runtime.GOMAXPROCS(0)
	}
	l := &Limiter{
		slots:   make(chan struct{}, n),
		mems:    make(chan *argon2.Memory, n),
		memKiB:  max(p.MemoryKiB, DefaultParams.MemoryKiB),
		maxWait: int64(queue),
	}
	for range n {
		l.mems <- nil
	}
	return l
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
	var ok bool
	var p *Params
	if a, isArgon2 := h.(phcHash); isArgon2 {
		p = &a.p
	}
	err = l.run(ctx, p, func(mem *argon2.Memory) { ok = h.matches(mem, password) })
	return ok, err
}

// DummyVerify is the package's DummyVerify run in a slot, with the same
// waiting rules as Verify, so an unknown username also queues like a known
// one.
func (l *Limiter) DummyVerify(ctx context.Context, password string) error {
	return l.run(ctx, &dummy.p, func(mem *argon2.Memory) { dummy.matches(mem, password) })
}

// Hash is HashWith(p, password) run in a slot, with the same waiting
// rules as Verify: rehashing on sign-in costs what a verification does.
func (l *Limiter) Hash(ctx context.Context, p Params, password string) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	var hash string
	var err error
	if rerr := l.run(ctx, &p, func(mem *argon2.Memory) { hash, err = hashWith(mem, p, password) }); rerr != nil {
		return "", rerr
	}
	return hash, err
}

// run calls f in a slot with the work area an argon2 hash with
// parameters p should use (nil for other hashes: p is nil).
func (l *Limiter) run(ctx context.Context, p *Params, f func(*argon2.Memory)) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	if p == nil {
		f(nil)
		return nil
	}
	if p.MemoryKiB > l.memKiB {
		// Larger than the pool's areas: one of its own, returned to the
		// system at once (still one per slot at a time).
		mem := argon2.NewMemory(p.MemoryKiB)
		defer mem.Free()
		f(mem)
		return nil
	}
	l.busy()
	defer l.done()
	mem := <-l.mems
	defer func() { l.mems <- mem }()
	if mem == nil {
		mem = argon2.NewMemory(l.memKiB)
		l.pooled.Add(1)
	}
	f(mem)
	return nil
}

// Slots is how many hashes l runs at once.
func (l *Limiter) Slots() int { return cap(l.slots) }

func (l *Limiter) busy() {
	l.idleMu.Lock()
	l.inFlight++
	if l.idle != nil {
		l.idle.Stop()
	}
	l.idleMu.Unlock()
}

func (l *Limiter) done() {
	l.idleMu.Lock()
	defer l.idleMu.Unlock()
	if l.inFlight--; l.inFlight > 0 {
		return
	}
	if l.idle == nil {
		l.idle = time.AfterFunc(idleAfter, func() { l.releaseIdle() })
	} else {
		l.idle.Reset(idleAfter)
	}
}

// releaseIdle gives the pages of every work area back to the system, if
// no hash is running: the areas stay (at most one per slot), and the next
// hash in each touches fresh pages again. It returns how many it
// released.
func (l *Limiter) releaseIdle() int {
	l.idleMu.Lock()
	defer l.idleMu.Unlock()
	if l.inFlight > 0 {
		return 0
	}
	// No hash is running and busy waits for idleMu: every area is in
	// mems.
	n := 0
	for range cap(l.mems) {
		mem := <-l.mems
		if mem != nil {
			mem.Release()
			n++
		}
		l.mems <- mem
	}
	return n
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
