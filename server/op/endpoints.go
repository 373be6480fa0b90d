package op

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stepup-dev/stepup/rs"
)

// What every answer of the back-channel endpoints (token, introspection,
// revocation, userinfo) shares, before zitadel's router or our own code
// sees the request: no caching, the methods the standards name, request
// parameters only where the standards put them, one client
// authentication, and CORS for the registered origins only.

// The values noStore sets (len and cap 1: an Add copies them).
var (
	cacheNoStore  = []string{"no-store"}
	pragmaNoCache = []string{"no-cache"}
)

// noStore marks every answer of next, success or error, as not to be
// stored by any cache (RFC 6749 §5.1, §5.2; RFC 7662 and OIDC Core §5.3
// carry tokens or claims too). Pragma is for HTTP/1.0 caches, as in the
// RFC's examples.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Shared values, as server's middleware sets its headers: no
		// allocation per request; net/http only reads them.
		h := w.Header()
		h["Cache-Control"] = cacheNoStore
		h["Pragma"] = pragmaNoCache
		next.ServeHTTP(w, r)
	})
}

// oauthError writes e as an OAuth JSON error with status.
func oauthError(w http.ResponseWriter, r *http.Request, e *oidc.Error, status int) {
	zop.WriteError(w, r, zop.NewStatusError(e, status), nil)
}

// formEndpoint guards the token, introspection and revocation endpoints
// (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1): POST only, every
// parameter in the form body (a query string is refused outright, so a
// client secret or token in a URL — and so in access logs and browser
// history — is never used), no parameter twice (RFC 6749 §3.1), and at
// most one client authentication method (RFC 6749 §2.3).
func formEndpoint(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Basic") {
			// RFC 6749 §5.2: a client that used HTTP Basic and failed
			// gets 401 with a WWW-Authenticate challenge for it.
			w = &basicChallenge{ResponseWriter: w}
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			oauthError(w, r, oidc.ErrInvalidRequest().WithDescription("the %s endpoint accepts POST only", name), http.StatusMethodNotAllowed)
			return
		}
		if r.URL.RawQuery != "" {
			oauthError(w, r, oidc.ErrInvalidRequest().WithDescription("parameters go in the form-encoded request body, never in the URL"), http.StatusBadRequest)
			return
		}
		if err := parseForm(r); err != nil {
			status := http.StatusBadRequest
			if BodyTooLarge(err) {
				status = http.StatusRequestEntityTooLarge
			}
			oauthError(w, r, oidc.ErrInvalidRequest().WithDescription("the request body is not a valid form of at most %d bytes", MaxBodyBytes), status)
			return
		}
		for k, vs := range r.PostForm {
			if len(vs) > 1 {
				oauthError(w, r, oidc.ErrInvalidRequest().WithDescription("parameter %q is given more than once", k), http.StatusBadRequest)
				return
			}
		}
		if e := clientAuthConflict(r); e != nil {
			status := http.StatusBadRequest
			if e.ErrorType == oidc.InvalidClient {
				status = http.StatusUnauthorized
			}
			oauthError(w, r, e, status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// formContentType is the media type of an OAuth request body (RFC 6749
// Appendix B), as clients send it: no parameters.
const formContentType = "application/x-www-form-urlencoded"

// formPrealloc bounds the buffer parseForm allocates from a body's
// announced length before reading it: a token request (a code, its
// verifier and redirect URI, or a client assertion) is well under it.
const formPrealloc = 4 << 10

// parseForm is r.ParseForm for a request formEndpoint has let through
// (POST, no query string), with less work for the common shape: a body
// whose Content-Type is exactly formContentType (any case) is read and
// decoded by url.ParseQuery, as net/http does, and one url.Values is both
// r.PostForm and r.Form (with no query string they hold the same pairs;
// nothing in stepupd or zitadel writes to either), where ParseForm parses
// the media type into a map and copies every pair into a second
// url.Values. Any other request (a Content-Type with parameters or
// another type, no body, a form already parsed) goes through
// r.ParseForm itself. The result and the error are ParseForm's:
// TestParseFormLikeNetHTTP and FuzzParseForm compare them; a body past
// MaxBodyBytes is a *http.MaxBytesError (LimitBody's, or this function's
// when the body was not limited), so the 413 stays.
func parseForm(r *http.Request) error {
	if r.PostForm != nil || r.Form != nil || r.Body == nil || r.URL.RawQuery != "" ||
		!strings.EqualFold(r.Header.Get("Content-Type"), formContentType) {
		return r.ParseForm()
	}
	var b []byte
	if n := r.ContentLength; n >= 0 && n < formPrealloc {
		// One allocation for a body of the announced length, with room
		// to see its end. A longer announced length is not trusted with
		// memory before the body arrives (readAtMost grows the buffer
		// with what does): an unauthenticated client announcing
		// MaxBodyBytes on many connections would hold that much each
		// for the server's read timeout.
		b = make([]byte, 0, n+1)
	} else {
		b = make([]byte, 0, 512) // io.ReadAll's first size
	}
	b, err := readAtMost(b, r.Body, MaxBodyBytes)
	if err != nil {
		r.PostForm, r.Form = url.Values{}, url.Values{}
		return err
	}
	vs, err := url.ParseQuery(string(b))
	r.PostForm, r.Form = vs, vs
	return err
}

// readAtMost appends what rd has, up to its end, to b; more than limit
// bytes is a *http.MaxBytesError.
func readAtMost(b []byte, rd io.Reader, limit int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// clientAuthConflict refuses a request that authenticates its client in
// more than one way (RFC 6749 §2.3: "MUST NOT use more than one
// authentication method in each request"). zitadel would let HTTP Basic
// silently override a client_id or client_secret of the body. A body
// client_id equal to the Basic one is allowed: it identifies, it does
// not authenticate (RFC 6749 §2.3.1 sends it only for client_secret_post,
// but many clients repeat it), and both name the same client.
func clientAuthConflict(r *http.Request) *oidc.Error {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return nil
	}
	scheme, _, _ := strings.Cut(authz, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return oidc.ErrInvalidRequest().WithDescription("client authentication uses HTTP Basic or the request body, nothing else")
	}
	id, _, ok := r.BasicAuth()
	if !ok {
		return oidc.ErrInvalidClient().WithDescription("malformed HTTP Basic credentials")
	}
	// RFC 6749 §2.3.1: the id is form-encoded inside Basic.
	id, err := url.QueryUnescape(id)
	if err != nil {
		return oidc.ErrInvalidClient().WithDescription("malformed HTTP Basic credentials")
	}
	for _, k := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if r.PostForm.Has(k) {
			return oidc.ErrInvalidRequest().WithDescription("the client authenticates with HTTP Basic and %s: one method per request", k)
		}
	}
	if r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != id {
		return oidc.ErrInvalidRequest().WithDescription("client_id in the body differs from the HTTP Basic one")
	}
	return nil
}

// methods answers 405 with Allow unless r's method is one of allowed;
// write renders the refusal in the endpoint's own format.
func methods(next http.Handler, write func(http.ResponseWriter, *http.Request), allowed ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m {
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		write(w, r)
	})
}

// corsOrigins is the set of origins CORS answers: those of the
// registered http(s) redirect URIs of every client (PRODUCT.md §13),
// computed once from the configuration. An origin of a loopback IP
// literal (http://127.0.0.1, http://[::1]) matches on any port, as its
// redirect URIs do (RFC 8252 §7.3, PRODUCT.md §4): the page that got
// the code on 127.0.0.1:53219 must be able to redeem it. localhost and
// every other host must match exactly, port included.
type corsOrigins struct {
	exact        map[string]bool
	loopbackHost map[string]bool // "127.0.0.1", "[::1]" — any port
}

func newCORSOrigins(clients map[string]*Client) corsOrigins {
	o := corsOrigins{exact: map[string]bool{}, loopbackHost: map[string]bool{}}
	for _, c := range clients {
		for _, ru := range c.cfg.RedirectURIs {
			origin, host, ok := originOf(ru)
			if !ok {
				continue
			}
			o.exact[origin] = true
			if strings.HasPrefix(origin, "http://") && loopbackIP(strings.Trim(host, "[]")) {
				o.loopbackHost[host] = true
			}
		}
	}
	return o
}

// originOf is the serialized origin (RFC 6454 §6.2) of an http(s) URL —
// scheme://host[:port], lower case, default port left out — and its host
// as it appears there ("[::1]" for IPv6).
func originOf(raw string) (origin, host string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host = strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	origin = scheme + "://" + host
	if port != "" {
		origin += ":" + port
	}
	return origin, host, true
}

// allowed reports whether a request's Origin header is one of the set.
// "null" (sandboxed frames, file: pages, redirected requests) never is.
func (o corsOrigins) allowed(origin string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	norm, host, ok := originOf(origin)
	// A browser sends the serialized origin exactly: anything else (a
	// path, upper case, a default port) is not one.
	if !ok || norm != origin {
		return false
	}
	if o.exact[norm] {
		return true
	}
	return strings.HasPrefix(norm, "http://") && o.loopbackHost[host]
}

// corsFor is CORS for an endpoint that uses no cookie: the registered
// origins only, never credentials (a browser sends the endpoint nothing
// ambient worth protecting, and the flag would let a page read answers
// made with the user's cookies if one were ever set). Preflights are
// answered 204, with the CORS headers only for an allowed origin and
// method; the actual request of another origin gets no CORS header, so
// the browser keeps its answer from the page.
func corsFor(o corsOrigins, allowedMethods ...string) func(http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginFunc: o.allowed,
		AllowedMethods:  allowedMethods,
		// Accept, Accept-Language and Content-Language are safelisted;
		// Content-Type is listed for form bodies with a charset.
		AllowedHeaders:   []string{"Authorization", "Content-Type"},
		AllowCredentials: false,
		MaxAge:           600,
	}).Handler
}

// serveUserinfo is the UserInfo endpoint's HTTP side (OIDC Core §5.3,
// RFC 6750). GET or POST (OIDC Core §5.3.1); the access token in the
// Authorization header or, with POST, the form body (RFC 6750 §2.1,
// §2.2), never in the URL (§2.3: it would end up in logs and Referer
// headers), and in only one of them (§2). Errors are Bearer challenges
// (RFC 6750 §3, OIDC Core §5.3.3): 401 invalid_token for a token that is
// not valid, 403 insufficient_scope without openid, 400 invalid_request
// for a malformed request, and a bare "Bearer" challenge when the
// request carries no token at all (§3.1). What a valid token gets is
// tokenServer.UserInfo's.
func serveUserinfo(ts *tokenServer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("access_token") {
			writeBearerError(w, r, invalidRequest("the access token goes in the Authorization header or a POST body, never in the URL"), http.StatusBadRequest)
			return
		}
		header := rs.BearerToken(r)
		var body []string
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				status := http.StatusBadRequest
				if BodyTooLarge(err) {
					status = http.StatusRequestEntityTooLarge
				}
				writeBearerError(w, r, invalidRequest("the request body is not a valid form of at most "+strconv.Itoa(MaxBodyBytes)+" bytes"), status)
				return
			}
			body = r.PostForm["access_token"]
		}
		switch {
		case len(body) > 1:
			writeBearerError(w, r, invalidRequest("access_token is given more than once"), http.StatusBadRequest)
			return
		case header != "" && len(body) == 1:
			writeBearerError(w, r, invalidRequest("the access token is sent in the header and in the body: one method per request"), http.StatusBadRequest)
			return
		case len(body) == 1:
			header = body[0]
		}
		if header == "" {
			w.Header().Set("WWW-Authenticate", rs.Challenge{}.String())
			e := oidc.ErrInvalidRequest().WithDescription("a bearer access token is required")
			e.ErrorType = rs.ErrInvalidToken
			oauthError(w, r, e, http.StatusUnauthorized)
			return
		}
		resp, err := ts.UserInfo(r.Context(), &zop.Request[oidc.UserInfoRequest]{
			Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form,
			Data: &oidc.UserInfoRequest{AccessToken: header},
		})
		if err != nil {
			var e *oidc.Error
			if errors.As(err, &e) && (e.ErrorType == rs.ErrInvalidToken || e.ErrorType == rs.ErrInsufficientScope) {
				setChallenge(w, e)
			}
			zop.WriteError(w, r, err, nil)
			return
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp.Data)
	}
}

func invalidRequest(desc string) *oidc.Error {
	return oidc.ErrInvalidRequest().WithDescription("%s", desc)
}

// setChallenge sets the WWW-Authenticate Bearer challenge for e.
func setChallenge(w http.ResponseWriter, e *oidc.Error) {
	ch := rs.Challenge{Error: string(e.ErrorType), Description: e.Description}
	if e.ErrorType == rs.ErrInsufficientScope {
		ch.Scope = oidc.ScopeOpenID
	}
	w.Header().Set("WWW-Authenticate", ch.String())
}

// writeBearerError answers with e both as the challenge and as the body.
func writeBearerError(w http.ResponseWriter, r *http.Request, e *oidc.Error, status int) {
	setChallenge(w, e)
	oauthError(w, r, e, status)
}

// basicChallenge adds the HTTP Basic challenge to a 401 answer (RFC 6749
// §5.2, RFC 7617 §2) of an endpoint whose client used Basic.
type basicChallenge struct {
	http.ResponseWriter
	wrote bool
}

func (b *basicChallenge) WriteHeader(status int) {
	if !b.wrote && status == http.StatusUnauthorized {
		b.Header().Set("WWW-Authenticate", `Basic realm="stepup", charset="UTF-8"`)
	}
	b.wrote = true
	b.ResponseWriter.WriteHeader(status)
}

func (b *basicChallenge) Write(p []byte) (int, error) {
	b.wrote = true
	return b.ResponseWriter.Write(p)
}

func (b *basicChallenge) Unwrap() http.ResponseWriter { return b.ResponseWriter }
