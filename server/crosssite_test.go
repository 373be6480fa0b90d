package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/server/op"
)

// withheld is a cookie jar as a browser uses it for a top-level POST that
// another site's page makes: stepup's cookies are all SameSite=Lax, so
// none is sent (RFC 6265bis §5.8.3; Chrome's "Lax+POST" leeway is only
// for cookies without a SameSite attribute), while the cookies the answer
// sets are stored as for any top-level navigation.
type withheld struct{ http.CookieJar }

func (withheld) Cookies(*url.URL) []*http.Cookie { return nil }

// crossSitePost submits form to u the way another site's page does in
// b, and returns the first answer.
func (b *browser) crossSitePost(u string, form url.Values) *page {
	b.t.Helper()
	saved := b.c
	b.c = &http.Client{Jar: withheld{saved.Jar}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer func() { b.c = saved }()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://rp.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	return b.do(req)
}

// within follows p's redirects as long as they stay on the issuer (the
// browser's own cookies go with them), and stops at the first answer
// that leaves it.
func (b *browser) within(p *page) *page {
	b.t.Helper()
	saved := b.c.CheckRedirect
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), b.e.issuer+"/") || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer func() { b.c.CheckRedirect = saved }()
	for p.loc != nil && strings.HasPrefix(p.loc.String(), b.e.issuer+"/") {
		p = b.get(p.loc.String())
	}
	return p
}

// RP-Initiated Logout 1.0 §2 lets an RP send the logout request by POST,
// which from the RP's site is a cross-site POST: the browser sends no
// session cookie with it. end_session then saw no session: with a valid
// id_token_hint it told the RP the user was signed out and cleared the
// browser's cookie, but the session lived on (a copied cookie still held
// it, and every RP's online refresh token with it); without a hint it
// signed the user out of the browser without the confirmation that keeps
// another site from doing so.
func TestPostedLogoutEndsTheSession(t *testing.T) {
	e := newEnv(t, nil)
	bye := "http://127.0.0.1:9/bye"
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(nil)
	tk := r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t))
	copied := b.sessionCookie()

	p := b.within(b.crossSitePost(e.issuer+op.PathEndSession, url.Values{
		"id_token_hint": {tk.idToken}, "post_logout_redirect_uri": {bye}, "state": {"s1"},
	}))
	if p.loc == nil || !strings.HasPrefix(p.loc.String(), bye) || p.loc.Query().Get("state") != "s1" {
		t.Fatalf("posted logout with an ID token: status %d, location %v; want the post-logout redirect with its state", p.status, p.loc)
	}
	if list, err := e.store().ListSessions(t.Context(), tk.claims.Sub); err != nil || len(list) != 0 {
		t.Fatalf("after the posted logout alice has %d sessions (%v), want none", len(list), err)
	}
	if signedIn(t, e.browserWith(copied), r) {
		t.Fatal("a copy of the cookie still holds the session after the posted logout")
	}

	// Without an ID token the user confirms first, and stays signed in
	// until they do.
	b = e.browser()
	a = r.authURL(nil)
	r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t))
	p = b.within(b.crossSitePost(e.issuer+op.PathEndSession, url.Values{"client_id": {"spa"}, "post_logout_redirect_uri": {bye}}))
	if p.status != http.StatusOK || len(find(p.doc, hasAttr("action", op.PathLogoutConfirm))) != 1 {
		t.Fatalf("posted logout without an ID token: status %d, location %v; want the confirmation page:\n%s", p.status, p.loc, excerpt(p.body))
	}
	if !signedIn(t, b, r) {
		t.Fatal("another site's posted logout signed the user out without confirmation")
	}
	// Nor when it is padded past what fits in a URL.
	p = b.within(b.crossSitePost(e.issuer+op.PathEndSession, url.Values{"client_id": {"spa"}, "logout_hint": {strings.Repeat("p", 9<<10)}}))
	if p.status != http.StatusBadRequest || !signedIn(t, b, r) {
		t.Fatalf("a padded posted logout: status %d, location %v; want 400 and the user still signed in", p.status, p.loc)
	}
}

// OIDC Core §3.1.2.1 lets an RP send the authorization request by POST,
// a cross-site POST that carries none of the browser's cookies. The
// request minted a new flow binding and overwrote the browser's: every
// sign-in pending in the browser's other tabs then answered "started in
// another browser".
func TestPostedAuthorizeKeepsTheBrowsersPendingSignIns(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	first := r.authURL(nil)
	p := b.get(first.url)
	link := p.url.String()
	if p.status != http.StatusOK || !strings.Contains(link, op.PathLoginPrefix) {
		t.Fatalf("authorize: status %d at %s", p.status, link)
	}

	// Another tab: an RP posts its authorization request.
	second := r.authURL(nil)
	u, _ := url.Parse(second.url)
	form := u.Query()
	form.Set("client_secret", "not-for-a-url") // sent by mistake
	u.RawQuery = ""
	q := b.crossSitePost(u.String(), form)
	if q.loc != nil && strings.Contains(q.loc.String(), "not-for-a-url") {
		t.Fatalf("a posted parameter that is not the request's went into a URL: %s", q.loc)
	}
	q = b.within(q)
	if q.status != http.StatusOK || !strings.Contains(q.url.Path, op.PathLoginPrefix) {
		t.Fatalf("posted authorize: status %d at %s, location %v", q.status, q.url, q.loc)
	}

	// The first tab's sign-in goes on, and so does the second's.
	p = b.get(link)
	if p.status != http.StatusOK {
		t.Fatalf("the first tab's sign-in after a posted authorization request: status %d:\n%s", p.status, excerpt(p.body))
	}
	if tk := r.mustExchange(first, b.login(p, "alice", alicePass).result(t)); tk.claims.Sub == "" {
		t.Fatal("no subject")
	}
	if tk := r.mustExchange(second, b.get(q.url.String()).result(t)); tk.claims.Sub == "" {
		t.Fatal("no subject")
	}
}
