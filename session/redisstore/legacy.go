package redisstore

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session"
)

// LegacyAccount is an account as stepup kept it in Redis before accounts
// moved to the database: the account with its factors, and the hashes of
// its unused recovery codes (GetAccount gives only their number).
type LegacyAccount struct {
	session.Account
	RecoveryHashes []string
}

// LegacyAccounts calls fn with every account stored in Redis (on every
// primary of a Cluster), for the one-time move of accounts to the
// database. A hash that holds a lock mark alone (MarkLocked) is no
// account and is skipped. It stops at the first error of fn.
func (s *Store) LegacyAccounts(ctx context.Context, fn func(LegacyAccount) error) error {
	const op = "scan accounts"
	// The key shape of keys.account, with the subject as the wildcard.
	pattern := escapeGlob(s.k.prefix) + "{user:*}:account"
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			sub, ok := strings.CutPrefix(key, s.k.prefix+"{user:")
			if !ok {
				continue
			}
			sub, ok = strings.CutSuffix(sub, "}:account")
			if !ok || s.k.account(sub) != key {
				continue
			}
			a, err := s.legacyAccount(ctx, sub)
			if err != nil {
				return err
			}
			if a == nil {
				continue
			}
			if err := fn(*a); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.c)
	}
	return fail(op, err)
}

// legacyAccount reads one account and its recovery hashes; nil for a
// hash without a username.
func (s *Store) legacyAccount(ctx context.Context, sub string) (*LegacyAccount, error) {
	a, err := s.GetAccount(ctx, sub)
	if err != nil {
		return nil, err
	}
	if a.Username == "" {
		return nil, nil
	}
	hashes, err := s.c.SMembers(ctx, s.k.recovery(sub)).Result()
	if err != nil {
		return nil, err
	}
	return &LegacyAccount{Account: *a, RecoveryHashes: hashes}, nil
}

// MigrationDone reports whether the one-time step name was recorded done
// (SetMigrationDone) by any instance.
func (s *Store) MigrationDone(ctx context.Context, name string) (bool, error) {
	n, err := s.c.Exists(ctx, s.k.migration(name)).Result()
	if err != nil {
		return false, fail("migration done", err)
	}
	return n == 1, nil
}

// SetMigrationDone records that the one-time step name is done, at now.
func (s *Store) SetMigrationDone(ctx context.Context, name string, now time.Time) error {
	return fail("set migration done", s.c.Set(ctx, s.k.migration(name), now.UTC().Format(time.RFC3339), 0).Err())
}

// LegacySecret reads a shared secret without storing one (see
// account.Overlay's InitSecret): session.ErrNotFound without one.
func (s *Store) LegacySecret(ctx context.Context, name string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.k.secret(name)).Bytes()
	if err != nil {
		return nil, fail("legacy secret", err)
	}
	return b, nil
}
