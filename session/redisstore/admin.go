package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// PutStepUpGrant implements session.StepUpGrantStore: one HASH with a
// TTL, written in one MULTI. The TTL only collects garbage (wall clock);
// UseStepUpGrant compares ExpiresAt with the caller's clock.
func (s *Store) PutStepUpGrant(ctx context.Context, hash string, g *session.StepUpGrant) error {
	const op = "put step-up grant"
	ttl := time.Until(g.ExpiresAt)
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	key := s.k.stepUpGrant(hash)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "sub", g.Subject, "action", g.Action, "client", g.ClientID, "once", flag(g.OneTime), "exp", g.ExpiresAt.UnixMilli(), "factor", g.Factor)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	return fail(op, err)
}

// UseStepUpGrant implements session.StepUpGrantStore with one script, so
// a one-time grant used concurrently succeeds exactly once. It is sent
// once (evalOnce): a re-sent script would find its own deletion and refuse
// the grant it just accepted.
func (s *Store) UseStepUpGrant(ctx context.Context, hash, subject, action, clientID string, now time.Time) (string, bool, error) {
	factor, err := s.evalOnce(ctx, scriptUseStepUpGrant, []string{s.k.stepUpGrant(hash)}, subject, action, clientID, now.UnixMilli()).Text()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fail("use step-up grant", err)
	}
	return factor, true, nil
}

// ReplaceVerifications implements session.AdminStore.
func (s *Store) ReplaceVerifications(ctx context.Context, id, sub string, vs []authn.Verification) error {
	const op = "replace verifications"
	if sub == "" {
		return fmt.Errorf("redisstore: %s: no subject", op)
	}
	args := []any{sub}
	for _, v := range vs {
		b, err := verificationValue(v)
		if err != nil {
			return fmt.Errorf("redisstore: %s: %w", op, err)
		}
		args = append(args, prefixVerify+string(v.Factor), b)
	}
	err := scriptReplaceVerifications.Run(ctx, s.c, []string{s.k.session(id)}, args...).Err()
	return fail(op, err)
}

// LockAccount implements session.AdminStore.
func (s *Store) LockAccount(ctx context.Context, subject string) error {
	err := scriptLockAccount.Run(ctx, s.c, []string{s.k.account(subject)}).Err()
	return fail("lock account", err)
}

// UnlockAccount implements session.AdminStore: the lock and the failure
// count go in one MULTI (one hash tag).
func (s *Store) UnlockAccount(ctx context.Context, subject string) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.k.account(subject), acctLocked)
		p.Del(ctx, s.k.budget(string(session.BudgetUser), subject))
		return nil
	})
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return fail("unlock account", err)
}
