package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
