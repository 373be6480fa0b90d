package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server/demo"
)

// words is the text content of n, whitespace collapsed.
func words(n *html.Node) string { return strings.Join(strings.Fields(textOf(n)), " ") }

// first returns the first element matching sel, failing when none does.
func first(t *testing.T, p *page, what string, sel func(*html.Node) bool) *html.Node {
	t.Helper()
	ns := find(p.doc, sel)
	if len(ns) == 0 {
		t.Fatalf("no %s on the page (status %d):\n%s", what, p.status, excerpt(p.body))
	}
	return ns[0]
}

func isElem(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == name }
}

// Issue 15 item 7, lockout: the 429 page says when signing in works
// again (as Retry-After does), and its form is disabled until then.
func TestUXLockoutSaysWhen(t *testing.T) {
	e := newEnv(t, nil) // lockout: 5 failures, 15 minutes
	b, r := e.browser(), e.rp("spa", "")
	p := b.get(r.authURL(nil).url)
	for range 5 {
		p = b.login(p, "alice", "wrong password")
	}
	p = b.login(p, "alice", alicePass)
	wantAlert(t, p, http.StatusTooManyRequests, "locked")
	alert := words(first(t, p, "alert", hasAttr("role", "alert")))
	until := e.clock.Now().Add(15 * 60e9).UTC().Format("15:04")
	if !strings.Contains(alert, "15 minutes") || !strings.Contains(alert, until+" UTC") || strings.Contains(alert, "a while") {
		t.Errorf("the lockout alert does not say when (want 15 minutes, until %s UTC): %q", until, alert)
	}
	if v, _ := attr(first(t, p, "main", isElem("main")), "data-status"); v != "locked" {
		t.Errorf("main data-status = %q, want locked", v)
	}
	fs := first(t, p, "fieldset", isElem("fieldset"))
	if _, disabled := attr(fs, "disabled"); !disabled {
		t.Error("the sign-in form is not disabled while locked")
	}
	// The way out while locked: forgot password.
	if href, _ := attr(first(t, p, "forgot link", hasAttr("data-action", "forgot")), "href"); href == "" {
		t.Error("the locked page offers no forgot-password link")
	}
}

// Issue 15 item 7: a wrong password keeps the typed username.
func TestUXWrongPasswordKeepsUsername(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	p := b.login(b.get(r.authURL(nil).url), "bob", "wrong password")
	wantAlert(t, p, http.StatusUnauthorized, "wrong password")
	in := first(t, p, "username input", hasAttr("name", "username"))
	if v, _ := attr(in, "value"); v != "bob" {
		t.Errorf("username after a wrong password = %q, want bob", v)
	}
	// Unknown users too (no enumeration: the page is the same).
	p = b.login(p, "nobody-here", "x")
	if v, _ := attr(first(t, p, "username input", hasAttr("name", "username")), "value"); v != "nobody-here" {
		t.Errorf("username after an unknown user = %q", v)
	}
}

// Issue 15 item 7, sign-out: GET /logout (the README's link) shows the
// confirmation, naming the account; "Stay signed in" goes to a page, not
// to discovery JSON; the signed-out page has a way forward.
func TestUXLogoutPage(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	signIn(t, e, b, r, nil, "bob", bobPass)
	p := b.get(e.issuer + "/logout")
	if p.status != http.StatusOK {
		t.Fatalf("GET /logout: status %d:\n%s", p.status, excerpt(p.body))
	}
	if got := words(first(t, p, "account name", hasAttr("data-username", ""))); got != "bob" {
		t.Errorf("the confirmation names %q, want bob", got)
	}
	stay, _ := attr(first(t, p, "stay link", hasAttr("data-action", "stay")), "href")
	if sp := b.get(e.issuer + stay); sp.status != http.StatusOK || !strings.Contains(sp.body, "<html") || strings.Contains(sp.body, `"issuer"`) {
		t.Errorf("Stay signed in (%s) lands on status %d:\n%s", stay, sp.status, excerpt(sp.body))
	}
	out := b.submit(p, p.form(t, func(n *html.Node) bool { v, _ := attr(n, "action"); return v == "/logout" }), nil)
	if out.status != http.StatusOK || !strings.Contains(out.body, "You are signed out") {
		t.Fatalf("after signing out: status %d:\n%s", out.status, excerpt(out.body))
	}
	next, _ := attr(first(t, out, "way forward", hasAttr("data-action", "continue")), "href")
	if next != "/account" {
		t.Errorf("signed-out page leads to %q, want /account", next)
	}
	// Signed out: /account asks to sign in again.
	if p := b.get(e.issuer + next); len(find(p.doc, hasAttr("autocomplete", "current-password"))) == 0 {
		t.Errorf("the way forward does not lead to sign-in:\n%s", excerpt(p.body))
	}
}

// logBuffer collects what the server logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Issue 15 item 7, error pages: a heading in words, a reference id that
// is also logged, a way back; 404 and 405 are the same styled page (with
// a viewport) for browsers, plain for API clients.
func TestUXErrorPages(t *testing.T) {
	logs := &logBuffer{}
	e := newEnvWith(t, envOptions{log: slog.New(slog.NewTextHandler(logs, nil))})
	get := func(path, accept string) (*http.Response, *page) {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		b := e.browser()
		p := b.do(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, p
	}
	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, tc := range []struct {
		name, path string
		status     int
		heading    string
	}{
		{"bad request", "/authorize", http.StatusBadRequest, "This request can't be used"},
		{"404", "/no/such/page", http.StatusNotFound, "Page not found"},
		{"405", "/login/x/password", http.StatusMethodNotAllowed, "This page can't be opened this way"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, p := get(tc.path, browserAccept)
			if p.status != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d (want %d), Content-Type %q", p.status, tc.status, resp.Header.Get("Content-Type"))
			}
			if h := words(first(t, p, "h1", isElem("h1"))); h != tc.heading || strings.Contains(p.body, http.StatusText(tc.status)+"</h1>") {
				t.Errorf("heading %q, want %q", h, tc.heading)
			}
			if len(find(p.doc, hasAttr("name", "viewport"))) != 1 || len(find(p.doc, hasAttr("rel", "stylesheet"))) != 1 {
				t.Error("no viewport or stylesheet")
			}
			ref := words(first(t, p, "reference id", hasAttr("data-error-ref", "")))
			if len(ref) != 8 || !strings.Contains(logs.String(), "ref="+ref) {
				t.Errorf("reference %q not shown or not logged:\n%s", ref, logs.String())
			}
			if back, _ := attr(first(t, p, "way back", hasAttr("data-action", "back")), "href"); back == "" {
				t.Error("no way back")
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// An API client keeps the plain answer.
	if resp, p := get("/no/such/page", "application/json"); p.status != http.StatusNotFound || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("API 404: status %d, Content-Type %q", p.status, resp.Header.Get("Content-Type"))
	}
}

// Issue 15 item 7: step-up pages say who is signed in, with a way out;
// "Skip for now" says what skipping does where it can only fail.
func TestUXStepUpPages(t *testing.T) {
	e := newEnv(t, nil)
	r := e.rp("spa", "")
	// Voluntary: skipping signs in at the level reached.
	b := e.browser()
	p := b.login(b.get(r.authURL(map[string]string{"acr_values": mfaACR}).url), "bob", bobPass)
	if who := find(p.doc, hasAttr("data-signed-in-as", "")); len(who) != 1 || words(who[0]) != "bob" {
		t.Fatalf("no \"Signed in as bob\" on the enrollment page:\n%s", excerpt(p.body))
	}
	skip := first(t, p, "skip", hasAttr("data-action", "cancel"))
	if words(skip) != "Skip for now" || len(find(p.doc, hasAttr("id", "skip-note"))) != 0 {
		t.Errorf("voluntary enrollment: skip control %q", words(skip))
	}
	if res := b.cancel(p).result(t); res.code == "" {
		t.Fatalf("skipping a voluntary enrollment: %+v", res)
	}

	// "Not you?" signs bob out and goes on with the same request at the
	// password form: alice signs in and the request completes for her.
	b = e.browser()
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p = b.login(b.get(a.url), "bob", bobPass)
	p = b.submit(p, p.form(t, func(n *html.Node) bool { return len(find(n, hasAttr("data-action", "not-you"))) > 0 }), nil)
	if p.status != http.StatusOK || len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 || len(find(p.doc, hasAttr("data-signed-in-as", ""))) != 0 {
		t.Fatalf("after Not you?: status %d, want the password form of the same request:\n%s", p.status, excerpt(p.body))
	}
	p = b.code(b.login(p, "alice", alicePass), "totp", e.totpCode(aliceTOTP))
	tk := r.mustExchange(a, p.result(t))
	if tk.claims.ACR != mfaACR {
		t.Errorf("after switching to alice: acr %q", tk.claims.ACR)
	}
	// Essential: skipping can only fail, and the page says so.
	b = e.browser()
	claims := `{"id_token":{"acr":{"essential":true,"values":["` + mfaACR + `"]}}}`
	p = b.login(b.get(r.authURL(map[string]string{"claims": claims}).url), "bob", bobPass)
	skip = first(t, p, "skip", hasAttr("data-action", "cancel"))
	note := words(first(t, p, "skip note", hasAttr("id", "skip-note")))
	if words(skip) != "Cancel sign-in" || !strings.Contains(note, "without being signed in") {
		t.Errorf("essential enrollment: skip control %q, note %q", words(skip), note)
	}
	if res := b.cancel(p).result(t); res.err != "unmet_authentication_requirements" {
		t.Fatalf("cancelling an essential enrollment: %+v", res)
	}
}

// Issue 15 item 7, /account: sessions name their device and application;
// "Remove" is a destructive control distinct from "Replace".
func TestUXAccountSessions(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "spa" {
				c.Clients[i].Name = "Acme Web"
			}
		}
	})
	b, r := e.browser(), e.rp("spa", "")
	b.header = http.Header{"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}}
	signIn(t, e, b, r, nil, "alice", alicePass)
	p := b.get(e.issuer + "/account")
	cur := first(t, p, "current session", hasAttr("data-current", ""))
	if got := words(cur); !strings.Contains(got, "Firefox on Linux") || !strings.Contains(got, "used by Acme Web") {
		t.Errorf("session row %q: want its device and the application's name", got)
	}
	for _, n := range find(p.doc, hasAttr("data-action", "remove-totp")) {
		if c, _ := attr(n, "class"); !strings.Contains(c, "danger") {
			t.Errorf("Remove is styled %q, want danger", c)
		}
	}
}

// demoEnv is an issuer with the demo relying party mounted on /demo/ and
// its client registered, as stepupd's demo mode runs it.
func demoEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, envOptions{
		mutate: func(c *config.Config) {
			c.Clients = append(c.Clients, config.Client{ID: "demo", Public: true, RedirectURIs: []string{c.Issuer + "/demo/callback"}, GrantTypes: []string{"authorization_code"}})
		},
		mount: func(issuer string) func(*http.ServeMux) { return demo.Mount(issuer, "demo", issuer+"/demo/callback") },
	})
}

// Issue 15 item 7, demo page: a cancelled step-up does not look like
// success; the page says what was asked for and what came back.
func TestUXDemoCancelledStepUp(t *testing.T) {
	e := demoEnv(t)
	b := e.browser()
	p := b.login(b.get(e.issuer+"/demo/login"), "bob", bobPass)
	if p.status != http.StatusOK || len(find(p.doc, hasAttr("data-claim", "acr"))) != 1 || len(find(p.doc, hasAttr("data-acr-mismatch", ""))) != 0 {
		t.Fatalf("plain sign-in on the demo: status %d:\n%s", p.status, excerpt(p.body))
	}
	// Step up, but skip the enrollment offered (voluntary): the demo is
	// signed in at 1fa and says it is not what it asked for.
	p = b.get(e.issuer + "/demo/login?acr=mfa")
	if len(find(p.doc, hasAttr("data-action", "cancel"))) == 0 {
		t.Fatalf("no skip on the enrollment offer:\n%s", excerpt(p.body))
	}
	p = b.cancel(p)
	m := find(p.doc, hasAttr("data-acr-mismatch", ""))
	if len(m) != 1 || !strings.Contains(words(m[0]), "asked for "+mfaACR+", got "+oneFA) {
		t.Fatalf("a cancelled step-up on the demo page (status %d):\n%s", p.status, excerpt(p.body))
	}
}

// Issue 15 item 3: the signed-in step-up pages link to /account beside
// "Not you?", in the page's language; /account's own verification does
// not (it is on the way there).
func TestUXStepUpPagesLinkToAccount(t *testing.T) {
	e := newEnv(t, nil)
	r := e.rp("spa", "")
	for _, tc := range []struct{ lang, text string }{{"", "Account"}, {"de", "Konto"}} {
		b := e.browser()
		q := map[string]string{"acr_values": mfaACR}
		if tc.lang != "" {
			q["ui_locales"] = tc.lang
		}
		p := b.login(b.get(r.authURL(q).url), "bob", bobPass)
		who := first(t, p, "whoami", func(n *html.Node) bool { return n.Data == "div" && hasAttr("class", "whoami")(n) })
		link := find(who, func(n *html.Node) bool { return n.Data == "a" && hasAttr("data-action", "account")(n) })
		if len(link) != 1 || words(link[0]) != tc.text {
			t.Fatalf("%q: no %q link in the signed-in line:\n%s", tc.lang, tc.text, excerpt(p.body))
		}
		if href, _ := attr(link[0], "href"); href != "/account" {
			t.Fatalf("%q: Account link to %q", tc.lang, href)
		}
		acct := b.follow(p, "account")
		if acct.status != http.StatusOK || !strings.HasPrefix(acct.url.Path, "/account") && !strings.HasPrefix(acct.url.Path, "/login/") {
			t.Fatalf("%q: following Account: %d at %s", tc.lang, acct.status, acct.url)
		}
		if acct.has(hasAttr("data-action", "account")) {
			t.Fatalf("%q: /account (or its verification) links to itself:\n%s", tc.lang, excerpt(acct.body))
		}
	}
}
