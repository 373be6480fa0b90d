package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// SeedAccount creates the account for a.Username unless one exists. The
// username is claimed first with SET NX, so instances seeding the same
// user at once agree on one subject (the first claim's); the account is
// then written only if it has no username yet (scriptSeedAccount), so a
// seed never overwrites what changed at runtime. A crash between the two
// steps leaves a username without an account, which the next seed repairs.
func (s *Store) SeedAccount(ctx context.Context, a *session.Account) (*session.Account, error) {
	const op = "seed account"
	if a.Username == "" {
		return nil, fmt.Errorf("redisstore: %s: empty username", op)
	}
	if a.Subject == "" {
		return nil, fmt.Errorf("redisstore: %s %q: empty subject", op, a.Username)
	}
	ukey := s.k.username(a.Username)
	if err := s.c.SetNX(ctx, ukey, a.Subject, 0).Err(); err != nil {
		return nil, fail(op, err)
	}
	sub, err := s.c.Get(ctx, ukey).Result()
	if err != nil {
		return nil, fail(op, err)
	}
	fields := []any{
		acctSub, sub,
		acctUsername, a.Username,
		acctPasswordHash, a.PasswordHash,
		acctEmail, a.Email,
		acctName, a.Name,
		acctEmailMFA, flag(a.EmailMFA),
	}
	if a.TOTPSecret != "" {
		fields = append(fields, acctTOTPSecret, a.TOTPSecret)
	}
	if a.Phone != "" {
		fields = append(fields, acctPhone, a.Phone)
	}
	if err := scriptSeedAccount.Run(ctx, s.c, []string{s.k.account(sub)}, fields...).Err(); err != nil {
		return nil, fail(op, err)
	}
	return s.GetAccount(ctx, sub)
}

// MarkLocked sets (or lifts, resetting the user's failure budget) the
// lock mark that Reserve obeys, whether or not the account itself lives
// here: with account.Overlay the account is in the database and only the
// mark is in Redis, beside the budget it guards.
func (s *Store) MarkLocked(ctx context.Context, subject string, locked bool) error {
	if !locked {
		return s.UnlockAccount(ctx, subject)
	}
	return fail("mark locked", s.c.HSet(ctx, s.k.account(subject), acctLocked, "1").Err())
}

// GetAccount returns the account of subject with the number of its
// recovery codes and its passkeys: HGETALL, SCARD and HGETALL in one
// pipeline.
func (s *Store) GetAccount(ctx context.Context, subject string) (*session.Account, error) {
	const op = "get account"
	var acct, pks *redis.MapStringStringCmd
	var recovery *redis.IntCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		acct = p.HGetAll(ctx, s.k.account(subject))
		recovery = p.SCard(ctx, s.k.recovery(subject))
		pks = p.HGetAll(ctx, s.k.passkeys(subject))
		return nil
	})
	if err != nil {
		return nil, fail(op, err)
	}
	m := acct.Val()
	if len(m) == 0 {
		return nil, fail(op, redis.Nil)
	}
	return &session.Account{
		Subject:       subject,
		Username:      m[acctUsername],
		PasswordHash:  m[acctPasswordHash],
		Email:         m[acctEmail],
		Phone:         m[acctPhone],
		Name:          m[acctName],
		TOTPSecret:    m[acctTOTPSecret],
		EmailMFA:      m[acctEmailMFA] == "1",
		LastFactor:    authn.Factor(m[acctLastFactor]),
		Locked:        m[acctLocked] == "1",
		RecoveryCodes: int(recovery.Val()),
		Passkeys:      parsePasskeys(pks.Val()),
	}, nil
}

// AccountByUsername returns the account of a username, ignoring case.
func (s *Store) AccountByUsername(ctx context.Context, username string) (*session.Account, error) {
	sub, err := s.c.Get(ctx, s.k.username(username)).Result()
	if err != nil {
		return nil, fail("account by username", err)
	}
	return s.GetAccount(ctx, sub)
}

// ReplacePasswordHash implements session.PasswordStore with one script
// (compare, then set).
func (s *Store) ReplacePasswordHash(ctx context.Context, subject, oldHash, newHash string) (bool, error) {
	n, err := scriptReplaceField.Run(ctx, s.c, []string{s.k.account(subject)}, acctPasswordHash, oldHash, newHash).Int()
	if err != nil {
		return false, fail("replace password hash", err)
	}
	return n == 1, nil
}

// SetTOTPSecret sets (or, with "", clears) the TOTP secret of an existing
// account.
func (s *Store) SetTOTPSecret(ctx context.Context, subject, secret string) error {
	return s.setAccountField(ctx, "set totp secret", subject, acctTOTPSecret, secret)
}

// SetEmailMFA implements session.AccountStore.
func (s *Store) SetEmailMFA(ctx context.Context, subject string, on bool) error {
	return s.setAccountField(ctx, "set email mfa", subject, acctEmailMFA, flag(on))
}

// SetLastFactor records the factor the user last verified as second
// factor, to offer it first next time.
func (s *Store) SetLastFactor(ctx context.Context, subject string, f authn.Factor) error {
	return s.setAccountField(ctx, "set last factor", subject, acctLastFactor, string(f))
}

// setAccountField writes one field of an existing account; it never
// creates a partial account for an unknown subject.
func (s *Store) setAccountField(ctx context.Context, op, subject, field, value string) error {
	err := scriptSetIfExists.Run(ctx, s.c, []string{s.k.account(subject)}, field, value).Err()
	return fail(op, err)
}

// UseTOTPStep claims a TOTP time step for subject with one SET NX, so two
// instances verifying the same code at once accept it once. It is sent
// once (processOnce): a re-sent SET NX would refuse the code it claimed.
func (s *Store) UseTOTPStep(ctx context.Context, subject string, step int64, ttl time.Duration) (bool, error) {
	const op = "use totp step"
	if err := checkTTL(op, ttl); err != nil {
		return false, err
	}
	key := s.k.totpStep(subject, step)
	ok, err := processOnce(ctx, s.c, func() *redis.BoolCmd {
		return redis.NewBoolCmd(ctx, "set", key, "1", "px", millis(ttl), "nx")
	}).Result()
	if err != nil {
		return false, fail(op, err)
	}
	return ok, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
