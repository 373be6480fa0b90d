package server_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server/obs"
)

// The /api/v1 calls write their audit events and never a secret: no
// password, TOTP code, step-up grant, API session handle, authorization
// code or token appears in the log.
func TestAPILogsHoldNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })
	e := newEnvWith(t, envOptions{log: log, mutate: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin", "stepup:authn"}
			}
		}
	}})
	alice := e.subject("alice")
	var secrets, codes []string
	keep := func(s ...string) {
		for _, v := range s {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	grants, admin, authnTok := e.ccToken("bank", bankSecret, "stepup:grants"), e.ccToken("bank", bankSecret, "stepup:admin"), e.ccToken("bank", bankSecret, "stepup:authn")
	keep(alicePass, grants, admin, authnTok, "wrong password 91c2")

	// Grants: a wrong code, a right one, the grant used and refused.
	codes = append(codes, "246802")
	e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{"user_id": alice, "action_type": "pay", "code": "246802", "grant_type": "ONE_TIME_USE", "valid_for_seconds": 60})
	c := e.totpCode(aliceTOTP)
	codes = append(codes, c)
	g := e.api("POST", "/api/v1/step-up/verify-totp", grants, map[string]any{"user_id": alice, "action_type": "pay", "code": c, "grant_type": "ONE_TIME_USE", "valid_for_seconds": 60}).want(t, "grant", 200, "").str("step_up_grant")
	keep(g)
	e.api("POST", "/api/v1/step-up/verify-grant", grants, map[string]any{"user_id": alice, "action_type": "pay", "grant": g}).want(t, "use", 200, "")
	e.api("POST", "/api/v1/step-up/verify-grant", grants, map[string]any{"user_id": alice, "action_type": "pay", "grant": g}).want(t, "reuse", 404, "")

	// An API session: a wrong and a right password, TOTP, a code.
	id := e.api("POST", "/api/v1/authn/sessions", authnTok, map[string]any{"username": "alice"}).want(t, "start", 201, "").str("id")
	keep(id)
	path := "/api/v1/authn/sessions/" + id
	e.api("POST", path+"/verify", authnTok, map[string]any{"factor": "password", "password": "wrong password 91c2"})
	e.api("POST", path+"/verify", authnTok, map[string]any{"factor": "password", "password": alicePass}).want(t, "password", 200, "")
	e.clock.Advance(30 * time.Second)
	c = e.totpCode(aliceTOTP)
	codes = append(codes, c)
	e.api("POST", path+"/verify", authnTok, map[string]any{"factor": "totp", "code": c}).want(t, "totp", 200, "")
	verifier := oauth2.GenerateVerifier()
	keep(verifier)
	code := e.api("POST", path+"/complete", authnTok, map[string]any{"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256", "redirect_uri": rpCallback}).want(t, "complete", 200, "").str("code")
	keep(code)
	_, body := e.exchangeCode("bank", bankSecret, code, verifier)
	at, _ := body["access_token"].(string)
	idt, _ := body["id_token"].(string)
	keep(at, idt)

	// Admin: list, drop elevation, lock, unlock, revoke.
	list := e.api("GET", "/api/v1/users/"+alice+"/sessions", admin, nil).want(t, "list", 200, "")
	sid := list.body["sessions"].([]any)[0].(map[string]any)["id"].(string)
	e.api("POST", "/api/v1/sessions/"+sid+"/drop-elevation", admin, nil).want(t, "drop", 204, "")
	e.api("POST", "/api/v1/users/"+alice+"/lock", admin, nil).want(t, "lock", 204, "")
	e.api("POST", "/api/v1/users/"+alice+"/unlock", admin, nil).want(t, "unlock", 204, "")
	e.api("DELETE", "/api/v1/users/"+alice+"/sessions", admin, nil).want(t, "revoke all", 204, "")
	e.api("GET", "/api/v1/users/"+alice+"/sessions", "not-a-token", nil).want(t, "bad token", 401, "")

	logs := buf.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret %.12q…", s)
		}
	}
	events := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if ev, ok := rec["event"].(string); ok {
			events[ev] = true
		}
		for k, v := range rec {
			if s, ok := v.(string); ok && codeIn(s, codes) {
				t.Errorf("log field %s holds a one-time code: %q", k, s)
			}
		}
	}
	for _, ev := range []string{obs.EventGrantIssued, obs.EventGrantUsed, obs.EventGrantRefused, obs.EventStepUpFailed, obs.EventStepUp,
		obs.EventLogin, obs.EventLoginFailed, obs.EventAPISessionStarted, obs.EventAuthorized, obs.EventElevationDropped,
		obs.EventAccountLocked, obs.EventAccountUnlocked, obs.EventAdminSessionRevoked, obs.EventAPIAuthFailed} {
		if !events[ev] {
			t.Errorf("no audit event %s in the log", ev)
		}
	}
}
