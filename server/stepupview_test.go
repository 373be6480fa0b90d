package server_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// viewEnv is an env whose account database counts its reads (and the
// other calls countingAccounts counts), with the bank client allowed the
// admin API.
func viewEnv(t *testing.T) (*env, *atomic.Int64) {
	var db atomic.Int64
	backend := sessiontest.NewBackend(t)
	dbURL, keys := accounttest.NewURL(t), accounttest.Keys(t)
	e := newEnvWith(t, envOptions{
		open: func() session.Store {
			return account.Overlay(backend.Store(t).(account.Short), countingAccounts{accounttest.Open(t, dbURL, keys), &db})
		},
		mutate: func(c *config.Config) {
			for i := range c.Clients {
				if c.Clients[i].ID == "bank" {
					c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin"}
				}
			}
		},
	})
	e.accounts = func() account.Store { return accounttest.Open(t, dbURL, keys) }
	return e, &db
}

// stepUpPage starts a multi-factor request in b's session and returns
// the page it lands on.
func stepUpPage(b *browser, r *rp) (authReq, *page) {
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	return a, b.get(a.url)
}

// hasTOTPForm reports whether p asks for a code of the enrolled TOTP
// (not an enrollment's, which shows a new secret).
func hasTOTPForm(p *page) bool {
	return len(find(p.doc, hasAttr("data-factor", "totp"))) > 0 && len(find(p.doc, hasAttr("data-totp-secret", ""))) == 0
}

// The session's view of the account's factors (op.AccountView) decides
// which page /authorize shows without an account read; it is never
// trusted beyond that. A TOTP reset by the administrator while a session's
// view still says TOTP: the step-up page the view chose is shown once,
// its post issues no code and sends the browser to what the account
// needs (enrolling again), and the next step-up of that session does not
// show the TOTP form either (the view was refreshed).
func TestStepUpViewFactorReset(t *testing.T) {
	e, _ := viewEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
	signIn(t, e, b, r, nil, "alice", alicePass)
	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	e.api("DELETE", "/api/v1/users/"+e.subject("alice")+"/factors/totp", admin, nil).want(t, "reset totp", 204, "")

	_, p := stepUpPage(b, r)
	if !hasTOTPForm(p) {
		// Not a failure of safety: the view was read fresh. But the test
		// is about the stale view, so say what happened.
		t.Fatalf("the step-up after the reset did not show the TOTP form from the session's view (%d):\n%s", p.status, excerpt(p.body))
	}
	e.clock.Advance(30 * time.Second)
	got := b.code(p, "totp", e.totpCode(aliceTOTP))
	if got.loc != nil {
		t.Fatalf("a TOTP post after the reset answered the RP: %s", got.loc)
	}
	if hasTOTPForm(got) {
		t.Fatalf("after the TOTP post the browser is back on the TOTP form it cannot pass (%d):\n%s", got.status, excerpt(got.body))
	}
	if len(find(got.doc, hasAttr("data-totp-secret", ""))) == 0 {
		t.Errorf("after the TOTP post, not the TOTP enrollment the account needs (%d):\n%s", got.status, excerpt(got.body))
	}
	_, again := stepUpPage(b, r)
	if hasTOTPForm(again) {
		t.Fatalf("the next step-up of the session shows the reset TOTP's form again (the view was not refreshed)")
	}
}

// A factor enrolled elsewhere (another device, the administrator's
// import) while a session's view lacks it: /authorize reads the account
// (the view's decision is not the TOTP page), shows the TOTP form, its
// post completes the step-up and refreshes the view; the next step-up of
// the session reads the account once, at its post.
func TestStepUpViewFactorAddedElsewhere(t *testing.T) {
	e, db := viewEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
	signIn(t, e, b, r, nil, "bob", bobPass)
	bob := e.subject("bob")
	if err := e.accounts().SetTOTPSecret(t.Context(), bob, aliceTOTP); err != nil {
		t.Fatal(err)
	}
	step := func(what string, wantReads int64) {
		t.Helper()
		e.clock.Advance(30 * time.Second)
		db.Store(0)
		a, p := stepUpPage(b, r)
		if !hasTOTPForm(p) {
			t.Fatalf("%s: no TOTP form (%d):\n%s", what, p.status, excerpt(p.body))
		}
		tok := r.mustExchange(a, b.code(p, "totp", e.totpCode(aliceTOTP)).result(t))
		if tok.claims.ACR != mfaACR {
			t.Fatalf("%s: acr %q, want %q", what, tok.claims.ACR, mfaACR)
		}
		if n := db.Load(); n > wantReads {
			t.Errorf("%s: %d account calls, want at most %d", what, n, wantReads)
		}
	}
	// The first reads twice (the stale view), and writes bob's last
	// factor once.
	step("first step-up after the enrollment elsewhere", 3)
	views := func() []string {
		t.Helper()
		ss, err := e.store().ListSessions(t.Context(), bob)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, s.View)
		}
		return out
	}
	before := views()
	if len(before) != 1 {
		t.Fatalf("bob has %d sessions, want 1", len(before))
	}
	// A session signed in now has the view of the account as it is: the
	// first session's must say the same (it was refreshed by the read).
	b2 := e.browser()
	signIn(t, e, b2, r, nil, "bob", bobPass)
	after := views()
	if len(after) != 2 || !op.SameView(after[0], after[1]) || before[0] == "" {
		t.Fatalf("the stale session's view was not refreshed: %q, then %q", before, after)
	}
	b = b2
	step("a step-up in a session signed in after the enrollment", 1)
}

// An account disabled in the database only (the call's Redis half
// failed, or a write by hand: its sessions were not ended) while a
// session's view says TOTP: the step-up page may show, but its post reads
// the account and answers 403, and no code is ever issued.
func TestStepUpViewAccountDisabled(t *testing.T) {
	e, _ := viewEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
	signIn(t, e, b, r, nil, "alice", alicePass)
	e.setActive(t, "alice", false)
	_, p := stepUpPage(b, r)
	if p.loc != nil && p.loc.Query().Get("code") != "" {
		t.Fatal("a disabled account got a code at /authorize")
	}
	if hasTOTPForm(p) {
		e.clock.Advance(30 * time.Second)
		got := b.code(p, "totp", e.totpCode(aliceTOTP))
		if got.loc != nil && got.loc.Query().Get("code") != "" {
			t.Fatal("a disabled account completed a step-up")
		}
		if got.status != http.StatusForbidden {
			t.Errorf("TOTP post of a disabled account: %d, want 403\n%s", got.status, excerpt(got.body))
		}
	} else if p.status != http.StatusForbidden {
		t.Errorf("step-up of a disabled account: %d, want 403 or the TOTP form\n%s", p.status, excerpt(p.body))
	}
	// SSO reads the account at /authorize, as before.
	a := r.authURL(nil)
	if got := b.get(a.url); got.status != http.StatusForbidden || (got.loc != nil && strings.Contains(got.loc.RawQuery, "code=")) {
		t.Errorf("SSO of a disabled account: %d, want 403", got.status)
	}
}

// An account deleted in the database only (the deletion's Redis half
// failed: its sessions were not ended) while a session's view says TOTP:
// the TOTP page the view chose shows, its post finds no account, issues
// nothing, and does not send the browser back to the same TOTP form
// (there is no account to refresh the view from: the post drops the
// page's decision itself).
func TestStepUpViewAccountDeleted(t *testing.T) {
	e, _ := viewEnv(t)
	b, r := e.browser(), e.rp("bank", bankSecret)
	signIn(t, e, b, r, nil, "alice", alicePass)
	if err := e.accounts().Delete(t.Context(), e.subject("alice")); err != nil {
		t.Fatal(err)
	}
	_, p := stepUpPage(b, r)
	if !hasTOTPForm(p) {
		t.Fatalf("the step-up did not show the TOTP form from the session's view (%d):\n%s", p.status, excerpt(p.body))
	}
	e.clock.Advance(30 * time.Second)
	got := b.code(p, "totp", e.totpCode(aliceTOTP))
	if got.loc != nil && got.loc.Query().Get("code") != "" {
		t.Fatal("a deleted account completed a step-up")
	}
	if hasTOTPForm(got) {
		t.Fatalf("after the TOTP post of a deleted account the browser is back on the TOTP form (%d):\n%s", got.status, excerpt(got.body))
	}
}
