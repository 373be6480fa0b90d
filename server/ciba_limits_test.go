package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// createAccount writes an account straight into the account database, as
// stepupd import (or SCIM) does at runtime: the configuration never
// heard of it.
func (e *env) createAccount(t *testing.T, username, email string) *account.Record {
	t.Helper()
	r, err := e.accounts().Create(t.Context(), &account.Record{
		Account: session.Account{Subject: "sub-" + username, Username: username, Email: email},
		Active:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A login_hint that is an email finds the account in the account store,
// ignoring case, also when the account was created at runtime; an
// unknown email is unknown_user_id.
func TestCIBALoginHintEmailFromStore(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, ""))
	rp := e.cibaRP(t, "teller", tellerSecret)
	e.createAccount(t, "imported", "Carol.Imported@Example.com")

	rp.start(url.Values{"login_hint": {"carol.imported@EXAMPLE.COM"}, "binding_message": {"Pay 5.00"}})
	if link := in.link("Carol.Imported@Example.com"); link == "" {
		t.Fatal("no approval link to the imported account")
	}
	// A configured user's email, in another case, still works.
	rp.start(url.Values{"login_hint": {"BOB@example.com"}})
	in.link("bob@example.com")

	for _, hint := range []string{"nobody@example.com", "carol.imported@example.org"} {
		if status, body := rp.post(rp.bcURL, url.Values{"scope": {"openid"}, "login_hint": {hint}}); status != http.StatusBadRequest || body["error"] != "unknown_user_id" {
			t.Errorf("login_hint %s: %d %v, want unknown_user_id", hint, status, body)
		}
	}
}

// withLongCIBA lets teller's requests live up to an hour.
func withLongCIBA(c *config.Config) {
	for i := range c.Clients {
		if c.Clients[i].ID == "teller" {
			c.Clients[i].CIBA.MaxExpiry = config.Duration(time.Hour)
		}
	}
}

// The approval flow lives as long as its request: a user who opens the
// link of an hour-long request and signs in 45 minutes later (past the
// 30 minutes of a sign-in flow) can still approve; once the request has
// expired, the flow it opened ends with it.
func TestCIBAApprovalFlowFollowsRequest(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, "", withLongCIBA))
	rp := e.cibaRP(t, "teller", tellerSecret)

	id, exp, _ := rp.start(url.Values{"login_hint": {"bob"}, "binding_message": {"Withdraw 10.00"}, "requested_expiry": {"3600"}})
	if exp != 3600 {
		t.Fatalf("expires_in %d, want 3600", exp)
	}
	b := e.browser()
	p := b.open(in.link("bob@example.com"))
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("approval link: %d\n%s", p.status, excerpt(p.body))
	}
	e.clock.Advance(45 * time.Minute)
	p = b.login(p, "bob", bobPass)
	wantApprovalPage(t, p, "Teller Bank", "Withdraw 10.00", oneFA)
	b.press(p, "approve")
	e.clock.Advance(time.Minute)
	if code, cl, _ := rp.poll(id); code != "" || cl.Sub == "" {
		t.Fatalf("poll after a late approval: %q", code)
	}

	// Never longer than the request: a two-minute request whose link was
	// opened cannot be approved after it expired.
	id, _, _ = rp.start(url.Values{"login_hint": {"bob"}, "requested_expiry": {"120"}})
	b = e.browser()
	p = b.open(in.link("bob@example.com"))
	if len(find(p.doc, hasAttr("autocomplete", "current-password"))) != 1 {
		t.Fatalf("approval link: %d\n%s", p.status, excerpt(p.body))
	}
	e.clock.Advance(121 * time.Second)
	p = b.login(p, "bob", bobPass)
	if p.status == http.StatusOK || len(find(p.doc, hasAttr("data-action", "approve"))) != 0 {
		t.Fatalf("sign-in after the request expired: %d\n%s", p.status, excerpt(p.body))
	}
	if code, _, _ := rp.poll(id); code != "expired_token" {
		t.Fatalf("poll after expiry: %q, want expired_token", code)
	}
}

// The per-client cap (docs/ciba.md): 600 requests per client in 10
// minutes, counted over all users; the 601st is 429 invalid_request with
// Retry-After and reaches nobody, while another client may still ask the
// same user.
func TestCIBAPerClientCap(t *testing.T) {
	const perClient = 600
	in := newInbox(t)
	e := newEnv(t, withCIBA(in, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "teller2", Name: "Second Bank", Secret: tellerSecret,
			GrantTypes: []string{cibaGrant}, CIBA: config.CIBA{Mode: "poll", MaxExpiry: config.Duration(5 * time.Minute)}})
	}))
	rp := e.cibaRP(t, "teller", tellerSecret)
	user := func(i int) string { return fmt.Sprintf("cap%03d", i) }
	s := e.accounts()
	for i := range perClient + 1 {
		if _, err := s.Create(t.Context(), &account.Record{Account: session.Account{Subject: "sub-" + user(i), Username: user(i), Email: user(i) + "@example.com"}, Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range perClient {
		rp.start(url.Values{"login_hint": {user(i)}})
	}
	last := user(perClient)
	req, _ := http.NewRequest(http.MethodPost, rp.bcURL, strings.NewReader(url.Values{"scope": {"openid"}, "login_hint": {last}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("teller", tellerSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("request %d of one client: %d (Retry-After %q), want 429 with Retry-After", perClient+1, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if status, body := rp.post(rp.bcURL, url.Values{"scope": {"openid"}, "login_hint": {last}}); status != http.StatusTooManyRequests || body["error"] != "invalid_request" {
		t.Fatalf("over the cap: %d %v, want 429 invalid_request", status, body)
	}
	if n := in.count(last + "@example.com"); n != 0 {
		t.Fatalf("a refused request sent %d messages", n)
	}
	// The cap is the client's, not the user's.
	e.cibaRP(t, "teller2", tellerSecret).start(url.Values{"login_hint": {last}})
	in.link(last + "@example.com")
}
