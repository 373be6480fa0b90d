package server_test

import (
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
