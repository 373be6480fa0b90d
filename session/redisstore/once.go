package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Some operations must run at most once: consuming a code (TakeCode,
// UseOTP), rotating a refresh token, claiming a TOTP step, counting an
// attempt (Reserve, Refund). Run twice, the second run sees the first one's
// effect and answers "replay": the grant of a legitimate code exchange
// would be revoked, a valid TOTP code refused, an attempt counted twice.
//
// A single-node or Sentinel client never re-sends a command (MaxRetries
// is -1, see tune). go-redis's ClusterClient, though, re-sends a command
// whose reply was lost — after EOF or a read timeout, when Redis may well
// have run it — up to MaxRedirects times, and MaxRetries does not change
// that. These operations are therefore sent as noRetry commands, which it
// never re-sends on its own (it still follows MOVED and ASK, which mean the
// command did not run). The store retries exactly the replies that say the
// command did not run: NOSCRIPT (the script is not cached on that node:
// send it whole) and TRYAGAIN (a multi-key command during a slot
// migration).

// noRetry marks a command go-redis must not re-send by itself.
type noRetry struct{ redis.Cmder }

func (noRetry) NoRetry() bool { return true }

// scriptSources keeps the source of the scripts run by evalOnce, which
// sends a script whole after NOSCRIPT (redis.Script keeps it private).
var scriptSources = map[*redis.Script]string{}

// newOnceScript is redis.NewScript for a script run by evalOnce.
func newOnceScript(src string) *redis.Script {
	s := redis.NewScript(src)
	scriptSources[s] = src
	return s
}

// tryAgainLimit bounds the retries after TRYAGAIN; a slot migration moves
// a slot's keys in milliseconds.
const tryAgainLimit = 5

// evalOnce runs script on keys at most once (see above): by its SHA, then
// whole after NOSCRIPT, retrying only after TRYAGAIN.
func (s *Store) evalOnce(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	body, name := script.Hash(), "evalsha"
	for attempt := 0; ; attempt++ {
		cmd := evalCmd(ctx, name, body, keys, args...)
		_ = s.c.Process(ctx, noRetry{cmd})
		err := cmd.Err()
		switch {
		case err != nil && name == "evalsha" && redis.HasErrorPrefix(err, "NOSCRIPT"):
			body, name = scriptSources[script], "eval"
		case err != nil && redis.IsTryAgainError(err) && attempt < tryAgainLimit && sleep(ctx, attempt):
		default:
			return cmd
		}
	}
}

// processOnce runs the command mk builds at most once, retrying only
// after TRYAGAIN.
func processOnce[C redis.Cmder](ctx context.Context, c redis.UniversalClient, mk func() C) C {
	for attempt := 0; ; attempt++ {
		cmd := mk()
		_ = c.Process(ctx, noRetry{cmd})
		if err := cmd.Err(); err != nil && redis.IsTryAgainError(err) && attempt < tryAgainLimit && sleep(ctx, attempt) {
			continue
		}
		return cmd
	}
}

// evalCmd builds EVAL or EVALSHA.
func evalCmd(ctx context.Context, name, body string, keys []string, args ...any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, body, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	return redis.NewCmd(ctx, append(a, args...)...)
}

// sleep backs off before retry attempt+1; false when ctx ended.
func sleep(ctx context.Context, attempt int) bool {
	t := time.NewTimer(time.Duration(attempt+1) * 10 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
