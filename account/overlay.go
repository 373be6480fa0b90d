package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// Short is the short-lived half of what stepup keeps (session/redisstore):
// a session.Store that can also hold the lock mark its budgets obey.
type Short interface {
	session.Store
	// MarkLocked sets or lifts (resetting the failure budget) the mark
	// that makes every Reserve of the user's budget answer over the limit.
	MarkLocked(ctx context.Context, subject string, locked bool) error
	// LegacySecret reads a shared secret that an earlier version kept in
	// Redis, without storing one (session.ErrNotFound without one).
	LegacySecret(ctx context.Context, name string) ([]byte, error)
}

// Overlay returns the session.Store the server works with: accounts and
// enrolled factors (SeedAccount, GetAccount, AccountByUsername, the TOTP
// secret, email codes, last factor, phone, recovery codes, passkeys, the
// lock) and the secrets instances share (signing keys, cookie keys) from
// durable, everything short-lived (sessions, flows, codes, grants,
// budgets, challenges, TOTP steps, one-time codes) from short. Close and
// Ping cover both.
func Overlay(short Short, durable Store) session.Store {
	return &overlay{Short: short, d: durable}
}

type overlay struct {
	Short
	d Store
}

var (
	_ session.Store       = (*overlay)(nil)
	_ session.EmailFinder = (*overlay)(nil)
)

func (o *overlay) SeedAccount(ctx context.Context, a *session.Account) (*session.Account, error) {
	return o.d.SeedAccount(ctx, a)
}

func (o *overlay) GetAccount(ctx context.Context, subject string) (*session.Account, error) {
	return o.d.GetAccount(ctx, subject)
}

func (o *overlay) AccountByUsername(ctx context.Context, username string) (*session.Account, error) {
	return o.d.AccountByUsername(ctx, username)
}

// AccountByEmail implements session.EmailFinder from the database.
func (o *overlay) AccountByEmail(ctx context.Context, email string) (*session.Account, error) {
	return o.d.AccountByEmail(ctx, email)
}

func (o *overlay) SetTOTPSecret(ctx context.Context, subject, secret string) error {
	return o.d.SetTOTPSecret(ctx, subject, secret)
}

func (o *overlay) SetEmailMFA(ctx context.Context, subject string, on bool) error {
	return o.d.SetEmailMFA(ctx, subject, on)
}

func (o *overlay) SetLastFactor(ctx context.Context, subject string, f authn.Factor) error {
	return o.d.SetLastFactor(ctx, subject, f)
}

func (o *overlay) ReplacePasswordHash(ctx context.Context, subject, oldHash, newHash string) (bool, error) {
	return o.d.ReplacePasswordHash(ctx, subject, oldHash, newHash)
}

func (o *overlay) SetPhone(ctx context.Context, subject, phone string) error {
	return o.d.SetPhone(ctx, subject, phone)
}

func (o *overlay) SetRecoveryCodes(ctx context.Context, subject string, hashes []string) error {
	return o.d.SetRecoveryCodes(ctx, subject, hashes)
}

func (o *overlay) UseRecoveryCode(ctx context.Context, subject, hash string) (bool, error) {
	return o.d.UseRecoveryCode(ctx, subject, hash)
}

func (o *overlay) CountRecoveryCodes(ctx context.Context, subject string) (int, error) {
	return o.d.CountRecoveryCodes(ctx, subject)
}

func (o *overlay) PutPasskey(ctx context.Context, subject string, p session.StoredPasskey) error {
	return o.d.PutPasskey(ctx, subject, p)
}

func (o *overlay) UpdatePasskey(ctx context.Context, subject string, p session.StoredPasskey) error {
	return o.d.UpdatePasskey(ctx, subject, p)
}

func (o *overlay) DeletePasskey(ctx context.Context, subject, id string) error {
	return o.d.DeletePasskey(ctx, subject, id)
}

// LockAccount records the lock in the database (what GetAccount shows),
// then marks it in Redis beside the budget it closes. If the second half
// fails, LockAccount returns the error with the account shown locked but
// attempts still counted normally; the operator sees the failure and
// locks again, which writes both halves again.
func (o *overlay) LockAccount(ctx context.Context, subject string) error {
	if err := o.d.SetLocked(ctx, subject, true); err != nil {
		return err
	}
	if err := o.Short.MarkLocked(ctx, subject, true); err != nil {
		return fmt.Errorf("account locked in the database, but not yet in the budget store: %w", err)
	}
	return nil
}

// UnlockAccount lifts the mark in Redis first, then the database's: if
// the second half fails, the account still shows locked while attempts
// are allowed again, and the error says so; unlocking again completes it.
// A lock mark without an account is lifted too (no ErrNotFound from the
// first half).
func (o *overlay) UnlockAccount(ctx context.Context, subject string) error {
	if err := o.Short.MarkLocked(ctx, subject, false); err != nil {
		return err
	}
	if err := o.d.SetLocked(ctx, subject, false); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return err
		}
		return fmt.Errorf("budget unlocked, but the account still shows locked: %w", err)
	}
	return nil
}

// SetActive writes the account's active flag in the database, where
// every step of a flow reads it (a disabled account can neither sign in
// nor complete a flow). A concurrent update of the record is read again
// and the flag written on top of it (ErrNotFound without an account).
// Ending what lives in Redis (sessions, grants) is the caller's second
// step: the database goes first, so that nothing can be issued for the
// account after both steps, whichever instance serves it.
func (o *overlay) SetActive(ctx context.Context, subject string, active bool) error {
	for {
		r, err := o.d.Get(ctx, subject)
		if err != nil {
			return err
		}
		if r.Active == active {
			return nil
		}
		r.Active = active
		if _, err := o.d.Update(ctx, r); !errors.Is(err, ErrConflict) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// DeleteAccount removes the account and its factors from the database
// (ErrNotFound without one). Callers disable it and end its sessions and
// grants first (see SetActive).
func (o *overlay) DeleteAccount(ctx context.Context, subject string) error {
	return o.d.Delete(ctx, subject)
}

// InitSecret keeps shared secrets in the database, sealed. A deployment
// that kept them in Redis carries its values over (same signing key, same
// cookie keys: nobody is signed out, no token stops verifying): Redis's
// value, when there is one, is what the database stores first. Nothing is
// written to Redis.
func (o *overlay) InitSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	v, err := o.d.LookupSecret(ctx, name)
	if err == nil || !errors.Is(err, session.ErrNotFound) {
		return v, err
	}
	old, err := o.Short.LegacySecret(ctx, name)
	switch {
	case err == nil:
		value = old
	case !errors.Is(err, session.ErrNotFound):
		return nil, err
	}
	return o.d.InitSecret(ctx, name, value)
}

// SwapSecret changes a shared secret in the database (the signing key
// set at a rotation). InitSecret has carried any value of Redis over
// before: the secret to change was read through it.
func (o *overlay) SwapSecret(ctx context.Context, name string, old, value []byte) (bool, error) {
	return o.d.SwapSecret(ctx, name, old, value)
}

func (o *overlay) Ping(ctx context.Context) error {
	if err := o.Short.Ping(ctx); err != nil {
		return err
	}
	return o.d.Ping(ctx)
}

func (o *overlay) Close() error {
	return errors.Join(o.Short.Close(), o.d.Close())
}

// Durable is the account database behind the overlay (administration:
// SCIM reads and writes whole records).
func (o *overlay) Durable() Store { return o.d }

// SetEmail changes the account's email address in the database (a
// concurrent update of the record is read again and the address written
// on top of it). An account whose username is its address (one made by
// registration) keeps them equal: the username changes too. ErrTaken
// when another account has the address (or that username); ErrNotFound
// without an account.
func (o *overlay) SetEmail(ctx context.Context, subject, email string) error {
	for {
		r, err := o.d.Get(ctx, subject)
		if err != nil {
			return err
		}
		if r.Email != "" && strings.EqualFold(r.Username, r.Email) {
			r.Username = email
		}
		r.Email = email
		if _, err := o.d.Update(ctx, r); !errors.Is(err, ErrConflict) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Register creates an account made by registration (active, with a.
// Subject, a.Username, a.Email and a.PasswordHash). ErrTaken when the
// username or address is another account's.
func (o *overlay) Register(ctx context.Context, a *session.Account) error {
	_, err := o.d.Create(ctx, &Record{Account: *a, Active: true})
	return err
}
