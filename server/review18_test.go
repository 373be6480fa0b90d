package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// A SCIM disable (PATCH active false, PUT active false) is complete when it
// returns, also when the account was already inactive in the database: a
// retry after a first call whose Redis half failed (503), or the second
// of two provisioning calls that raced, must end the sessions and grants
// too. Since single sign-on codes are no longer checked against the
// account at their exchange (op.Finish, codeData.Checked), a session left
// alive lets a code issued before the disable be exchanged after it
// returned; the tokens from before stayed active at introspection.
func TestSCIMDisableOfInactiveAccountEndsSessions(t *testing.T) {
	for _, c := range []struct{ name, method, body string }{
		{"PATCH", "PATCH", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`},
		{"PUT", "PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","active":false}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := scimEnv(t)
			scimTok := e.ccToken("bank", bankSecret, "stepup:scim")
			b, r := e.browser(), e.rp("spa", "")
			tk := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "alice", alicePass)
			// A single sign-on code issued while the account is active.
			a := r.authURL(nil)
			res := b.get(a.url).result(t)
			// The database half of a first disable landed, its Redis half
			// did not (the call answered 503; a write by hand, a failed
			// import line look the same).
			e.setActive(t, "alice", false)
			// The provisioning client retries; the call returns.
			e.scim(c.method, "/Users/"+e.subject("alice"), scimTok, c.body).wantSCIM(t, c.name, 200, "")
			if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Errorf("a code issued before the disable was exchanged after it returned: %v", err)
			}
			wantTokensEnded(t, e, "tokens from before the disable", tk)
		})
	}
}

// RFC 6749 §5.2: a client that authenticated with HTTP Basic and failed
// gets 401 invalid_client with a WWW-Authenticate challenge for the
// scheme it used — on the client_credentials fast path
// (server/op/cctoken.go), on zitadel's path (authorization_code) and at
// introspection; a client that sent its secret in the body gets the 401
// without a Basic challenge (it did not use the header).
func TestInvalidClientWithBasicAnswersChallenge(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		what, path string
		form       url.Values
		basic      bool
	}{
		{"client_credentials, Basic", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, true},
		{"client_credentials, unknown client, Basic", "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, true},
		{"authorization_code, Basic", "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpCallback}}, true},
		{"introspection, Basic", "/oauth/introspect", url.Values{"token": {"x"}}, true},
		{"client_credentials, body", "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"bank"}, "client_secret": {"wrong"}}, false},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+c.path, strings.NewReader(c.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.basic {
			id := "bank"
			if strings.Contains(c.what, "unknown") {
				id = "nobody"
			}
			req.SetBasicAuth(id, "wrong secret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", c.what, resp.StatusCode, body)
		}
		ch := resp.Header.Get("WWW-Authenticate")
		if c.basic && !strings.HasPrefix(ch, "Basic ") {
			t.Errorf("%s: WWW-Authenticate %q, want a Basic challenge (RFC 6749 §5.2)", c.what, ch)
		}
		if !c.basic && ch != "" {
			t.Errorf("%s: WWW-Authenticate %q for a client that did not use Basic", c.what, ch)
		}
	}
}

// disableAfterRead is a store that runs a hook (once, when armed) right
// after a password sign-in read the account by name: the moment between
// the account read and the session's creation.
type disableAfterRead struct {
	adminStore
	hook *atomic.Pointer[func()]
}

func (d disableAfterRead) AccountByUsername(ctx context.Context, name string) (*session.Account, error) {
	a, err := d.Store.AccountByUsername(ctx, name)
	if h := d.hook.Swap(nil); h != nil {
		(*h)()
	}
	return a, err
}

// A password sign-in that read the account just before an operator's
// disable and creates its session after the disable's sweep of the
// user's sessions: the session was not there to be ended, so it must not
// outlive the disable. It did: its code was refused at the exchange, but
// once the account was enabled again ("what disabling ended stays
// ended") the browser got codes by single sign-on from a session the
// disable should have ended. The sign-in now reads the account once its
// session exists (instead of at the code's exchange), and ends the
// session when the account is disabled.
func TestPasswordSignInRacingDisableLeavesNoSession(t *testing.T) {
	var hook atomic.Pointer[func()]
	backend := sessiontest.NewBackend(t)
	dbURL, keys := accounttest.NewURL(t), accounttest.Keys(t)
	e := newEnvWith(t, envOptions{open: func() session.Store {
		return disableAfterRead{adminStore{account.Overlay(backend.Store(t).(account.Short), accounttest.Open(t, dbURL, keys))}, &hook}
	}, mutate: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:admin"}
			}
		}
	}})
	e.accounts = func() account.Store { return accounttest.Open(t, dbURL, keys) }
	admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
	r := e.rp("spa", "")
	b := e.browser()
	a := r.authURL(nil)
	page := b.get(a.url)
	var disabled int
	h := func() { disabled = e.api("POST", "/api/v1/users/"+alice+"/disable", admin, nil).status }
	hook.Store(&h)
	p := b.login(page, "alice", alicePass)
	if disabled != http.StatusNoContent {
		t.Fatalf("the disable during the sign-in answered %d", disabled)
	}
	if p.loc != nil && strings.HasPrefix(p.loc.String(), rpCallback) && p.loc.Query().Get("code") != "" {
		if _, err := r.cfg.Exchange(r.ctx, p.loc.Query().Get("code"), oauth2.VerifierOption(a.verifier)); err == nil {
			t.Fatal("the sign-in's code was exchanged after the disable returned")
		}
	}
	e.api("POST", "/api/v1/users/"+alice+"/enable", admin, nil)
	a2 := r.authURL(nil)
	if p := b.get(a2.url); p.loc != nil && strings.HasPrefix(p.loc.String(), rpCallback) && p.loc.Query().Get("code") != "" {
		t.Error("single sign-on from a session created after the disable returned, once the account was enabled again")
	}
}
