package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-dev/stepup/session"
)

// PutFlow stores a pending authorization request.
func (s *Store) PutFlow(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := checkTTL("put flow", ttl); err != nil {
		return err
	}
	return fail("put flow", s.c.Set(ctx, s.k.flow(id), data, ttl).Err())
}

// GetFlow returns a pending authorization request.
func (s *Store) GetFlow(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.k.flow(id)).Bytes()
	if err != nil {
		return nil, fail("get flow", err)
	}
	return b, nil
}

// DeleteFlow deletes a pending authorization request, if it exists.
func (s *Store) DeleteFlow(ctx context.Context, id string) error {
	return fail("delete flow", s.c.Del(ctx, s.k.flow(id)).Err())
}

// PutCode stores an authorization code and its spent marker in one script
// (IssueCode's, without the session's bookkeeping).
// The marker is written now, not at exchange, so that consuming the code
// stays a single delete.
func (s *Store) PutCode(ctx context.Context, codeHash, grantID, binding string, data []byte, ttl, spentTTL time.Duration) error {
	const op = "put code"
	if binding == "" {
		return fmt.Errorf("redisstore: %s: no binding", op)
	}
	if err := checkTTL(op, ttl); err != nil {
		return err
	}
	if err := checkTTL(op+": spent", spentTTL); err != nil {
		return err
	}
	err := scriptPutCode.Run(ctx, s.c, []string{s.k.code(codeHash), s.k.codeGrant(codeHash)},
		data, millis(ttl), spentMarker(grantID, binding), millis(spentTTL)).Err()
	return fail(op, err)
}

// TakeCode consumes an authorization code in one script: of any number of
// concurrent exchanges, exactly one gets the payload and the others the
// grant id to revoke. A code neither this version nor its spent marker
// knows is looked up again as an earlier version stored it (a second
// round trip, for unknown codes only): codes issued before an upgrade
// are taken, and their replays refused, as that version did.
func (s *Store) TakeCode(ctx context.Context, codeHash, binding string) ([]byte, string, error) {
	const op = "take code"
	res, err := s.evalOnce(ctx, scriptTakeCode,
		[]string{s.k.code(codeHash), s.k.codeGrant(codeHash)}, markerBinding(binding)).Slice()
	legacy := false
	if errors.Is(err, redis.Nil) {
		legacy = true
		res, err = s.evalOnce(ctx, scriptTakeLegacyCode,
			[]string{s.k.legacyCode(codeHash), s.k.legacyCodeGrant(codeHash)}, binding).Slice()
	}
	if err != nil {
		return nil, "", fail(op, err)
	}
	if len(res) != 2 {
		return nil, "", fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	kind, _ := res[0].(string)
	val, _ := res[1].(string)
	switch kind {
	case "data":
		return []byte(val), "", nil
	case "spent":
		if legacy {
			return nil, val, nil
		}
		ref, err := markerGrantRef(val)
		if err != nil {
			return nil, "", fmt.Errorf("redisstore: %s: %w", op, err)
		}
		return nil, ref, nil
	case "mismatch":
		return nil, "", fmt.Errorf("redisstore: %s: %w", op, session.ErrCodeMismatch)
	}
	return nil, "", fmt.Errorf("redisstore: %s: unexpected reply %q", op, kind)
}

// endedGrantMemory is how long a deleted grant's id stays ended: far
// longer than a PutGrant of it can be in flight.
const endedGrantMemory = time.Hour

// PutGrant implements session.GrantStore in one round trip: one pipeline
// of the grant's index in its session (a script that refuses a session
// that is gone, another subject's or ending), its index under its subject
// (which returns the subject's cut counter) and the grant's write (which
// refuses an id or authorization that has ended). The three keys are in
// three Cluster slots, so the write cannot wait for the indexes: it is
// made as if they succeed, and undone when they did not.
//
//   - The session refused: the write, if it landed, is ended again (a
//     second round trip, only then) and ErrGrantEnded returned. Until
//     then nothing can use it: its refresh token was never handed out,
//     a refresh checks the session (LiveGrant), and an incarnation it
//     kept is that of a grant indexed earlier, which the session's end
//     lists and ends (deleting this write, or refusing it after).
//   - The cut counter: the write records the cut of the grant it
//     replaces (or "0" for a new one), a value read before this index
//     step and never above the counter. When the index step read
//     another value, the grant is written again with it (a second round
//     trip, for a subject whose grants were ended since the grant was
//     last stored); until then it records an older value and is dead.
//
// So, as when the index was written first: a session's end marks it
// ending and reads its index in one step, then ends each grant listed; a
// grant indexed before that step is listed, and its write, whenever it
// lands, is deleted or refused; one indexed after it is refused and
// undone. A subject's end moves the counter on: a grant indexed before
// records the old value and is dead at its first use, whether or not the
// end found it.
func (s *Store) PutGrant(ctx context.Context, g *session.Grant) error {
	const op = "put grant"
	if g.ID == "" {
		return fmt.Errorf("redisstore: %s: empty id", op)
	}
	if g.ExpiresAt.IsZero() {
		return fmt.Errorf("redisstore: %s: no expiry", op)
	}
	ttl := millis(time.Until(g.ExpiresAt))
	fields := grantFields(g)
	var inSession, inUser, put *redis.Cmd
	// A pipeline that fails as a whole sets its error on every command,
	// so each reply below says what happened to its own step.
	_ = s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		inSession, inUser = nil, nil
		if g.SessionID != "" {
			inSession = run(ctx, p, scriptIndexSessionGrant,
				[]string{s.k.session(g.SessionID), s.k.sessionEnding(g.SessionID), s.k.sessionGrants(g.SessionID)},
				g.Subject, g.ID, flag(g.Offline), ttl)
		}
		if g.Subject != "" {
			inUser = run(ctx, p, scriptIndexUserGrant, []string{s.k.userGrants(g.Subject), s.k.grantCut(g.Subject)},
				g.ID, ttl, g.ExpiresAt.UnixMilli(), time.Now().UnixMilli(), flag(g.Offline || g.SessionID == ""))
		}
		put = run(ctx, p, scriptPutGrant, []string{s.k.grant(g.ID), s.k.grantEnded(g.ID)},
			append([]any{ttl, g.Auth, g.Inc, ""}, fields...)...)
	})
	// undo ends a write that may have landed when an index step did not
	// hold: the session's end will not list it. What it marks ended is
	// this authorization (a write still in flight stores nothing), not
	// the id: an index step that failed on its own (a failover of its
	// node) says nothing of the session, whose later authorizations must
	// still be able to store the grant ("*" would refuse them for
	// endedGrantMemory).
	undo := func(cause error) error {
		if !errors.Is(put.Err(), redis.Nil) {
			mark := g.Auth
			if mark == "" {
				mark = "*"
			}
			if err := s.endGrants(ctx, []string{g.ID}, mark); err != nil {
				return fail(op+": undo", errors.Join(cause, err))
			}
		}
		return cause
	}
	if inSession != nil {
		if err := inSession.Err(); errors.Is(err, redis.Nil) {
			return undo(fmt.Errorf("redisstore: %s: session: %w", op, session.ErrGrantEnded))
		} else if err != nil {
			return undo(fail(op, err))
		}
	}
	cut := "0"
	if inUser != nil {
		var err error
		if cut, err = inUser.Text(); err != nil {
			return undo(fail(op, err))
		}
	}
	inc, wrote, err := putReply(put)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if wrote != cut {
		// The grant recorded an older cut than its index step read: write
		// it again with that one (a new incarnation, see scriptPutGrant).
		again := scriptPutGrant.Run(ctx, s.c, []string{s.k.grant(g.ID), s.k.grantEnded(g.ID)},
			append([]any{ttl, g.Auth, g.Inc, cut}, fields...)...)
		if inc, _, err = putReply(again); err != nil {
			return fmt.Errorf("redisstore: %s: %w", op, err)
		}
	}
	g.Inc = inc
	return nil
}

// putReply reads scriptPutGrant's reply: the incarnation and the cut the
// grant was written with, or ErrGrantEnded.
func putReply(c *redis.Cmd) (inc, cut string, err error) {
	res, err := c.Slice()
	if errors.Is(err, redis.Nil) {
		return "", "", session.ErrGrantEnded
	} else if err != nil {
		return "", "", fail("write", err)
	}
	if len(res) != 2 {
		return "", "", fmt.Errorf("unexpected reply %v", res)
	}
	inc, _ = res[0].(string)
	cut, _ = res[1].(string)
	return inc, cut, nil
}

// grantFields are the fields scriptPutGrant writes for g, as field, value
// pairs: those that are empty (or "0") are left out, and the payload is
// cut into fields of at most listpackValue bytes (see chunks). The
// expiry is the key's TTL (getGrant reads it back), not a field: an
// online grant's TTL follows its session's (Activity.Grants).
func grantFields(g *session.Grant) []any {
	fields := []any{grantClientID, g.ClientID, grantSub, g.Subject}
	if g.RefreshHash != "" {
		fields = append(fields, grantRefresh, g.RefreshHash)
	}
	if g.SessionID != "" {
		fields = append(fields, grantSessionID, packSessionID(g.SessionID))
	}
	if g.Offline {
		fields = append(fields, grantOffline, "1")
	}
	if g.Auth != "" {
		fields = append(fields, grantAuth, g.Auth)
	}
	for i, part := range chunks(g.Data, listpackValue) {
		fields = append(fields, dataField(i), part)
	}
	return fields
}

// GetGrant returns a grant.
func (s *Store) GetGrant(ctx context.Context, id string) (*session.Grant, error) {
	g, _, err := s.getGrant(ctx, id)
	return g, err
}

// getGrant returns a grant and the cut counter it was stored under: its
// fields and its TTL (its expiry) in one pipeline.
func (s *Store) getGrant(ctx context.Context, id string) (*session.Grant, string, error) {
	const op = "get grant"
	var all *redis.MapStringStringCmd
	var left *redis.DurationCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.k.grant(id))
		left = p.PTTL(ctx, s.k.grant(id))
		return nil
	})
	if err != nil {
		return nil, "", fail(op, err)
	}
	m := all.Val()
	if len(m) == 0 {
		return nil, "", fail(op, redis.Nil)
	}
	exp := time.Now().Add(left.Val())
	if left.Val() < 0 {
		// Gone meanwhile, or (never written so) no TTL: a grant stored by
		// an earlier version says it in a field.
		if exp, err = parseUnixNano(m[grantExpires]); err != nil {
			return nil, "", fmt.Errorf("redisstore: grant field %s: %w", grantExpires, err)
		}
	}
	return &session.Grant{
		ID:          id,
		Auth:        m[grantAuth],
		Inc:         m[grantInc],
		ClientID:    m[grantClientID],
		Subject:     m[grantSub],
		SessionID:   unpackSessionID(m[grantSessionID]),
		Offline:     m[grantOffline] == "1",
		RefreshHash: m[grantRefresh],
		Data:        joinChunks(m),
		ExpiresAt:   exp,
	}, cutValue(m[grantCut]), nil
}

// listpackValue is Redis's default hash-max-listpack-value: a hash whose
// values are all at most this long (and that has few fields) is stored as
// a listpack, about a third of the size of the hash table a single longer
// value turns it into (a grant: ~250 B against ~700 B of MEMORY USAGE).
const listpackValue = 64

// chunks cuts b into pieces of at most n bytes (none for an empty b).
func chunks(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// dataField names the i-th piece of a grant's payload: "data", "data1", …
func dataField(i int) string {
	if i == 0 {
		return grantData
	}
	return grantData + strconv.Itoa(i)
}

// joinChunks reassembles a grant's payload from its pieces.
func joinChunks(m map[string]string) []byte {
	var b []byte
	for i := 0; ; i++ {
		part, ok := m[dataField(i)]
		if !ok {
			return b
		}
		b = append(b, part...)
	}
}

// cutValue is a cut counter as stored: absent is "0".
func cutValue(v string) string {
	if v == "" {
		return "0"
	}
	return v
}

// LiveGrant implements session.GrantStore: the grant, then its subject's
// cut counter and (online grants) its session, pipelined.
func (s *Store) LiveGrant(ctx context.Context, id string) (*session.Grant, error) {
	const op = "live grant"
	g, cut, err := s.getGrant(ctx, id)
	if err != nil {
		return nil, err
	}
	var now *redis.StringCmd
	var sess, ending *redis.IntCmd
	online := !g.Offline && g.SessionID != ""
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.Get(ctx, s.k.grantCut(g.Subject))
		if online {
			sess = p.Exists(ctx, s.k.session(g.SessionID))
			ending = p.Exists(ctx, s.k.sessionEnding(g.SessionID))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail(op, err)
	}
	if cutValue(now.Val()) != cut {
		return nil, fmt.Errorf("redisstore: %s: the subject's grants were ended: %w", op, session.ErrGrantEnded)
	}
	if online && (sess.Val() == 0 || ending.Val() == 1) {
		return nil, fmt.Errorf("redisstore: %s: the session has ended: %w", op, session.ErrGrantEnded)
	}
	return g, nil
}

// AccessTokenLive implements session.GrantStore: the grant's subject and
// cut counter, the subject's counter and the token's revocation mark in
// one pipeline.
func (s *Store) AccessTokenLive(ctx context.Context, grantID, inc, subject, jti string) (bool, error) {
	const op = "check access token"
	var grant *redis.SliceCmd
	var now *redis.StringCmd
	var revoked *redis.IntCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if grantID != "" {
			grant = p.HMGet(ctx, s.k.grant(grantID), grantSub, grantCut, grantInc)
			now = p.Get(ctx, s.k.grantCut(subject))
		}
		revoked = p.Exists(ctx, s.k.revoked(jti))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fail(op, err)
	}
	if revoked.Val() != 0 {
		return false, nil
	}
	if grantID == "" {
		return true, nil
	}
	v := grant.Val()
	sub, _ := v[0].(string)
	cut, _ := v[1].(string)
	stored, _ := v[2].(string)
	return sub != "" && sub == subject && stored == inc && cutValue(cut) == cutValue(now.Val()), nil
}

// EndUserGrants implements session.GrantStore: the cut counter moves on
// and the index is read in one script; then every grant listed is ended
// and dropped from the index. A failure after the first step leaves the
// grants dead (the counter moved) and still indexed, for a retry. Online
// grants are not indexed (see scriptIndexUserGrant): the counter makes
// them dead, and their record goes with their session (every caller
// ends the user's sessions next; one kept, as a password change keeps
// the browser's own, keeps its dead grants until it ends).
func (s *Store) EndUserGrants(ctx context.Context, subject string) error {
	const op = "end user grants"
	if subject == "" {
		return fmt.Errorf("redisstore: %s: no subject", op)
	}
	ids, err := scriptCutUserGrants.Run(ctx, s.c, []string{s.k.grantCut(subject), s.k.userGrants(subject)}).StringSlice()
	if err != nil {
		return fail(op, err)
	}
	// Nothing is marked ended: the counter already kills whatever was
	// stored under the old value, and a later authorization in one of the
	// subject's sessions may store the same id again (a new incarnation).
	if err := s.endGrants(ctx, ids, ""); err != nil {
		return fail(op, err)
	}
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	return fail(op+": index", s.c.ZRem(ctx, s.k.userGrants(subject), members...).Err())
}

// endGrants ends grants (scriptEndGrant) in one pipeline, marking mark
// ended for each ("*", an authorization or "", see grantEnded).
func (s *Store) endGrants(ctx context.Context, ids []string, mark string) error {
	if len(ids) == 0 {
		return nil
	}
	cmds := make([]*redis.Cmd, 0, len(ids))
	err := s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		cmds = cmds[:0]
		for _, id := range ids {
			cmds = append(cmds, run(ctx, p, scriptEndGrant, []string{s.k.grant(id), s.k.grantEnded(id)}, millis(endedGrantMemory), mark))
		}
	})
	return endReplies(err, cmds)
}

// endAndKeepGrants is endGrants(ended, "*") and, in the same pipeline,
// marks the grants kept "*" ended without deleting them (see endSession).
func (s *Store) endAndKeepGrants(ctx context.Context, ended, kept []string) error {
	if len(ended)+len(kept) == 0 {
		return nil
	}
	cmds := make([]*redis.Cmd, 0, len(ended)+len(kept))
	err := s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		cmds = cmds[:0]
		for _, id := range ended {
			cmds = append(cmds, run(ctx, p, scriptEndGrant, []string{s.k.grant(id), s.k.grantEnded(id)}, millis(endedGrantMemory), "*"))
		}
		for _, id := range kept {
			cmds = append(cmds, run(ctx, p, scriptEndGrant, []string{s.k.grant(id), s.k.grantEnded(id)}, millis(endedGrantMemory), "*", "1"))
		}
	})
	return endReplies(err, cmds)
}

// endReplies is the outcome of a pipeline of scriptEndGrant.
func endReplies(err error, cmds []*redis.Cmd) error {
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// RotateRefresh replaces a grant's refresh hash in one script, deleting
// the grant when oldHash is not current (refresh-token reuse).
func (s *Store) RotateRefresh(ctx context.Context, id, oldHash, newHash string) (session.RotateResult, error) {
	const op = "rotate refresh"
	n, err := s.evalOnce(ctx, scriptRotateRefresh, []string{s.k.grant(id)}, oldHash, newHash).Int()
	if err != nil {
		return 0, fail(op, err)
	}
	switch n {
	case rotateRotated:
		return session.Rotated, nil
	case rotateReused:
		return session.Reused, nil
	case rotateGone:
		return session.Gone, nil
	}
	return 0, fmt.Errorf("redisstore: %s: unexpected reply %d", op, n)
}

// DeleteGrant deletes a grant, if it exists, and marks its id ended.
func (s *Store) DeleteGrant(ctx context.Context, id string) error {
	return fail("delete grant", s.endGrants(ctx, []string{id}, "*"))
}

// EndAuthorization deletes a grant, if it exists, and marks auth ended.
func (s *Store) EndAuthorization(ctx context.Context, id, auth string) error {
	return fail("end authorization", s.endGrants(ctx, []string{id}, auth))
}

// RevokeToken marks an access-token id revoked for ttl.
func (s *Store) RevokeToken(ctx context.Context, jti string, ttl time.Duration) error {
	if err := checkTTL("revoke token", ttl); err != nil {
		return err
	}
	return fail("revoke token", s.c.Set(ctx, s.k.revoked(jti), "1", ttl).Err())
}

// IsRevoked reports whether an access-token id is revoked.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	n, err := s.c.Exists(ctx, s.k.revoked(jti)).Result()
	if err != nil {
		return false, fail("is revoked", err)
	}
	return n == 1, nil
}

// InitSecret stores value under name unless a value exists, and returns
// the value in effect: SET NX then GET, pipelined. Secrets are never
// deleted, so the GET always sees the winner.
func (s *Store) InitSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	const op = "init secret"
	var get *redis.StringCmd
	key := s.k.secret(name)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, value, 0)
		get = p.Get(ctx, key)
		return nil
	})
	if err != nil {
		return nil, fail(op+" "+strconv.Quote(name), err)
	}
	return get.Bytes()
}

// scriptSwapIfEquals sets KEYS[1] to ARGV[2] if it holds ARGV[1].
var scriptSwapIfEquals = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
`)

// SwapSecret implements session.SecretStore: one script, compare and set.
func (s *Store) SwapSecret(ctx context.Context, name string, old, value []byte) (bool, error) {
	n, err := scriptSwapIfEquals.Run(ctx, s.c, []string{s.k.secret(name)}, old, value).Int()
	if err != nil {
		return false, fail("swap secret "+strconv.Quote(name), err)
	}
	return n == 1, nil
}

// GetFlowAndSession implements session.FlowStore: one pipeline of GET and
// HGETALL.
func (s *Store) GetFlowAndSession(ctx context.Context, flowID, sessionID string) ([]byte, *session.Session, error) {
	const op = "get flow and session"
	var flow *redis.StringCmd
	var sess *redis.MapStringStringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		flow = p.Get(ctx, s.k.flow(flowID))
		if sessionID != "" {
			sess = p.HGetAll(ctx, s.k.session(sessionID))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fail(op, err)
	}
	b, err := flow.Bytes()
	if err != nil {
		return nil, nil, fail(op, err)
	}
	if sess == nil || len(sess.Val()) == 0 {
		return b, nil, nil
	}
	got, err := parseSession(sessionID, sess.Val())
	if err != nil {
		return nil, nil, err
	}
	return b, got, nil
}

// IssueCode implements session.CodeStore: the code and its marker, the
// session's touch and index scripts, its online grants' new TTL and the
// flow's DEL in one pipeline; without a session in a (the zero
// Activity), the code, its marker and the DEL only.
// Every script in it is idempotent, so the NOSCRIPT retry is safe.
func (s *Store) IssueCode(ctx context.Context, c session.Code, a session.Activity, flowID string) (bookkeeping, err error) {
	const op = "issue code"
	if err := checkTTL(op, c.TTL); err != nil {
		return nil, err
	}
	if err := checkTTL(op+": spent", c.SpentTTL); err != nil {
		return nil, err
	}
	touches := a.SessionID != ""
	if touches {
		if err := checkTTL(op+": session", a.TTL); err != nil {
			return nil, err
		}
		if a.Subject == "" {
			return nil, fmt.Errorf("redisstore: %s: no subject", op)
		}
	}
	if c.Binding == "" {
		return nil, fmt.Errorf("redisstore: %s: no binding", op)
	}
	client := ""
	if a.ClientID != "" {
		client = prefixClient + a.ClientID
	}
	var touch *redis.Cmd
	var code, marker *redis.StatusCmd
	// Every DEL of the flow sent, in case pipeScripts sends the pipeline
	// twice: the first may have claimed it.
	var dels []*redis.IntCmd
	// A pipeline that fails as a whole sets its error on every command,
	// so the code's own replies say whether it was stored.
	_ = s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		// The code and its spent marker as two plain SETs (one slot, one
		// connection, in order), not scriptPutCode: nobody holds the code
		// before this call returns it, so nothing can come between them,
		// and a script costs Redis more than the two commands it runs
		// (issue 18: SSO CPU). Both are idempotent, as a resend needs.
		code = p.Set(ctx, s.k.code(c.Hash), c.Data, c.TTL)
		marker = p.Set(ctx, s.k.codeGrant(c.Hash), spentMarker(c.GrantID, c.Binding), c.SpentTTL)
		if touches {
			touch = s.queueUpdate(ctx, p, run, scriptTouch, a.SessionID, a.Subject, a.TTL, unixStamp(a.At), client)
			for _, id := range a.Grants {
				run(ctx, p, scriptSlideGrant, []string{s.k.grant(id)}, millis(a.TTL))
			}
		}
		if flowID != "" {
			// The DEL is the claim, so it is sent at most once (once.go):
			// re-sent by go-redis's ClusterClient after a lost reply, it
			// would answer 0 and the winner would take its own code back.
			del := redis.NewIntCmd(ctx, "del", s.k.flow(flowID))
			_ = p.Process(ctx, noRetry{del})
			dels = append(dels, del)
		}
	})
	if err := cmp.Or(code.Err(), marker.Err()); err != nil {
		// A code without its marker cannot be taken (scriptTakeCode):
		// not stored either way; one stored alone expires unseen.
		return nil, fail(op, err)
	}
	bookkeeping, err = s.claimedFlow(ctx, op, c, dels)
	if err != nil {
		return nil, err
	}
	if touch == nil {
		return bookkeeping, nil
	}
	if err := touch.Err(); err != nil {
		bookkeeping = fail(op+": touch", err)
	}
	return bookkeeping, nil
}

// claimedFlow is IssueCode's verdict on the flow's DELs (every one sent)
// after its code c was stored: ErrFlowEnded, the code taken back, when
// the flow was answered and none of them deleted it (another request
// ended it first); bookkeeping when none was answered.
func (s *Store) claimedFlow(ctx context.Context, op string, c session.Code, dels []*redis.IntCmd) (bookkeeping, err error) {
	claimed, answered, delErr := flowDeleted(dels)
	if answered && !claimed {
		// Another request ended the flow first: this code was never
		// handed out; take it back (one slot: one DEL).
		if err := s.takeBack(ctx, c); err != nil {
			return nil, fail(op+": take back", err)
		}
		return nil, fmt.Errorf("redisstore: %s: %w", op, session.ErrFlowEnded)
	}
	if len(dels) > 0 && !answered {
		return fail(op+": drop flow", delErr), nil
	}
	return nil, nil
}

// flowDeleted reads the replies of the DELs of a flow (every one sent):
// whether one of them deleted it, whether one answered at all, and the
// error of one that did not.
func flowDeleted(dels []*redis.IntCmd) (claimed, answered bool, err error) {
	for _, d := range dels {
		if d.Err() != nil {
			err = d.Err()
			continue
		}
		answered = true
		claimed = claimed || d.Val() == 1
	}
	return claimed, answered, err
}

// takeBack deletes a stored code that is not handed out.
func (s *Store) takeBack(ctx context.Context, c session.Code) error {
	return s.c.Del(ctx, s.k.code(c.Hash), s.k.codeGrant(c.Hash)).Err()
}

// ElevateAndIssue implements session.SessionStore in one pipeline: the
// session's scriptElevate (with the code's activity when there is a
// code) and the subject's index script, the code's scriptPutCode, the
// online grants' scriptSlideGrant, the flow's DEL and the refunds'
// scriptRefund. The session, the code, the
// flow and each budget are on slots of their own, so the code cannot be
// made conditional on the elevation inside Redis: it is stored in the
// same round trip and, when the elevation's reply is not a success, taken
// back before anyone sees it (the code is random and only its hash is
// stored: a code not handed out cannot be redeemed). The elevation is
// idempotent and so is the code's script, so they may be re-sent after
// NOSCRIPT (pipeScripts); the DEL is the flow's claim and is kept from
// every send, as IssueCode's; a refund is not idempotent, so it goes out
// whole (EVAL, never NOSCRIPT), as a noRetry command, in the first send
// only.
func (s *Store) ElevateAndIssue(ctx context.Context, u session.StepUp) (session.StepUpDone, error) {
	const op = "elevate and issue"
	if err := checkTTL(op, u.TTL); err != nil {
		return session.StepUpDone{}, err
	}
	if u.Subject == "" {
		return session.StepUpDone{}, fmt.Errorf("redisstore: %s: no subject", op)
	}
	if u.OldKeyHash == "" || u.NewKeyHash == "" {
		return session.StepUpDone{}, fmt.Errorf("redisstore: %s: empty key digest", op)
	}
	if c := u.Code; c != nil {
		if err := checkTTL(op+": code", c.TTL); err != nil {
			return session.StepUpDone{}, err
		}
		if err := checkTTL(op+": spent", c.SpentTTL); err != nil {
			return session.StepUpDone{}, err
		}
		if c.Binding == "" {
			return session.StepUpDone{}, fmt.Errorf("redisstore: %s: no binding", op)
		}
	}
	v, err := verificationValue(u.V)
	if err != nil {
		return session.StepUpDone{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	args := []any{prefixVerify + string(u.V.Factor), v, u.OldKeyHash, u.NewKeyHash}
	if u.Code != nil {
		client := ""
		if u.ClientID != "" {
			client = prefixClient + u.ClientID
		}
		args = append(args, unixStamp(u.At), client)
	}
	var (
		elev, code *redis.Cmd
		dels       []*redis.IntCmd
		refunds    []*redis.Cmd
		sent       bool
	)
	_ = s.pipeScripts(ctx, func(p redis.Pipeliner, run runScript) {
		elev = s.queueUpdate(ctx, p, run, scriptElevate, u.SessionID, u.Subject, u.TTL, args...)
		if c := u.Code; c != nil {
			code = run(ctx, p, scriptPutCode, []string{s.k.code(c.Hash), s.k.codeGrant(c.Hash)}, c.Data, millis(c.TTL), spentMarker(c.GrantID, c.Binding), millis(c.SpentTTL))
			for _, id := range u.Grants {
				run(ctx, p, scriptSlideGrant, []string{s.k.grant(id)}, millis(u.TTL))
			}
			if u.FlowID != "" {
				del := redis.NewIntCmd(ctx, "del", s.k.flow(u.FlowID))
				_ = p.Process(ctx, noRetry{del})
				dels = append(dels, del)
			}
		}
		if sent {
			return // the refunds went out with the first send
		}
		sent = true
		for _, b := range u.Refund {
			cmd := evalCmd(ctx, "eval", scriptSources[scriptRefund], []string{s.k.budget(string(b.Kind), b.ID)})
			_ = p.Process(ctx, noRetry{cmd})
			refunds = append(refunds, cmd)
		}
	})
	var done session.StepUpDone
	for _, r := range refunds {
		if err := r.Err(); err != nil {
			done.Bookkeeping = fail(op+": refund", err)
		}
	}
	done.FlowEnded, _, _ = flowDeleted(dels)
	n, err := elev.Int()
	switch {
	case err != nil:
		err = fail(op, err) // redis.Nil: ErrNotFound
	case n == 0:
		err = fmt.Errorf("redisstore: %s: %w", op, session.ErrKeyChanged)
	}
	if err != nil {
		if u.Code != nil && code.Err() == nil {
			// Stored, never to be handed out: the elevation it rests on
			// did not happen (or its reply was lost).
			_ = s.takeBack(ctx, *u.Code)
		}
		return done, err
	}
	done.Elevated = true
	if u.Code == nil {
		return done, nil
	}
	if err := code.Err(); err != nil {
		return done, fail(op, err)
	}
	flowBK, err := s.claimedFlow(ctx, op, *u.Code, dels)
	done.Bookkeeping = cmp.Or(flowBK, done.Bookkeeping)
	return done, err
}
