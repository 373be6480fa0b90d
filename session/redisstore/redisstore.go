package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "stepup:"

// Timeouts that make an outage answer within about two seconds instead of
// go-redis's defaults (5 s per dial attempt, five attempts, three retries).
const (
	dialTimeout  = 2 * time.Second
	readTimeout  = time.Second
	writeTimeout = time.Second
)

// Options tune a Store.
type Options struct {
	// Prefix starts every key ("stepup:" when empty). Instances that serve
	// one issuer use the same prefix; tests use a unique one to share a
	// Redis. It must not contain braces, which would break the hash tags.
	Prefix string
	// OnRoundTrip, when set, is called after every Redis command or
	// pipeline (one network round trip each) with its error; a missing
	// key, a script not yet loaded and a cancelled request are not errors
	// and pass nil. For metrics.
	OnRoundTrip func(err error)
}

// Store is a session.Store on Redis. It is safe for concurrent use.
type Store struct {
	c        redis.UniversalClient
	k        keys
	embedded *Embedded // owned: closed by Close
}

var _ session.Store = (*Store)(nil)

// New returns a Store on c. The caller keeps ownership of c's
// configuration, but Close closes c.
func New(c redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.OnRoundTrip != nil {
		c.AddHook(roundTripHook(opts.OnRoundTrip))
	}
	return &Store{c: c, k: keys{prefix: opts.Prefix}}
}

// roundTripHook reports every command and pipeline.
type roundTripHook func(error)

func (h roundTripHook) report(err error) {
	if err != nil && (errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) || redis.HasErrorPrefix(err, "NOSCRIPT")) {
		err = nil
	}
	h(err)
}

func (h roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.report(err)
		return err
	}
}

func (h roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.report(err)
		return err
	}
}

// Open connects to the Redis that cfg describes:
//
//   - nothing (cfg.Embedded()): an in-process miniredis owned by the Store,
//     for development; its data is lost when the Store is closed;
//   - URL: redis:// or rediss:// (the database from the path, else cfg.DB);
//   - Addrs and MasterName: Sentinel failover;
//   - Addrs: a single node, or a Cluster when there is more than one.
//
// cfg.Username and cfg.Password override the URL's. Open does not contact
// Redis, so an instance can start while Redis is down; use Ping for that.
func Open(cfg config.Redis, opts Options) (*Store, error) {
	switch {
	case cfg.Embedded():
		e, err := StartEmbedded()
		if err != nil {
			return nil, err
		}
		o := &redis.Options{Addr: e.Addr()}
		tune(o)
		s := New(redis.NewClient(o), opts)
		s.embedded = e
		return s, nil

	case cfg.URL != "":
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			// The URL may hold a password: name the problem, not the URL.
			return nil, fmt.Errorf("redisstore: redis url: %w", redactURLError(err))
		}
		if u, err := url.Parse(cfg.URL); err == nil && strings.Trim(u.Path, "/") == "" {
			o.DB = cfg.DB
		}
		if cfg.Username != "" {
			o.Username = cfg.Username
		}
		if cfg.Password != "" {
			o.Password = cfg.Password
		}
		tune(o)
		return New(redis.NewClient(o), opts), nil

	default:
		uo := &redis.UniversalOptions{
			Addrs:      cfg.Addrs,
			MasterName: cfg.MasterName,
			Username:   cfg.Username,
			Password:   cfg.Password,
			DB:         cfg.DB,
			// One address without a master name is a single node; several
			// are Cluster seeds.
			IsClusterMode:   cfg.MasterName == "" && len(cfg.Addrs) > 1,
			DialTimeout:     dialTimeout,
			DialerRetries:   1,
			ReadTimeout:     readTimeout,
			WriteTimeout:    writeTimeout,
			MaxRetries:      -1,
			DisableIdentity: true,
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
			ContextTimeoutEnabled: true,
		}
		if uo.IsClusterMode && cfg.DB != 0 {
			return nil, fmt.Errorf("redisstore: db %d: Redis Cluster has only database 0", cfg.DB)
		}
		return New(redis.NewUniversalClient(uo), opts), nil
	}
}

// tune sets the timeouts and retry policy of a single-node client, keeping
// what a URL's query chose.
//
// Retries are off (unless the URL asks for them): a command that timed out
// may have run, and running TakeCode or RotateRefresh twice would make a
// legitimate request look like a replay and revoke its grant. An outage
// answers ErrUnavailable instead, and the next request reconnects.
func tune(o *redis.Options) {
	if o.DialTimeout == 0 {
		o.DialTimeout = dialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = readTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = writeTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 1
	}
	o.ContextTimeoutEnabled = true
	// CLIENT SETINFO and maintenance notifications are not understood by
	// every server (older Redis, miniredis); skip the handshake noise.
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// redactURLError drops the URL that url.Parse errors quote.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return fail("ping", s.c.Ping(ctx).Err())
}

// Close closes the client and, for an embedded store, the server.
func (s *Store) Close() error {
	err := s.c.Close()
	if s.embedded != nil {
		s.embedded.Close()
	}
	return err
}

// Purge deletes every key under the store's prefix, on every Cluster
// master. It is for tests and tooling: it deletes accounts and secrets too.
func (s *Store) Purge(ctx context.Context) error {
	purge := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, s.k.all(), 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := delEach(ctx, c, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return delEach(ctx, c, batch)
	}
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return purge(ctx, c)
		})
	} else {
		err = purge(ctx, s.c)
	}
	return fail("purge", err)
}

// TTL returns what is left of a key's life (after the prefix): negative
// when it has none or does not exist (PTTL). For tests and tooling.
func (s *Store) TTL(ctx context.Context, key string) (time.Duration, error) {
	d, err := s.c.PTTL(ctx, s.k.prefix+key).Result()
	return d, fail("ttl", err)
}

// Expire sets a key's TTL (after the prefix). For tests.
func (s *Store) Expire(ctx context.Context, key string, ttl time.Duration) error {
	return fail("expire", s.c.PExpire(ctx, s.k.prefix+key, ttl).Err())
}

// Keys returns the keys under the store's prefix that match the glob
// match (after the prefix), on every Cluster master, without the prefix.
// It is for tests and tooling (what a flow leaves in Redis).
func (s *Store) Keys(ctx context.Context, match string) ([]string, error) {
	var out []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, escapeGlob(s.k.prefix)+match, 1000).Iterator()
		for iter.Next(ctx) {
			out = append(out, strings.TrimPrefix(iter.Val(), s.k.prefix))
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, c)
		})
	} else {
		err = scan(ctx, s.c)
	}
	return out, fail("keys", err)
}

// delEach deletes keys one command each, pipelined, because a multi-key
// DEL across slots is refused by Cluster.
func delEach(ctx context.Context, c redis.UniversalClient, ks []string) error {
	if len(ks) == 0 {
		return nil
	}
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range ks {
			p.Del(ctx, k)
		}
		return nil
	})
	return err
}

// fail maps a go-redis error to the session package's contract: redis.Nil
// is ErrNotFound, connectivity and "not now" replies wrap ErrUnavailable.
// Record ids are not quoted: session ids and code hashes are bearer
// secrets and errors end up in logs.
func fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("redisstore: %s: %w", op, session.ErrNotFound)
	case unavailable(err):
		return fmt.Errorf("redisstore: %s: %w: %w", op, session.ErrUnavailable, err)
	default:
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
}

// unavailable reports whether err means that Redis cannot answer now, as
// opposed to a request Redis rejected (a bug) or a caller who gave up.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		// Not a reply from Redis: dial and network errors, timeouts,
		// io.EOF, pool timeout, closed client.
		return true
	}
	return redis.IsLoadingError(err) ||
		redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) ||
		redis.IsReadOnlyError(err) || // a replica promoted mid-failover
		redis.IsMaxClientsError(err) ||
		redis.IsNoReplicasError(err) ||
		redis.IsOOMError(err) ||
		redis.IsAuthError(err) ||
		redis.HasErrorPrefix(err, "BUSY") // a stuck script elsewhere
}

// Embedded is an in-process Redis (miniredis) for development and tests.
// Keys expire with the wall clock, like in Redis.
type Embedded struct {
	mr *miniredis.Miniredis
}

// StartEmbedded starts an embedded Redis on a random loopback port.
func StartEmbedded() (*Embedded, error) {
	mr, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("redisstore: start embedded redis: %w", err)
	}
	// miniredis only expires keys on FastForward unless told to follow
	// the clock; sessions and codes must expire on their own.
	mr.ClockTTL(true)
	return &Embedded{mr: mr}, nil
}

// Addr returns the server's host:port.
func (e *Embedded) Addr() string { return e.mr.Addr() }

// URL returns a redis:// URL for the server, for config.Redis.URL.
func (e *Embedded) URL() string { return "redis://" + e.mr.Addr() + "/0" }

// Close stops serving. The data is kept, for Restart.
func (e *Embedded) Close() { e.mr.Close() }

// Restart serves again on the same port, with the data as it was.
func (e *Embedded) Restart() error {
	if err := e.mr.Restart(); err != nil {
		return fmt.Errorf("redisstore: restart embedded redis: %w", err)
	}
	return nil
}

// LogTo sends go-redis's own messages (failed dials, pool trouble) to log
// at Warn, instead of its default unstructured lines on stderr. It is
// process-wide, like the library's logger.
func LogTo(log *slog.Logger) { redis.SetLogger(slogLogger{log}) }

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// FlushScripts empties Redis's script cache, on every Cluster master, as
// a restart or a failover does. It is for tests: the scripts sent next
// by their SHA get NOSCRIPT and are sent again whole.
func (s *Store) FlushScripts(ctx context.Context) error {
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return fail("flush scripts", cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.ScriptFlush(ctx).Err()
		}))
	}
	return fail("flush scripts", s.c.ScriptFlush(ctx).Err())
}
