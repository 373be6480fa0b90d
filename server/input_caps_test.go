package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/server/op"
)

// Issue 13 item 3: /authorize stored state, nonce, login_hint, acr_values,
// ui_locales and claims without a cap (a 9 MB state put 10 MB in Redis
// for 30 minutes). Each cap of PRODUCT.md §13: at the limit the flow is
// stored and the login page shown; one byte (or one value) over, the RP
// gets invalid_request (with iss, and its state unless the state is what
// is too long) and the request never reached Redis — so nothing of it
// was stored.
func TestAuthorizeInputCaps(t *testing.T) {
	e, n := countingEnv(t)
	r := e.rp("spa", "")
	pad := func(k int) string { return strings.Repeat("a", k) }
	values := func(count, size int) string {
		vs := make([]string, count)
		for i := range vs {
			vs[i] = fmt.Sprintf("%0*d", size, i)
		}
		return strings.Join(vs, " ")
	}
	// claims of exactly k bytes: an acr request plus a padded claim name.
	claims := func(k int) string {
		head, tail := `{"id_token":{"acr":{"values":["`+oneFA+`"]},"`, `":null}}`
		return head + strings.Repeat("x", k-len(head)-len(tail)) + tail
	}
	claimsACRs := func(count int) string {
		vs := make([]string, count)
		for i := range vs {
			vs[i] = fmt.Sprintf("%q", fmt.Sprint(i))
		}
		return `{"id_token":{"acr":{"values":[` + strings.Join(vs, ",") + `]}}}`
	}
	for _, tc := range []struct {
		name        string
		param       string
		atLimit     string
		over        string
		stateEchoed bool
	}{
		{"state 512 bytes", "state", pad(op.MaxStateBytes), pad(op.MaxStateBytes + 1), false},
		{"nonce 512 bytes", "nonce", pad(op.MaxNonceBytes), pad(op.MaxNonceBytes + 1), true},
		{"login_hint 256 bytes", "login_hint", pad(op.MaxLoginHintBytes), pad(op.MaxLoginHintBytes + 1), true},
		{"acr_values 16 values", "acr_values", values(op.MaxACRValues, 8), values(op.MaxACRValues+1, 8), true},
		{"acr_values 256 bytes each", "acr_values", values(op.MaxACRValues, op.MaxACRValueBytes), pad(op.MaxACRValueBytes + 1), true},
		{"claims 4 KB", "claims", claims(op.MaxClaimsBytes), claims(op.MaxClaimsBytes + 1), true},
		{"claims 16 acr values", "claims", claimsACRs(op.MaxACRValues), claimsACRs(op.MaxACRValues + 1), true},
		{"ui_locales 8 tags", "ui_locales", values(op.MaxUILocales, 2), values(op.MaxUILocales+1, 2), true},
		{"ui_locales 35 bytes a tag", "ui_locales", pad(op.MaxUILocaleBytes), pad(op.MaxUILocaleBytes + 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// At the limit: a flow is stored, holding the value.
			a := r.authURL(map[string]string{tc.param: tc.atLimit})
			if tc.param == "state" {
				a = r.authURL(nil)
				a.state = tc.atLimit
				a.url = setParam(t, a.url, "state", tc.atLimit)
			}
			n.Store(0)
			p := e.browser().get(a.url)
			if p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, op.PathLoginPrefix) {
				t.Fatalf("at the limit: status %d at %s:\n%s", p.status, p.url, excerpt(p.body))
			}
			if n.Load() == 0 {
				t.Fatal("at the limit: no flow was stored")
			}
			flow, err := e.store().GetFlow(context.Background(), strings.TrimPrefix(p.url.Path, op.PathLoginPrefix))
			if err != nil {
				t.Fatalf("at the limit: the flow: %v", err)
			}
			if len(flow) > 16<<10 {
				t.Fatalf("at the limit: a flow of %d bytes", len(flow))
			}

			// Over: invalid_request on the redirect URI, and not one round
			// trip to Redis.
			a = r.authURL(nil)
			a.url = setParam(t, a.url, tc.param, tc.over)
			n.Store(0)
			res := e.browser().get(a.url).result(t)
			if res.err != "invalid_request" || res.iss != e.issuer || res.code != "" {
				t.Fatalf("over the limit: %+v", res)
			}
			if wantState := map[bool]string{true: a.state, false: ""}[tc.stateEchoed]; res.state != wantState {
				t.Fatalf("over the limit: state %.40q echoed, want %.40q", res.state, wantState)
			}
			if got := n.Load(); got != 0 {
				t.Fatalf("over the limit: %d Redis round trips, want none", got)
			}
		})
	}
}

// setParam replaces one query parameter of an authorization URL.
func setParam(t *testing.T, raw, name, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// A form body is read no further than op.MaxBodyBytes anywhere: the
// 9 MB state of the report, sent as a POST to /authorize, is refused
// with 413 before Redis is asked anything; a POST of a request within
// the caps works.
func TestAuthorizeBodyCap(t *testing.T) {
	e, n := countingEnv(t)
	r := e.rp("spa", "")
	post := func(form url.Values) *page {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+op.PathAuthorize, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return e.browser().do(req)
	}
	a := r.authURL(nil)
	u, _ := url.Parse(a.url)
	form := u.Query()
	n.Store(0)
	if p := post(form); p.status != http.StatusOK || !strings.HasPrefix(p.url.Path, op.PathLoginPrefix) {
		t.Fatalf("POST /authorize: status %d at %s", p.status, p.url)
	}
	form.Set("state", strings.Repeat("s", 9<<20))
	n.Store(0)
	if p := post(form); p.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 9 MB POST /authorize: status %d, want 413", p.status)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("a 9 MB POST /authorize: %d Redis round trips, want none", got)
	}
}

// The other doors to the store: the API's complete keeps a nonce in its
// code and compares acr values with the ladder (the caps of /authorize);
// its JSON bodies, and the token endpoint's forms, stop at
// op.MaxBodyBytes; end_session does not echo an oversized state.
func TestOtherInputCaps(t *testing.T) {
	e := apiEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:authn")
	path := "/api/v1/authn/sessions/" + e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "alice"}).want(t, "start", 201, "").str("id")
	e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password", 200, "")
	verifier := oauth2.GenerateVerifier()
	complete := func(extra map[string]any) apiResp {
		body := map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "redirect_uri": rpCallback}
		for k, v := range extra {
			body[k] = v
		}
		return e.api("POST", path+"/complete", tok, body)
	}
	complete(map[string]any{"nonce": strings.Repeat("n", op.MaxNonceBytes+1)}).want(t, "nonce over the cap", 400, "invalid_request")
	complete(map[string]any{"acr_values": strings.Repeat(oneFA+" ", op.MaxACRValues+1)}).want(t, "17 acr values", 400, "invalid_request")
	complete(map[string]any{"acr_values": strings.Repeat("a", op.MaxACRValueBytes+1)}).want(t, "a 257-byte acr value", 400, "invalid_request")
	complete(map[string]any{"nonce": strings.Repeat("n", op.MaxBodyBytes)}).want(t, "a body over the cap", 413, "invalid_request")
	nonce := strings.Repeat("n", op.MaxNonceBytes)
	code := complete(map[string]any{"nonce": nonce, "acr_values": strings.TrimSpace(strings.Repeat(oneFA+" ", op.MaxACRValues))}).want(t, "at the caps", 200, "").str("code")

	// The token endpoint reads no body past the cap either.
	status, body := e.postForm(op.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {rpCallback}, "pad": {strings.Repeat("p", op.MaxBodyBytes)}}, "bank", bankSecret)
	if status < 400 || status >= 500 || body["access_token"] != nil {
		t.Fatalf("a token request over the body cap: %d %v", status, body)
	}
	status, body = e.exchangeCode("bank", bankSecret, code, verifier)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, body)
	}
	if c := e.idClaims("bank", body["id_token"]); c.Nonce != nonce {
		t.Fatalf("nonce at the cap: %q", c.Nonce)
	}

	// end_session: a state at the cap comes back, one byte more is refused
	// without a redirect.
	b := e.browser()
	bye := "http://127.0.0.1:9/bye"
	logout := func(state string) *page {
		return b.get(e.issuer + op.PathEndSession + "?" + url.Values{"client_id": {"spa"}, "post_logout_redirect_uri": {bye}, "state": {state}}.Encode())
	}
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if p := logout(strings.Repeat("s", op.MaxStateBytes)); p.loc == nil || p.loc.Query().Get("state") != strings.Repeat("s", op.MaxStateBytes) {
		t.Fatalf("end_session with a state at the cap: status %d loc %v", p.status, p.loc)
	}
	if p := logout(strings.Repeat("s", op.MaxStateBytes+1)); p.status != http.StatusBadRequest || p.loc != nil {
		t.Fatalf("end_session with a state over the cap: status %d loc %v", p.status, p.loc)
	}
}
