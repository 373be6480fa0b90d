package op

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core
// 1.0), poll and ping modes. A client asks at PathBCAuthorize for a user
// to approve something (binding_message) at a level (acr_values); the
// user is sent a link to PathCIBALink, which opens a pending flow of the
// hosted pages bound to that browser. The flow is a step-up whose
// verifications are kept in the flow, never in a browser session: the
// approval neither uses nor changes any session of the user, and the
// tokens carry the acr, amr and auth_time of that approval only.

// Paths of CIBA.
const (
	PathBCAuthorize = "/oauth/bc-authorize"
	// PathCIBALink is the prefix of the approval links sent to users.
	PathCIBALink = "/ciba/"
)

// GrantTypeCIBA is the CIBA grant type at the token endpoint.
const GrantTypeCIBA = oidc.GrantType(config.GrantTypeCIBA)

// CIBA limits and timings.
const (
	// MaxBindingMessageChars bounds binding_message, in characters: it is
	// shown on a phone beside the approve button.
	MaxBindingMessageChars = 64
	// MaxScopeBytes bounds scope.
	MaxScopeBytes = 1024
	// MaxIDTokenHintBytes bounds id_token_hint (an ID token of ours is
	// about 1 KB).
	MaxIDTokenHintBytes = 8 << 10
	// MaxNotificationTokenBytes bounds client_notification_token (CIBA
	// Core §7.1 recommends at least 128 bits; 1024 bytes is plenty).
	MaxNotificationTokenBytes = 1024
	// cibaInterval is the minimum time between two polls (CIBA Core §7.3:
	// clients default to 5 s); each slow_down adds 5 s (§11).
	cibaInterval = 5 * time.Second
	// cibaKeep is how long an ended request is remembered after its
	// expiry, so that late polls learn expired_token.
	cibaKeep = 10 * time.Minute
	// cibaWindow, cibaPerClient and cibaPerUser are the request caps: in
	// any window, a client may start cibaPerClient requests, and all
	// clients together cibaPerUser for one user, so a user cannot be
	// flooded with approval messages.
	cibaWindow    = 10 * time.Minute
	cibaPerClient = 600
	cibaPerUser   = 10
	// pingTimeout bounds the call to a client's notification endpoint.
	pingTimeout = 5 * time.Second
)

// cibaRequest is the validated parameters of a backchannel authentication
// request (CIBA Core §7.1), before the user is resolved.
type cibaRequest struct {
	Scopes            []string
	LoginHint         string
	IDTokenHint       string
	BindingMessage    string
	ACRValues         []string
	RequestedExpiry   time.Duration // 0: none asked
	NotificationToken string
}

// cibaError is an error of the backchannel authentication endpoint (CIBA
// Core §13) with its HTTP status.
type cibaError struct {
	code, desc string
	status     int
}

func (e *cibaError) Error() string { return e.code + ": " + e.desc }

func cibaErr(status int, code, format string, a ...any) *cibaError {
	return &cibaError{code: code, desc: fmt.Sprintf(format, a...), status: status}
}

// parseCIBARequest validates the form of a backchannel authentication
// request (CIBA Core §7.1, §13) for a client in mode ping or poll: every
// value stored is within its cap, exactly one hint, openid in scope. It
// decides and does no I/O.
func parseCIBARequest(form url.Values, ping bool) (*cibaRequest, *cibaError) {
	bad := func(format string, a ...any) (*cibaRequest, *cibaError) {
		return nil, cibaErr(http.StatusBadRequest, "invalid_request", format, a...)
	}
	for k, vs := range form {
		if len(vs) > 1 {
			return bad("parameter %q is given more than once", k)
		}
	}
	if form.Has("request") {
		return bad("signed authentication requests are not supported")
	}
	scope := form.Get("scope")
	if len(scope) > MaxScopeBytes {
		return bad("scope is longer than %d bytes", MaxScopeBytes)
	}
	req := &cibaRequest{}
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(req.Scopes, s) {
			req.Scopes = append(req.Scopes, s)
		}
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return nil, cibaErr(http.StatusBadRequest, "invalid_scope", "scope must include openid")
	}
	hints := 0
	for _, h := range []string{"login_hint", "id_token_hint", "login_hint_token"} {
		if form.Get(h) != "" {
			hints++
		}
	}
	if hints != 1 {
		return bad("exactly one of login_hint, id_token_hint and login_hint_token is required")
	}
	if form.Get("login_hint_token") != "" {
		return bad("login_hint_token is not supported: use login_hint or id_token_hint")
	}
	req.LoginHint = strings.TrimSpace(form.Get("login_hint"))
	if len(req.LoginHint) > MaxLoginHintBytes {
		return bad("login_hint is longer than %d bytes", MaxLoginHintBytes)
	}
	if form.Get("login_hint") != "" && req.LoginHint == "" {
		return bad("login_hint is blank")
	}
	req.IDTokenHint = form.Get("id_token_hint")
	if len(req.IDTokenHint) > MaxIDTokenHintBytes {
		return bad("id_token_hint is longer than %d bytes", MaxIDTokenHintBytes)
	}
	msg := form.Get("binding_message")
	if !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > MaxBindingMessageChars || strings.ContainsFunc(msg, unicode.IsControl) {
		return nil, cibaErr(http.StatusBadRequest, "invalid_binding_message",
			"binding_message must be at most %d characters of text, without control characters", MaxBindingMessageChars)
	}
	req.BindingMessage = strings.TrimSpace(msg)
	req.ACRValues = strings.Fields(form.Get("acr_values"))
	if err := CheckACRValues(req.ACRValues); err != nil {
		return bad("%s", err.Error())
	}
	if v := form.Get("requested_expiry"); v != "" {
		if strings.TrimLeft(v, "0123456789") != "" || len(v) > 9 {
			return bad("requested_expiry must be a positive number of seconds")
		}
		n, _ := strconv.Atoi(v)
		if n <= 0 {
			return bad("requested_expiry must be a positive number of seconds")
		}
		req.RequestedExpiry = time.Duration(n) * time.Second
	}
	req.NotificationToken = form.Get("client_notification_token")
	switch {
	case ping && req.NotificationToken == "":
		return bad("client_notification_token is required in ping mode")
	case len(req.NotificationToken) > MaxNotificationTokenBytes:
		return bad("client_notification_token is longer than %d bytes", MaxNotificationTokenBytes)
	case strings.ContainsFunc(req.NotificationToken, func(r rune) bool { return r <= ' ' || r > '~' }):
		return bad("client_notification_token must be printable ASCII without spaces")
	}
	if form.Get("user_code") != "" {
		return bad("user_code is not supported (backchannel_user_code_parameter_supported is false)")
	}
	return req, nil
}

// cibaData is the payload of a stored CIBA request.
type cibaData struct {
	Scopes         []string  `json:"scopes"`
	ACRValues      []string  `json:"acr_values,omitempty"`
	BindingMessage string    `json:"binding_message,omitempty"`
	Expires        time.Time `json:"exp"`
	// Ping clients only: what the notification carries. The auth_req_id
	// is otherwise kept as a digest only.
	AuthReqID         string `json:"auth_req_id,omitempty"`
	NotificationToken string `json:"client_notification_token,omitempty"`
}

// cibaResult is the approval stored for the client to take: the truthful
// record of the verifications made for it.
type cibaResult struct {
	authClaims
	Scopes []string `json:"scopes"`
}

// CIBAApproval is what a flow that approves a CIBA request carries.
type CIBAApproval struct {
	// Request is the id of the CIBA request.
	Request        string    `json:"request"`
	BindingMessage string    `json:"binding_message,omitempty"`
	Expires        time.Time `json:"exp"`
}

// cibaClientCredentials authenticates the client of a backchannel request
// as the token endpoint does (formEndpoint has refused more than one
// method): HTTP Basic or client_secret_post.
func (p *Provider) cibaClient(r *http.Request) (*Client, error) {
	cc := &zop.ClientCredentials{ClientID: r.PostForm.Get("client_id"), ClientSecret: r.PostForm.Get("client_secret"), ClientAssertion: r.PostForm.Get("client_assertion")}
	if id, secret, ok := r.BasicAuth(); ok {
		var err error
		if cc.ClientID, err = url.QueryUnescape(id); err != nil {
			return nil, invalidClient()
		}
		if cc.ClientSecret, err = url.QueryUnescape(secret); err != nil {
			return nil, invalidClient()
		}
	}
	ts := &tokenServer{p: p}
	c, err := ts.VerifyClient(r.Context(), &zop.Request[zop.ClientCredentials]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: cc})
	if err != nil {
		return nil, err
	}
	cl := c.(*Client)
	if cl.Public() {
		return nil, invalidClient()
	}
	if !cl.allowsGrant(GrantTypeCIBA) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the client is not registered for %s", GrantTypeCIBA)
	}
	return cl, nil
}

func writeCIBAError(w http.ResponseWriter, e *cibaError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.desc})
}

// bcAuthorize is the backchannel authentication endpoint (CIBA Core §7).
func (p *Provider) bcAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := p.cibaClient(r)
	if err != nil {
		if errors.Is(err, oidc.ErrUnauthorizedClient()) {
			p.Audit(ctx, obs.EventCIBARefused, "client_id", r.PostForm.Get("client_id"), "reason", "unauthorized_client")
		}
		zop.WriteError(w, r, err, nil)
		return
	}
	req, cerr := parseCIBARequest(r.PostForm, c.cfg.CIBA.Mode == "ping")
	if cerr != nil {
		p.Audit(ctx, obs.EventCIBARefused, "client_id", c.GetID(), "reason", cerr.code)
		writeCIBAError(w, cerr)
		return
	}
	acct, cerr := p.cibaUser(ctx, c, req)
	if cerr != nil {
		p.Audit(ctx, obs.EventCIBARefused, "client_id", c.GetID(), "reason", cerr.code)
		writeCIBAError(w, cerr)
		return
	}
	// The acr values must name levels of the ladder: asked to approve at a
	// level it does not know, stepup refuses rather than approve lower.
	for _, a := range req.ACRValues {
		if p.ladder.Rank(a) < 0 {
			p.Audit(ctx, obs.EventCIBARefused, "client_id", c.GetID(), "reason", "invalid_request")
			writeCIBAError(w, cibaErr(http.StatusBadRequest, "invalid_request", "acr value %q is not supported", a))
			return
		}
	}
	scopes := c.allowedScopes(req.Scopes)
	// offline_access: a CIBA approval is one transaction, never a
	// standing grant (no refresh token is issued).
	scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == oidc.ScopeOfflineAccess })
	to, sender, channel := p.cibaDestination(acct)
	if sender == nil {
		p.Audit(ctx, obs.EventCIBARefused, "client_id", c.GetID(), "sub", acct.Subject, "reason", "unreachable")
		writeCIBAError(w, cibaErr(http.StatusBadRequest, "unknown_user_id", "the user has no phone or email address to reach them on"))
		return
	}
	over, err := p.reserveCIBA(ctx, c, acct, to)
	if err != nil {
		zop.WriteError(w, r, storeError(err), nil)
		return
	} else if len(over) > 0 {
		p.Audit(ctx, obs.EventLocked, "budget", string(over[0].Kind), "client_id", c.GetID(), "sub", acct.Subject)
		w.Header().Set("Retry-After", strconv.Itoa(int(cibaWindow/time.Second)))
		writeCIBAError(w, cibaErr(http.StatusTooManyRequests, "invalid_request", "too many backchannel authentication requests for this client or user; try again later"))
		return
	}
	now := p.now()
	life := c.cfg.CIBA.MaxExpiry.D()
	if req.RequestedExpiry > 0 {
		life = min(life, req.RequestedExpiry)
	}
	id := randomID(18)
	authReqID := id + "." + randomID(32)
	link := id + "." + randomID(32)
	data := cibaData{Scopes: scopes, ACRValues: req.ACRValues, BindingMessage: req.BindingMessage, Expires: now.Add(life)}
	if c.cfg.CIBA.Mode == "ping" {
		data.AuthReqID, data.NotificationToken = authReqID, req.NotificationToken
	}
	payload, err := json.Marshal(data)
	if err != nil {
		zop.WriteError(w, r, oidc.ErrServerError().WithParent(err), nil)
		return
	}
	err = p.store.StartCIBA(ctx, session.CIBARequest{
		ID: id, ClientID: c.GetID(), Subject: acct.Subject,
		AuthReqHash: hashSecret(authReqID), LinkHash: hashSecret(link), Data: payload,
		Expires: data.Expires, Life: life, Keep: cibaKeep, Interval: cibaInterval,
	})
	if errors.Is(err, session.ErrCIBAPending) {
		p.Audit(ctx, obs.EventCIBARefused, "client_id", c.GetID(), "sub", acct.Subject, "reason", "pending")
		w.Header().Set("Retry-After", strconv.Itoa(int(cibaInterval/time.Second)))
		writeCIBAError(w, cibaErr(http.StatusTooManyRequests, "invalid_request", "a backchannel authentication request of this client for this user is already pending"))
		return
	}
	if err != nil {
		zop.WriteError(w, r, storeError(err), nil)
		return
	}
	msg := p.cibaMessage(c, req.BindingMessage, p.issuer+PathCIBALink+link, life)
	msg.To = to
	if err := sender.Send(ctx, msg); err != nil {
		p.Audit(ctx, obs.EventCodeSendFailed, "factor", channel, "purpose", "ciba", "sub", acct.Subject, "client_id", c.GetID())
		// Nobody can approve it: end it now, so the pair is free again.
		_ = p.store.DecideCIBA(context.WithoutCancel(ctx), id, "", false, nil, now)
		zop.WriteError(w, r, unavailable(), nil)
		return
	}
	p.Audit(ctx, obs.EventCodeSent, "factor", channel, "purpose", "ciba", "sub", acct.Subject, "client_id", c.GetID())
	p.Audit(ctx, obs.EventCIBARequested, "client_id", c.GetID(), "sub", acct.Subject, "request", id,
		"acr_values", strings.Join(req.ACRValues, " "), "expires_in", int(life/time.Second))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"auth_req_id": authReqID,
		"expires_in":  int(life / time.Second),
		"interval":    int(cibaInterval / time.Second),
	})
}

// reserveCIBA counts a request against the CIBA caps (per client, per
// user) and, as a message sent, against the send caps of mfa.codes (per
// user and destination, in their own window). over lists the budgets
// already exhausted.
func (p *Provider) reserveCIBA(ctx context.Context, c *Client, acct *session.Account, to string) ([]session.Budget, error) {
	_, over, err := p.Reserve(ctx, cibaWindow,
		session.Budget{Kind: session.BudgetCIBAClient, ID: c.GetID(), Max: cibaPerClient},
		session.Budget{Kind: session.BudgetCIBAUser, ID: acct.Subject, Max: cibaPerUser})
	if err != nil || len(over) > 0 {
		return over, err
	}
	_, over, err = p.Reserve(ctx, p.codePolicy.SendWindow.D(), p.SendBudgets(acct.Subject, to, netipZero)...)
	return over, err
}

// cibaUser resolves the request's hint to an account that may approve.
func (p *Provider) cibaUser(ctx context.Context, c *Client, req *cibaRequest) (*session.Account, *cibaError) {
	unknown := cibaErr(http.StatusBadRequest, "unknown_user_id", "the hint does not identify a known user")
	var acct *session.Account
	var err error
	switch {
	case req.IDTokenHint != "":
		var claims idTokenClaims
		if verr := p.keys.verify(req.IDTokenHint, "JWT", &claims); verr != nil || claims.Issuer != p.issuer || claims.Subject == "" {
			return nil, cibaErr(http.StatusBadRequest, "invalid_request", "id_token_hint is not a valid ID token of this issuer")
		}
		if claims.Audience != c.GetID() {
			return nil, cibaErr(http.StatusBadRequest, "invalid_request", "id_token_hint was not issued to this client")
		}
		acct, err = p.store.GetAccount(ctx, claims.Subject)
	default:
		// A username first, then an email (ignoring case), looked up in
		// the account store: accounts created at runtime (stepupd import,
		// SCIM) are found like those of the configuration.
		acct, err = p.store.AccountByUsername(ctx, req.LoginHint)
		if errors.Is(err, session.ErrNotFound) && strings.Contains(req.LoginHint, "@") {
			if f, ok := p.store.(session.EmailFinder); ok {
				acct, err = f.AccountByEmail(ctx, req.LoginHint)
			}
		}
	}
	if errors.Is(err, session.ErrNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, cibaErr(http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable")
	}
	if acct.Locked || acct.Disabled {
		return nil, cibaErr(http.StatusForbidden, "access_denied", "the user cannot approve requests now")
	}
	return acct, nil
}

// cibaDestination is where the approval link goes: the user's phone by
// SMS, else their email address.
func (p *Provider) cibaDestination(a *session.Account) (to string, s notify.Sender, channel string) {
	if a.Phone != "" && p.sms != nil && p.FactorEnabled(authn.SMS) {
		return a.Phone, p.sms, "sms"
	}
	if a.Email != "" && p.email != nil {
		return a.Email, p.email, "email"
	}
	return "", nil, ""
}

func (p *Provider) cibaMessage(c *Client, binding, link string, life time.Duration) notify.Message {
	what := c.Name() + " asks you to approve a request"
	if binding != "" {
		what += ": " + binding
	}
	mins := max(int(life/time.Minute), 1)
	text := fmt.Sprintf("%s. Open %s to review it (valid %d min). If you did not expect this, do not open it.", what, link, mins)
	return notify.Message{
		Text:    text,
		Subject: "Approve a request from " + c.Name(),
	}
}

// cibaToken is the CIBA grant at the token endpoint (CIBA Core §10, §11).
func (p *Provider) cibaToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := p.cibaClient(r)
	if err != nil {
		zop.WriteError(w, r, err, nil)
		return
	}
	tokenErr := func(code, desc string) {
		writeCIBAError(w, cibaErr(http.StatusBadRequest, code, "%s", desc))
	}
	arid := r.PostForm.Get("auth_req_id")
	if arid == "" || len(arid) > 256 {
		tokenErr("invalid_request", "auth_req_id is required")
		return
	}
	id, _, ok := strings.Cut(arid, ".")
	if !ok || id == "" {
		tokenErr("invalid_grant", "the auth_req_id is invalid")
		return
	}
	now := p.now()
	res, err := p.store.PollCIBA(ctx, id, hashSecret(arid), c.GetID(), now)
	if errors.Is(err, session.ErrNotFound) {
		tokenErr("invalid_grant", "the auth_req_id is invalid, or was not issued to this client")
		return
	}
	if err != nil {
		zop.WriteError(w, r, storeError(err), nil)
		return
	}
	switch {
	case res.SlowDown:
		tokenErr("slow_down", fmt.Sprintf("poll at most every %d seconds", int(res.Interval/time.Second)))
		return
	case res.State == session.CIBAPending:
		tokenErr("authorization_pending", "the user has not yet approved the request")
		return
	case res.State == "expired":
		tokenErr("expired_token", "the request expired before the user approved it")
		return
	case res.State == session.CIBADenied:
		tokenErr("access_denied", "the user denied the request")
		return
	case res.State != session.CIBAApproved:
		tokenErr("invalid_grant", "the auth_req_id was already used")
		return
	}
	var cr cibaResult
	if err := json.Unmarshal(res.Result, &cr); err != nil || cr.Subject == "" || cr.ACR == "" || len(cr.AMR) == 0 {
		// Never claim an authentication that was not recorded.
		zop.WriteError(w, r, oidc.ErrServerError().WithDescription("the approval could not be read"), nil)
		return
	}
	g := &session.Grant{ID: randomID(18), ClientID: c.GetID(), Subject: cr.Subject, ExpiresAt: now.Add(accessTokenLifetime)}
	gd := grantData{authClaims: cr.authClaims, Scopes: cr.Scopes}
	if g.Data, err = encodeGrant(gd); err != nil {
		zop.WriteError(w, r, oidc.ErrServerError().WithParent(err), nil)
		return
	}
	if err := p.store.PutGrant(ctx, g); err != nil {
		zop.WriteError(w, r, storeError(err), nil)
		return
	}
	// Locked, disabled or deleted since the approval: no tokens. Read
	// after the grant is stored, as at the code exchange: a lock or
	// disable written after this read ends the grant in its Redis step.
	if a, err := p.store.GetAccount(ctx, cr.Subject); errors.Is(err, session.ErrNotFound) || (err == nil && (a.Locked || a.Disabled)) {
		if err := p.store.DeleteGrant(ctx, g.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
			zop.WriteError(w, r, storeError(err), nil)
			return
		}
		p.Audit(ctx, obs.EventCIBARefused, "client_id", c.GetID(), "sub", cr.Subject, "reason", "account_locked")
		tokenErr("access_denied", "the user's account cannot be used now")
		return
	} else if err != nil {
		_ = p.store.DeleteGrant(ctx, g.ID)
		zop.WriteError(w, r, storeError(err), nil)
		return
	}
	resp, err := p.tokenResponse(c, g, gd, "", "", now)
	if err != nil {
		zop.WriteError(w, r, err, nil)
		return
	}
	p.Audit(ctx, obs.EventToken, "grant_type", string(GrantTypeCIBA), "client_id", c.GetID(), "sub", cr.Subject, "acr", cr.ACR)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// cibaTokenRouter sends the CIBA grant to cibaToken and every other grant
// to next (zitadel's token endpoint).
func (p *Provider) cibaTokenRouter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PostForm.Get("grant_type") == string(GrantTypeCIBA) {
			p.cibaToken(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// openCIBA serves an approval link. GET binds nothing: a link fetched by
// a mail or message scanner must not take the approval away from the
// user. An unopened link shows a page whose one button (POST) opens it:
// the first browser to do so gets a flow bound to it; any other browser
// gets an error page that shows nothing of the request.
func (p *Provider) openCIBA(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	link := r.PathValue("link")
	id, _, ok := strings.Cut(link, ".")
	if !ok || id == "" || len(link) > 128 {
		p.pages.Error(w, r, http.StatusNotFound, "error.ciba_link_invalid")
		return
	}
	flowID := ""
	if r.Method == http.MethodPost {
		flowID = randomID(24)
	}
	o, err := p.store.OpenCIBA(ctx, id, hashSecret(link), flowID, p.now())
	if errors.Is(err, session.ErrNotFound) {
		p.pages.Error(w, r, http.StatusNotFound, "error.ciba_link_ended")
		return
	}
	if err != nil {
		p.Unavailable(w, r, err)
		return
	}
	if o.State != session.CIBAPending {
		p.pages.Error(w, r, http.StatusGone, "error.ciba_ended")
		return
	}
	if o.Flow == "" {
		p.pages.CIBAOpen(w, r, PathCIBALink+link)
		return
	}
	if o.Flow != flowID {
		// Opened before: in this browser, go on with its flow.
		b, err := p.store.GetFlow(ctx, o.Flow)
		if errors.Is(err, session.ErrNotFound) {
			p.pages.Error(w, r, http.StatusGone, "error.ciba_ended")
			return
		} else if err != nil {
			p.Unavailable(w, r, err)
			return
		}
		f, _, err := p.decodeFlow(b)
		if err != nil || !p.boundTo(r, f) {
			p.Audit(ctx, obs.EventCIBARefused, "request", id, "reason", "other_browser")
			p.pages.Error(w, r, http.StatusForbidden, "error.ciba_other_browser")
			return
		}
		http.Redirect(w, r, p.issuer+PathLoginPrefix+f.ID, http.StatusFound)
		return
	}
	var cd cibaData
	if err := json.Unmarshal(o.Data, &cd); err != nil {
		p.pages.Error(w, r, http.StatusInternalServerError, "error.ciba_unshowable")
		return
	}
	acct, err := p.store.GetAccount(ctx, o.Subject)
	if errors.Is(err, session.ErrNotFound) {
		p.pages.Error(w, r, http.StatusGone, "error.ciba_ended")
		return
	} else if err != nil {
		p.Unavailable(w, r, err)
		return
	}
	f := &Flow{
		ID:          flowID,
		ClientID:    o.ClientID,
		Scopes:      cd.Scopes,
		ACRValues:   cd.ACRValues,
		Essential:   len(cd.ACRValues) > 0,
		PromptLogin: true,
		LoginHint:   acct.Username,
		HintSubject: acct.Subject,
		Start:       p.now(),
		CIBA:        &CIBAApproval{Request: id, BindingMessage: cd.BindingMessage, Expires: cd.Expires},
	}
	p.bindFlow(w, r, f)
	if err := p.SaveFlow(ctx, f); err != nil {
		p.Unavailable(w, r, err)
		return
	}
	p.Audit(ctx, obs.EventCIBAOpened, "client_id", o.ClientID, "sub", acct.Subject, "request", id)
	http.Redirect(w, r, p.issuer+PathLoginPrefix+f.ID, http.StatusFound)
}
