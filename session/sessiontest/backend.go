package sessiontest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// EnvRedisURL names the environment variable that points the tests at a
// real Redis (CI sets it), e.g. redis://127.0.0.1:6379/0. Without it (and
// without EnvRedisAddrs) they use an embedded miniredis.
const EnvRedisURL = "STEPUP_TEST_REDIS_URL"

// EnvRedisAddrs and EnvRedisMaster point the tests at a real Redis Cluster
// (comma-separated seed addresses) or, with a master name, at Sentinels,
// as config.Redis's addrs and master_name do. EnvRedisURL wins if set.
const (
	EnvRedisAddrs  = "STEPUP_TEST_REDIS_ADDRS"
	EnvRedisMaster = "STEPUP_TEST_REDIS_MASTER"
)

// Backend is one Redis for a test: the real one of EnvRedisURL, under a
// prefix of its own so that parallel tests can share it, or an embedded
// miniredis of its own. Stores from the same Backend see the same data, as
// two stepup instances on one Redis do.
type Backend struct {
	cfg      config.Redis
	prefix   string
	embedded *redisstore.Embedded // nil on a real Redis
}

// NewBackend returns a Backend for t. On a real Redis its keys are deleted
// when t ends; an embedded one is shut down.
func NewBackend(t testing.TB) *Backend {
	t.Helper()
	b := &Backend{prefix: "stepuptest:" + randomHex(6) + ":", cfg: realRedis()}
	if !b.cfg.Embedded() {
		t.Cleanup(func() { b.purge(t) })
		return b
	}
	e, err := redisstore.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	b.cfg.URL, b.embedded = e.URL(), e
	return b
}

// NewBackendOn returns a Backend on the real Redis that cfg describes (a
// topology of StartCluster or StartSentinel), keys purged when t ends.
func NewBackendOn(t testing.TB, cfg config.Redis) *Backend {
	t.Helper()
	b := &Backend{prefix: "stepuptest:" + randomHex(6) + ":", cfg: cfg}
	t.Cleanup(func() { b.purge(t) })
	return b
}

// realRedis returns the Redis of the environment; empty for none.
func realRedis() config.Redis {
	if u := os.Getenv(EnvRedisURL); u != "" {
		return config.Redis{URL: u}
	}
	var cfg config.Redis
	if a := os.Getenv(EnvRedisAddrs); a != "" {
		cfg.Addrs = strings.Split(a, ",")
		cfg.MasterName = os.Getenv(EnvRedisMaster)
	}
	return cfg
}

// RealRedis reports whether the environment names a real Redis, which
// NewBackend and NewStore then use.
func RealRedis() bool { return !realRedis().Embedded() }

// NewStore returns a Store on a Backend of its own, closed when t ends.
func NewStore(t testing.TB) session.Store {
	t.Helper()
	return NewBackend(t).Store(t)
}

// Store returns a new Store (a new client) on b, closed when t ends.
func (b *Backend) Store(t testing.TB) session.Store {
	t.Helper()
	s := b.open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Real reports whether b is a real Redis (EnvRedisURL, EnvRedisAddrs).
func (b *Backend) Real() bool { return b.embedded == nil }

// Prefix returns the key prefix of b's stores.
func (b *Backend) Prefix() string { return b.prefix }

// Stop makes b unreachable, keeping its data, until Restart: an outage.
// A real Redis is shared and cannot be stopped, so the test is skipped.
func (b *Backend) Stop(t testing.TB) {
	t.Helper()
	if b.Real() {
		t.Skip("cannot stop a real Redis")
	}
	b.embedded.Close()
}

// Restart ends an outage begun with Stop; the data is as it was.
func (b *Backend) Restart(t testing.TB) {
	t.Helper()
	if b.Real() {
		t.Skip("cannot restart a real Redis")
	}
	if err := b.embedded.Restart(); err != nil {
		t.Fatal(err)
	}
}

// StoreWith is Store with options (its Prefix is b's).
func (b *Backend) StoreWith(t testing.TB, o redisstore.Options) session.Store {
	t.Helper()
	o.Prefix = b.prefix
	s, err := redisstore.Open(b.cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (b *Backend) open(t testing.TB) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(b.cfg, redisstore.Options{Prefix: b.prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// purge deletes b's keys from the shared Redis.
func (b *Backend) purge(t testing.TB) {
	s := b.open(t)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Purge(ctx); err != nil {
		t.Errorf("delete test keys %s*: %v", b.prefix, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Config is the Redis of b (without its key prefix, Prefix): for a test
// that must write keys as another program did.
func (b *Backend) Config() config.Redis { return b.cfg }
