package fromredis_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/account/fromredis"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// rawRedis is a plain client on the backend's Redis, to write keys
// exactly as the version before the account database did, independently
// of what redisstore does today.
func rawRedis(t *testing.T, b *sessiontest.Backend) redis.UniversalClient {
	t.Helper()
	cfg := b.Config()
	var c redis.UniversalClient
	if cfg.URL != "" {
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			t.Fatal(err)
		}
		c = redis.NewClient(o)
	} else {
		c = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cfg.Addrs, MasterName: cfg.MasterName})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

const (
	oldTOTP = "OLDPLAINTEXTTOTPSECRETAAAAAAAAAA"
	oldPEM  = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOldKeyOldKeyOldKey\n-----END PRIVATE KEY-----\n"
)

// fillOldMain writes what stepup at 7c30706 (the main before the account
// database) kept in Redis, key shape by key shape (its
// session/redisstore/keys.go, accounts.go, factors.go, passkeys.go and
// records.go): the username index (STRING, SET NX), the account HASH,
// the recovery-code SET, the passkey HASH, and the shared secrets
// (STRING secret:NAME: the signing key PEM of server/op/keys.go and the
// cookie, CSRF, OTP and sid keys of server.go).
func fillOldMain(t *testing.T, c redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := t.Context()
	for _, cmd := range [][]any{
		{"SET", prefix + "username:dora", "old-sub-dora"},
		{"HSET", prefix + "{user:old-sub-dora}:account", "sub", "old-sub-dora", "username", "Dora", "password_hash", "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$ZG9yYWhhc2g",
			"email", "dora@example.com", "name", "Dora", "totp_secret", oldTOTP, "phone", "+15555550177", "email_mfa", "1", "last_factor", "totp"},
		{"SADD", prefix + "{user:old-sub-dora}:recovery", "rhash-1", "rhash-2"},
		{"HSET", prefix + "{user:old-sub-dora}:passkeys", "Y3JlZC0x", "\x00passkey-record"},
		{"SET", prefix + "username:eve", "old-sub-eve"},
		{"HSET", prefix + "{user:old-sub-eve}:account", "sub", "old-sub-eve", "username", "eve", "password_hash", "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$ZXZlaGFzaA",
			"email", "", "name", "", "locked", "1"},
		{"SET", prefix + "secret:signing-key:ES256", oldPEM},
		{"SET", prefix + "secret:cookie-hash", strings.Repeat("h", 64)},
		{"SET", prefix + "secret:csrf", strings.Repeat("c", 32)},
		// Short-lived state stays: a session index and a used TOTP step.
		{"SADD", prefix + "{user:old-sub-dora}:sessions", "s1"},
	} {
		if err := c.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd[:2], err)
		}
	}
}

// leftovers lists the keys of prefix and flags any that still hold
// account data or a secret in plaintext.
func leftovers(t *testing.T, c redis.UniversalClient, prefix string) (bad []string) {
	t.Helper()
	ctx := t.Context()
	keys, err := c.Keys(ctx, strings.NewReplacer("{", `\{`, "}", `\}`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(prefix)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefix)
		switch {
		case strings.HasSuffix(rest, "}:sessions"), rest == "migrated:"+fromredis.Marker: // a timestamp
		case strings.HasSuffix(rest, "}:account"):
			if f, _ := c.HKeys(ctx, k).Result(); len(f) != 1 || f[0] != "locked" {
				bad = append(bad, k+" "+strings.Join(f, ","))
			}
		default:
			bad = append(bad, rest)
		}
		if v, _ := c.Dump(ctx, k).Result(); strings.Contains(v, oldTOTP) || strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "$argon2id$") {
			bad = append(bad, k+" holds a secret")
		}
	}
	return bad
}

// After the move from a Redis filled by the old main, Redis holds no
// plaintext copy of an account, a TOTP secret or a signing key (only an
// operator's lock mark, which the budgets read, and short-lived state);
// the database holds all of them. An account deleted after the move
// never comes back, neither at a restart nor from a Redis restored from
// a backup taken before the move.
func TestMoveLeavesNothingInRedis(t *testing.T) {
	ctx := t.Context()
	backend := sessiontest.NewBackend(t)
	c := rawRedis(t, backend)
	fillOldMain(t, c, backend.Prefix())
	src := backend.Store(t).(*redisstore.Store)
	db := accounttest.NewStore(t)

	rep, err := fromredis.Run(ctx, src, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 2 || rep.Purged != 2 || rep.PurgedSecrets != 3 {
		t.Fatalf("report %+v, want 2 accounts moved and purged, 3 secrets purged", rep)
	}
	if bad := leftovers(t, c, backend.Prefix()); len(bad) > 0 {
		t.Fatalf("left in Redis after the move: %v", bad)
	}
	dora, err := db.GetAccount(ctx, "old-sub-dora")
	if err != nil || dora.TOTPSecret != oldTOTP || dora.Phone != "+15555550177" || !dora.EmailMFA || dora.RecoveryCodes != 2 || len(dora.Passkeys) != 1 {
		t.Fatalf("dora in the database: %+v, %v", dora, err)
	}
	if v, err := db.LookupSecret(ctx, "signing-key:ES256"); err != nil || string(v) != oldPEM {
		t.Fatalf("the signing key did not reach the database: %q, %v", v, err)
	}
	// eve's lock still closes her budget: its mark stayed.
	if n, err := src.Reserve(ctx, 3600e9, session.Budget{Kind: session.BudgetUser, ID: "old-sub-eve", Max: 3}); err != nil || n[0] <= 3 {
		t.Fatalf("eve's lock after the purge: %v, %v", n, err)
	}

	// An administrator deletes dora; Redis is then restored from a backup
	// taken before the move (the old copies, no marker of any kind).
	if err := db.Delete(ctx, "old-sub-dora"); err != nil {
		t.Fatal(err)
	}
	fillOldMain(t, c, backend.Prefix())
	rep, err = fromredis.Run(ctx, src, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Skipped || rep.Imported != 0 || rep.Purged != 2 {
		t.Fatalf("restart after a restore: %+v, want skipped and the copies purged again", rep)
	}
	if _, err := db.GetAccount(ctx, "old-sub-dora"); err == nil {
		t.Fatal("a deleted account came back from an old Redis copy")
	}
	if bad := leftovers(t, c, backend.Prefix()); len(bad) > 0 {
		t.Fatalf("left in Redis after the restart: %v", bad)
	}
	// The signing key in the database is not replaced by the old copy.
	if err := c.Set(ctx, backend.Prefix()+"secret:signing-key:ES256", "another", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := fromredis.Run(ctx, src, db, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.LookupSecret(ctx, "signing-key:ES256"); string(v) != oldPEM {
		t.Fatalf("a Redis copy replaced the database's secret: %q", v)
	}
}

// A deployment that moved with the earlier version of this package has
// the marker in Redis only and every copy still there. Its next start
// must not import again what an administrator deleted since: the Redis
// marker counts, is recorded in the database, and the copies go.
func TestMoveRecordedInRedisOnly(t *testing.T) {
	ctx := t.Context()
	backend := sessiontest.NewBackend(t)
	c := rawRedis(t, backend)
	fillOldMain(t, c, backend.Prefix())
	src := backend.Store(t).(*redisstore.Store)
	db := accounttest.NewStore(t)
	// The earlier move: imported, marker set in Redis, nothing deleted.
	if err := src.LegacyAccounts(ctx, func(a redisstore.LegacyAccount) error {
		_, err := db.Import(ctx, &a.Account, a.RecoveryHashes)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := src.SetMigrationDone(ctx, fromredis.Marker, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, "old-sub-dora"); err != nil {
		t.Fatal(err)
	}
	rep, err := fromredis.Run(ctx, src, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Skipped || rep.Imported != 0 {
		t.Fatalf("report %+v, want skipped", rep)
	}
	if _, err := db.GetAccount(ctx, "old-sub-dora"); err == nil {
		t.Fatal("a deleted account came back")
	}
	if done, err := db.StepDone(ctx, fromredis.Marker); err != nil || !done {
		t.Fatalf("the database does not record the move: %v, %v", done, err)
	}
	if bad := leftovers(t, c, backend.Prefix()); len(bad) > 0 {
		t.Fatalf("left in Redis: %v", bad)
	}
}

// Once the move is recorded, an import that another instance had under
// way is refused in its transaction: it cannot bring back an account.
func TestImportRefusedOnceMoved(t *testing.T) {
	db := accounttest.NewStore(t)
	ctx := t.Context()
	if err := db.MarkStepDone(ctx, fromredis.Marker); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkStepDone(ctx, fromredis.Marker); err != nil {
		t.Fatalf("recording it again: %v", err)
	}
	ok, err := db.ImportUnlessDone(ctx, fromredis.Marker, &session.Account{Subject: "s", Username: "u"}, nil)
	if ok || !errors.Is(err, sqlstore.ErrStepDone) {
		t.Fatalf("import after the move: %v, %v", ok, err)
	}
	if ok, err := db.ImportUnlessDone(ctx, "another step", &session.Account{Subject: "s", Username: "u"}, nil); !ok || err != nil {
		t.Fatalf("import under another step: %v, %v", ok, err)
	}
}
