package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// CreateSession writes sess as a new session (replacing any with its id) in
// one MULTI, then adds it to its subject's index.
func (s *Store) CreateSession(ctx context.Context, sess *session.Session, ttl time.Duration) error {
	const op = "create session"
	if sess.ID == "" {
		return fmt.Errorf("redisstore: %s: empty id", op)
	}
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	fields := []any{fieldSub, sess.Subject}
	if sess.KeyHash != "" {
		fields = append(fields, fieldKey, sess.KeyHash)
	}
	if !sess.CreatedAt.IsZero() {
		fields = append(fields, fieldCreated, unixStamp(sess.CreatedAt))
	}
	if !sess.LastSeenAt.IsZero() {
		fields = append(fields, fieldSeen, unixStamp(sess.LastSeenAt))
	}
	if sess.Device != "" {
		fields = append(fields, fieldDevice, sess.Device)
	}
	if sess.View != "" {
		fields = append(fields, fieldView, sess.View)
	}
	for _, c := range sess.ClientIDs {
		fields = append(fields, prefixClient+c, "1")
	}
	for _, v := range sess.Verifications {
		b, err := verificationValue(v)
		if err != nil {
			return fmt.Errorf("redisstore: %s: %w", op, err)
		}
		fields = append(fields, prefixVerify+string(v.Factor), b)
	}
	key := s.k.session(sess.ID)
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key, fields...)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fail(op, err)
	}
	return s.index(ctx, op, sess.Subject, sess.ID, ttl)
}

// index adds a session to its subject's index, extending the index's TTL.
//
// Every sign-in extends the index's TTL, so for a subject who signs in
// more often than the idle timeout it never expires, and the ids of its
// expired sessions (which no script can see: they live in other slots)
// would pile up, one per sign-in, without bound. So when the index has
// reached indexPruneAt ids, every indexPruneEvery-th addition prunes it
// of the sessions that no longer exist: memory follows live sessions, not
// sign-ins, at the cost of one pipelined read per id every 16 sign-ins
// of such a subject. Pruning is best-effort, like the index.
func (s *Store) index(ctx context.Context, op, sub, id string, ttl time.Duration) error {
	if sub == "" {
		return nil
	}
	n, err := scriptIndexSession.Run(ctx, s.c, []string{s.k.userSessions(sub)}, id, millis(ttl)).Int64()
	if err != nil {
		return fail(op+": index", err)
	}
	if n >= indexPruneAt && n%indexPruneEvery == 0 {
		_ = s.pruneIndex(ctx, sub)
	}
	return nil
}

// When index prunes a subject's session index (see there).
const (
	indexPruneAt    = 32
	indexPruneEvery = 16
)

// pruneIndex removes from a subject's session index the ids of sessions
// that no longer exist or are another subject's (a reused id). A session
// is written before it is indexed, so an id whose record is missing is
// one that has ended or expired.
func (s *Store) pruneIndex(ctx context.Context, sub string) error {
	ids, err := s.indexed(ctx, sub)
	if err != nil || len(ids) == 0 {
		return err
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, s.k.session(id), fieldSub)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	var dead []string
	for i, id := range ids {
		v, err := cmds[i].Result()
		switch {
		case errors.Is(err, redis.Nil), err == nil && v != sub:
			dead = append(dead, id)
		case err != nil:
			return err
		}
	}
	return s.unindex(ctx, sub, dead...)
}

// indexed returns the ids in a subject's session index, and in the SET
// earlier versions wrote (legacyUserSessions), in one pipeline.
func (s *Store) indexed(ctx context.Context, sub string) ([]string, error) {
	var idx *redis.StringSliceCmd
	var legacy *redis.StringSliceCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		idx = p.HKeys(ctx, s.k.userSessions(sub))
		legacy = p.SMembers(ctx, s.k.legacyUserSessions(sub))
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := idx.Val()
	for _, id := range legacy.Val() {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// unindex drops session ids from a subject's index (both forms).
func (s *Store) unindex(ctx context.Context, sub string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		queueUnindex(ctx, p, s.k, sub, ids...)
		return nil
	})
	return err
}

// queueUnindex queues unindex's commands in a pipeline (one slot).
func queueUnindex(ctx context.Context, p redis.Pipeliner, k keys, sub string, ids ...string) {
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	p.HDel(ctx, k.userSessions(sub), ids...)
	p.SRem(ctx, k.legacyUserSessions(sub), members...)
}

// GetSession returns a session, its verifications ordered by time and its
// client ids sorted.
func (s *Store) GetSession(ctx context.Context, id string) (*session.Session, error) {
	const op = "get session"
	m, err := s.c.HGetAll(ctx, s.k.session(id)).Result()
	if err != nil {
		return nil, fail(op, err)
	}
	if len(m) == 0 {
		return nil, fail(op, redis.Nil)
	}
	return parseSession(id, m)
}

func parseSession(id string, m map[string]string) (*session.Session, error) {
	sess := &session.Session{ID: id, Subject: m[fieldSub], KeyHash: m[fieldKey], Device: m[fieldDevice], View: m[fieldView]}
	var err error
	if sess.CreatedAt, err = parseStamp(m[fieldCreated]); err != nil {
		return nil, fmt.Errorf("redisstore: session field %s: %w", fieldCreated, err)
	}
	if sess.LastSeenAt, err = parseStamp(m[fieldSeen]); err != nil {
		return nil, fmt.Errorf("redisstore: session field %s: %w", fieldSeen, err)
	}
	for f, v := range m {
		switch {
		case strings.HasPrefix(f, prefixClient):
			sess.ClientIDs = append(sess.ClientIDs, strings.TrimPrefix(f, prefixClient))
		case strings.HasPrefix(f, prefixVerify):
			ver, err := parseVerification(f, v)
			if err != nil {
				return nil, fmt.Errorf("redisstore: session field %s: %w", f, err)
			}
			sess.Verifications = append(sess.Verifications, ver)
		}
	}
	slices.Sort(sess.ClientIDs)
	slices.SortFunc(sess.Verifications, func(a, b authn.Verification) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Factor, b.Factor))
	})
	return sess, nil
}

// AddVerification stores v as the latest verification of its factor: one
// field written by a script that does nothing if the session is gone.
func (s *Store) AddVerification(ctx context.Context, id, sub string, v authn.Verification, ttl time.Duration) error {
	const op = "add verification"
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	b, err := verificationValue(v)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return s.update(ctx, op, scriptAddVerification, id, sub, ttl, prefixVerify+string(v.Factor), b)
}

// SetView implements session.SessionStore: one field written by
// AddVerification's script (nothing when the session is gone).
func (s *Store) SetView(ctx context.Context, id, sub, view string, ttl time.Duration) error {
	const op = "set session view"
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	return s.update(ctx, op, scriptAddVerification, id, sub, ttl, fieldView, view)
}

// Elevate implements session.SessionStore: the verification's field and
// the new key digest are written by one script, on the session's slot.
func (s *Store) Elevate(ctx context.Context, id, sub, oldKeyHash, newKeyHash string, v authn.Verification, ttl time.Duration) error {
	const op = "elevate session"
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	if oldKeyHash == "" || newKeyHash == "" {
		return fmt.Errorf("redisstore: %s: empty key digest", op)
	}
	b, err := verificationValue(v)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	var res *redis.Cmd
	err = s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		res = s.queueUpdate(ctx, p, run, scriptElevate, id, sub, ttl, prefixVerify+string(v.Factor), b, oldKeyHash, newKeyHash)
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fail(op, err)
	}
	switch n, err := res.Int(); {
	case err != nil:
		return fail(op, err)
	case n == 0:
		return session.ErrKeyChanged
	}
	return nil
}

// update runs a session script and extends the subject's index in one
// pipeline: one round trip. The two keys are in different Cluster slots,
// so they cannot share a script. The id is (re-)added to the index, so a
// session can never drop out of it (an index that expired early after a
// failed write is rebuilt); a dead id that lands there for a session that
// is gone is pruned by ListSessions.
func (s *Store) update(ctx context.Context, op string, script *redis.Script, id, sub string, ttl time.Duration, args ...any) error {
	if sub == "" {
		return fmt.Errorf("redisstore: %s: no subject", op)
	}
	var res *redis.Cmd
	err := s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		res = s.queueUpdate(ctx, p, run, script, id, sub, ttl, args...)
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fail(op, err)
	}
	return fail(op, res.Err())
}

// queueUpdate queues a session script and the index script of update.
func (s *Store) queueUpdate(ctx context.Context, p redis.Pipeliner, run runScript, script *redis.Script, id, sub string, ttl time.Duration, args ...any) *redis.Cmd {
	res := run(ctx, p, script, []string{s.k.session(id)}, append([]any{sub, millis(ttl)}, args...)...)
	run(ctx, p, scriptIndexSession, []string{s.k.userSessions(sub)}, id, millis(ttl))
	return res
}

// runScript queues a script in a pipeline: by its SHA, or whole.
type runScript func(ctx context.Context, p redis.Pipeliner, script *redis.Script, keys []string, args ...any) *redis.Cmd

func evalSha(ctx context.Context, p redis.Pipeliner, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	return script.EvalSha(ctx, p, keys, args...)
}

func eval(ctx context.Context, p redis.Pipeliner, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	return script.Eval(ctx, p, keys, args...)
}

// pipeScripts sends the commands queue queues in one pipeline, scripts
// by their SHA. After a Redis restart or failover the scripts are not
// cached and the pipeline is sent again with the scripts whole: every
// script queued this way must be idempotent, since some may have run.
func (s *Store) pipeScripts(ctx context.Context, queue func(p redis.Pipeliner, run runScript)) error {
	cmds, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		queue(p, evalSha)
		return nil
	})
	// Any command may be the one the cache lacks, not only the first to
	// fail (an earlier one may have answered nil).
	noScript := slices.ContainsFunc(cmds, func(c redis.Cmder) bool {
		return c.Err() != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT")
	})
	if noScript {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			queue(p, eval)
			return nil
		})
	}
	return err
}

// Touch records activity on an existing session.
func (s *Store) Touch(ctx context.Context, id, sub string, at time.Time, clientID string, ttl time.Duration) error {
	const op = "touch session"
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	client := ""
	if clientID != "" {
		client = prefixClient + clientID
	}
	return s.update(ctx, op, scriptTouch, id, sub, ttl, unixStamp(at), client)
}

// endingMinTTL is the shortest life of a session's ending marker: longer
// than the end takes.
const endingMinTTL = time.Minute

// DeleteSession implements session.SessionStore: see endSession.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.endSession(ctx, "delete session", id, false)
}

// EndSession implements session.SessionStore: see endSession.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.endSession(ctx, "end session", id, true)
}

// endSession ends a session in up to three round trips: one script marks
// it ending and reads its grant index (from then on no grant is added to
// it, see PutGrant); the grants listed that end with it (online ones, or
// all with offline) are ended; last the session, its index entries and
// its place in the subject's index go. The session's record is deleted
// last so that a failure leaves it in place, ending, for a retry.
func (s *Store) endSession(ctx context.Context, op, id string, offline bool) error {
	res, err := scriptEndingSession.Run(ctx, s.c,
		[]string{s.k.session(id), s.k.sessionEnding(id), s.k.sessionGrants(id)}, millis(endingMinTTL)).Slice()
	if err != nil {
		return fail(op, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	sub, _ := res[0].(string)
	pairs, _ := res[1].([]any)
	var ended, listedOffline, kept []string
	for i := 0; i+1 < len(pairs); i += 2 {
		gid, _ := pairs[i].(string)
		if f, _ := pairs[i+1].(string); offline || f != "1" {
			ended = append(ended, gid)
		} else {
			listedOffline = append(listedOffline, gid)
		}
	}
	// A sign-out leaves offline grants alone, but the offline flag is
	// written twice (the index, then the record: PutGrant's two round
	// trips), and two stores of one grant with different offline_access
	// can interleave and leave the index saying offline and the record
	// online. The record decides: a grant listed offline whose record
	// exists and is online ends with the session (one more round trip,
	// only when a sign-out finds offline grants).
	if len(listedOffline) > 0 {
		recs := make([]*redis.SliceCmd, len(listedOffline))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, gid := range listedOffline {
				recs[i] = p.HMGet(ctx, s.k.grant(gid), grantOffline, grantSub)
			}
			return nil
		})
		if err != nil {
			return fail(op+": grants", err)
		}
		for i, gid := range listedOffline {
			v := recs[i].Val()
			if len(v) == 2 && v[1] != nil && v[0] != "1" {
				ended = append(ended, gid)
			} else {
				kept = append(kept, gid)
			}
		}
	}
	// The offline grants kept are marked ended all the same, not deleted:
	// every write of their id comes from this session (sessionGrantID), so
	// none may come any more, and PutGrant writes before its session's
	// index refuses it (one round trip): a code issued before the sign-out
	// and exchanged after it would replace the offline grant (its refresh
	// token) and then undo its own write, ending the grant that outlived
	// the sign-out. The mark refuses that write before it replaces
	// anything. It is no liveness check: the grant's refresh and access
	// tokens keep working.
	if err := s.endAndKeepGrants(ctx, ended, kept); err != nil {
		return fail(op+": grants", err)
	}
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.k.session(id))
		if len(ended) > 0 {
			p.HDel(ctx, s.k.sessionGrants(id), ended...)
		}
		if sub != "" {
			queueUnindex(ctx, p, s.k, sub, id)
		}
		return nil
	})
	return fail(op, err)
}

// ListSessions returns the live sessions of a subject, oldest first, and
// prunes the index of sessions that have expired.
func (s *Store) ListSessions(ctx context.Context, subject string) ([]*session.Session, error) {
	const op = "list sessions"
	ids, err := s.indexed(ctx, subject)
	if err != nil {
		return nil, fail(op, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.k.session(id))
		}
		return nil
	})
	if err != nil {
		return nil, fail(op, err)
	}
	var (
		out  []*session.Session
		dead []string
	)
	for i, id := range ids {
		m := cmds[i].Val()
		// A session of another subject under this index can only be a
		// reused id; it is not this subject's.
		if len(m) == 0 || m[fieldSub] != subject {
			dead = append(dead, id)
			continue
		}
		sess, err := parseSession(id, m)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	if err := s.unindex(ctx, subject, dead...); err != nil {
		return nil, fail(op+": prune", err)
	}
	slices.SortFunc(out, func(a, b *session.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// checkTTL refuses a TTL that would leave a key without expiry (go-redis
// sends no EXPIRE for 0) or one Redis would reject.
func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redisstore: %s: ttl %v is not positive", op, ttl)
	}
	return nil
}

// millis is ttl in whole milliseconds for PEXPIRE, at least 1.
func millis(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }

func unixNano(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// parseUnixNano parses a unix-nanosecond field; "" (never set) is the zero
// time.
func parseUnixNano(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n), nil
}
