package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each touches only the keys it declares, all with one
// hash tag, so each runs atomically on one Cluster slot. They return nil
// (a redis.Nil reply) for "no such record". Scripts are run with
// Script.Run: EVALSHA, falling back to EVAL when the server has not cached
// the script (after a restart or failover).

// scriptAddVerification sets one field of an existing session of the
// given subject and extends its TTL; a session that expired or was
// deleted is not resurrected.
// KEYS[1] session; ARGV[1] subject, ARGV[2] ttl (ms), ARGV[3] field,
// ARGV[4] value. Returns 1, or nil when there is no such session.
var scriptAddVerification = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[1] then return nil end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// scriptElevate is scriptAddVerification that also renews the session's
// key: only when the key digest is still the caller's, so of two
// concurrent elevations one renews and the other changes nothing. It is
// idempotent as pipeScripts needs: run again after it succeeded, it finds
// its own new digest and writes the same fields again.
// With ARGV[7] and ARGV[8] it also records the activity of a code issued
// in the same round trip, as scriptTouch does, only when it elevates
// (ElevateAndIssue): a session that refused the elevation is not marked
// as having served the client.
// KEYS[1] session; ARGV[1] subject, ARGV[2] ttl (ms), ARGV[3] field,
// ARGV[4] value, ARGV[5] old key digest, ARGV[6] new key digest, ARGV[7]
// seen (unix seconds, see scriptTouch), ARGV[8] client field or "". Returns 1, 0 when the key
// is not ARGV[5], or nil when there is no such session.
var scriptElevate = redis.NewScript(luaLater + `
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[1] then return nil end
local key = redis.call('HGET', KEYS[1], 'key')
if key ~= ARGV[5] and key ~= ARGV[6] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4], 'key', ARGV[6])
if ARGV[7] then
  local seen = redis.call('HGET', KEYS[1], 'seen')
  if not seen or later(ARGV[7], seen) then redis.call('HSET', KEYS[1], 'seen', ARGV[7]) end
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], ARGV[8], '1') end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// luaLater defines later(a, b): whether session stamp a is after b, for
// "seen". A stamp is unix seconds (this version, unixStamp) or unix
// nanoseconds (earlier versions, more digits than a Lua number holds
// exactly): both are compared by their whole seconds, the digits before
// a nanosecond stamp's last nine, so a session an earlier version touched
// keeps moving forward (issue 18: Redis bytes per login). Within one
// second a stamp is not later: the stored one stays, which is never
// more than a second behind.
const luaLater = `
local function later(a, b)
  if #a > 12 then a = string.sub(a, 1, #a - 9) end
  if #b > 12 then b = string.sub(b, 1, #b - 9) end
  return tonumber(a) > tonumber(b)
end
`

// scriptTouch records activity on an existing session and extends its TTL.
// "seen" only moves forward (luaLater), so that instances racing with
// slightly different clocks never move it back.
// KEYS[1] session; ARGV[1] subject, ARGV[2] ttl (ms), ARGV[3] seen (unix
// seconds, unixStamp), ARGV[4] client field or "". Returns 1, or nil when
// there is no such session.
var scriptTouch = redis.NewScript(luaLater + `
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[1] then return nil end
local seen = redis.call('HGET', KEYS[1], 'seen')
if not seen or later(ARGV[3], seen) then redis.call('HSET', KEYS[1], 'seen', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], ARGV[4], '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// scriptPutCode stores a code and its spent marker (one hash tag). The
// marker (spentMarker) holds the grant and the code's binding: it
// outlives the code, so a replay is checked against the binding too.
// KEYS[1] code, KEYS[2] spent marker; ARGV[1] payload, ARGV[2] ttl (ms),
// ARGV[3] marker, ARGV[4] spent ttl (ms).
var scriptPutCode = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
`)

// scriptIndexSession adds a session id to its subject's index and makes
// the index live at least ttl, never shortening it (another session may
// live longer).
// KEYS[1] index; ARGV[1] session id, ARGV[2] ttl (ms). Returns the
// index's size, so that the caller prunes it when it has grown.
var scriptIndexSession = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], '')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('HLEN', KEYS[1])
`)

// scriptSetIfExists sets one field of an existing hash; a missing hash is
// not created.
// KEYS[1] hash; ARGV[1] field, ARGV[2] value.
var scriptSetIfExists = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// scriptTakeCode consumes an authorization code for the binding it was
// stored with: checking and taking are one step, so a code stays single
// use under concurrency and a caller without the binding (a stolen code
// without its client, redirect URI or PKCE verifier) neither spends it
// nor learns its grant. With the binding, the first caller gets the
// payload and deletes it; later callers get the grant (a replay).
// KEYS[1] code, KEYS[2] spent marker (spentMarker: a format byte, the
// binding's markerBindingLen (13) bytes, the grant; or, from the version
// before, formats "p" and "t" with 16 bytes of binding); ARGV[1] the
// binding's first 16 bytes (markerBinding). Returns {"data", payload}, {"spent", format byte
// and grant}, {"mismatch", ""}, or nil when neither key exists.
var scriptTakeCode = newOnceScript(`
local spent = redis.call('GET', KEYS[2])
if not spent then return nil end
local f = string.sub(spent, 1, 1)
local n = 13
if f == 'p' or f == 't' then n = 16 end
if #spent < 1 + n or string.sub(spent, 2, 1 + n) ~= string.sub(ARGV[1], 1, n) then return {'mismatch', ''} end
local data = redis.call('GET', KEYS[1])
if data then
  redis.call('DEL', KEYS[1])
  return {'data', data}
end
return {'spent', f .. string.sub(spent, 2 + n)}
`)

// scriptTakeLegacyCode is scriptTakeCode for a code stored by a version
// before the smaller markers (keys.legacyCode): its marker's value is
// "<grant> <binding>". KEYS[1] code, KEYS[2] spent marker; ARGV[1]
// binding. Returns as scriptTakeCode, with the grant alone for "spent".
var scriptTakeLegacyCode = newOnceScript(`
local spent = redis.call('GET', KEYS[2])
if not spent then return nil end
local sep = string.find(spent, ' ', 1, true)
if not sep or string.sub(spent, sep + 1) ~= ARGV[1] then return {'mismatch', ''} end
local data = redis.call('GET', KEYS[1])
if data then
  redis.call('DEL', KEYS[1])
  return {'data', data}
end
return {'spent', string.sub(spent, 1, sep - 1)}
`)

// Results of scriptRotateRefresh.
const (
	rotateRotated = 1
	rotateReused  = 2
	rotateGone    = 3
)

// scriptRotateRefresh replaces a grant's refresh-token hash if the
// presented one is current; otherwise the presented token is an old one
// being reused, so the whole grant is deleted.
// KEYS[1] grant; ARGV[1] presented hash, ARGV[2] new hash.
var scriptRotateRefresh = newOnceScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 3 end
if redis.call('HGET', KEYS[1], 'rt') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'rt', ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 2
`)

// scriptReserve counts an attempt. The first attempt of a window sets its
// expiry, and so does the one that reaches the limit, so a lockout lasts a
// whole window. KEYS[1] budget; ARGV[1] window (ms), ARGV[2] limit.
// KEYS[2], for a user budget, is the user's account (same hash tag): while
// an operator has locked it, nothing is counted and the answer is one
// over the limit. Returns the count.
var scriptReserve = newOnceScript(`
if KEYS[2] and redis.call('HGET', KEYS[2], 'locked') == '1' then
  return tonumber(ARGV[2]) + 1
end
local n = redis.call('INCR', KEYS[1])
if n == 1 or n == tonumber(ARGV[2]) or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// scriptReserveTOTP is scriptReserve for the subject's own budget on a
// TOTP attempt whose code the caller verified: when the attempt is
// within the limit and KEYS[3] (the verified code's time step; absent
// for a wrong code) was unused, it claims the step (SET NX, ARGV[3] ms)
// and takes the attempt back as scriptRefund does, all in one script, so
// the count comes first and a replayed step stays counted. KEYS[1]
// budget, KEYS[2] account (its lock), KEYS[3] step; ARGV[1] window (ms),
// ARGV[2] limit. Returns {count, 1 when the step was claimed}.
var scriptReserveTOTP = newOnceScript(`
local max = tonumber(ARGV[2])
local n
if redis.call('HGET', KEYS[2], 'locked') == '1' then
  n = max + 1
else
  n = redis.call('INCR', KEYS[1])
  if n == 1 or n == max or redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
  end
end
if n > max or not KEYS[3] then return {n, 0} end
if not redis.call('SET', KEYS[3], '1', 'PX', ARGV[3], 'NX') then return {n, 0} end
if n > 1 then redis.call('DECR', KEYS[1]) else redis.call('DEL', KEYS[1]) end
return {n, 1}
`)

// scriptRefund takes an attempt back, only inside a live window (a DECR on
// a missing key would create one without a TTL). A window whose only
// attempt is taken back is deleted, not kept as a "0" for its whole
// length: every successful sign-in would leave one behind (issue 18,
// Redis bytes per login). KEYS[1] budget.
var scriptRefund = newOnceScript(`
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 1 then return redis.call('DECR', KEYS[1]) end
if n == 1 then redis.call('DEL', KEYS[1]) end
return 0
`)

// scriptSetRecovery replaces an account's recovery codes. KEYS[1]
// account, KEYS[2] recovery set; ARGV the hashes. Returns nil when there
// is no account (nothing is written).
var scriptSetRecovery = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
redis.call('DEL', KEYS[2])
if #ARGV > 0 then redis.call('SADD', KEYS[2], unpack(ARGV)) end
return 1
`)

// scriptPutOTP stores a code unless the last one's cooldown runs.
// KEYS[1] code, KEYS[2] cooldown; ARGV[1] hash, ARGV[2] ttl (ms), ARGV[3]
// cooldown (ms). Returns 1 when stored, 0 during the cooldown.
var scriptPutOTP = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'wrong', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 1
`)

// scriptUseOTP consumes a code when the hash matches, ending its resend
// cooldown too (it has served); a mismatch counts, and the code is deleted
// at the limit. KEYS[1] code, KEYS[2] cooldown; ARGV[1] hash, ARGV[2] max
// mismatches. Returns 1 when consumed, 0 otherwise.
var scriptUseOTP = newOnceScript(`
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return 0 end
if h == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
if redis.call('HINCRBY', KEYS[1], 'wrong', 1) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
end
return 0
`)

// scriptUseStepUpGrant checks a step-up grant against the subject, action
// and client asking, and deletes a one-time grant in the same step. A
// grant that does not match is left alone.
// Expiry is checked against the caller's clock as well as by the TTL.
// KEYS[1] grant; ARGV[1] subject, ARGV[2] action, ARGV[3] client,
// ARGV[4] now (unix ms). Returns the factor the grant rests on when it
// holds, nil otherwise.
var scriptUseStepUpGrant = newOnceScript(`
local g = redis.call('HMGET', KEYS[1], 'sub', 'action', 'client', 'once', 'exp', 'factor')
if g[1] ~= ARGV[1] or g[2] ~= ARGV[2] or g[3] ~= ARGV[3] then return false end
if tonumber(g[5]) <= tonumber(ARGV[4]) then return false end
if g[4] == '1' then redis.call('DEL', KEYS[1]) end
return g[6] or ''
`)

// scriptReplaceVerifications sets a session's verification fields to
// exactly the given ones, keeping the TTL; nothing happens when the
// session is gone or is another subject's.
// KEYS[1] session; ARGV[1] subject, then field, value pairs.
// Returns 1, or nil when there is no such session.
var scriptReplaceVerifications = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[1] then return nil end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'v:' then redis.call('HDEL', KEYS[1], f) end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`)

// scriptSeedAccount writes a new account: only when the hash has no
// username yet (it may hold a lock mark alone, see MarkLocked), so a seed
// never overwrites an account.
// KEYS[1] account; ARGV field, value pairs. Returns 1 when it wrote, 0.
var scriptSeedAccount = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'username') == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

// scriptReplaceField sets a field of an account only if it still holds
// the value the caller read.
// KEYS[1] account; ARGV[1] field, ARGV[2] old value, ARGV[3] new value.
// Returns 1 when it replaced, 0.
var scriptReplaceField = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'username') == 0 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// scriptLockAccount marks an existing account locked.
// KEYS[1] account. Returns 1, or nil when there is no such account.
var scriptLockAccount = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
redis.call('HSET', KEYS[1], 'locked', '1')
return 1
`)

// scriptIndexSessionGrant adds a grant to its session's index, only while
// the session exists, is the subject's and is not ending: the step that
// orders a grant before or after its session's end (see PutGrant). An
// online grant is a field of the session's hash, an offline one an entry
// of the index key (see sessionGrants); a grant stored again moves
// between them when its offline_access changes.
// KEYS[1] session, KEYS[2] ending marker, KEYS[3] index; ARGV[1] subject,
// ARGV[2] grant id, ARGV[3] "1" offline or "0", ARGV[4] grant ttl (ms).
// Returns 1, or nil when the grant may not be added.
var scriptIndexSessionGrant = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[1] then return nil end
if redis.call('EXISTS', KEYS[2]) == 1 then return nil end
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], 'g:' .. ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then
    redis.call('PEXPIRE', KEYS[3], ARGV[4])
  end
else
  redis.call('HSET', KEYS[1], 'g:' .. ARGV[2], '0')
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return 1
`)

// scriptIndexUserGrant adds a grant to its subject's index, scored by its
// expiry, drops the ids of grants that have expired (so the index of a
// user who signs in every day stays the size of their live grants), and
// returns the subject's cut counter, which the grant then records. Only
// grants that no session's end reaches are indexed (offline ones, and
// those without a session): an online grant is ended by its session's
// end, and dead by the cut counter after a subject's end, so indexing it
// too cost every first sign-in of a user a key (issue 18, Redis bytes
// per login); one stored online is dropped from the index.
// KEYS[1] index, KEYS[2] cut counter; ARGV[1] grant id, ARGV[2] grant
// ttl (ms), ARGV[3] grant expiry (unix ms), ARGV[4] now (unix ms), ARGV[5]
// "1" to index the grant, "0" not.
var scriptIndexUserGrant = redis.NewScript(`
if ARGV[5] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return redis.call('GET', KEYS[2]) or '0'
`)

// scriptPutGrant writes a grant unless its id was ended, or its
// authorization was (see grantEnded). A grant stored again under the same
// subject's cut keeps its incarnation; otherwise (new, deleted, cut since)
// it takes the caller's. The cut is the caller's, or, when the caller
// passes "", the one the grant it replaces recorded ("0" for a new one):
// see PutGrant.
// KEYS[1] grant, KEYS[2] ended marker; ARGV[1] ttl (ms), ARGV[2]
// authorization ("" none), ARGV[3] incarnation for a new one, ARGV[4] cut
// counter or "", then field, value pairs. Returns {incarnation, cut}, or
// nil when the id or the authorization has ended.
var scriptPutGrant = redis.NewScript(`
local t = redis.call('TYPE', KEYS[2]).ok
if t == 'string' then return nil end
if t == 'set' then
  if redis.call('SISMEMBER', KEYS[2], '*') == 1 then return nil end
  if ARGV[2] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return nil end
end
local cur = redis.call('HMGET', KEYS[1], 'inc', 'cut')
local cut = ARGV[4]
if cut == '' then cut = cur[2] or '0' end
local inc = ARGV[3]
if cur[1] and (cur[2] or '0') == cut then inc = cur[1] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if inc ~= '' then redis.call('HSET', KEYS[1], 'inc', inc) end
if cut ~= '0' then redis.call('HSET', KEYS[1], 'cut', cut) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {inc, cut}
`)

// scriptSlideGrant gives an online grant its session's new TTL (see
// Activity.Grants); an offline grant, or none, is left alone.
// KEYS[1] grant; ARGV[1] ttl (ms).
var scriptSlideGrant = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'offline') == 1 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// scriptEndGrant deletes a grant and marks what of it ended (see
// grantEnded), so that a PutGrant of it still in flight stores nothing.
// With ARGV[3] "1" the grant is kept and only marked: an offline grant
// that outlives its session's sign-out, which no write may replace (see
// endSession).
// KEYS[1] grant, KEYS[2] ended marker; ARGV[1] marker ttl (ms), ARGV[2]
// "*" (the id), an authorization, or "" (nothing is marked); ARGV[3] "1"
// to keep the grant.
var scriptEndGrant = redis.NewScript(`
if ARGV[3] ~= '1' then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' and redis.call('TYPE', KEYS[2]).ok ~= 'string' then
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
`)

// scriptEndingSession marks a session ending, so that no grant is added
// to it any more, and returns its subject ("" when the session is gone)
// and its grants (id, flag pairs: the session hash's "g:" fields, then
// the index key's) in one step: a grant is either in the list or refused.
// KEYS[1] session, KEYS[2] ending marker, KEYS[3] index; ARGV[1] the
// marker's minimum ttl (ms).
var scriptEndingSession = redis.NewScript(`
local sub = redis.call('HGET', KEYS[1], 'sub')
local grants = {}
if sub then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < tonumber(ARGV[1]) then ttl = tonumber(ARGV[1]) end
  redis.call('SET', KEYS[2], '1', 'PX', ttl)
  local f = redis.call('HGETALL', KEYS[1])
  for i = 1, #f, 2 do
    if string.sub(f[i], 1, 2) == 'g:' then
      grants[#grants + 1] = string.sub(f[i], 3)
      grants[#grants + 1] = f[i + 1]
    end
  end
else
  sub = ''
end
local idx = redis.call('HGETALL', KEYS[3])
for i = 1, #idx do grants[#grants + 1] = idx[i] end
return {sub, grants}
`)

// scriptCutUserGrants ends a subject's grants: the cut counter moves on
// (every grant stored under the old value is dead) and the index is
// returned, for the grants to be deleted.
// KEYS[1] cut counter, KEYS[2] index.
var scriptCutUserGrants = redis.NewScript(`
redis.call('INCR', KEYS[1])
return redis.call('ZRANGE', KEYS[2], 0, -1)
`)
