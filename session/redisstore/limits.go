package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session"
)

// Reserve implements session.LimitStore. The budgets live in different
// hash slots (the user's budget shares the user's tag), so they are
// counted by one pipeline of single-key scripts: one round trip. The
// scripts are sent whole (EVAL), not by SHA with a retry as pipeScripts
// does, and as noRetry commands (once.go): an INCR must never run twice.
func (s *Store) Reserve(ctx context.Context, window time.Duration, bs ...session.Budget) ([]int64, error) {
	const op = "reserve attempt"
	if err := checkTTL(op, window); err != nil {
		return nil, err
	}
	cmds := make([]*redis.Cmd, len(bs))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range bs {
			if b.Max < 1 {
				return fmt.Errorf("budget %s has no limit", b.Kind)
			}
			keys := []string{s.k.budget(string(b.Kind), b.ID)}
			if b.Kind == session.BudgetUser {
				keys = append(keys, s.k.account(b.ID))
			}
			cmds[i] = evalCmd(ctx, "eval", scriptSources[scriptReserve], keys, millis(window), b.Max)
			_ = p.Process(ctx, noRetry{cmds[i]})
		}
		return nil
	})
	if err != nil {
		return nil, fail(op, err)
	}
	out := make([]int64, len(bs))
	for i, c := range cmds {
		if out[i], err = c.Int64(); err != nil {
			return nil, fail(op, err)
		}
	}
	return out, nil
}

// Refund implements session.LimitStore.
func (s *Store) Refund(ctx context.Context, bs ...session.Budget) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range bs {
			_ = p.Process(ctx, noRetry{evalCmd(ctx, "eval", scriptSources[scriptRefund], []string{s.k.budget(string(b.Kind), b.ID)})})
		}
		return nil
	})
	return fail("refund attempt", err)
}
