package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// Support resets a user who lost a factor (PRODUCT.md §10): after
// DELETE /api/v1/users/{id}/factors/{kind} the factor is no longer
// offered or accepted, each kind alone, and the operator's call is
// audited.
func TestAdminFactorReset(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	e := newEnvWith(t, envOptions{log: log, mutate: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin"}
			}
		}
	}})
	ctx := context.Background()
	st := e.store()
	alice := e.subject("alice")
	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	path := "/api/v1/users/" + alice + "/factors/"

	e.api("DELETE", path+"totp", "", nil).want(t, "no token", 401, "invalid_token")
	e.api("DELETE", path+"totp", e.ccToken("bank", bankSecret, "stepup:grants"), nil).want(t, "grants scope", 403, "insufficient_scope")
	for _, kind := range []string{"password", "passkey", "TOTP", "x"} {
		e.api("DELETE", path+kind, admin, nil).want(t, "unknown kind "+kind, 400, "invalid_request")
	}
	e.api("DELETE", "/api/v1/users/nobody/factors/totp", admin, nil).want(t, "unknown user", 404, "user_not_found")

	// TOTP: before the reset a multi-factor request asks for a code from
	// the enrolled app; after it, the user has no second factor and is
	// offered to enroll one (the secret shown anew).
	mfaPage := func() *page {
		t.Helper()
		b, r := e.browser(), e.rp("spa", "")
		return b.login(b.get(r.authURL(map[string]string{"acr_values": mfaACR}).url), "alice", alicePass)
	}
	if p := mfaPage(); len(find(p.doc, hasAttr("data-factor", "totp"))) == 0 || len(find(p.doc, hasAttr("data-totp-secret", ""))) != 0 {
		t.Fatalf("before the reset a multi-factor request did not ask for the enrolled TOTP (status %d)", p.status)
	}
	e.api("DELETE", path+"totp", admin, nil).want(t, "reset totp", 204, "")
	if acct, _ := st.GetAccount(ctx, alice); acct.TOTPSecret != "" {
		t.Fatal("TOTP secret still stored after the reset")
	}
	if p := mfaPage(); len(find(p.doc, hasAttr("data-totp-secret", ""))) == 0 {
		t.Fatalf("after the reset a multi-factor request did not offer TOTP enrollment (status %d)", p.status)
	}
	e.api("DELETE", path+"totp", admin, nil).want(t, "reset totp again", 204, "")

	// The other kinds, each removing only itself.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.SetPhone(ctx, alice, "+15555550100"))
	must(st.SetEmailMFA(ctx, alice, true))
	must(st.SetRecoveryCodes(ctx, alice, []string{"h1", "h2"}))
	must(st.PutPasskey(ctx, alice, session.StoredPasskey{ID: "cred-1", Data: []byte("{}")}))
	must(st.PutPasskey(ctx, alice, session.StoredPasskey{ID: "cred-2", Data: []byte("{}")}))
	state := func() (phone string, emailMFA bool, recovery, passkeys int) {
		t.Helper()
		acct, err := st.GetAccount(ctx, alice)
		must(err)
		return acct.Phone, acct.EmailMFA, acct.RecoveryCodes, len(acct.Passkeys)
	}
	e.api("DELETE", path+"webauthn", admin, nil).want(t, "reset webauthn", 204, "")
	if ph, em, rc, pk := state(); pk != 0 || ph == "" || !em || rc != 2 {
		t.Fatalf("after webauthn reset: phone %q email %v recovery %d passkeys %d", ph, em, rc, pk)
	}
	e.api("DELETE", path+"sms", admin, nil).want(t, "reset sms", 204, "")
	if ph, em, rc, _ := state(); ph != "" || !em || rc != 2 {
		t.Fatalf("after sms reset: phone %q email %v recovery %d", ph, em, rc)
	}
	e.api("DELETE", path+"email", admin, nil).want(t, "reset email", 204, "")
	if _, em, rc, _ := state(); em || rc != 2 {
		t.Fatalf("after email reset: email %v recovery %d", em, rc)
	}
	if acct, _ := st.GetAccount(ctx, alice); acct.Email != "alice@example.com" {
		t.Fatalf("the email reset removed the address itself: %q", acct.Email)
	}
	e.api("DELETE", path+"recovery", admin, nil).want(t, "reset recovery", 204, "")
	if _, _, rc, _ := state(); rc != 0 {
		t.Fatalf("after recovery reset: %d codes", rc)
	}

	// One audit event per reset, naming the account, the kind and the
	// operator's client.
	kinds := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["event"] != "admin.factor_reset" {
			continue
		}
		if ev["sub"] != alice || ev["client_id"] != "bank" {
			t.Errorf("audit event %v", ev)
		}
		kinds[ev["factor"].(string)]++
	}
	if want := map[string]int{"totp": 2, "webauthn": 1, "sms": 1, "email": 1, "recovery": 1}; !mapsEqual(kinds, want) {
		t.Errorf("audit events by factor %v, want %v", kinds, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
