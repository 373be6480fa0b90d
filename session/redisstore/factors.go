package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetPhone implements session.PhoneStore.
func (s *Store) SetPhone(ctx context.Context, subject, phone string) error {
	return s.setAccountField(ctx, "set phone", subject, acctPhone, phone)
}

// SetRecoveryCodes implements session.RecoveryStore: one script checks the
// account and replaces the set (one hash tag).
func (s *Store) SetRecoveryCodes(ctx context.Context, subject string, hashes []string) error {
	const op = "set recovery codes"
	args := make([]any, len(hashes))
	for i, h := range hashes {
		if h == "" {
			return fmt.Errorf("redisstore: %s: empty hash", op)
		}
		args[i] = h
	}
	err := scriptSetRecovery.Run(ctx, s.c, []string{s.k.account(subject), s.k.recovery(subject)}, args...).Err()
	return fail(op, err)
}

// UseRecoveryCode implements session.RecoveryStore with one SREM, which
// removes a member for exactly one of concurrent callers. It is sent once
// (processOnce): a re-sent SREM would refuse the code it just removed.
func (s *Store) UseRecoveryCode(ctx context.Context, subject, hash string) (bool, error) {
	key := s.k.recovery(subject)
	n, err := processOnce(ctx, s.c, func() *redis.IntCmd { return redis.NewIntCmd(ctx, "srem", key, hash) }).Result()
	if err != nil {
		return false, fail("use recovery code", err)
	}
	return n == 1, nil
}

// CountRecoveryCodes implements session.RecoveryStore.
func (s *Store) CountRecoveryCodes(ctx context.Context, subject string) (int, error) {
	n, err := s.c.SCard(ctx, s.k.recovery(subject)).Result()
	if err != nil {
		return 0, fail("count recovery codes", err)
	}
	return int(n), nil
}

// PutOTP implements session.OTPStore in one script over the code and its
// cooldown (the session's tag).
func (s *Store) PutOTP(ctx context.Context, sessionID, purpose, hash string, ttl, cooldown time.Duration) (bool, error) {
	const op = "put otp"
	if err := checkTTL(op, ttl); err != nil {
		return false, err
	}
	if err := checkTTL(op+": cooldown", cooldown); err != nil {
		return false, err
	}
	if sessionID == "" || purpose == "" || hash == "" {
		return false, fmt.Errorf("redisstore: %s: empty session, purpose or hash", op)
	}
	n, err := scriptPutOTP.Run(ctx, s.c, []string{s.k.otp(sessionID, purpose), s.k.otpCooldown(sessionID, purpose)},
		hash, millis(ttl), millis(cooldown)).Int()
	if err != nil {
		return false, fail(op, err)
	}
	return n == 1, nil
}

// UseOTP implements session.OTPStore in one script: compare, then delete
// or count the mismatch. The script is not idempotent (a mismatch
// counts), so it is sent once (evalOnce), never re-sent in a pipeline.
func (s *Store) UseOTP(ctx context.Context, sessionID, purpose, hash string, maxWrong int) (bool, error) {
	const op = "use otp"
	if maxWrong < 1 {
		return false, fmt.Errorf("redisstore: %s: maxWrong %d must be at least 1", op, maxWrong)
	}
	n, err := s.evalOnce(ctx, scriptUseOTP, []string{s.k.otp(sessionID, purpose), s.k.otpCooldown(sessionID, purpose)}, hash, maxWrong).Int()
	if err != nil {
		return false, fail(op, err)
	}
	return n == 1, nil
}

// HasOTP implements session.OTPStore.
func (s *Store) HasOTP(ctx context.Context, sessionID, purpose string) (bool, error) {
	n, err := s.c.Exists(ctx, s.k.otp(sessionID, purpose)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fail("has otp", err)
	}
	return n == 1, nil
}
