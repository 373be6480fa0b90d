// Package op is stepup's OpenID Connect protocol layer: /authorize with the
// acr / max_age / prompt semantics of PRODUCT.md §3 (decided by
// authn.Ladder.Evaluate), discovery, JWKS, end-session, and an op.Server
// for zitadel/oidc's token, introspection, userinfo and revocation
// endpoints — whose request parsing and client authentication plumbing we
// reuse while minting RFC 9068 access tokens ourselves.
package op

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/authn/otpcode"
	"github.com/stepup-dev/stepup/authn/passkey"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/authn/recovery"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// Pages renders the few HTML pages the protocol layer needs; the hosted
// login package implements it.
type Pages interface {
	// Error shows an error page that never redirects.
	Error(w http.ResponseWriter, r *http.Request, status int, msg string)
	// ConfirmLogout asks the user to confirm an RP-initiated logout that
	// did not prove who asked for it.
	ConfirmLogout(w http.ResponseWriter, r *http.Request, clientID, clientName, postLogoutURI, state string)
	// LoggedOut tells the user they are signed out.
	LoggedOut(w http.ResponseWriter, r *http.Request)
	// CIBAApproval asks the user, authenticated for flow f, to approve or
	// deny its backchannel request: the client's name, the binding
	// message and the level reached.
	CIBAApproval(w http.ResponseWriter, r *http.Request, f *Flow, clientName, level string)
	// CIBAOpen is the page of an approval link nobody opened yet: one
	// button that POSTs to action. It shows nothing of the request.
	CIBAOpen(w http.ResponseWriter, r *http.Request, action string)
	// CIBADone tells the user their decision was recorded.
	CIBADone(w http.ResponseWriter, r *http.Request, approved bool)
}

// Options are the dependencies of a Provider.
type Options struct {
	Config   *config.Config
	Store    session.Store
	Keys     *Keys
	Sessions *session.Manager
	Hashes   *password.Limiter
	Log      *slog.Logger
	// Audit records security events; nil logs them to Log and counts them
	// in metrics nobody serves.
	Audit *obs.Auditor
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OTPKey keys the hashes of SMS and email codes; every instance must
	// use the same one (at least 32 bytes).
	OTPKey []byte
	// SIDKey keys the sid published for a session (PublicSID); every
	// instance must use the same one (at least 32 bytes).
	SIDKey []byte
	// SMS and Email deliver one-time codes.
	SMS, Email notify.Sender
}

// Provider is the OpenID provider.
type Provider struct {
	issuer     string
	ladder     authn.Ladder
	mfaAlways  bool
	factors    []string
	enrollable []authn.Factor
	idle       time.Duration
	absolute   time.Duration
	clients    map[string]*Client
	store      session.Store
	keys       *Keys
	sessions   *session.Manager
	hashes     *password.Limiter
	hashParams password.Params
	log        *slog.Logger
	audit      *obs.Auditor
	lockout    config.Lockout
	proxies    []netip.Prefix
	blockedIPs blocked
	now        func() time.Time
	pages      Pages
	discovery  []byte
	recovery   *recovery.Codes
	// passkeys is the WebAuthn relying party; nil when webauthn is not in
	// mfa.factors or the issuer's host cannot be an RP ID.
	passkeys *passkey.RP
	// account is the built-in client of stepup's own pages (/account);
	// accountEnroll is the same forcing enrollment (Flow.ForceEnroll).
	account, accountEnroll *Client
	// mfaFloor: some client's min_acr is multi-factor.
	mfaFloor   bool
	codes      *otpcode.Codes
	codePolicy config.Codes
	sms, email notify.Sender
	// emailRequired: the users (lower-cased usernames) whose config says
	// email_mfa: true, which every start turns on again.
	emailRequired map[string]bool
	sidKey        []byte
	// httpClient calls CIBA ping notification endpoints.
	httpClient   *http.Client
	pwPolicy     password.Policy
	registration bool
	// names are the usernames of the accounts this instance read lately
	// (view.go): the step-up page /authorize decides from a session's view
	// shows the name without reading the account.
	names nameCache
}

// New builds a Provider from a validated configuration.
func New(o Options) (*Provider, error) {
	cfg := o.Config
	p := &Provider{
		issuer:       strings.TrimRight(cfg.Issuer, "/"),
		ladder:       Ladder(cfg.Levels),
		mfaAlways:    cfg.MFA.Login == "always",
		factors:      cfg.MFA.Factors,
		idle:         cfg.Session.IdleTimeout.D(),
		absolute:     cfg.Session.AbsoluteTimeout.D(),
		clients:      map[string]*Client{},
		store:        o.Store,
		keys:         o.Keys,
		sessions:     o.Sessions,
		hashes:       o.Hashes,
		hashParams:   PasswordParams(cfg.Passwords.Argon2id),
		log:          o.Log,
		audit:        o.Audit,
		lockout:      cfg.MFA.Lockout,
		now:          o.Now,
		recovery:     recovery.New(o.Store),
		codePolicy:   cfg.MFA.Codes,
		sms:          o.SMS,
		email:        o.Email,
		sidKey:       o.SIDKey,
		pwPolicy:     password.Policy{MinLength: cfg.Passwords.MinLength},
		registration: cfg.Registration == "open",
	}
	if len(p.sidKey) < 32 {
		return nil, errors.New("op: SIDKey must be at least 32 bytes")
	}
	p.httpClient = &http.Client{
		Timeout: pingTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	for _, u := range cfg.Users {
		if u.EmailMFA {
			if p.emailRequired == nil {
				p.emailRequired = map[string]bool{}
			}
			p.emailRequired[strings.ToLower(u.Username)] = true
		}
	}
	var err error
	if p.codes, err = otpcode.New(o.Store, o.OTPKey, cfg.MFA.Codes.TTL.D(), cfg.MFA.Codes.ResendCooldown.D()); err != nil {
		return nil, err
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, s := range cfg.TrustedProxies {
		pfx, err := config.ParseNetwork(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		p.proxies = append(p.proxies, pfx)
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.audit == nil {
		p.audit = obs.NewAuditor(p.log, obs.NewMetrics())
	}
	// The factors the hosted flow can enroll, strongest first: TOTP, and
	// a phone verified by SMS.
	if slices.Contains(cfg.MFA.Factors, "totp") {
		p.enrollable = append(p.enrollable, authn.TOTP)
	}
	if slices.Contains(cfg.MFA.Factors, "sms") && p.sms != nil {
		p.enrollable = append(p.enrollable, authn.SMS)
	}
	for i, c := range cfg.Clients {
		// A keys.file without a key of the client's algorithm.
		if a := c.IDTokenSignedResponseAlg; a != "" && !p.keys.Has(a) {
			return nil, fmt.Errorf("clients[%d].id_token_signed_response_alg: %q: keys.file holds no %s key (add one, or leave the field out for keys.algorithm)", i, a, a)
		}
		p.clients[c.ID] = newClient(c, authn.Unenrolled(cfg.MFA.Unenrolled))
	}
	if err := p.setUpPasskeys(cfg); err != nil {
		return nil, err
	}
	p.setUpAccount(cfg)
	if p.discovery, err = p.discoveryDocument(); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return p, nil
}

// Ladder converts the configured levels.
func Ladder(levels []config.Level) authn.Ladder {
	l := make(authn.Ladder, 0, len(levels))
	for _, lv := range levels {
		l = append(l, authn.Level{
			ACR:               lv.ACR,
			Factors:           max(lv.Factors, 1),
			PhishingResistant: lv.PhishingResistant,
			Hardware:          lv.Hardware,
			MaxAge:            lv.MaxAge.D(),
		})
	}
	return l
}

// SetPages sets the page renderer (the login package, built after the
// Provider because it depends on it).
func (p *Provider) SetPages(pages Pages) { p.pages = pages }

// Issuer is the issuer identifier; every URL stepup emits starts with it.
func (p *Provider) Issuer() string { return p.issuer }

// Store is the store.
func (p *Provider) Store() session.Store { return p.store }

// Sessions is the cookie manager.
func (p *Provider) Sessions() *session.Manager { return p.sessions }

// HashPassword hashes a new password with the configured argon2id
// parameters, under the hashing limiter.
func (p *Provider) HashPassword(ctx context.Context, pw string) (string, error) {
	return p.hashes.Hash(ctx, p.hashParams, pw)
}

// Hashes bounds password hashing.
func (p *Provider) Hashes() *password.Limiter { return p.hashes }

// PasswordParams are the argon2id parameters of passwords.argon2id (a
// validated configuration), with DefaultParams' salt and key sizes.
func PasswordParams(a config.Argon2id) password.Params {
	p := password.DefaultParams
	if kib, ok := a.MemoryKiB(); ok {
		p.MemoryKiB = uint32(kib)
	}
	if a.Time > 0 {
		p.Time = uint32(a.Time)
	}
	if a.Threads > 0 {
		p.Threads = uint8(a.Threads)
	}
	return p
}

// RehashPassword replaces, after pw proved right, a hash in an imported
// format (bcrypt, PBKDF2, scrypt, argon2i) or with other argon2id
// parameters than the configured ones by an argon2id hash at those. It is best
// effort: the sign-in goes on whatever happens, and a hash that changed
// meanwhile (a new password) is left alone.
func (p *Provider) RehashPassword(ctx context.Context, acct *session.Account, pw string) {
	if !password.NeedsRehash(acct.PasswordHash, p.hashParams) {
		return
	}
	fresh, err := p.hashes.Hash(ctx, p.hashParams, pw)
	if err == nil {
		_, err = p.store.ReplacePasswordHash(ctx, acct.Subject, acct.PasswordHash, fresh)
	}
	if err != nil {
		p.log.Warn("password verified but not rehashed; the next sign-in tries again", "sub", acct.Subject, "err", err)
		return
	}
	acct.PasswordHash = fresh
}

// Ladder is the acr ladder.
func (p *Provider) Ladder() authn.Ladder { return p.ladder }

// Log is the logger.
func (p *Provider) Log() *slog.Logger { return p.log }

// Audit records a security event (see obs.Auditor.Event).
func (p *Provider) Audit(ctx context.Context, event string, attrs ...any) {
	p.audit.Event(ctx, event, attrs...)
}

// Now is the provider's clock.
func (p *Provider) Now() time.Time { return p.now() }

// Client returns a registered client.
func (p *Provider) Client(id string) (*Client, bool) {
	c, ok := p.clients[id]
	return c, ok
}

// Recovery makes and checks the users' recovery codes (shown once,
// stored hashed).
func (p *Provider) Recovery() *recovery.Codes { return p.recovery }

// Codes issues and verifies the one-time codes sent by SMS and email.
func (p *Provider) Codes() *otpcode.Codes { return p.codes }

// CodePolicy is mfa.codes: lifetimes and send caps.
func (p *Provider) CodePolicy() config.Codes { return p.codePolicy }

// Sender returns the sender of one-time codes for f (SMS or Email), nil
// for other factors.
func (p *Provider) Sender(f authn.Factor) notify.Sender {
	switch f {
	case authn.SMS:
		return p.sms
	case authn.Email:
		return p.email
	}
	return nil
}

// Enrollable lists the factors the hosted flow can enroll, in the order
// they are offered.
func (p *Provider) Enrollable() []authn.Factor { return p.enrollable }

// FactorEnabled reports whether mfa.factors enables f.
func (p *Provider) FactorEnabled(f authn.Factor) bool {
	name := string(f)
	return slices.Contains(p.factors, name)
}

// SessionTTL is the store TTL for a session: the idle timeout, cut at the
// absolute timeout.
func (p *Provider) SessionTTL(created time.Time) time.Duration {
	left := created.Add(p.absolute).Sub(p.now())
	return max(min(p.idle, left), time.Second)
}

// CurrentSession returns the live session the request's cookie holds (its
// id and current key), or nil. Store failures are returned (the caller
// answers 503).
func (p *Provider) CurrentSession(r *http.Request) (*session.Session, error) {
	id, key := p.sessions.Read(r)
	if id == "" || key == "" {
		return nil, nil
	}
	s, err := p.store.GetSession(r.Context(), id)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !s.HeldBy(key) {
		return nil, nil
	}
	return p.live(s), nil
}

// PublicSID is the sid of a session as everyone but its browser sees it:
// in ID tokens (and so in logout requests), in the admin API and in
// logs. It is an HMAC of the session's stable id, never the cookie's
// content, so it holds nothing and stays the same for the session's
// whole life, across every key renewal (OIDC Front- and Back-Channel
// Logout need it stable). "" for no session.
func (p *Provider) PublicSID(sessionID string) string {
	if sessionID == "" {
		return ""
	}
	mac := hmac.New(sha256.New, p.sidKey)
	mac.Write([]byte("sid\x00" + sessionID))
	return b64(mac.Sum(nil))
}

// StartSession stores s as a new session, with a fresh key, and gives the
// browser its cookie.
func (p *Provider) StartSession(ctx context.Context, w http.ResponseWriter, s *session.Session) error {
	key := session.NewID()
	s.KeyHash = session.KeyDigest(key)
	if err := p.store.CreateSession(ctx, s, p.SessionTTL(s.CreatedAt)); err != nil {
		return err
	}
	return p.sessions.Set(w, s.ID, key)
}

// Elevate records v in the browser's session sess and renews the key its
// cookie carries, in one atomic store step (issue 13 item 7): every
// verification on the hosted pages — a step-up, a re-authentication for
// prompt=login or max_age, an enrollment's confirming code — leaves the
// browser a new cookie, and the cookie it held before holds nothing. The
// session keeps its id, and with it its data and everything that refers
// to it (grants, one-time codes, the published sid). The store's errors
// are returned: ErrNotFound when the session is gone, ErrKeyChanged when
// another request renewed it first (then nothing was written and the
// browser's cookie is left as it is).
func (p *Provider) Elevate(ctx context.Context, w http.ResponseWriter, sess *session.Session, v authn.Verification) error {
	key := session.NewID()
	next := session.KeyDigest(key)
	if err := p.store.Elevate(ctx, sess.ID, sess.Subject, sess.KeyHash, next, v, p.SessionTTL(sess.CreatedAt)); err != nil {
		return err
	}
	sess.KeyHash = next
	return p.sessions.Set(w, sess.ID, key)
}

// ElevateAndFinish is Elevate of v in the browser's session sess (whose
// Verifications the caller has already given v) followed, when d is an
// OK decision that ends the flow with a code here (Finish; not an
// approval, a reset or /account), by the code, in one store round trip
// with the refund of refund's attempt (session.SessionStore's
// ElevateAndIssue; issue 18: a step-up's post writes once). The code is
// handed out only when the elevation was recorded: an acr/amr the
// session does not hold is never reported.
//
// err is the elevation's (as Elevate's: ErrNotFound, ErrKeyChanged, the
// store down), and nothing was answered; a flow the write ended is put
// back. Otherwise the browser has its new cookie, elevated has run, and
// finished says whether the response was written (the code, or the page
// of a code that could not be issued); if not, the caller goes on with d.
func (p *Provider) ElevateAndFinish(w http.ResponseWriter, r *http.Request, f *Flow, c *Client, sess *session.Session, v authn.Verification, d authn.Decision, refund []session.Budget, elevated func()) (finished bool, err error) {
	ctx := r.Context()
	key := session.NewID()
	u := session.StepUp{SessionID: sess.ID, Subject: sess.Subject, OldKeyHash: sess.KeyHash, NewKeyHash: session.KeyDigest(key),
		V: v, TTL: p.SessionTTL(sess.CreatedAt), Refund: refund}
	var code string
	if d.Outcome == authn.OK && f.Reset == nil && !f.Account && f.CIBA == nil && len(d.AMR) > 0 && d.ACR != "" {
		if cd, stored, a, err := p.newCode(f, c, sess, d); err == nil {
			code, u.Code, u.ClientID, u.At, u.Grants, u.FlowID = cd, &stored, a.ClientID, a.At, a.Grants, f.ID
		}
	}
	done, err := p.store.ElevateAndIssue(ctx, u)
	if done.Bookkeeping != nil {
		p.log.WarnContext(ctx, "refund, session touch or flow delete failed", "err", done.Bookkeeping)
	}
	// The code was not handed out unless answerCode below does: a flow
	// this write ended goes back (only then: another request's stays
	// ended).
	putBack := func() {
		if u.Code != nil && done.FlowEnded && f.ID != "" {
			_ = p.SaveFlow(context.WithoutCancel(ctx), f)
		}
	}
	if !done.Elevated {
		putBack()
		return false, err
	}
	sess.KeyHash = u.NewKeyHash
	if serr := p.sessions.Set(w, sess.ID, key); serr != nil {
		putBack()
		return false, serr
	}
	elevated()
	if u.Code == nil {
		return false, nil
	}
	p.answerCode(w, r, f, c, sess, d, code, nil, err, done.FlowEnded)
	return true, nil
}

// live returns s unless it has passed its idle or absolute timeout (nil
// stays nil).
func (p *Provider) live(s *session.Session) *session.Session {
	if s == nil {
		return nil
	}
	now := p.now()
	if now.Sub(s.CreatedAt) > p.absolute || now.Sub(s.LastSeenAt) > p.idle {
		return nil
	}
	return s
}

// PolicyAccount is what the policy needs to know about an account. Only
// factors whose verification stepup implements and the configuration
// enables are listed, so the flow never asks for one it cannot check.
func (p *Provider) PolicyAccount(a *session.Account) authn.Account {
	if a == nil {
		// Nobody is signed in yet: the first factor is the password form.
		return authn.Account{HasPassword: true, Enrollable: p.enrollable}
	}
	acct := authn.Account{
		HasPassword: a.PasswordHash != "",
		LastUsed:    a.LastFactor,
		Enrollable:  p.enrollable,
	}
	if a.TOTPSecret != "" && p.FactorEnabled(authn.TOTP) {
		acct.Enrolled = append(acct.Enrolled, authn.Enrollment{Factor: authn.TOTP})
	}
	// A stored phone is a verified one (session.PhoneStore).
	if a.Phone != "" && p.FactorEnabled(authn.SMS) && p.sms != nil {
		acct.Enrolled = append(acct.Enrolled, authn.Enrollment{Factor: authn.SMS})
	}
	// Email counts as a factor only when the user turned email codes on,
	// or under email_fallback (authn adds it then from HasEmail).
	if a.Email != "" && p.FactorEnabled(authn.Email) && p.email != nil {
		acct.HasEmail = true
		if a.EmailMFA {
			acct.Enrolled = append(acct.Enrolled, authn.Enrollment{Factor: authn.Email})
		}
	}
	if a.RecoveryCodes > 0 && p.FactorEnabled(authn.Recovery) {
		acct.Enrolled = append(acct.Enrolled, authn.Enrollment{Factor: authn.Recovery})
	}
	acct.Enrolled = append(acct.Enrolled, p.passkeyEnrollments(a)...)
	return acct
}

// Decide evaluates the flow against the browser session and the account.
func (p *Provider) Decide(f *Flow, c *Client, sess *session.Session, acct *session.Account) authn.Decision {
	if f.Reset != nil {
		return p.decideReset(f, acct)
	}
	hintOther := sess != nil && f.HintSubject != "" && f.HintSubject != sess.Subject
	var verifs []authn.Verification
	if sess != nil && !hintOther {
		verifs = sess.Verifications
	} else {
		acct = nil
	}
	d := p.ladder.Evaluate(f.policyRequest(c, p.mfaAlways, hintOther), p.countable(verifs, c, acct), p.PolicyAccount(acct), p.now())
	if f.CIBA != nil && d.Outcome == authn.Enroll {
		// An approval verifies the factors the user has; it enrolls none.
		return authn.Decision{Outcome: authn.Fail, Error: authn.ErrUnmetRequirements, Description: "the requested level needs a factor the user has not enrolled"}
	}
	return d
}

// LoadAccount returns the session's account (nil without a session).
func (p *Provider) LoadAccount(ctx context.Context, sess *session.Session) (*session.Account, error) {
	if sess == nil {
		return nil, nil
	}
	a, err := p.store.GetAccount(ctx, sess.Subject)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	if err == nil && a.Disabled {
		// Checked at every step, completion included: a flow begun before
		// the account was disabled cannot finish.
		return nil, ErrDisabled
	}
	if err == nil {
		// Read as active after sess was read: see Finish and
		// codeData.Checked.
		sess.AccountChecked = true
		p.names.put(a.Subject, a.Username)
	}
	return a, err
}

// ErrDisabled is LoadAccount's answer for a session whose account is
// disabled; Unavailable answers it with 403 "This account is disabled.".
var ErrDisabled = errors.New("account disabled")

// redirectTo builds the client redirect with params merged into its query.
func redirectTo(uri string, params url.Values) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// PasswordPolicy is the policy every password a user chooses must meet
// (passwords.min_length; NIST SP 800-63B).
func (p *Provider) PasswordPolicy() password.Policy { return p.pwPolicy }

// RegistrationOpen reports whether anyone may create an account on the
// hosted pages (registration: open).
func (p *Provider) RegistrationOpen() bool { return p.registration }
