package op

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// ClientIP is the address of the client that sent r: the TCP peer, or,
// when the peer is a trusted proxy (config trusted_proxies), the
// right-most X-Forwarded-For address that is not itself a trusted proxy.
// Addresses further left were written by the client and prove nothing.
func (p *Provider) ClientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !p.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		peer = a.Unmap()
		if !p.trusted(peer) {
			break
		}
	}
	return peer
}

func (p *Provider) trusted(a netip.Addr) bool {
	for _, pfx := range p.proxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Budgets are the abuse budgets one attempt to prove a factor counts
// against (PRODUCT.md §3 "Lockout"): the user's, then the client IP's.
// user is the account's subject, or "" with username for a name that has
// no account: unknown names get budgets of their own, so that they lock
// out exactly like real ones and the answer tells nothing.
func (p *Provider) Budgets(r *http.Request, subject, username string) []session.Budget {
	id := subject
	if id == "" {
		sum := sha256.Sum256([]byte(strings.ToLower(username)))
		id = "unknown:" + hex.EncodeToString(sum[:16])
	}
	return []session.Budget{
		{Kind: session.BudgetUser, ID: id, Max: int64(p.lockout.MaxFailures)},
		p.ipBudget(r),
	}
}

// ipBudget is the per-client-IP budget of r.
func (p *Provider) ipBudget(r *http.Request) session.Budget { return p.IPBudget(p.ClientIP(r)) }

// Reserve counts one attempt (or one send) against every budget in bs
// for window, before anything is checked, so that concurrent attempts can
// never check more than a budget allows. over lists the budgets that were
// already exhausted; when there are any, nothing may be checked, and the
// budgets that were not exhausted have been given their count back: a
// throttled address must not go on using up the budgets of the users it
// names. counts are the budgets' counts after this attempt, in bs's order.
func (p *Provider) Reserve(ctx context.Context, window time.Duration, bs ...session.Budget) (counts []int64, over []session.Budget, err error) {
	counts, err = p.store.Reserve(ctx, window, bs...)
	if err != nil {
		return nil, nil, err
	}
	var open []session.Budget
	for i, b := range bs {
		if counts[i] > b.Max {
			over = append(over, b)
		} else {
			open = append(open, b)
		}
	}
	if len(over) > 0 {
		p.Refund(ctx, open...)
	}
	return counts, over, nil
}

// ReserveTOTP is Reserve for a TOTP attempt by subject whose code was
// verified in memory (step ≥ 0, its time step; < 0 for a wrong code):
// the store counts the attempt against every budget and, atomically with
// the count of subject's own budget (bs must hold it), claims the step
// and gives that budget's attempt back only when that count is within its
// limit (session.LimitStore.ReserveTOTP). The verification's outcome
// takes effect through the count alone: a code checked past the limit
// changes nothing. claimed is true when the step was unused and claimed:
// the code is good and the subject's budget has been given back; the
// caller gives back the others (Refund). over is as Reserve's; the budgets
// not over are given back then, the subject's only if it was not already.
// Over the IP budget with the subject's open, a good code's step is spent
// all the same (the answer is 429; the user waits for the next code):
// the step and the IP budget are in different Cluster slots, and spending
// a step errs on the safe side.
func (p *Provider) ReserveTOTP(ctx context.Context, bs []session.Budget, subject string, step int64) (counts []int64, over []session.Budget, claimed bool, err error) {
	counts, claimed, err = p.store.ReserveTOTP(ctx, p.LockoutWindow(), bs, subject, step, TOTPStepMemory)
	if err != nil {
		return nil, nil, false, err
	}
	var open []session.Budget
	for i, b := range bs {
		switch {
		case counts[i] > b.Max:
			over = append(over, b)
		case claimed && b.Kind == session.BudgetUser && b.ID == subject:
			// given back by the store with the claim
		default:
			open = append(open, b)
		}
	}
	if len(over) > 0 {
		p.Refund(ctx, open...)
	}
	return counts, over, claimed, nil
}

// Refund gives an attempt back to bs: a success, or nothing was checked.
// It runs even when the request has gone (the count was taken on its
// behalf); if it fails the attempt stays counted, which errs on the safe
// side.
func (p *Provider) Refund(ctx context.Context, bs ...session.Budget) {
	if len(bs) == 0 {
		return
	}
	if err := p.store.Refund(context.WithoutCancel(ctx), bs...); err != nil {
		p.log.WarnContext(ctx, "refunding an attempt failed", "err", err)
	}
}

type ipBudgetKey struct{}

// withIPBudget puts the request's IP budget in its context, for the
// token endpoint's client authentication (zitadel's op.Server hands it
// the context, not the request).
func (p *Provider) withIPBudget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ipBudgetKey{}, p.ipBudget(r))))
	})
}

// blocked remembers, in this instance, the addresses whose budget is
// exhausted and until when, so that their client authentications are
// refused without a Redis round trip and without checking a secret.
// Other instances learn it at their next failure from that address.
type blocked struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// maxBlocked bounds the map: when it is full of live entries it is
// emptied, and those addresses are counted in Redis again.
const maxBlocked = 100_000

// maxLocalBlock bounds how long this instance refuses an address on its
// own. Redis keeps the real window (which began earlier, on whichever
// instance reached the limit); the local block is only a shield that
// saves round trips and argon2id work during a flood, so it is short
// rather than exact. It uses the wall clock, like Redis's TTLs.
const maxLocalBlock = time.Minute

func (b *blocked) is(id string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[id]
	if ok && !now.Before(t) {
		delete(b.until, id)
		return false
	}
	return ok
}

func (b *blocked) add(id string, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.until) >= maxBlocked {
		now := time.Now()
		for k, t := range b.until {
			if !now.Before(t) {
				delete(b.until, k)
			}
		}
	}
	if b.until == nil || len(b.until) >= maxBlocked {
		b.until = map[string]time.Time{}
	}
	b.until[id] = until
}

// errClientThrottled is the answer to a client authentication from an
// address that has used up its failures.
func errClientThrottled() error {
	return zop.NewStatusError(oidc.ErrInvalidClient().WithDescription("too many failed client authentications from this address; try again later"), http.StatusTooManyRequests)
}

// checkClient authenticates a confidential client against the IP budget
// of ctx: a throttled address is refused before its secret is checked; a
// secret that needs an argon2id check (not yet verified in this
// instance) is counted before the check and refunded on success; a
// failure is counted. The right secret from an address in good standing
// costs no Redis round trip.
func (p *Provider) checkClient(ctx context.Context, c *Client, secret string) error {
	b, hasIP := ctx.Value(ipBudgetKey{}).(session.Budget)
	now := time.Now()
	if hasIP && p.blockedIPs.is(b.ID, now) {
		p.Audit(ctx, obs.EventLocked, "budget", string(b.Kind), "client_id", c.GetID(), "ip", b.ID)
		return errClientThrottled()
	}
	fast, ok := c.quickCheck(secret)
	if fast && ok {
		return nil
	}
	// From here the attempt counts: before the argon2id check, or after a
	// quick check that failed.
	var n int64
	if hasIP {
		counts, err := p.store.Reserve(ctx, p.LockoutWindow(), b)
		if err != nil {
			return storeError(err)
		}
		n = counts[0]
	}
	if !fast {
		if n > b.Max {
			p.Audit(ctx, obs.EventLocked, "budget", string(b.Kind), "client_id", c.GetID(), "ip", b.ID)
			return errClientThrottled()
		}
		var err error
		ok, err = c.slowCheck(ctx, p.hashes, secret)
		if (err != nil || ok) && hasIP {
			// The answer may already be lost (the client gave up): the
			// refund must happen all the same.
			_ = p.store.Refund(context.WithoutCancel(ctx), b)
		}
		if err != nil {
			p.Audit(ctx, obs.EventThrottled, "client_id", c.GetID(), "reason", "busy")
			return unavailable()
		}
		if ok {
			return nil
		}
	}
	p.Audit(ctx, obs.EventClientAuth, "client_id", c.GetID(), "reason", "client_auth", "ip", b.ID)
	if hasIP && n == b.Max {
		p.Audit(ctx, obs.EventLockout, "budget", string(b.Kind), "client_id", c.GetID(), "ip", b.ID, "failures", n)
	}
	if hasIP && n > b.Max {
		// Only a checked failure blocks locally: a burst of reservations
		// for secrets that were never checked (cold cache, busy hashers)
		// must not lock out a client whose secret is right.
		p.blockedIPs.add(b.ID, now.Add(min(p.LockoutWindow(), maxLocalBlock)))
		return errClientThrottled()
	}
	return invalidClient()
}

// LockoutWindow is how long a budget's failures count.
func (p *Provider) LockoutWindow() time.Duration { return p.lockout.Window.D() }
