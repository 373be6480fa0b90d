package redisstore

import (
	"strconv"
	"strings"
)

// keys builds every Redis key the store uses; no other file spells a key.
//
// A part in braces is a Redis Cluster hash tag: keys that change together
// (a code and its spent marker; a user's account, session index and TOTP
// steps) carry the same tag so that they live in one slot and a MULTI or a
// Lua script may touch them together. The prefix must therefore not
// contain braces.
type keys struct{ prefix string }

// session is a browser session, a HASH:
//
//	sub          subject
//	key          digest of the key its browser holds (session.KeyHash);
//	             absent for a session no browser holds
//	created      unix seconds (nanoseconds before issue 18, still read)
//	seen         unix seconds of the latest Touch (idem)
//	dev          the device's name (session.Session.Device)
//	a            session.Session.View: the account's factors, a decimal
//	             number (a listpack integer)
//	c:<client>   "1" for each client that received a code
//	v:<factor>   the latest verification of that factor: its time in unix
//	             ns and its flags (verificationValue), or the JSON
//	             authn.Verification earlier versions wrote (still read)
//	g:<grant>    "0": an online grant derived from the session (see
//	             sessionGrants)
//
// A hash so that AddVerification and Touch write one field each, with no
// read-modify-write. TTL: the ttl of the latest write (idle timeout).
func (k keys) session(id string) string { return k.prefix + "{sess:" + id + "}" }

// Field names of the session hash. scripts.go spells "sub", "key" and
// "seen" too.
const (
	fieldSub     = "sub"
	fieldKey     = "key"
	fieldCreated = "created"
	fieldSeen    = "seen"
	fieldDevice  = "dev"
	fieldView    = "a" // session.Session.View
	prefixClient = "c:"
	prefixVerify = "v:"
	prefixGrant  = "g:" // scripts.go spells it too
)

// userSessions indexes a subject's sessions, a HASH of session id → "".
// It lives in another slot than the sessions, so it is best-effort: ids
// of sessions that expired are pruned by ListSessions, and by a sign-in
// once it holds 32 ids or more (Store.index). TTL: extended to the ttl of
// every session write, so it outlives its longest-lived session. A hash,
// not a SET as before: Redis 7.0 keeps a small hash as a listpack, a set
// of strings as a hash table, ~260 B for one id (issue 18, Redis bytes
// per login).
func (k keys) userSessions(sub string) string {
	return k.prefix + "{user:" + sub + "}:sess"
}

// legacyUserSessions is userSessions as versions before issue 18 wrote it,
// a SET of session ids: still read (ListSessions, the pruning) and
// cleaned (a session's end) until it expires, never written.
func (k keys) legacyUserSessions(sub string) string {
	return k.prefix + "{user:" + sub + "}:sessions"
}

// account is an account, a HASH of the acct* fields. No TTL: accounts
// persist.
func (k keys) account(sub string) string { return k.prefix + "{user:" + sub + "}:account" }

// Field names of the account hash.
const (
	acctSub          = "sub"
	acctUsername     = "username"
	acctPasswordHash = "password_hash"
	acctEmail        = "email"
	acctPhone        = "phone"
	acctName         = "name"
	acctTOTPSecret   = "totp_secret"
	acctEmailMFA     = "email_mfa" // "1" or "0"
	acctLastFactor   = "last_factor"
	acctLocked       = "locked" // "1" while an operator has locked the account; scripts.go spells it too
)

// recovery is the SET of an account's unused recovery-code hashes. No TTL:
// an enrollment persists like the account, whose tag it shares.
func (k keys) recovery(sub string) string { return k.prefix + "{user:" + sub + "}:recovery" }

// otp is a one-time code sent by SMS or email, a HASH (otpHash, otpWrong)
// bound to a browser session and a purpose; it shares the session's tag.
// TTL: the code's lifetime (minutes).
func (k keys) otp(sessionID, purpose string) string {
	return k.prefix + "{sess:" + sessionID + "}:otp:" + purpose
}

// Field names of the otp hash; scripts.go spells them too.
const (
	otpHash  = "h"
	otpWrong = "wrong"
)

// otpCooldown marks that a code was just sent for (session, purpose), a
// STRING. TTL: the resend cooldown (seconds).
func (k keys) otpCooldown(sessionID, purpose string) string {
	return k.otp(sessionID, purpose) + ":cooldown"
}

// passkeys are an account's WebAuthn credentials, a HASH of credential id
// (base64url) → record (opaque bytes). No TTL: enrollments persist. It
// shares the user's tag so a script can check the account beside it.
func (k keys) passkeys(sub string) string { return k.prefix + "{user:" + sub + "}:passkeys" }

// challenge is the state of a WebAuthn ceremony in progress, a STRING
// keyed by its challenge and consumed with GETDEL. TTL: the caller's
// (minutes).
func (k keys) challenge(c string) string { return k.prefix + "webauthn:" + c }

// username maps a lowercased username to its subject, a STRING. No TTL:
// it lives as long as the account. It is not tagged: it is written once,
// with SET NX, before the account, so it need not share the account's slot.
func (k keys) username(name string) string {
	return k.prefix + "username:" + strings.ToLower(name)
}

// totpStep marks a used TOTP time step of a subject, a STRING set with
// SET NX. TTL: the caller's, long enough to cover the steps still
// accepted (the verification window).
func (k keys) totpStep(sub string, step int64) string {
	return k.prefix + "{user:" + sub + "}:totp:" + strconv.FormatInt(step, 10)
}

// flow is a pending authorization request, a STRING (opaque payload).
// TTL: the caller's (how long a login may take).
func (k keys) flow(id string) string { return k.prefix + "flow:" + id }

// code is an unused authorization code, a STRING (opaque payload), keyed
// by the code's hash in fewer characters (codeKeyHash). TTL: the code
// lifetime.
func (k keys) code(hash string) string { return k.prefix + "{c:" + codeKeyHash(hash) + "}" }

// codeGrant is the code's spent marker: the grant a code was (or will
// be) exchanged for and the code's binding, a STRING (spentMarker), so
// that a replayed code can revoke what the first exchange issued. It
// shares the code's tag so TakeCode reads both in one script. TTL: the
// caller's spentTTL, longer than the code's.
func (k keys) codeGrant(hash string) string { return k.prefix + "{c:" + codeKeyHash(hash) + "}s" }

// legacyCode and legacyCodeGrant are code and codeGrant as versions
// before issue 18's smaller markers stored them (the whole hash; the
// marker's value "<grant> <binding>"): TakeCode still takes their codes,
// issued before an upgrade, and refuses their replays.
func (k keys) legacyCode(hash string) string { return k.prefix + "{code:" + hash + "}" }
func (k keys) legacyCodeGrant(hash string) string {
	return k.prefix + "{code:" + hash + "}:grant"
}

// codeKeyHashLen is how many characters of a code's hash name its keys:
// 22 base64url characters of a SHA-256 are 132 bits, still beyond any
// collision among live codes or a search for one (issue 18: Redis bytes
// per login).
const codeKeyHashLen = 22

// codeKeyHash is the part of a code's hash its keys carry.
func codeKeyHash(hash string) string {
	if len(hash) > codeKeyHashLen {
		return hash[:codeKeyHashLen]
	}
	return hash
}

// grant is a token family, a HASH of the grant* fields. TTL: until the
// grant's ExpiresAt.
func (k keys) grant(id string) string { return k.prefix + "{grant:" + id + "}" }

// Field names of the grant hash.
const (
	grantClientID  = "client_id"
	grantSub       = "sub"
	grantSessionID = "sid"
	grantOffline   = "offline" // "1" or "0"
	grantRefresh   = "rt"      // hash of the current refresh token; scripts.go spells it too
	grantData      = "data"    // the payload's first piece; then "data1", "data2", … (see chunks)
	grantExpires   = "exp"     // unix nanoseconds, in grants stored before the expiry was the TTL alone
	// grantCut is the subject's grantCut counter when the grant was
	// stored; absent (a grant stored before the counter existed) is "0".
	grantCut = "cut"
	// grantInc is the grant's incarnation (session.Grant.Inc); scripts.go
	// spells it too. Absent: a grant stored before incarnations existed.
	grantInc = "inc"
	// grantAuth is the authorization that stored the grant last
	// (session.Grant.Auth); absent when it has none.
	grantAuth = "auth"
)

// grantEnded marks what of a deleted grant may not be stored again, a SET:
// "*" for the id itself (DeleteGrant, a session's end listed it before the
// grant was written), or the authorizations ended (EndAuthorization), so
// that a PutGrant of them still in flight stores nothing. A STRING (as
// written before the SET) means "*". It shares the grant's tag. TTL:
// endedGrantMemory, far longer than any request.
func (k keys) grantEnded(id string) string { return k.prefix + "{grant:" + id + "}:ended" }

// sessionGrants indexes the offline grants derived from a session, a
// HASH of grant id → "1" (earlier versions listed online ones, "0", here
// too). The online ones are fields of the session's own hash ("g:<id>"):
// they end with it anyway, and a key of their own cost every sign-in
// ~200 bytes of Redis (issue 18). Both share the session's tag, so a
// script adds a grant only while the session exists and is not ending,
// and the end reads both in the same step as it marks the session ending.
// This key outlives the session (an offline grant's entry stays until an
// operator ends it). TTL: extended to the TTL of every grant added.
func (k keys) sessionGrants(id string) string { return k.prefix + "{sess:" + id + "}:grants" }

// sessionEnding marks a session whose grants are being ended, a STRING:
// no grant may be added to it from then on, even while the session's own
// record still exists (it is deleted after its grants). TTL: the
// session's remaining TTL (at least endingMinTTL).
func (k keys) sessionEnding(id string) string { return k.prefix + "{sess:" + id + "}:ending" }

// userGrants indexes the grants of a subject that no session's end
// reaches (offline ones, those without a session), for EndUserGrants: a
// SORTED SET of grant ids scored by their expiry (unix ms), so that adding
// one drops those that have expired. TTL: extended to the TTL of every
// grant added. Earlier versions indexed online grants here too.
func (k keys) userGrants(sub string) string { return k.prefix + "{user:" + sub + "}:grants" }

// grantCut counts the times a subject's grants were ended, a STRING (an
// integer; absent is 0). A grant records the value it was stored under
// and is live only while the value is unchanged, so a grant that an end
// did not find in userGrants is dead all the same. No TTL: it must
// outlive every grant stored before the last end (up to the offline
// lifetime); one integer per subject whose grants were ever ended.
func (k keys) grantCut(sub string) string { return k.prefix + "{user:" + sub + "}:grantcut" }

// revoked marks a revoked access-token id, a STRING. TTL: the caller's,
// until the token would have expired anyway.
func (k keys) revoked(jti string) string { return k.prefix + "revoked:" + jti }

// secret is a secret shared by every instance (signing key, cookie keys),
// a STRING. No TTL: rotating it is an operator's decision.
func (k keys) secret(name string) string { return k.prefix + "secret:" + name }

// budget counts the attempts of an abuse budget in its window, a STRING
// (an integer). The user budget shares the user's tag. TTL: the window,
// set by the first attempt.
func (k keys) budget(kind, id string) string {
	if kind == "user" {
		return k.prefix + "{user:" + id + "}:fail"
	}
	return k.prefix + "fail:" + kind + ":" + id
}

// stepUpGrant is a step-up grant, a HASH (sub, action, client, once, exp),
// keyed by the grant's hash. TTL: until the grant expires.
func (k keys) stepUpGrant(hash string) string { return k.prefix + "{sgrant:" + hash + "}" }

// ciba is an OpenID CIBA request, a HASH:
//
//	client  client id        sub    subject
//	arh     digest of the auth_req_id     lh   digest of the approval link
//	data    payload (opaque)  state  pending | approved | denied | used
//	exp     unix ms after which it is expired
//	ival    poll interval (ms)           next  unix ms before which a poll is too early
//	flow    the approval flow the link is bound to (set once)
//	result  the approval (opaque), until the client takes it
//
// One tag, so every step is one script. TTL: until exp plus a grace
// period, so that late polls are told expired_token.
func (k keys) ciba(id string) string { return k.prefix + "{ciba:" + id + "}" }

// cibaPending holds the id of the pending CIBA request of a (client,
// subject) pair, a STRING set with SET NX: one pending request per pair.
// Keyed by a digest of the pair. TTL: the request's expiry; deleted when
// the user decides.
func (k keys) cibaPending(pair string) string { return k.prefix + "ciba-pending:" + pair }

// migration records that a one-time data migration ran to its end (the
// move of accounts to the database), a STRING: the time it finished. No
// TTL: it must never run again by accident.
func (k keys) migration(name string) string { return k.prefix + "migrated:" + name }

// all matches every key of the store, for Purge.
func (k keys) all() string { return escapeGlob(k.prefix) + "*" }

// escapeGlob quotes the glob metacharacters of s for SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
