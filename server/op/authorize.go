package op

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// Unavailable answers a request that needs the store while it is down.
func (p *Provider) Unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrDisabled) {
		p.Audit(r.Context(), obs.EventLoginFailed, "path", LogPath(r), "reason", "disabled")
		p.pages.Error(w, r, http.StatusForbidden, MsgDisabled)
		return
	}
	p.Audit(r.Context(), obs.EventStoreDown, "path", LogPath(r), "err", err.Error(), "reason", "store_unavailable")
	w.Header().Set("Retry-After", "5")
	p.pages.Error(w, r, http.StatusServiceUnavailable, "error.unavailable")
}

// MsgDisabled is what a disabled user is told (PRODUCT.md §9).
const MsgDisabled = "error.disabled"

// authorize is the authorization endpoint (OIDC Core §3.1.2).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		p.pages.Error(w, r, http.StatusMethodNotAllowed, "error.method")
		return
	}
	if err := r.ParseForm(); err != nil {
		if BodyTooLarge(err) {
			p.pages.Error(w, r, http.StatusRequestEntityTooLarge, "error.authorize_too_large")
			return
		}
		p.pages.Error(w, r, http.StatusBadRequest, "error.authorize_malformed")
		return
	}
	// A posted request that came without the browser's cookies would see
	// no flow binding, and overwrite the browser's with a new one: every
	// sign-in pending in its other tabs would then be refused as another
	// browser's. (A request too long to bounce is still answered here.)
	if p.postWithoutCookies(r) && p.bounceToGet(w, r, PathAuthorize, authorizeParams) {
		return
	}
	// Until the client and its redirect URI are known to be registered,
	// nothing may be sent to the redirect URI (RFC 9700 §4.1).
	if len(r.Form["client_id"]) != 1 || len(r.Form["redirect_uri"]) != 1 {
		p.pages.Error(w, r, http.StatusBadRequest, "error.authorize_params")
		return
	}
	c, ok := p.clients[r.Form.Get("client_id")]
	if !ok {
		p.pages.Error(w, r, http.StatusBadRequest, "error.unknown_client")
		return
	}
	redirectURI := r.Form.Get("redirect_uri")
	if !c.RedirectURIAllowed(redirectURI) {
		p.pages.Error(w, r, http.StatusBadRequest, "error.unknown_redirect")
		return
	}
	state := r.Form.Get("state")
	if len(state) > MaxStateBytes {
		// An oversized state is refused, and not echoed: the error would
		// carry the very bytes the cap keeps out (into the Location header,
		// the browser and the RP's logs). Without its state the RP rejects
		// the response as unsolicited, which is right for a request it
		// could not have sent within the limits.
		state = ""
	}
	f, aerr := parseFlow(r.Form, c, p.now())
	if aerr != nil {
		p.redirectError(w, r, redirectURI, state, aerr.code, aerr.desc)
		return
	}
	if hint := r.Form.Get("id_token_hint"); hint != "" {
		sub, ok := p.verifyIDTokenHint(hint)
		if !ok {
			p.redirectError(w, r, redirectURI, f.State, errInvalidRequest, "id_token_hint is not a valid ID token of this issuer")
			return
		}
		f.HintSubject = sub
	}
	sess, err := p.CurrentSession(r)
	if err != nil {
		p.Unavailable(w, r, err)
		return
	}
	// A step-up whose page is the TOTP form is decided from the session's
	// view of the account (see view.go): the TOTP post reads the account
	// and decides again. Everything else reads the account here, which is
	// also the completion check of a code issued here (Finish).
	d, shown, viewed := p.decideFromView(f, c, sess)
	if !viewed {
		acct, err := p.LoadAccount(r.Context(), sess)
		if err != nil {
			p.Unavailable(w, r, err)
			return
		}
		d = p.Decide(f, c, sess, acct)
		p.RefreshView(r.Context(), sess, acct)
		shown = shownStep(d, sess, acct)
	}
	switch d.Outcome {
	case authn.OK, authn.Fail:
		p.Finish(w, r, f, c, sess, d)
	default:
		f.ID = randomID(24)
		f.Shown = shown
		p.bindFlow(w, r, f)
		if err := p.SaveFlow(r.Context(), f); err != nil {
			p.Unavailable(w, r, err)
			return
		}
		http.Redirect(w, r, p.issuer+PathLoginPrefix+f.ID, http.StatusFound)
	}
}

// maxBounceQuery bounds the query bounceToGet puts in a URL: 8 KiB,
// the request line common proxies accept by default (nginx's
// large_client_header_buffers, Apache's LimitRequestLine).
const maxBounceQuery = 8 << 10

// postWithoutCookies reports whether r is a POST that carries none of
// stepup's cookies. OIDC lets an RP send authorization and logout
// requests by POST, which from the RP's site is a cross-site POST: the
// browser withholds its SameSite=Lax cookies, so such a request cannot
// tell a browser without a session or flow binding from one that has
// them.
func (p *Provider) postWithoutCookies(r *http.Request) bool {
	return r.Method == http.MethodPost && p.sessions.CarriesNone(r)
}

// Parameters bounceToGet carries over: those of the endpoint's request
// (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2). Anything else a
// POST carries (a client secret sent by mistake) is not put in a URL,
// where logs and history would keep it; stepup ignores it anyway.
var (
	authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt", "max_age",
		"acr_values", "claims", "code_challenge", "code_challenge_method", "id_token_hint", "login_hint", "response_mode",
		"ui_locales", "claims_locales", "display", "request", "request_uri", "registration"}
	endSessionParams = []string{"id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"}
)

// bounceToGet answers r with a 303 to path by GET with the same
// parameters (those named), so that the browser sends its cookies (a
// top-level GET navigation carries SameSite=Lax ones), and reports
// whether it did: not when they would make a URL longer than
// maxBounceQuery. A browser that really has no cookie gets the same
// answer one redirect later; a GET is never bounced, so nothing loops.
func (p *Provider) bounceToGet(w http.ResponseWriter, r *http.Request, path string, names []string) bool {
	kept := url.Values{}
	for _, n := range names {
		if vs, ok := r.Form[n]; ok {
			kept[n] = vs
		}
	}
	q := kept.Encode()
	if len(q) > maxBounceQuery {
		return false
	}
	http.Redirect(w, r, p.issuer+path+"?"+q, http.StatusSeeOther)
	return true
}

// verifyIDTokenHint returns the subject of an ID token we issued. An
// expired hint is still a hint (OIDC Core §3.1.2.1).
func (p *Provider) verifyIDTokenHint(token string) (string, bool) {
	var c idTokenClaims
	if err := p.keys.verify(token, "JWT", &c); err != nil || c.Issuer != p.issuer || c.Subject == "" {
		return "", false
	}
	return c.Subject, true
}

// SaveFlow stores a pending flow: a sign-in flow for flowLifetime from
// its start, a CIBA approval flow as long as its request is pending (up
// to the client's max_expiry, an hour), never longer. ErrNotFound when
// that time has passed.
func (p *Provider) SaveFlow(ctx context.Context, f *Flow) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ttl := flowLifetime - p.now().Sub(f.Start)
	if f.CIBA != nil {
		ttl = f.CIBA.Expires.Sub(p.now())
	}
	if ttl <= 0 {
		return session.ErrNotFound
	}
	return p.store.PutFlow(ctx, f.ID, b, ttl)
}

// ErrOtherBrowser is returned by FlowAndSession for a flow that another
// browser started: nothing of it may be shown or used.
var ErrOtherBrowser = errors.New("the flow belongs to another browser")

// bindFlow ties f to the browser of r, giving the browser its
// flow-binding value when it has none yet.
func (p *Provider) bindFlow(w http.ResponseWriter, r *http.Request, f *Flow) {
	v := p.sessions.Binding(r)
	if v == "" {
		v = session.NewID()
		p.sessions.SetBinding(w, v)
	}
	f.Browser = hashSecret(v)
}

// boundTo reports whether f was started by the browser of r. A flow
// without a binding (an API handle under another prefix, or a flow
// stored before bindings existed) belongs to no browser.
func (p *Provider) boundTo(r *http.Request, f *Flow) bool {
	v := p.sessions.Binding(r)
	return v != "" && f.Browser != "" && subtle.ConstantTimeCompare([]byte(hashSecret(v)), []byte(f.Browser)) == 1
}

// FlowAndSession loads a pending flow, its client and the browser's
// live session (nil if none) in one store round trip. A flow of another
// browser is ErrOtherBrowser, and none of it is returned. The flow's
// enrollment values are those of the session's subject only.
func (p *Provider) FlowAndSession(r *http.Request, id string) (*Flow, *Client, *session.Session, error) {
	sid, key := p.sessions.Read(r)
	if key == "" {
		sid = "" // a browser nobody signed in on: no session to load
	}
	b, s, err := p.store.GetFlowAndSession(r.Context(), id, sid)
	if err != nil {
		return nil, nil, nil, err
	}
	if s != nil && !s.HeldBy(key) {
		s = nil
	}
	f, c, err := p.decodeFlow(b)
	if err != nil {
		return nil, nil, nil, err
	}
	if !p.boundTo(r, f) {
		return nil, nil, nil, ErrOtherBrowser
	}
	if f.CIBA != nil {
		// An approval uses no browser session, and changes none.
		return f, c, p.cibaSession(f), nil
	}
	if f.Reset != nil {
		// Neither does a password reset. Until its emailed code is
		// verified it has no session at all: nothing of the account (its
		// factors, its passkeys' ids) shows on the step-up pages, which
		// would tell an address with an account from one without.
		if !f.Reset.EmailVerified(f) {
			return f, c, nil, nil
		}
		return f, c, p.ResetSession(f), nil
	}
	s = p.live(s)
	sub := ""
	if s != nil {
		sub = s.Subject
	}
	f.forSubject(sub)
	return f, c, s, nil
}

func (p *Provider) decodeFlow(b []byte) (*Flow, *Client, error) {
	var f Flow
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, session.ErrNotFound
	}
	if f.Account && f.ForceEnroll {
		return &f, p.accountEnroll, nil
	}
	if f.Account {
		return &f, p.account, nil
	}
	c, ok := p.clients[f.ClientID]
	if !ok { // the client was removed from the configuration meanwhile
		return nil, nil, session.ErrNotFound
	}
	return &f, c, nil
}

// Finish answers the client for an OK or Fail decision: a code, or an
// OAuth error, on the redirect URI.
//
// A code records whether this request read the account as active after
// reading sess (sess.AccountChecked, set by LoadAccount): then the code's
// exchange needs no account read of its own (issue 14 item 2 with one
// account read per flow). Why that holds: every disable and delete
// (admin API, SCIM, import) writes the database (D), then ends the
// user's grants and lists the user's sessions (L) and ends each one
// listed before it returns. The exchange stores its grant only while
// the code's session exists and is not ending, in the same script that
// indexes the grant under the session (PutGrant). A session is indexed
// under its user before CreateSession returns, so before any request can
// read it. So either the session was listed at L — then an exchange
// after the disable returned finds it ended, and one before had its
// grant ended with it — or it was indexed after L, and this request read
// the account after D, and saw it disabled or gone.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, f *Flow, c *Client, sess *session.Session, d authn.Decision) {
	ctx := r.Context()
	if f.Reset != nil {
		p.finishReset(w, r, f, d)
		return
	}
	if f.Account {
		p.finishAccount(w, r, f, sess, d)
		return
	}
	if f.CIBA != nil {
		p.finishCIBA(w, r, f, c, d)
		return
	}
	if d.Outcome != authn.OK {
		code, desc := d.Error, d.Description
		if d.Outcome != authn.Fail || code == "" {
			// Finish is only called with a final decision; anything else is
			// a programming error, and claiming nothing is the safe answer.
			code, desc = "server_error", "the authentication did not complete"
		}
		p.dropFlow(ctx, f)
		p.Audit(ctx, obs.EventAuthorizeError, "client_id", c.GetID(), "error", code, "reason", code)
		p.redirectError(w, r, f.RedirectURI, f.State, code, desc)
		return
	}
	if sess == nil || len(d.AMR) == 0 || d.ACR == "" {
		p.redirectError(w, r, f.RedirectURI, f.State, "server_error", "no authentication to report")
		return
	}
	code, stored, activity, err := p.newCode(f, c, sess, d)
	if err != nil {
		p.redirectError(w, r, f.RedirectURI, f.State, "server_error", "could not issue a code")
		return
	}
	// The code, the session's activity (with the client served, and its
	// online grants' new TTL) and the end of the flow go in one round
	// trip. Only the code must be stored: the rest is bookkeeping, and a
	// failure there loses nothing else.
	bookkeeping, err := p.store.IssueCode(ctx, stored, activity, f.ID)
	// The flow's deletion went with the code: on a failure it is put
	// back, so that the user can try again once the store answers.
	p.answerCode(w, r, f, c, sess, d, code, bookkeeping, err, true)
}

// newCode makes the code that Finish issues for an OK decision d: the
// code for the client, the record the store keeps of it and the session's
// activity that goes with it (codeActivity).
func (p *Provider) newCode(f *Flow, c *Client, sess *session.Session, d authn.Decision) (string, session.Code, session.Activity, error) {
	code := randomID(32)
	cd := codeData{
		authClaims:    authClaims{Subject: sess.Subject, ACR: d.ACR, AMR: d.AMR, AuthTime: d.AuthTime.Unix()},
		ClientID:      c.GetID(),
		RedirectURI:   f.RedirectURI,
		CodeChallenge: f.CodeChallenge,
		Nonce:         f.Nonce,
		Scopes:        f.Scopes,
		SessionID:     sess.ID,
		Checked:       sess.AccountChecked,
	}
	newCodeGrant(&cd)
	activity := p.codeActivity(sess, c.GetID(), &cd)
	payload, err := json.Marshal(cd)
	if err != nil {
		return "", session.Code{}, session.Activity{}, err
	}
	return code, session.Code{Hash: hashSecret(code), GrantID: codeGrantRef(&cd), Binding: codeBinding(cd.ClientID, cd.RedirectURI, cd.CodeChallenge),
		Data: payload, TTL: codeLifetime, SpentTTL: codeSpentMemory}, activity, nil
}

// answerCode ends Finish once the store answered for the code (err and
// bookkeeping as IssueCode's): the code on the redirect URI, or the page
// of a flow another request finished, or 503 — with the flow put back
// first when putBack says that this request ended it.
func (p *Provider) answerCode(w http.ResponseWriter, r *http.Request, f *Flow, c *Client, sess *session.Session, d authn.Decision, code string, bookkeeping, err error, putBack bool) {
	ctx := r.Context()
	if errors.Is(err, session.ErrFlowEnded) {
		// Another request finished this flow first (a double submission):
		// one authorization request gets one code.
		p.pages.Error(w, r, http.StatusBadRequest, "error.flow_done")
		return
	}
	if err != nil {
		if putBack && f.ID != "" {
			_ = p.SaveFlow(context.WithoutCancel(ctx), f)
		}
		p.Unavailable(w, r, err)
		return
	}
	if bookkeeping != nil {
		p.log.WarnContext(ctx, "session touch or flow delete failed", "err", bookkeeping)
	}
	p.Audit(ctx, obs.EventAuthorized, "client_id", c.GetID(), "sub", sess.Subject,
		"acr", d.ACR, "amr", d.AMR, "auth_time", d.AuthTime.Unix())
	http.Redirect(w, r, redirectTo(f.RedirectURI, url.Values{
		"code":  {code},
		"state": nonEmpty(f.State),
		"iss":   {p.issuer},
	}), http.StatusFound)
}

func (p *Provider) dropFlow(ctx context.Context, f *Flow) {
	if f.ID == "" {
		return
	}
	if err := p.store.DeleteFlow(ctx, f.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
		p.log.WarnContext(ctx, "flow delete failed", "err", err)
	}
}

// redirectError sends an OAuth error to a redirect URI that was validated
// against the client, with state and iss (RFC 9207).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "authorization error", slog.String("error", code), slog.String("description", desc))
	http.Redirect(w, r, redirectTo(redirectURI, url.Values{
		"error":             {code},
		"error_description": nonEmpty(desc),
		"state":             nonEmpty(state),
		"iss":               {p.issuer},
	}), http.StatusFound)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
