package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/html"
)

// maxBody bounds what the tool reads of a response: every page and JSON
// document of both servers is a few KiB.
const maxBody = 1 << 20

// loopbackDial only ever connects to 127.0.0.1. "localhost" is pinned to
// 127.0.0.1 so the zitadel example (whose issuer is http://localhost:PORT/)
// is reached over IPv4 loopback like stepupd, and a typo in -issuer cannot
// turn the tool against another machine.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("refusing to connect to %s: the bench only talks to loopback", addr)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp4", net.JoinHostPort(host, port))
}

// countingTransport counts HTTP round trips so the report can show how
// many requests one operation costs (redirect hops included).
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

func newTransport(conns int, lb *balancer) *countingTransport {
	dial := loopbackDial
	if lb != nil {
		dial = lb.dial
	}
	return &countingTransport{next: &http.Transport{
		DialContext: dial,
		// Every virtual user shares the pool; without enough idle slots
		// the client would close and reopen connections, measuring TCP
		// setup and exhausting ephemeral ports instead of the server.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// vu is one virtual user: a browser with its own cookie jar that follows
// the provider's redirects but stops at the relying party's redirect URI
// (which is never contacted) so the code can be read from Location.
type vu struct {
	c *http.Client
	b *bench
}

func (b *bench) newVU() *vu {
	jar, _ := cookiejar.New(nil)
	rp := b.redirectURI
	return &vu{b: b, c: &http.Client{
		Transport: b.tr,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), rp) {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("more than 10 redirects")
			}
			return nil
		},
	}}
}

// page is a fetched response. loc is set when the browser stopped at the
// relying party.
type page struct {
	status int
	url    *url.URL
	loc    *url.URL
	body   []byte
	doc    *html.Node // parsed lazily by html()
}

func (v *vu) do(ctx context.Context, step string, req *http.Request) (*page, error) {
	resp, err := v.c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, stepErr(step, "transport", "%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, stepErr(step, "transport", "reading body: %v", err)
	}
	p := &page{status: resp.StatusCode, url: resp.Request.URL, body: body}
	if resp.StatusCode/100 == 3 {
		if loc, err := resp.Location(); err == nil && strings.HasPrefix(loc.String(), v.b.redirectURI) {
			p.loc = loc
		}
	}
	return p, nil
}

func (v *vu) get(ctx context.Context, step, u string) (*page, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, stepErr(step, "bad url", "%v", err)
	}
	return v.do(ctx, step, req)
}

// post submits a form as a browser would, including the Origin header that
// Go's CrossOriginProtection inspects.
func (v *vu) post(ctx context.Context, step, u string, form url.Values) (*page, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, stepErr(step, "bad url", "%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	return v.do(ctx, step, req)
}

func (p *page) html() *html.Node {
	if p.doc == nil {
		p.doc, _ = html.Parse(bytes.NewReader(p.body))
		if p.doc == nil {
			p.doc = &html.Node{Type: html.DocumentNode}
		}
	}
	return p.doc
}

// unexpected turns a page that is not what the flow expected into an
// error whose kind carries the status, and whose detail carries the alert
// (or title) so the sample error says what the server complained about.
func (p *page) unexpected(step, want string) error {
	what := ""
	if n := first(p.html(), hasAttr("role", "alert")); n != nil {
		what = text(n)
	} else if n := first(p.html(), func(n *html.Node) bool { return n.Data == "title" }); n != nil {
		what = text(n)
	}
	if what == "" {
		what = excerpt(string(p.body), 200)
	}
	return stepErr(step, fmt.Sprintf("status %d", p.status), "want %s, got status %d at %s: %s", want, p.status, p.url, what)
}

// --- tiny HTML helpers (the pages are small; a tree walk is cheap) ---

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, key); return ok && v == val }
}

// hasToken matches an attribute holding val among space-separated tokens,
// e.g. autocomplete="username webauthn".
func hasToken(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		v, _ := attr(n, key)
		for _, f := range strings.Fields(v) {
			if f == val {
				return true
			}
		}
		return false
	}
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func first(n *html.Node, match func(*html.Node) bool) *html.Node {
	if all := findAll(n, match); len(all) > 0 {
		return all[0]
	}
	return nil
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// formWith returns the form that is, or contains, an element matching sel.
func formWith(doc *html.Node, sel func(*html.Node) bool) *html.Node {
	for _, f := range findAll(doc, func(n *html.Node) bool { return n.Data == "form" }) {
		if sel(f) || first(f, sel) != nil {
			return f
		}
	}
	return nil
}

// formFields returns the form's absolute action URL and its hidden inputs
// (csrf_token on stepup, the auth request id on the zitadel example).
func formFields(p *page, form *html.Node) (string, url.Values, error) {
	action, _ := attr(form, "action")
	a, err := url.Parse(action)
	if err != nil {
		return "", nil, err
	}
	v := url.Values{}
	for _, in := range findAll(form, func(n *html.Node) bool { return n.Data == "input" }) {
		if t, _ := attr(in, "type"); t == "hidden" {
			name, _ := attr(in, "name")
			val, _ := attr(in, "value")
			v.Set(name, val)
		}
	}
	return p.url.ResolveReference(a).String(), v, nil
}

// inputName is the name of the form's input matching sel (found by its
// stable hook, not by a guessed name).
func inputName(form *html.Node, sel func(*html.Node) bool) string {
	if n := first(form, func(n *html.Node) bool { return n.Data == "input" && sel(n) }); n != nil {
		name, _ := attr(n, "name")
		return name
	}
	return ""
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// balancer spreads the connections to the issuer's host:port over several
// stepupd instances (-backends), as a TCP load balancer would: each new
// connection goes to the next instance, and one that refuses the
// connection (stopped, restarting) is skipped for the next. A request
// already sent to an instance that dies is not retried: the bench counts
// it as the error a user behind a real balancer would see.
type balancer struct {
	front    string // host:port of the issuer
	backends []string
	next     atomic.Uint64
}

func (lb *balancer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != lb.front {
		return loopbackDial(ctx, network, addr)
	}
	start := lb.next.Add(1)
	var err error
	for i := range uint64(len(lb.backends)) {
		var c net.Conn
		if c, err = loopbackDial(ctx, network, lb.backends[(start+i)%uint64(len(lb.backends))]); err == nil {
			return c, nil
		}
	}
	return nil, err
}
