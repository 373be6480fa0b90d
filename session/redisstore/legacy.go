package redisstore

import (
	"context"
	"errors"
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
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil // purged meanwhile by an instance that finished the move
	}
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

// eachKey calls fn with every key matching pattern, on every primary of a
// Cluster.
func (s *Store) eachKey(ctx context.Context, pattern string, fn func(ctx context.Context, c redis.UniversalClient, key string) error) error {
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			if err := fn(ctx, c, iter.Val()); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.c)
}

// LegacySecrets calls fn with every shared secret an earlier version
// kept in Redis (keys.secret: signing key, cookie keys), for their move
// to the database.
func (s *Store) LegacySecrets(ctx context.Context, fn func(name string, value []byte) error) error {
	prefix := s.k.secret("")
	err := s.eachKey(ctx, escapeGlob(prefix)+"*", func(ctx context.Context, c redis.UniversalClient, key string) error {
		v, err := c.Get(ctx, key).Bytes()
		if err == redis.Nil {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		return fn(strings.TrimPrefix(key, prefix), v)
	})
	return fail("scan secrets", err)
}

// scriptDeleteIfEqual deletes KEYS[1] if it still holds ARGV[1].
var scriptDeleteIfEqual = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// DeleteLegacySecret deletes the Redis copy of shared secret name if it
// still holds value (the database holds that value now).
func (s *Store) DeleteLegacySecret(ctx context.Context, name string, value []byte) error {
	return fail("delete legacy secret", scriptDeleteIfEqual.Run(ctx, s.c, []string{s.k.secret(name)}, value).Err())
}

// scriptStripAccount deletes every field of the account hash KEYS[1] but
// the lock mark (which Reserve still reads there), and the account's
// recovery codes KEYS[2] and passkeys KEYS[3]; all share the user's tag.
var scriptStripAccount = redis.NewScript(`
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= 'locked' then redis.call('HDEL', KEYS[1], f) end
end
return redis.call('DEL', KEYS[2], KEYS[3])
`)

// PurgeLegacyAccounts deletes what accounts kept in Redis before the
// account database, once they are there: every account hash's fields
// but the lock mark (password hash, plaintext TOTP secret, phone, …),
// recovery-code hashes, passkeys and the username index. It is
// idempotent; several instances may run it at once. It returns the
// number of accounts it stripped.
func (s *Store) PurgeLegacyAccounts(ctx context.Context) (int, error) {
	n := 0
	accountKey := func(key string) (string, bool) {
		sub, ok := strings.CutPrefix(key, s.k.prefix+"{user:")
		if !ok {
			return "", false
		}
		for _, suffix := range []string{"}:account", "}:recovery", "}:passkeys"} {
			if sub, ok := strings.CutSuffix(sub, suffix); ok {
				return sub, true
			}
		}
		return "", false
	}
	for _, shape := range []string{"{user:*}:account", "{user:*}:recovery", "{user:*}:passkeys"} {
		err := s.eachKey(ctx, escapeGlob(s.k.prefix)+shape, func(ctx context.Context, c redis.UniversalClient, key string) error {
			sub, ok := accountKey(key)
			if !ok || (key != s.k.account(sub) && key != s.k.recovery(sub) && key != s.k.passkeys(sub)) {
				return nil
			}
			fields, err := c.HLen(ctx, s.k.account(sub)).Result()
			if err != nil {
				return err
			}
			if key == s.k.account(sub) && fields <= 1 {
				if locked, err := c.HExists(ctx, key, acctLocked).Result(); err != nil || (locked && fields == 1) {
					return err // a lock mark alone
				}
			}
			if key == s.k.account(sub) {
				n++
			}
			return scriptStripAccount.Run(ctx, c, []string{s.k.account(sub), s.k.recovery(sub), s.k.passkeys(sub)}).Err()
		})
		if err != nil {
			return n, fail("purge legacy accounts", err)
		}
	}
	err := s.eachKey(ctx, escapeGlob(s.k.username(""))+"*", func(ctx context.Context, c redis.UniversalClient, key string) error {
		return c.Del(ctx, key).Err()
	})
	return n, fail("purge legacy usernames", err)
}
