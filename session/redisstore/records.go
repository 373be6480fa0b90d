package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session"
)

// PutFlow stores a pending authorization request.
func (s *Store) PutFlow(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := checkTTL("put flow", ttl); err != nil {
		return err
	}
	return fail("put flow", s.c.Set(ctx, s.k.flow(id), data, ttl).Err())
}

// GetFlow returns a pending authorization request.
func (s *Store) GetFlow(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.k.flow(id)).Bytes()
	if err != nil {
		return nil, fail("get flow", err)
	}
	return b, nil
}

// DeleteFlow deletes a pending authorization request, if it exists.
func (s *Store) DeleteFlow(ctx context.Context, id string) error {
	return fail("delete flow", s.c.Del(ctx, s.k.flow(id)).Err())
}

// PutCode stores an authorization code and its spent marker in one script
// (IssueCode's, without the session's bookkeeping).
// The marker is written now, not at exchange, so that consuming the code
// stays a single delete.
func (s *Store) PutCode(ctx context.Context, codeHash, grantID, binding string, data []byte, ttl, spentTTL time.Duration) error {
	const op = "put code"
	if binding == "" {
		return fmt.Errorf("redisstore: %s: no binding", op)
	}
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	if err := checkTTL(op+": spent", spentTTL); err != nil {
		return err
	}
	err := scriptPutCode.Run(ctx, s.c, []string{s.k.code(codeHash), s.k.codeGrant(codeHash)},
		data, millis(ttl), grantID, millis(spentTTL), binding).Err()
	return fail(op, err)
}

// TakeCode consumes an authorization code in one script: of any number of
// concurrent exchanges, exactly one gets the payload and the others the
// grant id to revoke.
func (s *Store) TakeCode(ctx context.Context, codeHash, binding string) ([]byte, string, error) {
	const op = "take code"
	res, err := s.evalOnce(ctx, scriptTakeCode,
		[]string{s.k.code(codeHash), s.k.codeGrant(codeHash)}, binding).Slice()
	if err != nil {
		return nil, "", fail(op, err)
	}
	if len(res) != 2 {
		return nil, "", fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	kind, _ := res[0].(string)
	val, _ := res[1].(string)
	switch kind {
	case "data":
		return []byte(val), "", nil
	case "spent":
		return nil, val, nil
	case "mismatch":
		return nil, "", fmt.Errorf("redisstore: %s: %w", op, session.ErrCodeMismatch)
	}
	return nil, "", fmt.Errorf("redisstore: %s: unexpected reply %q", op, kind)
}

// PutGrant stores a grant, replacing any with its id, to expire at
// g.ExpiresAt.
func (s *Store) PutGrant(ctx context.Context, g *session.Grant) error {
	const op = "put grant"
	if g.ID == "" {
		return fmt.Errorf("redisstore: %s: empty id", op)
	}
	if g.ExpiresAt.IsZero() {
		return fmt.Errorf("redisstore: %s: no expiry", op)
	}
	key := s.k.grant(g.ID)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key,
			grantClientID, g.ClientID,
			grantSub, g.Subject,
			grantSessionID, g.SessionID,
			grantOffline, flag(g.Offline),
			grantRefresh, g.RefreshHash,
			grantData, g.Data,
			grantExpires, unixNano(g.ExpiresAt),
		)
		p.PExpireAt(ctx, key, g.ExpiresAt)
		return nil
	})
	return fail(op, err)
}

// GetGrant returns a grant.
func (s *Store) GetGrant(ctx context.Context, id string) (*session.Grant, error) {
	const op = "get grant"
	m, err := s.c.HGetAll(ctx, s.k.grant(id)).Result()
	if err != nil {
		return nil, fail(op, err)
	}
	if len(m) == 0 {
		return nil, fail(op, redis.Nil)
	}
	exp, err := parseUnixNano(m[grantExpires])
	if err != nil {
		return nil, fmt.Errorf("redisstore: grant field %s: %w", grantExpires, err)
	}
	return &session.Grant{
		ID:          id,
		ClientID:    m[grantClientID],
		Subject:     m[grantSub],
		SessionID:   m[grantSessionID],
		Offline:     m[grantOffline] == "1",
		RefreshHash: m[grantRefresh],
		Data:        []byte(m[grantData]),
		ExpiresAt:   exp,
	}, nil
}

// RotateRefresh replaces a grant's refresh hash in one script, deleting
// the grant when oldHash is not current (refresh-token reuse).
func (s *Store) RotateRefresh(ctx context.Context, id, oldHash, newHash string) (session.RotateResult, error) {
	const op = "rotate refresh"
	n, err := s.evalOnce(ctx, scriptRotateRefresh, []string{s.k.grant(id)}, oldHash, newHash).Int()
	if err != nil {
		return 0, fail(op, err)
	}
	switch n {
	case rotateRotated:
		return session.Rotated, nil
	case rotateReused:
		return session.Reused, nil
	case rotateGone:
		return session.Gone, nil
	}
	return 0, fmt.Errorf("redisstore: %s: unexpected reply %d", op, n)
}

// DeleteGrant deletes a grant, if it exists.
func (s *Store) DeleteGrant(ctx context.Context, id string) error {
	return fail("delete grant", s.c.Del(ctx, s.k.grant(id)).Err())
}

// RevokeToken marks an access-token id revoked for ttl.
func (s *Store) RevokeToken(ctx context.Context, jti string, ttl time.Duration) error {
	if err := checkTTL("revoke token", ttl); err != nil {
		return err
	}
	return fail("revoke token", s.c.Set(ctx, s.k.revoked(jti), "1", ttl).Err())
}

// IsRevoked reports whether an access-token id is revoked.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	n, err := s.c.Exists(ctx, s.k.revoked(jti)).Result()
	if err != nil {
		return false, fail("is revoked", err)
	}
	return n == 1, nil
}

// InitSecret stores value under name unless a value exists, and returns
// the value in effect: SET NX then GET, pipelined. Secrets are never
// deleted, so the GET always sees the winner.
func (s *Store) InitSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	const op = "init secret"
	var get *redis.StringCmd
	key := s.k.secret(name)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, value, 0)
		get = p.Get(ctx, key)
		return nil
	})
	if err != nil {
		return nil, fail(op+" "+strconv.Quote(name), err)
	}
	return get.Bytes()
}

// GetFlowAndSession implements session.FlowStore: one pipeline of GET and
// HGETALL.
func (s *Store) GetFlowAndSession(ctx context.Context, flowID, sessionID string) ([]byte, *session.Session, error) {
	const op = "get flow and session"
	var flow *redis.StringCmd
	var sess *redis.MapStringStringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		flow = p.Get(ctx, s.k.flow(flowID))
		if sessionID != "" {
			sess = p.HGetAll(ctx, s.k.session(sessionID))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fail(op, err)
	}
	b, err := flow.Bytes()
	if err != nil {
		return nil, nil, fail(op, err)
	}
	if sess == nil || len(sess.Val()) == 0 {
		return b, nil, nil
	}
	got, err := parseSession(sessionID, sess.Val())
	if err != nil {
		return nil, nil, err
	}
	return b, got, nil
}

// IssueCode implements session.CodeStore: the code's script, the
// session's touch and index scripts and the flow's DEL in one pipeline.
// Every script in it is idempotent, so the NOSCRIPT retry is safe.
func (s *Store) IssueCode(ctx context.Context, c session.Code, a session.Activity, flowID string) (bookkeeping, err error) {
	const op = "issue code"
	if err := checkTTL(op, c.TTL); err != nil {
		return nil, err
	}
	if err := checkTTL(op+": spent", c.SpentTTL); err != nil {
		return nil, err
	}
	if err := checkTTL(op+": session", a.TTL); err != nil {
		return nil, err
	}
	if a.Subject == "" {
		return nil, fmt.Errorf("redisstore: %s: no subject", op)
	}
	if c.Binding == "" {
		return nil, fmt.Errorf("redisstore: %s: no binding", op)
	}
	client := ""
	if a.ClientID != "" {
		client = prefixClient + a.ClientID
	}
	var code, touch *redis.Cmd
	// Every DEL of the flow sent, in case pipeScripts sends the pipeline
	// twice: the first may have claimed it.
	var dels []*redis.IntCmd
	// A pipeline that fails as a whole sets its error on every command,
	// so the code's own reply says whether it was stored.
	_ = s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		code = run(ctx, p, scriptPutCode, []string{s.k.code(c.Hash), s.k.codeGrant(c.Hash)}, c.Data, millis(c.TTL), c.GrantID, millis(c.SpentTTL), c.Binding)
		touch = s.queueUpdate(ctx, p, run, scriptTouch, a.SessionID, a.Subject, a.TTL, unixNano(a.At), client)
		if flowID != "" {
			// The DEL is the claim, so it is sent at most once (once.go):
			// re-sent by go-redis's ClusterClient after a lost reply, it
			// would answer 0 and the winner would take its own code back.
			del := redis.NewIntCmd(ctx, "del", s.k.flow(flowID))
			_ = p.Process(ctx, noRetry{del})
			dels = append(dels, del)
		}
	})
	if err := code.Err(); err != nil {
		return nil, fail(op, err)
	}
	if len(dels) > 0 {
		claimed, answered := false, false
		var delErr error
		for _, d := range dels {
			if d.Err() != nil {
				delErr = d.Err()
				continue
			}
			answered = true
			claimed = claimed || d.Val() == 1
		}
		if answered && !claimed {
			// Another request ended the flow first: this code was never
			// handed out; take it back (one slot: one DEL).
			if err := s.c.Del(ctx, s.k.code(c.Hash), s.k.codeGrant(c.Hash)).Err(); err != nil {
				return nil, fail(op+": take back", err)
			}
			return nil, fmt.Errorf("redisstore: %s: %w", op, session.ErrFlowEnded)
		}
		if !answered {
			bookkeeping = fail(op+": drop flow", delErr)
		}
	}
	if err := touch.Err(); err != nil {
		bookkeeping = fail(op+": touch", err)
	}
	return bookkeeping, nil
}
