// Package session holds what stepup keeps between requests: browser
// sessions (a subject and its timestamped factor verifications), accounts,
// pending authorization flows, authorization codes, grants (token
// families) and shared secrets, behind the Store interface.
//
// The browser only ever holds an opaque random session id (see Manager);
// everything else lives in the Store. session knows nothing of OIDC: flow,
// code and grant payloads are opaque bytes owned by their caller.
package session

import (
	"context"
	"errors"
	"time"

	"github.com/stepup-dev/stepup/authn"
)

// ErrNotFound is returned when a record does not exist (or has expired).
var ErrNotFound = errors.New("not found")

// ErrFlowEnded is returned by IssueCode when the flow it would end is
// already gone.
var ErrFlowEnded = errors.New("flow already ended")

// ErrCodeMismatch is returned by TakeCode when the binding presented is
// not the code's.
var ErrCodeMismatch = errors.New("code binding mismatch")

// ErrUnavailable wraps store failures (Redis unreachable, timeouts); the
// HTTP layer answers 503 for it.
var ErrUnavailable = errors.New("store unavailable")

// ErrGrantEnded is returned by PutGrant when the grant may not be stored:
// the session it derives from has ended (or is gone), or the grant's id
// was deleted before.
var ErrGrantEnded = errors.New("grant ended")

// ErrKeyChanged is returned by Elevate when the session's key is no
// longer the one the caller presented: another request renewed it first.
var ErrKeyChanged = errors.New("session key changed")

// Session is one browser session.
//
// A browser holds a session by two values in its cookie (see Manager):
// ID, the session's stable handle, and a key, whose digest is KeyHash.
// ID is what every other record refers to (grants, one-time codes, the
// subject's index) and what the store keys the session by, so it never
// changes. The key is renewed at every elevation (Elevate): a cookie
// copied or planted before the elevation no longer holds the session
// after it. ID alone holds nothing.
type Session struct {
	ID string
	// KeyHash is KeyDigest of the key a browser must present beside ID;
	// "" for a session no browser holds.
	KeyHash string
	Subject string
	// CreatedAt and LastSeenAt are kept to the second (truncated): they
	// bound the session's life (absolute and idle timeouts), which a
	// second earlier ends no later; a verification's time is kept whole.
	CreatedAt  time.Time
	LastSeenAt time.Time
	// Verifications holds the latest verification of each factor.
	Verifications []authn.Verification
	// ClientIDs are the clients that received a code from this session.
	ClientIDs []string
	// Device names the browser and system the session was started on
	// ("Firefox on Linux"), for the user's list of sessions; never the
	// raw User-Agent.
	Device string
	// View is a compact view of the account's enrolled factors
	// (op.Provider.AccountView, a small decimal number), written when the
	// session is created and refreshed where the account is read and
	// found to say otherwise. It only
	// chooses which page /authorize shows (a TOTP step-up page without an
	// account read, issue 14); nothing is granted on it: every factor post
	// reads the account and decides again. "" for none (the account is
	// then read).
	View string
	// AccountChecked is never stored: it is set (by op.LoadAccount) on
	// the value a request holds when the request read the session's
	// account as active after the session was read from the store (or
	// fully created). A code issued from such a value needs no second
	// account read at its exchange (see op.Finish). A session created
	// after its account was read does not have it.
	AccountChecked bool `json:"-"`
}

// Account is a user account. Accounts persist (no TTL).
type Account struct {
	Subject      string
	Username     string
	PasswordHash string // argon2id PHC string
	Email        string
	Phone        string
	Name         string
	TOTPSecret   string // base32; "" when TOTP is not enrolled
	EmailMFA     bool
	LastFactor   authn.Factor
	// Locked is set while an operator has locked the account (see
	// AdminStore.LockAccount); GetAccount fills it, SeedAccount ignores it.
	Locked bool
	// Disabled is set while the account is not active (account.Record's
	// Active, in the database): it can neither sign in nor complete a
	// flow. GetAccount fills it; SeedAccount ignores it.
	Disabled bool
	// RecoveryCodes is the number of unused recovery codes (see
	// RecoveryStore); GetAccount fills it, SeedAccount ignores it.
	RecoveryCodes int
	// Passkeys are the account's WebAuthn credentials, sorted by ID. Each
	// Data is the record authn/passkey encodes; the store keeps it opaque.
	Passkeys []StoredPasskey
}

// StoredPasskey is one WebAuthn credential record of an account.
type StoredPasskey struct {
	// ID is the credential id, base64url without padding.
	ID   string
	Data []byte
}

// Grant is one token family: what a client holds from a session (or one
// CIBA approval; a client_credentials exchange is not a grant). A session
// has at most one grant per client: a later authorization of the same
// client in the same session stores the grant again under the same id,
// with that authorization's claims and a new refresh token (the old one is
// no longer current). Deleting it revokes its refresh token and makes its
// access tokens inactive.
type Grant struct {
	ID string
	// Auth names the authorization (code) that stored the grant last, so
	// that ending that authorization (a replayed code) refuses its store
	// still in flight without ending later ones (EndAuthorization).
	Auth string
	// Inc names the grant's incarnation: PutGrant keeps it while the grant
	// is stored again under the same subject's cut, and sets a new one
	// (the caller's, in Inc) when the grant is new, was deleted or was cut
	// since. Access tokens carry it, so a grant deleted and stored again
	// does not bring the old incarnation's access tokens back to life.
	Inc       string
	ClientID  string
	Subject   string
	SessionID string
	// Offline grants outlive the browser session (offline_access).
	Offline bool
	// RefreshHash is the hash of the current refresh token ("" for none).
	RefreshHash string
	// Data is the caller's payload (scopes, acr, amr, auth_time, …).
	Data      []byte
	ExpiresAt time.Time
}

// RotateResult is the outcome of Store.RotateRefresh.
type RotateResult int

// The results of RotateRefresh.
const (
	// Rotated: the presented hash was current and is replaced.
	Rotated RotateResult = iota + 1
	// Reused: the presented hash was an old one; the grant was deleted.
	Reused
	// Gone: no such grant.
	Gone
)

// SessionStore keeps browser sessions. Every write extends the record's TTL
// to ttl; a write to a session that no longer exists returns ErrNotFound and
// creates nothing (never a half-written session).
type SessionStore interface {
	CreateSession(ctx context.Context, s *Session, ttl time.Duration) error
	GetSession(ctx context.Context, id string) (*Session, error)
	// AddVerification stores v as the latest verification of its factor.
	// sub is the session's subject (the caller has loaded the session); a
	// session of another subject is left alone (ErrNotFound).
	AddVerification(ctx context.Context, id, sub string, v authn.Verification, ttl time.Duration) error
	// Touch records activity (last seen, and the client served, if not
	// ""). sub is the session's subject, as for AddVerification.
	Touch(ctx context.Context, id, sub string, at time.Time, clientID string, ttl time.Duration) error
	// Elevate stores v as AddVerification does and, in the same atomic
	// step, replaces the session's key digest oldKeyHash by newKeyHash:
	// the verification is never recorded under the key the browser held
	// before it. ErrNotFound when there is no such session of sub;
	// ErrKeyChanged, with nothing written, when the session's key is not
	// oldKeyHash.
	Elevate(ctx context.Context, id, sub, oldKeyHash, newKeyHash string, v authn.Verification, ttl time.Duration) error
	// ElevateAndIssue is Elevate of u, Refund of u.Refund and, when
	// u.Code is set, IssueCode of it (touching the session at u.At for
	// u.ClientID, ending flow u.FlowID) in one round trip: a step-up's
	// whole write (issue 18). When the elevation was not recorded
	// (Elevated false), err is Elevate's (ErrNotFound, ErrKeyChanged, the
	// store's failure) and no code is issued: a code stored meanwhile is
	// removed again and must not be handed out, and the session is not
	// touched. When it was, err and Bookkeeping are IssueCode's (nil
	// without a code). FlowEnded says that this call ended the flow: when
	// no code is issued, the caller puts the flow back (only then: a flow
	// another request ended stays ended). The refund is applied at most
	// once, whatever the outcome; its failure is bookkeeping.
	ElevateAndIssue(ctx context.Context, u StepUp) (StepUpDone, error)
	// DeleteSession deletes a session (if it exists), drops it from its
	// subject's index and ends the grants that live no longer than it:
	// its online grants (without offline_access), their refresh tokens
	// and their access tokens. No grant can be derived from the session
	// afterwards (PutGrant refuses it). An error means the session may
	// still exist: the call can be repeated.
	DeleteSession(ctx context.Context, id string) error
	// EndSession is DeleteSession for an operator: it ends every grant
	// derived from the session, offline ones included.
	EndSession(ctx context.Context, id string) error
	// ListSessions returns the live sessions of a subject.
	ListSessions(ctx context.Context, subject string) ([]*Session, error)
	// SetView replaces the session's View, as AddVerification writes a
	// verification: only on a live session of sub (ErrNotFound otherwise).
	SetView(ctx context.Context, id, sub, view string, ttl time.Duration) error
}

// AccountStore keeps accounts.
type AccountStore interface {
	// SeedAccount creates the account for a.Username if none exists,
	// ignoring case (the subject is then a.Subject), and returns the
	// account as stored. An existing account is returned unchanged: the
	// configuration seeds accounts, it never overwrites what changed at
	// runtime (a password, a phone, a factor, the email-code switch).
	SeedAccount(ctx context.Context, a *Account) (*Account, error)
	GetAccount(ctx context.Context, subject string) (*Account, error)
	AccountByUsername(ctx context.Context, username string) (*Account, error)
	SetTOTPSecret(ctx context.Context, subject, secret string) error
	// SetEmailMFA turns the account's email codes on or off as a second
	// factor (the user's email_mfa switch); ErrNotFound when there is no
	// such account. It never creates one.
	SetEmailMFA(ctx context.Context, subject string, on bool) error
	SetLastFactor(ctx context.Context, subject string, f authn.Factor) error
	// UseTOTPStep records that subject used TOTP time step; false when that
	// step was already used (replay). Atomic (SET NX).
	UseTOTPStep(ctx context.Context, subject string, step int64, ttl time.Duration) (bool, error)
}

// EmailFinder finds accounts by email address. The durable account
// store (account.Store, and the overlay the server runs on) implements
// it; a store without it finds accounts by username only.
type EmailFinder interface {
	// AccountByEmail returns the account whose email is email, ignoring
	// case; ErrNotFound when there is none (emails are unique).
	AccountByEmail(ctx context.Context, email string) (*Account, error)
}

// PasswordStore replaces password hashes.
type PasswordStore interface {
	// ReplacePasswordHash sets the password hash of subject to newHash if
	// it is still oldHash, and reports whether it did: a hash changed
	// meanwhile (a new password) stays, and no account is created.
	ReplacePasswordHash(ctx context.Context, subject, oldHash, newHash string) (bool, error)
}

// PhoneStore sets an account's phone number. A phone is stored only once
// the user has proved they receive texts at it (or the operator seeded
// it), so a stored phone is a verified one: an enrolled SMS factor.
type PhoneStore interface {
	// SetPhone sets (or, with "", clears) the phone of an existing
	// account; ErrNotFound when there is no such account.
	SetPhone(ctx context.Context, subject, phone string) error
}

// RecoveryStore keeps an account's recovery codes as hashes (authn/recovery
// makes the codes and the hashes). They persist like the account.
type RecoveryStore interface {
	// SetRecoveryCodes replaces the subject's recovery codes by hashes in
	// one atomic step; ErrNotFound when there is no such account.
	SetRecoveryCodes(ctx context.Context, subject string, hashes []string) error
	// UseRecoveryCode removes hash from the subject's codes and reports
	// whether it was there. Atomic: of concurrent uses of one code exactly
	// one gets true.
	UseRecoveryCode(ctx context.Context, subject, hash string) (bool, error)
	// CountRecoveryCodes returns the number of unused codes.
	CountRecoveryCodes(ctx context.Context, subject string) (int, error)
}

// OTPStore keeps the one-time codes sent by SMS or email (authn/otpcode
// makes them), each bound to a browser session and a purpose, and the
// resend cooldown of each. Every key has a TTL.
type OTPStore interface {
	// PutOTP stores the hash of a new code for (sessionID, purpose) for
	// ttl, replacing an earlier code, unless the cooldown of the last one
	// is still running: then it stores nothing and returns false. A stored
	// code starts a new cooldown. Atomic.
	PutOTP(ctx context.Context, sessionID, purpose, hash string, ttl, cooldown time.Duration) (bool, error)
	// UseOTP consumes the code of (sessionID, purpose) if hash matches it
	// and reports whether it did; a used code ends its cooldown. Atomic: of
	// concurrent uses exactly one gets true. A mismatch counts against the code, which is deleted at
	// the maxWrong-th one.
	UseOTP(ctx context.Context, sessionID, purpose, hash string, maxWrong int) (bool, error)
	// HasOTP reports whether an unused, unexpired code exists for
	// (sessionID, purpose).
	HasOTP(ctx context.Context, sessionID, purpose string) (bool, error)
}

// PasskeyStore keeps the WebAuthn credentials of accounts (persistent, like
// accounts) and the challenges of ceremonies in progress.
type PasskeyStore interface {
	// PutPasskey adds or replaces a credential of an existing account;
	// ErrNotFound when the account does not exist.
	PutPasskey(ctx context.Context, subject string, p StoredPasskey) error
	// UpdatePasskey replaces a credential only if it still exists (a
	// credential removed meanwhile stays removed); ErrNotFound otherwise.
	UpdatePasskey(ctx context.Context, subject string, p StoredPasskey) error
	// DeletePasskey removes a credential; ErrNotFound when there is none.
	DeletePasskey(ctx context.Context, subject, id string) error
	// PutChallenge stores the state of a WebAuthn ceremony under its
	// challenge for ttl.
	PutChallenge(ctx context.Context, challenge string, data []byte, ttl time.Duration) error
	// TakeChallenge consumes a challenge atomically (GETDEL): of concurrent
	// calls exactly one gets the data; the others, and any later call, get
	// ErrNotFound.
	TakeChallenge(ctx context.Context, challenge string) ([]byte, error)
}

// FlowStore keeps pending authorization requests (opaque payloads).
type FlowStore interface {
	PutFlow(ctx context.Context, id string, data []byte, ttl time.Duration) error
	GetFlow(ctx context.Context, id string) ([]byte, error)
	DeleteFlow(ctx context.Context, id string) error
	// GetFlowAndSession is GetFlow and GetSession in one round trip, for
	// the hosted pages, which need both. A missing flow is ErrNotFound; a
	// missing session (or sessionID "") is a nil Session.
	GetFlowAndSession(ctx context.Context, flowID, sessionID string) ([]byte, *Session, error)
}

// CodeStore keeps authorization codes, keyed by a hash of the code.
type CodeStore interface {
	// PutCode stores a code's payload for ttl and remembers grantID and
	// binding for spentTTL, so that a replay can be traced to what the
	// first exchange issued. binding is an opaque, non-empty value that
	// whoever redeems the code must present (the client, redirect URI and
	// PKCE challenge it was issued for).
	PutCode(ctx context.Context, codeHash, grantID, binding string, data []byte, ttl, spentTTL time.Duration) error
	// TakeCode consumes a code atomically, and only for the binding it was
	// stored with. The first call with that binding returns the payload;
	// later ones return (nil, grantID, nil) — a replay. A call with
	// another binding returns ErrCodeMismatch and consumes nothing, so a
	// stolen code cannot be spent, nor its grant revoked, without what
	// binds it. An unknown code returns ErrNotFound.
	TakeCode(ctx context.Context, codeHash, binding string) (data []byte, replayedGrant string, err error)
	// IssueCode is PutCode, Touch of the session the code was issued for,
	// and DeleteFlow of the flow it ends (flowID may be ""), in one round
	// trip. err says whether the code was stored; the touch and a failed
	// flow deletion are bookkeeping, reported in bookkeeping and never
	// undoing the code. The deletion is also the claim of the flow: when
	// flowID names a flow that no longer exists (another request ended it
	// first, or it expired), the code is removed again and err is
	// ErrFlowEnded, so one authorization request yields one code however
	// many requests race to finish it. The zero Activity touches nothing
	// (a session the caller found touched recently enough for the code's
	// client).
	IssueCode(ctx context.Context, c Code, a Activity, flowID string) (bookkeeping, err error)
}

// Code is an authorization code to store (see PutCode).
type Code struct {
	Hash, GrantID, Binding string
	Data                   []byte
	TTL, SpentTTL          time.Duration
}

// StepUp is what ElevateAndIssue writes.
type StepUp struct {
	// The Elevate: the session of Subject, the key digest the browser
	// presented and the one it gets, the verification, the session's TTL.
	SessionID, Subject     string
	OldKeyHash, NewKeyHash string
	V                      authn.Verification
	TTL                    time.Duration
	// Refund is the attempt given back (Refund) because it succeeded.
	Refund []Budget
	// Code, when set, is issued for ClientID at At, ending FlowID ("" for
	// none), as IssueCode issues it, Grants given the session's new TTL as
	// Activity.Grants are.
	Code     *Code
	ClientID string
	At       time.Time
	Grants   []string
	FlowID   string
}

// StepUpDone is what ElevateAndIssue did.
type StepUpDone struct {
	Elevated, FlowEnded bool
	Bookkeeping         error
}

// Activity is a Touch of a session (see Touch).
type Activity struct {
	SessionID, Subject, ClientID string
	At                           time.Time
	TTL                          time.Duration
	// Grants are ids of the session's grants whose life follows the
	// session's (online ones, without offline_access): each that exists
	// and is online is given the session's new TTL in the same round
	// trip, so that it never outlives its session (issue 18). An offline
	// grant listed is left alone.
	Grants []string
}

// GrantStore keeps token families and revoked access-token ids.
//
// A grant derives from a browser (or API) session and belongs to a
// subject. Ending the session (DeleteSession, EndSession) or the
// subject's grants (EndUserGrants) ends it; a grant that was being
// stored meanwhile is ended too, never left behind.
type GrantStore interface {
	// PutGrant stores g until g.ExpiresAt and indexes it under its
	// session and its subject, replacing a grant stored under the same id
	// (its refresh hash, payload, flags and expiry; see Grant.Inc for the
	// incarnation, which PutGrant sets in g). With a SessionID, that
	// session must exist, be g.Subject's and not be ending; otherwise
	// nothing is stored and ErrGrantEnded is returned (a code whose
	// session ended before its exchange). An id that DeleteGrant ended
	// cannot be stored again, nor one whose authorization g.Auth was
	// ended (EndAuthorization): ErrGrantEnded, so a deletion racing a
	// PutGrant always wins.
	PutGrant(ctx context.Context, g *Grant) error
	// GetGrant returns a grant as stored, live or not (see LiveGrant);
	// its ExpiresAt is when the store will drop it, to the millisecond
	// (an online grant's moves with its session: Activity.Grants).
	GetGrant(ctx context.Context, id string) (*Grant, error)
	// LiveGrant is GetGrant for a use of the grant's refresh token: it
	// also checks that the subject's grants were not ended (EndUserGrants)
	// since the grant was stored and, for an online grant, that its
	// session still exists and is not ending. ErrGrantEnded when it has
	// ended; ErrNotFound when there is no such grant.
	LiveGrant(ctx context.Context, id string) (*Grant, error)
	// AccessTokenLive reports, in one round trip, whether an access token
	// may be honoured: its id jti is not revoked and, unless grantID is
	// "" (a client's own token), its grant exists, is subject's, is still
	// the incarnation inc the token was issued from ("" for tokens and
	// grants without one) and was not ended by EndUserGrants since it was
	// stored.
	AccessTokenLive(ctx context.Context, grantID, inc, subject, jti string) (bool, error)
	// RotateRefresh replaces the grant's refresh hash oldHash by newHash
	// atomically. If oldHash is not current, the grant is deleted (reuse
	// detection revokes the whole family) and Reused is returned.
	RotateRefresh(ctx context.Context, id, oldHash, newHash string) (RotateResult, error)
	// DeleteGrant deletes a grant for good: its id can never be stored
	// again (see PutGrant).
	DeleteGrant(ctx context.Context, id string) error
	// EndAuthorization deletes a grant (if it exists) and ends one
	// authorization of it: a PutGrant with that Auth is refused from then
	// on, a later authorization may store the id again (as a new
	// incarnation). auth "" deletes the grant and ends nothing.
	EndAuthorization(ctx context.Context, id, auth string) error
	// EndUserGrants ends every grant of subject, offline ones included,
	// and any being stored concurrently: none of them is live afterwards
	// (LiveGrant, AccessTokenLive), even one an index missed. Grants
	// stored after it returns are not affected, also under an id that
	// was ended (a later authorization in the same session). Sessions are
	// left alone.
	EndUserGrants(ctx context.Context, subject string) error
	// RevokeToken marks an access-token id revoked until ttl passes.
	RevokeToken(ctx context.Context, jti string, ttl time.Duration) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// SecretStore shares secrets (signing key, cookie keys) between instances.
type SecretStore interface {
	// InitSecret stores value under name unless a value exists (SET NX) and
	// returns the value in effect, so every instance uses the same one.
	InitSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	// SwapSecret replaces the value of name with value if it still is
	// old, and reports whether it did (the signing key set's rotation:
	// two rotations at once cannot lose a key).
	SwapSecret(ctx context.Context, name string, old, value []byte) (bool, error)
}

// ErrCIBAPending is returned by StartCIBA when the client already has a
// pending backchannel request for the user.
var ErrCIBAPending = errors.New("a backchannel authentication request is already pending")

// CIBA request states (CIBAStore).
const (
	CIBAPending  = "pending"
	CIBAApproved = "approved"
	CIBADenied   = "denied"
	CIBAUsed     = "used"
)

// CIBARequest is a pending OpenID CIBA authentication request as stored:
// what the store compares is in fields of its own, the rest is an opaque
// payload of the protocol layer.
type CIBARequest struct {
	ID       string
	ClientID string
	Subject  string
	// AuthReqHash and LinkHash are the digests of the auth_req_id given to
	// the client and of the approval link sent to the user.
	AuthReqHash, LinkHash string
	Data                  []byte
	// Expires is when the request stops being approvable; the record is
	// kept Keep longer, so a late poll learns expired_token rather than
	// invalid_grant.
	Expires time.Time
	// Life is Expires minus now by the caller's clock: the marker's TTL.
	Life     time.Duration
	Keep     time.Duration
	Interval time.Duration
}

// CIBAPoll is the answer of PollCIBA.
type CIBAPoll struct {
	// State is CIBAPending, CIBAApproved (Result holds the approval, and
	// the request is now CIBAUsed), CIBADenied, CIBAUsed, or "expired".
	State string
	// SlowDown: the client polled before its interval had passed; the
	// interval has grown and is Interval now.
	SlowDown bool
	Interval time.Duration
	Result   []byte
}

// CIBAOpened is the answer of OpenCIBA.
type CIBAOpened struct {
	Flow, State, ClientID, Subject string
	Data                           []byte
}

// CIBAStore keeps backchannel authentication requests (OpenID CIBA). All
// of a request's state lives under one hash tag, so each step is one
// atomic script.
type CIBAStore interface {
	// StartCIBA stores r unless its client has a pending request for its
	// subject (ErrCIBAPending).
	StartCIBA(ctx context.Context, r CIBARequest) error
	// PollCIBA is one token request of clientID with the auth_req_id of
	// digest authReqHash: ErrNotFound for an unknown request or one of
	// another client. An approved request is given out exactly once.
	PollCIBA(ctx context.Context, id, authReqHash, clientID string, now time.Time) (CIBAPoll, error)
	// OpenCIBA binds the approval of request id to flowID, the first time
	// its link (digest linkHash) is opened (flowID "" binds nothing: a
	// look), and returns the flow it is
	// bound to ("" when it ended unopened), the request's state (or
	// "expired"), client, subject and payload. ErrNotFound for an unknown
	// request or link.
	OpenCIBA(ctx context.Context, id, linkHash, flowID string, now time.Time) (CIBAOpened, error)
	// DecideCIBA approves (result is the approval) or denies the pending
	// request id from its bound flow; ErrFlowEnded when it is no longer
	// pending or not bound to flowID.
	DecideCIBA(ctx context.Context, id, flowID string, approved bool, result []byte, now time.Time) error
	// CIBAData returns the payload of request id.
	CIBAData(ctx context.Context, id string) ([]byte, error)
}

// BudgetKind names what an abuse budget counts against.
type BudgetKind string

// The budgets of PRODUCT.md §3 "Lockout".
const (
	// BudgetUser is the one per-user budget shared by every factor,
	// password included. Its ID is the subject (or, for a username that
	// does not exist, a digest of it, so unknown users lock out alike).
	BudgetUser BudgetKind = "user"
	// BudgetIP is the per-client-IP throttle beside it.
	BudgetIP BudgetKind = "ip"
	// BudgetSendUser, BudgetSendTo and BudgetSendIP count the one-time
	// codes sent (SMS, email) per user, per destination (a digest of the
	// phone number or address) and per client IP, against SMS pumping.
	// They count sends, not failures, in a window of their own.
	BudgetSendUser BudgetKind = "send_user"
	BudgetSendTo   BudgetKind = "send_to"
	BudgetSendIP   BudgetKind = "send_ip"
	// BudgetCIBAClient and BudgetCIBAUser count backchannel
	// authentication requests per client and per user.
	BudgetCIBAClient BudgetKind = "ciba_client"
	BudgetCIBAUser   BudgetKind = "ciba_user"
)

// Budget identifies one abuse budget and its limit.
type Budget struct {
	Kind BudgetKind
	ID   string
	// Max is the number of failures the window allows.
	Max int64
}

// LimitStore keeps abuse budgets: attempts counted in a window shared by
// every instance.
type LimitStore interface {
	// Reserve counts one attempt against each budget before it is checked
	// and returns the counts in their windows, this attempt included, in
	// the order given. Counting first means concurrent attempts can never
	// check more secrets than a budget allows. A window starts with its
	// first attempt; the attempt that reaches a budget's Max starts it
	// again, so a lockout lasts a whole window from the failure that
	// caused it.
	Reserve(ctx context.Context, window time.Duration, bs ...Budget) ([]int64, error)
	// Refund takes back an attempt that succeeded, so only failures use
	// the budgets. A window that has ended is left alone.
	Refund(ctx context.Context, bs ...Budget) error
	// ReserveTOTP is Reserve for a TOTP code the caller has verified
	// (step ≥ 0, its time step) or found wrong (step < 0), which must
	// take effect only through the count: subject's own budget (one of
	// bs, required) is counted and, in the same atomic operation, when
	// its count is within its Max, the step is claimed as UseTOTPStep
	// does (kept for stepTTL) and, if it was unused, that budget's
	// attempt is given back (claimed true). The other budgets are counted
	// as Reserve counts them and left to the caller to give back.
	ReserveTOTP(ctx context.Context, window time.Duration, bs []Budget, subject string, step int64, stepTTL time.Duration) (counts []int64, claimed bool, err error)
}

// StepUpGrant records that a user proved a factor for one action, for
// the step-up grants API (PropelAuth's model): a client later asks
// whether the grant holds for that user and action.
type StepUpGrant struct {
	Subject  string
	Action   string
	ClientID string // the client that created it; only it may use it
	// OneTime grants are deleted by the first successful use.
	OneTime   bool
	ExpiresAt time.Time
	// Factor is what the grant rests on ("totp", "recovery", "password"),
	// so that whoever checks it can tell a grant from a password re-entry
	// from one from an authenticator app.
	Factor string
}

// StepUpGrantStore keeps step-up grants, keyed by a hash of the grant.
type StepUpGrantStore interface {
	// PutStepUpGrant stores g until g.ExpiresAt.
	PutStepUpGrant(ctx context.Context, hash string, g *StepUpGrant) error
	// UseStepUpGrant reports whether the grant exists for exactly this
	// subject, action and client and has not expired at now, deleting a
	// one-time grant in the same atomic step (of concurrent uses, exactly
	// one succeeds). A grant that does not match is left untouched.
	// It also returns the factor the grant rests on.
	UseStepUpGrant(ctx context.Context, hash, subject, action, clientID string, now time.Time) (factor string, ok bool, err error)
}

// AdminStore holds the operator's levers on sessions and accounts.
type AdminStore interface {
	// ReplaceVerifications sets the verifications of a session of sub to
	// exactly vs, atomically, keeping its TTL (ErrNotFound when there is
	// no such session). Used to drop an elevation.
	ReplaceVerifications(ctx context.Context, id, sub string, vs []authn.Verification) error
	// LockAccount locks an account until UnlockAccount: every Reserve of
	// its user budget then answers over the limit, so every attempt to
	// prove a factor is refused (ErrNotFound without an account).
	LockAccount(ctx context.Context, subject string) error
	// UnlockAccount lifts a lock and resets the user's failure budget.
	UnlockAccount(ctx context.Context, subject string) error
}

// Store is everything stepup keeps. session/redisstore implements it.
type Store interface {
	SessionStore
	LimitStore
	StepUpGrantStore
	AdminStore
	AccountStore
	PasswordStore
	PhoneStore
	RecoveryStore
	OTPStore
	PasskeyStore
	FlowStore
	CodeStore
	GrantStore
	SecretStore
	CIBAStore
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
