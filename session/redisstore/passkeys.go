package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session"
)

// scriptPutPasskey writes a credential of an existing account: an account
// removed meanwhile gets no orphan credential.
// KEYS[1] account, KEYS[2] passkeys; ARGV[1] id, ARGV[2] record.
var scriptPutPasskey = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// scriptUpdatePasskey replaces a credential that still exists, so a sign
// count written after an assertion cannot resurrect a removed passkey.
// KEYS[1] passkeys; ARGV[1] id, ARGV[2] record.
var scriptUpdatePasskey = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return nil end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// PutPasskey implements session.PasskeyStore.
func (s *Store) PutPasskey(ctx context.Context, subject string, p session.StoredPasskey) error {
	const op = "put passkey"
	if p.ID == "" || len(p.Data) == 0 {
		return fmt.Errorf("redisstore: %s: empty id or record", op)
	}
	err := scriptPutPasskey.Run(ctx, s.c, []string{s.k.account(subject), s.k.passkeys(subject)}, p.ID, p.Data).Err()
	return fail(op, err)
}

// UpdatePasskey implements session.PasskeyStore.
func (s *Store) UpdatePasskey(ctx context.Context, subject string, p session.StoredPasskey) error {
	const op = "update passkey"
	if p.ID == "" || len(p.Data) == 0 {
		return fmt.Errorf("redisstore: %s: empty id or record", op)
	}
	err := scriptUpdatePasskey.Run(ctx, s.c, []string{s.k.passkeys(subject)}, p.ID, p.Data).Err()
	return fail(op, err)
}

// DeletePasskey implements session.PasskeyStore.
func (s *Store) DeletePasskey(ctx context.Context, subject, id string) error {
	const op = "delete passkey"
	n, err := s.c.HDel(ctx, s.k.passkeys(subject), id).Result()
	if err != nil {
		return fail(op, err)
	}
	if n == 0 {
		return fail(op, redis.Nil)
	}
	return nil
}

// PutChallenge implements session.PasskeyStore.
func (s *Store) PutChallenge(ctx context.Context, challenge string, data []byte, ttl time.Duration) error {
	const op = "put challenge"
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	if challenge == "" {
		return fmt.Errorf("redisstore: %s: empty challenge", op)
	}
	return fail(op, s.c.Set(ctx, s.k.challenge(challenge), data, ttl).Err())
}

// TakeChallenge implements session.PasskeyStore with one GETDEL.
func (s *Store) TakeChallenge(ctx context.Context, challenge string) ([]byte, error) {
	const op = "take challenge"
	if challenge == "" {
		return nil, fail(op, redis.Nil)
	}
	// Sent once (processOnce): a re-sent GETDEL would find nothing and
	// refuse the ceremony it just consumed.
	key := s.k.challenge(challenge)
	b, err := processOnce(ctx, s.c, func() *redis.StringCmd { return redis.NewStringCmd(ctx, "getdel", key) }).Bytes()
	if err != nil {
		return nil, fail(op, err)
	}
	return b, nil
}

// parsePasskeys turns the passkeys hash into records sorted by id.
func parsePasskeys(m map[string]string) []session.StoredPasskey {
	if len(m) == 0 {
		return nil
	}
	out := make([]session.StoredPasskey, 0, len(m))
	for id, data := range m {
		out = append(out, session.StoredPasskey{ID: id, Data: []byte(data)})
	}
	slices.SortFunc(out, func(a, b session.StoredPasskey) int { return strings.Compare(a.ID, b.ID) })
	return out
}
