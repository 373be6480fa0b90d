package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
)

// An API authentication session is a stepup session of its own (a
// record the hosted pages never see, listed and revoked by the admin API
// like any other) plus this handle, which the caller holds: who may
// drive it, and the end user's address it is bound to. Only factors
// verified through the handle are in that session; a user's token that
// starts one brings none of the verifications of the session it came
// from. The handle lives apiSessionLifetime and ends with the code it
// issues.
type apiSession struct {
	SessionID string `json:"sid"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	// UserToken: started with the user's own token (a native app), not
	// by a backend's client_credentials token.
	UserToken bool      `json:"user_token,omitempty"`
	BoundIP   string    `json:"bound_ip,omitempty"`
	Start     time.Time `json:"start"`
}

// apiSessionLifetime is how long a caller has to verify factors and
// complete.
const apiSessionLifetime = 15 * time.Minute

// pkceChallenge is a base64url SHA-256 digest (RFC 7636 §4.2).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// handlePrefix keeps the handles apart from authorization flows in the
// flow store.
const handlePrefix = "api-authn:"

type startRequest struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
	// BindIP binds the session to the end user's address: later calls
	// about another address are refused (403 ip_mismatch).
	BindIP bool `json:"bind_ip"`
}

type sessionState struct {
	ID        string   `json:"id"`
	UserID    string   `json:"user_id"`
	ACR       string   `json:"acr"`
	AMR       []string `json:"amr"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	Levels    []string `json:"levels"`
	Factors   []string `json:"factors"`
	IPBound   bool     `json:"ip_bound"`
	ExpiresAt int64    `json:"expires_at"`
}

// startSession is POST /api/v1/authn/sessions. A backend (scope
// stepup:authn) names the user; a native app's own access token starts a
// session for its user. Either way the session is new and empty: a
// bearer token that leaked (every resource server of its client sees it)
// must not borrow what the user proves in their browser, before or after.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request) {
	c, ok := h.authenticate(w, r, ScopeAuthn, true)
	if !ok {
		return
	}
	var req startRequest
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	ip, ok := h.endUserIP(r, c)
	if !ok {
		fail(w, http.StatusBadRequest, errInvalidRequest, EndUserIPHeader+" is not an IP address")
		return
	}
	if req.BindIP && !ip.IsValid() {
		fail(w, http.StatusBadRequest, errInvalidRequest, "bind_ip needs the end user's address in "+EndUserIPHeader)
		return
	}
	now := h.p.Now()
	var acct *session.Account
	var err error
	if c.tok.ClientCredentials() {
		switch {
		case req.UserID != "" && req.Username == "":
			acct, err = h.p.Store().GetAccount(ctx, req.UserID)
		case req.Username != "" && req.UserID == "":
			acct, err = h.p.Store().AccountByUsername(ctx, req.Username)
		default:
			fail(w, http.StatusBadRequest, errInvalidRequest, "give exactly one of user_id and username")
			return
		}
		if err != nil {
			h.storeFailure(w, r, err, errUserNotFound)
			return
		}
	} else {
		if (req.UserID != "" && req.UserID != c.tok.Subject) || req.Username != "" {
			fail(w, http.StatusForbidden, errScope, "a user's token starts sessions for that user only")
			return
		}
		if acct, err = h.p.Store().GetAccount(ctx, c.tok.Subject); err != nil {
			h.storeFailure(w, r, err, errUserNotFound)
			return
		}
	}
	if acct.Locked || acct.Disabled {
		fail(w, http.StatusForbidden, errLocked, "the account is locked or disabled")
		return
	}
	sess := &session.Session{ID: session.NewID(), Subject: acct.Subject, CreatedAt: now, LastSeenAt: now}
	if err := h.p.Store().CreateSession(ctx, sess, h.p.SessionTTL(now)); err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	as := &apiSession{SessionID: sess.ID, Subject: acct.Subject, ClientID: c.client.GetID(), UserToken: !c.tok.ClientCredentials(), Start: now}
	if req.BindIP {
		as.BoundIP = ip.String()
	}
	handle := randomToken()
	if err := h.saveHandle(ctx, handle, as); err != nil {
		h.storeFailure(w, r, err, "")
		return
	}
	h.p.Audit(ctx, obs.EventAPISessionStarted, "sub", acct.Subject, "client_id", c.client.GetID(), "ip_bound", req.BindIP)
	h.writeState(w, http.StatusCreated, handle, as, sess, acct, c.client)
}

func (h *Handler) saveHandle(ctx context.Context, handle string, as *apiSession) error {
	b, err := json.Marshal(as)
	if err != nil {
		return err
	}
	ttl := apiSessionLifetime - h.p.Now().Sub(as.Start)
	if ttl <= 0 {
		return session.ErrNotFound
	}
	return h.p.Store().PutFlow(ctx, handlePrefix+handle, b, ttl)
}

// load authenticates the caller and loads the API session of the path's
// id with its stepup session and account: only the client that started
// it may drive it (a native app only with a token of the same user), and
// a bound session only about the same end-user address.
func (h *Handler) load(w http.ResponseWriter, r *http.Request) (*caller, string, *apiSession, *session.Session, *session.Account, bool) {
	c, ok := h.authenticate(w, r, ScopeAuthn, true)
	if !ok {
		return nil, "", nil, nil, nil, false
	}
	ctx := r.Context()
	handle := r.PathValue("id")
	b, err := h.p.Store().GetFlow(ctx, handlePrefix+handle)
	if err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return nil, "", nil, nil, nil, false
	}
	var as apiSession
	if err := json.Unmarshal(b, &as); err != nil || as.ClientID != c.client.GetID() ||
		as.UserToken == c.tok.ClientCredentials() || (as.UserToken && as.Subject != c.tok.Subject) {
		// Another caller's session is as good as unknown to this one.
		fail(w, http.StatusNotFound, errSessionGone, "no such authentication session")
		return nil, "", nil, nil, nil, false
	}
	if as.BoundIP != "" {
		ip, ok := h.endUserIP(r, c)
		bound, _ := netip.ParseAddr(as.BoundIP)
		if !ok || ip != bound {
			h.p.Audit(ctx, obs.EventAPIAuthFailed, "path", r.Pattern, "reason", errIPMismatch, "sub", as.Subject, "client_id", c.client.GetID())
			fail(w, http.StatusForbidden, errIPMismatch, "this authentication session is bound to another address")
			return nil, "", nil, nil, nil, false
		}
	}
	sess, err := h.p.Store().GetSession(ctx, as.SessionID)
	if err == nil && (h.p.Live(sess) == nil || sess.Subject != as.Subject) {
		err = session.ErrNotFound
	}
	if err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return nil, "", nil, nil, nil, false
	}
	acct, err := h.p.Store().GetAccount(ctx, as.Subject)
	if err != nil {
		h.storeFailure(w, r, err, errUserNotFound)
		return nil, "", nil, nil, nil, false
	}
	return c, handle, &as, sess, acct, true
}

// getSession is GET /api/v1/authn/sessions/{id}: what the session has
// reached now.
func (h *Handler) getSession(w http.ResponseWriter, r *http.Request) {
	c, handle, as, sess, acct, ok := h.load(w, r)
	if !ok {
		return
	}
	h.writeState(w, http.StatusOK, handle, as, sess, acct, c.client)
}

type verifyRequest struct {
	Factor   string `json:"factor"`
	Password string `json:"password"`
	Code     string `json:"code"`
}

// verifyFactor is POST /api/v1/authn/sessions/{id}/verify: stepup checks
// the proof (the caller never asserts a factor) under the same abuse
// budgets as the hosted pages, and adds the verification to the session.
func (h *Handler) verifyFactor(w http.ResponseWriter, r *http.Request) {
	c, handle, as, sess, acct, ok := h.load(w, r)
	if !ok {
		return
	}
	var req verifyRequest
	if !decode(w, r, &req) {
		return
	}
	f, known := h.factors[req.Factor]
	if !known {
		fail(w, http.StatusBadRequest, errInvalidRequest, "factor must be one of "+strings.Join(h.factorNames(), ", "))
		return
	}
	if !f.enrolled(h.p, acct) {
		fail(w, http.StatusBadRequest, errNotEnrolled, "the user has no "+req.Factor+" factor")
		return
	}
	ip, _ := h.endUserIP(r, c)
	if !h.verify(w, r, c, f, acct, ip, proof{Password: req.Password, Code: req.Code, Session: sess.ID}) {
		return
	}
	ctx := r.Context()
	v := authn.Verification{Factor: f.kind, At: h.p.Now()}
	if err := h.p.Store().AddVerification(ctx, sess.ID, sess.Subject, v, h.p.SessionTTL(sess.CreatedAt)); err != nil {
		h.storeFailure(w, r, err, errSessionGone)
		return
	}
	sess.Verifications = append(slices.DeleteFunc(sess.Verifications, func(x authn.Verification) bool { return x.Factor == v.Factor }), v)
	if f.kind != authn.Password && acct.LastFactor != f.kind {
		if err := h.p.Store().SetLastFactor(ctx, acct.Subject, f.kind); err != nil {
			h.p.Log().WarnContext(ctx, "recording the last factor failed", "err", err)
		}
	}
	h.writeState(w, http.StatusOK, handle, as, sess, acct, c.client)
}

func (h *Handler) factorNames() []string {
	var names []string
	for n := range h.factors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

type completeRequest struct {
	CodeChallenge       string `json:"code_challenge"`
	CodeChallengeMethod string `json:"code_challenge_method"`
	RedirectURI         string `json:"redirect_uri"`
	Scope               string `json:"scope"`
	ACRValues           string `json:"acr_values"`
	MaxAge              *int64 `json:"max_age"`
	Nonce               string `json:"nonce"`
}

type completeResponse struct {
	Code      string   `json:"code"`
	ACR       string   `json:"acr"`
	AMR       []string `json:"amr"`
	AuthTime  int64    `json:"auth_time"`
	ExpiresIn int      `json:"expires_in"`
}

// complete is POST /api/v1/authn/sessions/{id}/complete: an
// authorization code for the caller's client, bound to the PKCE
// challenge, for exactly what the session has reached (acr_values, when
// given, must be met: the first one met is issued). The handle ends
// here: one session, one code.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request) {
	c, handle, as, sess, acct, ok := h.load(w, r)
	if !ok {
		return
	}
	var req completeRequest
	if !decode(w, r, &req) {
		return
	}
	if req.CodeChallengeMethod != "S256" || !pkceChallenge.MatchString(req.CodeChallenge) {
		fail(w, http.StatusBadRequest, errInvalidRequest, "code_challenge (a base64url SHA-256 digest) with code_challenge_method S256 is required")
		return
	}
	// The token endpoint compares redirect_uri as for any code (RFC 6749
	// §4.1.3), so the code names one of the client's.
	if !c.client.RedirectURIAllowed(req.RedirectURI) {
		fail(w, http.StatusBadRequest, errInvalidRequest, "redirect_uri must be one registered for this client")
		return
	}
	// The nonce is kept in the code until the ID token; the acr values
	// are compared with the ladder: the caps of /authorize.
	if len(req.Nonce) > op.MaxNonceBytes {
		fail(w, http.StatusBadRequest, errInvalidRequest, "nonce is longer than "+strconv.Itoa(op.MaxNonceBytes)+" bytes")
		return
	}
	acrValues := strings.Fields(req.ACRValues)
	if err := op.CheckACRValues(acrValues); err != nil {
		fail(w, http.StatusBadRequest, errInvalidRequest, err.Error())
		return
	}
	var maxAge *time.Duration
	if req.MaxAge != nil {
		d, ok := op.MaxAge(*req.MaxAge)
		if !ok {
			fail(w, http.StatusBadRequest, errInvalidRequest, "max_age must not be negative")
			return
		}
		maxAge = &d
	}
	scope := req.Scope
	if scope == "" {
		scope = "openid"
	}
	scopes := c.client.AllowedScopes(strings.Fields(scope))
	if !c.tok.ClientCredentials() {
		// A user's token continues its session, not its grant's reach: the
		// code gets no scope the token lacks (an access token that a
		// resource server saw must not become offline_access or wider
		// claims without the user).
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return !slices.Contains(c.tok.Scopes, s) })
	}
	if acct.Locked || acct.Disabled {
		fail(w, http.StatusForbidden, errLocked, "the account is locked or disabled")
		return
	}
	if as.UserToken && !slices.ContainsFunc(sess.Verifications, func(v authn.Verification) bool { return !v.At.Before(as.Start) }) {
		// A user's access token is seen by every resource server of its
		// client: on its own it must not mint new tokens. The user proves
		// a factor in this session first.
		fail(w, http.StatusBadRequest, authn.ErrUnmetRequirements, "a session started with a user's token needs a factor verified in it before it completes")
		return
	}
	d := h.p.NativeDecision(c.client, acrValues, maxAge, sess.Verifications, acct, as.Start)
	if d.Outcome != authn.OK {
		desc := d.Description
		if len(sess.Verifications) == 0 {
			desc = "no factor has been verified in this session"
		}
		fail(w, http.StatusBadRequest, authn.ErrUnmetRequirements, desc)
		return
	}
	ctx := r.Context()
	// Storing the code ends the handle (IssueCode's claim of the flow), so
	// of completions racing on one handle exactly one gets a code; the
	// code itself is single use at the token endpoint.
	code, err := h.p.IssueNativeCode(ctx, op.NativeCode{
		Client: c.client, Session: sess, Decision: d, CodeChallenge: req.CodeChallenge,
		RedirectURI: req.RedirectURI, Scopes: scopes, Nonce: req.Nonce, FlowID: handlePrefix + handle,
	})
	if errors.Is(err, session.ErrFlowEnded) {
		fail(w, http.StatusNotFound, errSessionGone, "no such authentication session")
		return
	}
	if err != nil {
		// The handle is put back, so the caller can complete once the
		// store answers again.
		if serr := h.saveHandle(context.WithoutCancel(ctx), handle, as); serr != nil {
			h.p.Log().WarnContext(ctx, "restoring an API session handle failed", "err", serr)
		}
		if errors.Is(err, session.ErrUnavailable) {
			h.storeFailure(w, r, err, "")
			return
		}
		h.p.Log().ErrorContext(ctx, "issuing an API code failed", "err", err)
		fail(w, http.StatusInternalServerError, "server_error", "the code could not be issued")
		return
	}
	writeJSON(w, http.StatusOK, completeResponse{Code: code, ACR: d.ACR, AMR: d.AMR, AuthTime: d.AuthTime.Unix(), ExpiresIn: 60})
}

// writeState answers the session's state: the acr and amr a completion
// would carry now, and every level it satisfies.
func (h *Handler) writeState(w http.ResponseWriter, status int, handle string, as *apiSession, sess *session.Session, acct *session.Account, c *op.Client) {
	st := sessionState{ID: handle, UserID: as.Subject, AMR: []string{}, Levels: []string{}, Factors: []string{},
		IPBound: as.BoundIP != "", ExpiresAt: as.Start.Add(apiSessionLifetime).Unix()}
	if d := h.p.NativeDecision(c, nil, nil, sess.Verifications, acct, as.Start); d.Outcome == authn.OK {
		st.ACR, st.AMR, st.AuthTime = d.ACR, d.AMR, d.AuthTime.Unix()
	}
	if lv := h.p.SatisfiedLevels(sess.Verifications, c, acct); lv != nil {
		st.Levels = lv
	}
	for _, n := range h.factorNames() {
		if h.factors[n].enrolled(h.p, acct) {
			st.Factors = append(st.Factors, n)
		}
	}
	writeJSON(w, status, st)
}
