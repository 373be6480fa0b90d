package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// wantDisabledAtSignIn: the browser's next authorization asks to sign in
// (its session ended), and the right password then answers 403 "This
// account is disabled." with role=alert.
func wantDisabledAtSignIn(t *testing.T, b *browser, r *rp, user, pass string) {
	t.Helper()
	p := b.get(r.authURL(nil).url)
	if p.loc != nil || p.status != http.StatusOK || len(find(p.doc, hasAttr("name", "password"))) == 0 {
		t.Fatalf("the next authorization of a disabled user: %d at %v, want the sign-in page\n%s", p.status, p.loc, excerpt(p.body))
	}
	p = b.login(p, user, pass)
	if p.status != http.StatusForbidden || !p.has(hasAttr("role", "alert")) || !strings.Contains(p.body, "This account is disabled.") || p.loc != nil {
		t.Fatalf("right password of a disabled user: %d\n%s", p.status, excerpt(p.body))
	}
}

// PRODUCT.md §9, issue 14 item 2: disabling or deleting an account
// through the admin API ends its sessions, refresh tokens and grants at
// once, and a flow begun before cannot complete. Enabling lets the user
// sign in again; a deleted account is gone from both stores.
func TestAdminDisableAndDelete(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(t *testing.T, e *env, admin, sub string)
	}{
		{"disable", func(t *testing.T, e *env, admin, sub string) {
			e.api("POST", "/api/v1/users/"+sub+"/disable", admin, nil).want(t, "disable", 204, "")
		}},
		{"delete", func(t *testing.T, e *env, admin, sub string) {
			e.api("DELETE", "/api/v1/users/"+sub, admin, nil).want(t, "delete", 204, "")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := apiEnv(t)
			admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
			b, r := e.browser(), e.rp("spa", "")
			tk := signIn(t, e, b, r, map[string]string{"scope": "openid profile offline_access"}, "alice", alicePass)
			bystander := signIn(t, e, e.browser(), r, map[string]string{"scope": "openid profile offline_access"}, "bob", bobPass)
			// Flows begun before: one at the sign-in page, one holding a code.
			pending := e.browser()
			signInPage := pending.get(r.authURL(nil).url)
			a := r.authURL(nil)
			res := b.get(a.url).result(t)

			c.end(t, e, admin, alice)

			wantTokensEnded(t, e, "alice's tokens", tk)
			if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Errorf("a code issued before: %v, want invalid_grant", err)
			}
			if p := pending.login(signInPage, "alice", alicePass); p.loc != nil || p.status/100 == 2 {
				t.Errorf("a sign-in begun before: %d %v\n%s", p.status, p.loc, excerpt(p.body))
			}
			wantTokensLive(t, e, "bob's tokens", bystander)

			if c.name == "disable" {
				wantDisabledAtSignIn(t, b, r, "alice", alicePass)
				e.api("POST", "/api/v1/users/"+alice+"/enable", admin, nil).want(t, "enable", 204, "")
				signIn(t, e, b, r, nil, "alice", alicePass)
				wantTokensEnded(t, e, "tokens from before, after enable", tk)
				e.api("POST", "/api/v1/users/"+alice+"/disable", admin, nil).want(t, "disable again", 204, "")
				e.api("POST", "/api/v1/users/"+alice+"/disable", admin, nil).want(t, "disable twice", 204, "")
				return
			}
			// Deleted: gone from the database with its factors, and the
			// right password is as unknown as any other.
			e.api("GET", "/api/v1/users/"+alice+"/sessions", admin, nil).want(t, "sessions of a deleted user", 404, "user_not_found")
			e.api("DELETE", "/api/v1/users/"+alice+"/factors/totp", admin, nil).want(t, "factors of a deleted user", 404, "user_not_found")
			e.api("DELETE", "/api/v1/users/"+alice, admin, nil).want(t, "delete twice", 404, "user_not_found")
			if _, err := e.accounts().Get(t.Context(), alice); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("the deleted account in the database: %v, want ErrNotFound", err)
			}
			p := b.get(r.authURL(nil).url)
			if p.loc != nil {
				t.Fatalf("a deleted user's browser got to the RP: %v", p.loc)
			}
			if p = b.login(p, "alice", alicePass); p.status != http.StatusUnauthorized || p.loc != nil {
				t.Errorf("right password of a deleted user: %d, want 401\n%s", p.status, excerpt(p.body))
			}
			// A new account with the name is another user: nothing carries over.
			if n, err := e.accounts().Create(t.Context(), &account.Record{Account: session.Account{Subject: "sub-new-alice", Username: "alice"}, Active: true}); err != nil || n.Subject == alice {
				t.Fatalf("re-create alice: %v", err)
			}
		})
	}
	e := apiEnv(t)
	admin := e.ccToken("bank", bankSecret, "stepup:admin")
	for _, m := range [][2]string{{"POST", "/disable"}, {"POST", "/enable"}, {"DELETE", ""}} {
		e.api(m[0], "/api/v1/users/nobody"+m[1], admin, nil).want(t, m[0]+" unknown user"+m[1], 404, "user_not_found")
		e.api(m[0], "/api/v1/users/"+e.subject("bob")+m[1], e.ccToken("bank", bankSecret, "stepup:grants"), nil).want(t, "grants scope on "+m[1], 403, "insufficient_scope")
	}
}

// Checked at completion, not only at the start: a code of a password
// sign-in issued before the account was disabled or deleted in the
// database gets no tokens, even when the sessions in Redis were not ended
// (a disable whose second half failed, stepupd import, a write by hand);
// a refresh token of a deleted account is refused too. (A code of single
// sign-on or a step-up, whose request read the account after the
// session, is checked at its exchange through the session: the
// disable's second half ends it; see op.Finish and
// TestSCIMDisableAndDeleteRaceOtherInstance.)
func TestDisabledInTheDatabaseOnlyIsEnough(t *testing.T) {
	for _, deleted := range []bool{false, true} {
		e := newEnv(t, nil)
		b, r := e.browser(), e.rp("spa", "")
		tk := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "alice", alicePass)
		a := r.authURL(nil)
		nb := e.browser()
		res := nb.login(nb.get(a.url), "alice", alicePass).result(t)
		if deleted {
			if err := e.accounts().Delete(t.Context(), e.subject("alice")); err != nil {
				t.Fatal(err)
			}
		} else {
			e.setActive(t, "alice", false)
		}
		if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("deleted %v: a code issued before: %v, want invalid_grant", deleted, err)
		}
		if status, body := e.refreshWith(tk.tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("deleted %v: refresh %d %v, want invalid_grant", deleted, status, body)
		}
	}
}

// adminStore wraps a store for a test that overrides some of its
// methods, keeping the account-admin methods (SetActive, DeleteAccount)
// that the admin API looks for on the store and that session.Store
// does not list.
type adminStore struct{ session.Store }

func (a adminStore) SetActive(ctx context.Context, sub string, active bool) error {
	return a.Store.(interface {
		SetActive(context.Context, string, bool) error
	}).SetActive(ctx, sub, active)
}

func (a adminStore) DeleteAccount(ctx context.Context, sub string) error {
	return a.Store.(interface {
		DeleteAccount(context.Context, string) error
	}).DeleteAccount(ctx, sub)
}

// failingEnd is a store whose EndUserGrants fails while fail is set: the
// Redis half of a disable or delete breaks after the database half.
type failingEnd struct {
	adminStore
	fail *atomic.Bool
}

func (f failingEnd) EndUserGrants(ctx context.Context, sub string) error {
	if f.fail.Load() {
		return errors.New("injected: redis unreachable")
	}
	return f.Store.EndUserGrants(ctx, sub)
}

// A failure half-way answers 503 and fails closed: the account is
// disabled (nothing new is issued for it) though its grants could not be
// ended, a delete leaves it disabled, not deleted; the same call again
// completes it.
func TestAccountAdminHalfWayFailsClosed(t *testing.T) {
	var fail atomic.Bool
	backend := sessiontest.NewBackend(t)
	dbURL, keys := accounttest.NewURL(t), accounttest.Keys(t)
	e := newEnvWith(t, envOptions{open: func() session.Store {
		return failingEnd{adminStore{account.Overlay(backend.Store(t).(account.Short), accounttest.Open(t, dbURL, keys))}, &fail}
	}, mutate: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:admin"}
			}
		}
	}})
	e.accounts = func() account.Store { return accounttest.Open(t, dbURL, keys) }
	admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "alice", alicePass)

	for _, call := range [][2]string{{"POST", "/disable"}, {"DELETE", ""}} {
		fail.Store(true)
		e.api(call[0], "/api/v1/users/"+alice+call[1], admin, nil).want(t, call[0]+call[1]+" with Redis failing", 503, "temporarily_unavailable")
		rec, err := e.accounts().Get(t.Context(), alice)
		if err != nil || rec.Active {
			t.Fatalf("after a failed %s: %v active=%v, want the account there and disabled", call[0]+call[1], err, rec != nil && rec.Active)
		}
		// Fail closed already: the refresh token from before is refused.
		if status, body := e.refreshWith(tk.tok.RefreshToken); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("refresh after a half-done %s: %d %v", call[0]+call[1], status, body)
		}
	}
	fail.Store(false)
	e.api("DELETE", "/api/v1/users/"+alice, admin, nil).want(t, "delete again", 204, "")
	if _, err := e.accounts().Get(t.Context(), alice); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("after the retried delete: %v", err)
	}
	wantTokensEnded(t, e, "after the retried delete", tk)
}

// Issue 14 item 2's race, with two instances on the same Redis and
// database: while one instance disables the user, the other completes
// single sign-on flows and refreshes in a loop. Every request that starts
// after the disable returned gets no tokens, and every token any request
// got, before or during the disable, is dead once it returned.
func TestDisableRacesOtherInstance(t *testing.T) {
	e := apiEnv(t)
	second := httptest.NewServer(e.instance().Handler())
	t.Cleanup(second.Close)
	admin, alice := e.ccToken("bank", bankSecret, "stepup:admin"), e.subject("alice")
	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, map[string]string{"scope": "openid offline_access"}, "alice", alicePass)

	type got struct {
		access, refresh string
		afterDisable    bool // the request started after the disable returned
	}
	var (
		mu       sync.Mutex
		issued   []got
		disabled atomic.Bool
		stop     atomic.Bool
		wg       sync.WaitGroup
		errs     = make(chan error, 4)
	)
	successes := make(chan struct{}, 1024)
	afterDone := make(chan struct{}, 1024)
	token := func(v url.Values) (map[string]any, int, error) {
		resp, err := http.PostForm(second.URL+"/oauth/token", v)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body, resp.StatusCode, nil
	}
	record := func(after bool, body map[string]any) {
		at, _ := body["access_token"].(string)
		rt, _ := body["refresh_token"].(string)
		mu.Lock()
		issued = append(issued, got{at, rt, after})
		mu.Unlock()
		successes <- struct{}{}
	}
	loop := func(name string, step func(after bool) error) {
		defer wg.Done()
		for n := 0; !stop.Load(); n++ {
			after := disabled.Load()
			if err := step(after); err != nil {
				errs <- errors.New(name + ": " + err.Error())
				return
			}
			if after {
				afterDone <- struct{}{}
			}
		}
	}
	wg.Add(2)
	// Refreshing in a loop on the second instance (spa rotates).
	rt := tk.tok.RefreshToken
	go loop("refresh", func(after bool) error {
		body, status, err := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}})
		if err != nil {
			return err
		}
		if status == http.StatusOK {
			rt, _ = body["refresh_token"].(string)
			record(after, body)
		}
		return nil
	})
	// Completing single sign-on flows on the second instance, with the
	// browser's session (cookies do not tell ports apart).
	go loop("sso", func(after bool) error {
		a := r.authURL(map[string]string{"scope": "openid offline_access"})
		u, _ := url.Parse(a.url)
		resp, err := b.c.Get(on(second, u))
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		code := ""
		if loc != nil && strings.HasPrefix(loc.String(), rpCallback) {
			code = loc.Query().Get("code")
		}
		if code == "" {
			return nil
		}
		body, status, err := token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"spa"},
			"redirect_uri": {rpCallback}, "code_verifier": {a.verifier}})
		if err != nil {
			return err
		}
		if status == http.StatusOK {
			record(after, body)
		}
		return nil
	})
	// Both loops work before the disable.
	for range 4 {
		select {
		case <-successes:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	e.api("POST", "/api/v1/users/"+alice+"/disable", admin, nil).want(t, "disable", 204, "")
	disabled.Store(true)
	for range 20 {
		select {
		case <-afterDone:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(issued) < 4 {
		t.Fatalf("only %d token responses before the disable", len(issued))
	}
	for i, g := range issued {
		if g.afterDisable {
			t.Errorf("token response %d came from a request started after the disable returned", i)
		}
		if _, in := e.postForm("/oauth/introspect", url.Values{"token": {g.access}}, "bank", bankSecret); in["active"] != false {
			t.Errorf("access token %d is active after the disable: %v", i, in)
		}
		if g.refresh != "" {
			if status, body := e.refreshWith(g.refresh); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("refresh token %d after the disable: %d %v", i, status, body)
			}
		}
	}
	t.Logf("%d token responses, all dead after the disable", len(issued))
}
