package op

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// ccParams are the only form parameters clientCredentialsToken reads.
var ccParams = map[string]bool{"grant_type": true, "scope": true, "client_id": true, "client_secret": true}

// plainClientCredentials reports whether r (a token request that passed
// formEndpoint: POST, form in the body, each parameter once, no
// conflicting client authentication) is a client_credentials request of
// the plain shape clientCredentialsToken serves: no parameter besides
// ccParams and a scope without empty members. Anything else goes the
// general way through zitadel's router.
func plainClientCredentials(r *http.Request) bool {
	if r.PostForm.Get("grant_type") != string(oidc.GrantTypeClientCredentials) {
		return false
	}
	for k := range r.PostForm {
		if !ccParams[k] {
			return false
		}
	}
	if scope, ok := r.PostForm["scope"]; ok && (scope[0] == "" || strings.Contains(scope[0], "  ") ||
		strings.HasPrefix(scope[0], " ") || strings.HasSuffix(scope[0], " ")) {
		return false
	}
	return true
}

// clientCredentialsRouter serves plain client_credentials requests
// (plainClientCredentials) and plain code exchanges (plainCodeExchange)
// itself and passes every other token request to next (zitadel's
// router). A client_credentials token is nothing but
// client authentication and a signature; the way through zitadel's
// router decoded the form twice by reflection (gorilla-style schema) and
// cost a fifth of the request besides the signature (pprof of bench
// -mode cc, docs/benchmarks.md issue 18). The answers are zitadel's, byte
// for byte: TestClientCredentialsFastPathAnswersLikeZitadel compares them.
func (p *Provider) clientCredentialsRouter(next http.Handler) http.Handler {
	ts := &tokenServer{p: p}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case plainClientCredentials(r):
			ts.clientCredentialsToken(w, r)
		case plainCodeExchange(r):
			ts.codeExchangeToken(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// authenticateClient is zitadel's client authentication of a token
// request (webServer.parseClientCredentials, then VerifyClient) for a
// request formEndpoint let through with no client assertion: the body's
// client_id and client_secret, HTTP Basic over them (formEndpoint has
// refused Basic with a body secret, and a malformed Basic id; zitadel
// unescapes both). On failure it has written zitadel's error.
func (s *tokenServer) authenticateClient(w http.ResponseWriter, r *http.Request) (zop.Client, bool) {
	cc := &zop.ClientCredentials{ClientID: r.PostForm.Get("client_id"), ClientSecret: r.PostForm.Get("client_secret")}
	if id, secret, ok := r.BasicAuth(); ok {
		var err error
		if cc.ClientID, err = url.QueryUnescape(id); err != nil {
			zop.WriteError(w, r, oidc.ErrInvalidClient().WithDescription("invalid basic auth header").WithParent(err), nil)
			return nil, false
		}
		if cc.ClientSecret, err = url.QueryUnescape(secret); err != nil {
			zop.WriteError(w, r, oidc.ErrInvalidClient().WithDescription("invalid basic auth header").WithParent(err), nil)
			return nil, false
		}
	}
	if cc.ClientID == "" {
		zop.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("client_id or client_assertion must be provided"), nil)
		return nil, false
	}
	ctx := r.Context()
	client, err := s.VerifyClient(ctx, &zop.Request[zop.ClientCredentials]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: cc})
	if err != nil {
		zop.WriteError(w, r, err, nil)
		return nil, false
	}
	return client, true
}

// clientCredentialsToken is zitadel's token endpoint for a plain
// client_credentials request, in the same order and with the same
// errors: client authentication (webServer.parseClientCredentials and
// VerifyClient), the grant type (withClient), an authenticated client
// (clientCredentialsHandler), then ClientCredentialsExchange.
func (s *tokenServer) clientCredentialsToken(w http.ResponseWriter, r *http.Request) {
	client, ok := s.authenticateClient(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if !zop.ValidateGrantType(client, oidc.GrantTypeClientCredentials) {
		zop.WriteError(w, r, oidc.ErrUnauthorizedClient().WithDescription("grant_type %q not allowed", oidc.GrantTypeClientCredentials), nil)
		return
	}
	if client.AuthMethod() == oidc.AuthMethodNone {
		zop.WriteError(w, r, oidc.ErrInvalidClient().WithDescription("client must be authenticated"), nil)
		return
	}
	req := &oidc.ClientCredentialsRequest{
		GrantType:    oidc.GrantTypeClientCredentials,
		ClientID:     r.PostForm.Get("client_id"),
		ClientSecret: r.PostForm.Get("client_secret"),
	}
	if scope, ok := r.PostForm["scope"]; ok {
		req.Scope = strings.Split(scope[0], " ") // oidc.SpaceDelimitedArray.UnmarshalText
	}
	resp, err := s.ClientCredentialsExchange(ctx, &zop.ClientRequest[oidc.ClientCredentialsRequest]{
		Request: &zop.Request[oidc.ClientCredentialsRequest]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, PostForm: r.PostForm, Data: req},
		Client:  client,
	})
	if err != nil {
		zop.WriteError(w, r, err, nil)
		return
	}
	writeResponse(w, resp)
}

// writeResponse is zop.Response.writeOut: headers, then
// httphelper.MarshalJSON.
func writeResponse(w http.ResponseWriter, resp *zop.Response) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := json.NewEncoder(w).Encode(resp.Data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// codeParams are the only form parameters codeExchangeToken reads.
var codeParams = map[string]bool{"grant_type": true, "code": true, "redirect_uri": true, "code_verifier": true, "client_id": true, "client_secret": true}

// plainCodeExchange reports whether r (a token request that passed
// formEndpoint) is an authorization_code request of the plain shape
// codeExchangeToken serves: no parameter besides codeParams (so no
// client assertion). Anything else goes through zitadel's router.
func plainCodeExchange(r *http.Request) bool {
	if r.PostForm.Get("grant_type") != string(oidc.GrantTypeCode) {
		return false
	}
	for k := range r.PostForm {
		if !codeParams[k] {
			return false
		}
	}
	return true
}

// codeExchangeToken is zitadel's token endpoint for a plain
// authorization_code request, in the same order and with the same
// errors: client authentication (as clientCredentialsToken), the grant
// type (withClient), code and redirect_uri present
// (codeExchangeHandler), then CodeExchange, which does every check of
// the code itself. What it leaves out is the way there: zitadel's
// router, the form decoded twice by reflection and a tracing span —
// ≈ 4 % of an SSO flow's stepupd CPU (perf, docs/benchmarks.md issue
// 18). TestCodeExchangeFastPathAnswersLikeZitadel compares the answers.
func (s *tokenServer) codeExchangeToken(w http.ResponseWriter, r *http.Request) {
	client, ok := s.authenticateClient(w, r)
	if !ok {
		return
	}
	if !zop.ValidateGrantType(client, oidc.GrantTypeCode) {
		zop.WriteError(w, r, oidc.ErrUnauthorizedClient().WithDescription("grant_type %q not allowed", oidc.GrantTypeCode), nil)
		return
	}
	req := &oidc.AccessTokenRequest{
		Code:         r.PostForm.Get("code"),
		RedirectURI:  r.PostForm.Get("redirect_uri"),
		ClientID:     r.PostForm.Get("client_id"),
		ClientSecret: r.PostForm.Get("client_secret"),
		CodeVerifier: r.PostForm.Get("code_verifier"),
	}
	if req.Code == "" {
		zop.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("code missing"), nil)
		return
	}
	if req.RedirectURI == "" {
		zop.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("redirect_uri missing"), nil)
		return
	}
	resp, err := s.CodeExchange(r.Context(), &zop.ClientRequest[oidc.AccessTokenRequest]{
		Request: &zop.Request[oidc.AccessTokenRequest]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, PostForm: r.PostForm, Data: req},
		Client:  client,
	})
	if err != nil {
		zop.WriteError(w, r, err, nil)
		return
	}
	writeResponse(w, resp)
}
