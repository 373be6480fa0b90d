package op

import (
	"net/http"
	"net/url"

	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
)

// Handler serves the protocol endpoints. /authorize, discovery, JWKS,
// end-session and userinfo's HTTP side are ours (acr semantics, RFC 9207
// iss, HTML error pages, RFC 6750 errors); the token, introspection and
// revocation endpoints go through zitadel/oidc's router with our
// op.Server, behind formEndpoint's checks. zitadel's own CORS (any
// origin, with credentials) is off: ours answers registered origins
// only.
func (p *Provider) Handler() http.Handler {
	ts := &tokenServer{p: p}
	zr := zop.RegisterServer(ts, zop.Endpoints{
		Token:         zop.NewEndpoint(PathToken),
		Introspection: zop.NewEndpoint(PathIntrospect),
		Revocation:    zop.NewEndpoint(PathRevoke),
	}, zop.WithServerCORSOptions(nil))
	zh := p.withIPBudget(zr)
	origins := newCORSOrigins(p.clients)
	corsPost := corsFor(origins, http.MethodPost)
	mux := http.NewServeMux()
	mux.HandleFunc(PathDiscovery, p.serveDiscovery)
	mux.HandleFunc(PathJWKS, p.serveJWKS)
	mux.HandleFunc(PathAuthorize, p.authorize)
	// RP-Initiated Logout 1.0 §2: GET or POST.
	mux.Handle(PathEndSession, methods(http.HandlerFunc(p.endSession), func(w http.ResponseWriter, r *http.Request) {
		p.pages.Error(w, r, http.StatusMethodNotAllowed, "error.logout_method")
	}, http.MethodGet, http.MethodPost))
	// The token endpoint and revocation may be called by a browser app
	// (a public client redeeming its code, revoking at sign-out);
	// introspection is for confidential clients, whose secret has no
	// place in a browser, so it answers no CORS at all.
	mux.Handle(PathToken, noStore(corsPost(formEndpoint("token", p.withIPBudget(p.cibaTokenRouter(p.clientCredentialsRouter(zr)))))))
	// CIBA: the backchannel endpoint is for confidential clients' servers
	// (no CORS); the approval link is a hosted page.
	mux.Handle(PathBCAuthorize, noStore(formEndpoint("backchannel authentication", p.withIPBudget(http.HandlerFunc(p.bcAuthorize)))))
	mux.Handle("GET "+PathCIBALink+"{link}", http.HandlerFunc(p.openCIBA))
	// Opening binds the approval to this browser: same-origin POSTs only
	// (another site's POST would at most bind it to the user's own
	// browser, but it is not this site's form).
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.pages.Error(w, r, http.StatusForbidden, "error.cross_site")
	}))
	mux.Handle("POST "+PathCIBALink+"{link}", cop.Handler(http.HandlerFunc(p.openCIBA)))
	mux.Handle(PathRevoke, noStore(corsPost(formEndpoint("revocation", zh))))
	mux.Handle(PathIntrospect, noStore(formEndpoint("introspection", zh)))
	mux.Handle(PathUserinfo, noStore(corsFor(origins, http.MethodGet, http.MethodPost)(methods(serveUserinfo(ts), func(w http.ResponseWriter, r *http.Request) {
		oauthError(w, r, invalidRequest("the userinfo endpoint accepts GET and POST only"), http.StatusMethodNotAllowed)
	}, http.MethodGet, http.MethodPost))))
	return mux
}

// endSession is RP-initiated logout (OpenID Connect RP-Initiated Logout
// 1.0). With an id_token_hint for the signed-in user's session (its sub,
// and its sid as PublicSID publishes it) the session ends at once; without proof of who asks, the user confirms first, so a link on
// another site cannot sign them out.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		if BodyTooLarge(err) {
			p.pages.Error(w, r, http.StatusRequestEntityTooLarge, "error.logout_too_large")
			return
		}
		p.pages.Error(w, r, http.StatusBadRequest, "error.logout_malformed")
		return
	}
	if p.postWithoutCookies(r) {
		// Without the browser's session cookie a posted logout would end
		// no session (with a valid id_token_hint too), yet clear the
		// browser's cookie without the confirmation below.
		if !p.bounceToGet(w, r, PathEndSession, endSessionParams) {
			p.pages.Error(w, r, http.StatusBadRequest, "error.logout_too_long")
		}
		return
	}
	hint, clientID := r.Form.Get("id_token_hint"), r.Form.Get("client_id")
	plr, state := r.Form.Get("post_logout_redirect_uri"), r.Form.Get("state")
	if len(state) > MaxStateBytes {
		// Echoed to the RP and carried by the confirmation form: the same
		// cap as at /authorize. Not redirected: there is no error channel
		// to the RP in RP-initiated logout.
		p.pages.Error(w, r, http.StatusBadRequest, "error.logout_state_long")
		return
	}
	var hintSub, hintSID string
	if hint != "" {
		var c idTokenClaims
		if err := p.keys.verify(hint, "JWT", &c); err != nil || c.Issuer != p.issuer {
			p.pages.Error(w, r, http.StatusBadRequest, "error.logout_foreign_token")
			return
		}
		if clientID != "" && clientID != c.Audience {
			p.pages.Error(w, r, http.StatusBadRequest, "error.logout_client_mismatch")
			return
		}
		hintSub, hintSID, clientID = c.Subject, c.SID, c.Audience
	}
	c, ok := p.LogoutTarget(clientID, plr)
	if !ok {
		p.pages.Error(w, r, http.StatusBadRequest, "error.unknown_logout_redirect")
		return
	}
	sess, err := p.CurrentSession(r)
	if err != nil {
		p.Unavailable(w, r, err)
		return
	}
	// The hint proves who asks when it names the signed-in user and, if
	// it carries a sid, this very session (a token of an earlier session
	// of the same user does not end this one unasked).
	if sess == nil || (hintSub != "" && hintSub == sess.Subject && (hintSID == "" || hintSID == p.PublicSID(sess.ID))) {
		p.Logout(w, r, sess, plr, state)
		return
	}
	name := ""
	if c != nil {
		name = c.Name()
		clientID = c.GetID()
	}
	p.pages.ConfirmLogout(w, r, clientID, name, plr, state)
}

// LogoutTarget validates a post-logout redirect URI against the client:
// (nil, true) when none is asked for.
func (p *Provider) LogoutTarget(clientID, plr string) (*Client, bool) {
	c := p.clients[clientID]
	if plr == "" {
		return c, true
	}
	if c == nil || !c.PostLogoutURIAllowed(plr) {
		return nil, false
	}
	return c, true
}

// Logout ends the session (if any), clears the cookie and returns to plr
// (already validated) or shows the signed-out page.
func (p *Provider) Logout(w http.ResponseWriter, r *http.Request, sess *session.Session, plr, state string) {
	if sess != nil {
		if err := p.store.DeleteSession(r.Context(), sess.ID); err != nil {
			p.Unavailable(w, r, err)
			return
		}
		p.Audit(r.Context(), obs.EventLogout, "sub", sess.Subject)
	}
	p.sessions.Clear(w)
	// The browser's pending sign-ins end with it: on a shared computer
	// the next person must not find the signed-out user's username (or
	// an enrollment under way) in the history.
	p.sessions.ClearBinding(w)
	if plr != "" {
		http.Redirect(w, r, redirectTo(plr, url.Values{"state": nonEmpty(state)}), http.StatusFound)
		return
	}
	p.pages.LoggedOut(w, r)
}
