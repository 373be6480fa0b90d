package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session"
)

// scriptCIBAStart stores a CIBA request.
// KEYS[1] request; ARGV[1] client, ARGV[2] sub, ARGV[3] arh, ARGV[4] lh,
// ARGV[5] data, ARGV[6] exp (unix ms), ARGV[7] interval (ms), ARGV[8] ttl (ms).
var scriptCIBAStart = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'client', ARGV[1], 'sub', ARGV[2], 'arh', ARGV[3], 'lh', ARGV[4],
  'data', ARGV[5], 'state', 'pending', 'exp', ARGV[6], 'ival', ARGV[7], 'next', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return 1
`)

// scriptCIBAPoll is one token request: it checks the auth_req_id and the
// client, enforces the interval (a poll before "next" is slow_down and
// adds 5 s, CIBA Core §11), and takes an approval, once.
// KEYS[1] request; ARGV[1] arh, ARGV[2] client, ARGV[3] now (unix ms).
// Returns nil for no such request, else {state, interval ms, result}.
var scriptCIBAPoll = newOnceScript(`
local h = redis.call('HMGET', KEYS[1], 'arh', 'client', 'state', 'exp', 'next', 'ival', 'result')
if not h[1] or h[1] ~= ARGV[1] or h[2] ~= ARGV[2] then return nil end
local now = tonumber(ARGV[3])
local st = h[3]
if (st == 'pending' or st == 'approved') and now >= tonumber(h[4]) then return {'expired', h[6], ''} end
if st == 'approved' then
  redis.call('HSET', KEYS[1], 'state', 'used')
  redis.call('HDEL', KEYS[1], 'result')
  return {'approved', h[6], h[7]}
end
if st ~= 'pending' then return {st, h[6], ''} end
local ival = tonumber(h[6])
if now < tonumber(h[5]) then
  ival = ival + 5000
  redis.call('HSET', KEYS[1], 'ival', string.format('%d', ival), 'next', string.format('%d', now + ival))
  return {'slow_down', string.format('%d', ival), ''}
end
redis.call('HSET', KEYS[1], 'next', string.format('%d', now + ival))
return {'pending', h[6], ''}
`)

// scriptCIBAOpen binds a request's approval to a flow the first time its
// link is opened; with ARGV[2] "" it only looks.
// KEYS[1] request; ARGV[1] lh, ARGV[2] flow, ARGV[3] now (unix ms).
// Returns nil for no such request or link, else {flow, state, data,
// client, sub}.
var scriptCIBAOpen = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'lh', 'state', 'exp', 'flow', 'data', 'client', 'sub')
if not h[1] or h[1] ~= ARGV[1] then return nil end
local st = h[2]
if st == 'pending' and tonumber(ARGV[3]) >= tonumber(h[3]) then st = 'expired' end
local flow = h[4]
if not flow then
  flow = ''
  if st == 'pending' and ARGV[2] ~= '' then
    redis.call('HSET', KEYS[1], 'flow', ARGV[2])
    flow = ARGV[2]
  end
end
return {flow, st, h[5], h[6], h[7]}
`)

// scriptCIBADecide records the user's decision on a pending request from
// the flow it is bound to, before it expires.
// An unopened request ("" flow) is decided only by stepup itself (the
// link could not be sent).
// KEYS[1] request; ARGV[1] flow, ARGV[2] state, ARGV[3] result, ARGV[4]
// now (unix ms). Returns {client, sub}, or 0 when nothing was decided.
var scriptCIBADecide = newOnceScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'flow', 'exp', 'client', 'sub')
if h[1] ~= 'pending' or (h[2] or '') ~= ARGV[1] or tonumber(ARGV[4]) >= tonumber(h[3]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'result', ARGV[3])
return {h[4], h[5]}
`)

// scriptDelIfEquals deletes KEYS[1] if it holds ARGV[1].
var scriptDelIfEquals = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// cibaPair is the digest naming a (client, subject) pair.
func cibaPair(clientID, subject string) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + subject))
	return hex.EncodeToString(sum[:16])
}

func unixMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// StartCIBA stores r unless its client has a pending request for its
// subject. The pending marker is another slot than the request: it is
// claimed first (SET NX) and given back if the request cannot be stored.
func (s *Store) StartCIBA(ctx context.Context, r session.CIBARequest) error {
	const op = "start ciba"
	life := r.Life
	if err := checkTTL(op, life); err != nil {
		return err
	}
	pending := s.k.cibaPending(cibaPair(r.ClientID, r.Subject))
	ok, err := s.c.SetNX(ctx, pending, r.ID, life).Result()
	if err != nil {
		return fail(op, err)
	}
	if !ok {
		return session.ErrCIBAPending
	}
	err = scriptCIBAStart.Run(ctx, s.c, []string{s.k.ciba(r.ID)},
		r.ClientID, r.Subject, r.AuthReqHash, r.LinkHash, r.Data,
		unixMillis(r.Expires), millis(r.Interval), millis(life+r.Keep)).Err()
	if err != nil {
		_ = scriptDelIfEquals.Run(context.WithoutCancel(ctx), s.c, []string{pending}, r.ID).Err()
		return fail(op, err)
	}
	return nil
}

// PollCIBA is one token request for request id.
func (s *Store) PollCIBA(ctx context.Context, id, authReqHash, clientID string, now time.Time) (session.CIBAPoll, error) {
	const op = "poll ciba"
	res, err := s.evalOnce(ctx, scriptCIBAPoll, []string{s.k.ciba(id)}, authReqHash, clientID, unixMillis(now)).Slice()
	if err != nil {
		return session.CIBAPoll{}, fail(op, err)
	}
	if len(res) != 3 {
		return session.CIBAPoll{}, fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	st, _ := res[0].(string)
	ival, _ := res[1].(string)
	result, _ := res[2].(string)
	ms, err := strconv.ParseInt(ival, 10, 64)
	if err != nil {
		return session.CIBAPoll{}, fmt.Errorf("redisstore: %s: interval %q: %w", op, ival, err)
	}
	p := session.CIBAPoll{State: st, Interval: time.Duration(ms) * time.Millisecond}
	if st == "slow_down" {
		p.State, p.SlowDown = session.CIBAPending, true
	}
	if result != "" {
		p.Result = []byte(result)
	}
	return p, nil
}

// OpenCIBA binds the approval of request id to flowID on first use of
// its link.
func (s *Store) OpenCIBA(ctx context.Context, id, linkHash, flowID string, now time.Time) (session.CIBAOpened, error) {
	const op = "open ciba"
	res, err := scriptCIBAOpen.Run(ctx, s.c, []string{s.k.ciba(id)}, linkHash, flowID, unixMillis(now)).Slice()
	if err != nil {
		return session.CIBAOpened{}, fail(op, err)
	}
	if len(res) != 5 {
		return session.CIBAOpened{}, fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	var o session.CIBAOpened
	o.Flow, _ = res[0].(string)
	o.State, _ = res[1].(string)
	data, _ := res[2].(string)
	o.Data = []byte(data)
	o.ClientID, _ = res[3].(string)
	o.Subject, _ = res[4].(string)
	return o, nil
}

// DecideCIBA records the user's decision, then frees the (client,
// subject) pair for a new request (best effort: a marker left behind
// expires with the request).
func (s *Store) DecideCIBA(ctx context.Context, id, flowID string, approved bool, result []byte, now time.Time) error {
	const op = "decide ciba"
	state := session.CIBADenied
	if approved {
		state = session.CIBAApproved
	}
	res, err := s.evalOnce(ctx, scriptCIBADecide, []string{s.k.ciba(id)}, flowID, state, result, unixMillis(now)).Result()
	if err != nil {
		return fail(op, err)
	}
	pair, ok := res.([]any)
	if !ok || len(pair) != 2 {
		return session.ErrFlowEnded
	}
	client, _ := pair[0].(string)
	sub, _ := pair[1].(string)
	if err := scriptDelIfEquals.Run(context.WithoutCancel(ctx), s.c, []string{s.k.cibaPending(cibaPair(client, sub))}, id).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return nil
	}
	return nil
}

// CIBAData returns the payload of request id.
func (s *Store) CIBAData(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.HGet(ctx, s.k.ciba(id), "data").Bytes()
	if err != nil {
		return nil, fail("ciba data", err)
	}
	return b, nil
}

var _ session.CIBAStore = (*Store)(nil)
