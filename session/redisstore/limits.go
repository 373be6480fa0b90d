package redisstore

import (
	"context"
	"errors"
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

// ReserveTOTP implements session.LimitStore: Reserve, where the subject's
// own budget is counted by scriptReserveTOTP, which in the same script
// (the budget, the account's lock and the step share the {user:<sub>}
// slot) claims the verified code's time step and gives the attempt back
// when the count allowed it and the step was unused. One round trip for
// what took three (Reserve, UseTOTPStep, Refund). Every script is sent
// whole (EVAL) and never re-sent: at most once, as Reserve.
func (s *Store) ReserveTOTP(ctx context.Context, window time.Duration, bs []session.Budget, subject string, step int64, stepTTL time.Duration) ([]int64, bool, error) {
	const op = "reserve totp attempt"
	if err := checkTTL(op, window); err != nil {
		return nil, false, err
	}
	if err := checkTTL(op, stepTTL); err != nil {
		return nil, false, err
	}
	user := -1
	for i, b := range bs {
		if b.Kind == session.BudgetUser && b.ID == subject {
			user = i
		}
	}
	if user < 0 || subject == "" {
		return nil, false, fail(op, errors.New("no budget of the subject"))
	}
	cmds := make([]*redis.Cmd, len(bs))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range bs {
			if b.Max < 1 {
				return fmt.Errorf("budget %s has no limit", b.Kind)
			}
			keys := []string{s.k.budget(string(b.Kind), b.ID)}
			switch {
			case i == user:
				keys = append(keys, s.k.account(b.ID))
				if step >= 0 {
					keys = append(keys, s.k.totpStep(subject, step))
				}
				cmds[i] = evalCmd(ctx, "eval", scriptSources[scriptReserveTOTP], keys, millis(window), b.Max, millis(stepTTL))
			case b.Kind == session.BudgetUser:
				keys = append(keys, s.k.account(b.ID))
				fallthrough
			default:
				cmds[i] = evalCmd(ctx, "eval", scriptSources[scriptReserve], keys, millis(window), b.Max)
			}
			_ = p.Process(ctx, noRetry{cmds[i]})
		}
		return nil
	})
	if err != nil {
		return nil, false, fail(op, err)
	}
	out := make([]int64, len(bs))
	claimed := false
	for i, c := range cmds {
		if i != user {
			if out[i], err = c.Int64(); err != nil {
				return nil, false, fail(op, err)
			}
			continue
		}
		r, err := c.Int64Slice()
		if err != nil {
			return nil, false, fail(op, err)
		}
		if len(r) != 2 {
			return nil, false, fail(op, fmt.Errorf("unexpected reply %v", r))
		}
		out[i], claimed = r[0], r[1] == 1
	}
	return out, claimed, nil
}
