package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// onInstance is r with its authorization and token endpoints on another
// instance of the same issuer; ID tokens are still verified by go-oidc
// against the issuer's JWKS.
func onInstance(r *rp, srv *httptest.Server) *rp {
	other := *r
	cfg := *r.cfg
	au, _ := url.Parse(cfg.Endpoint.AuthURL)
	tu, _ := url.Parse(cfg.Endpoint.TokenURL)
	cfg.Endpoint = oauth2.Endpoint{AuthURL: on(srv, au), TokenURL: on(srv, tu), AuthStyle: cfg.Endpoint.AuthStyle}
	other.cfg = &cfg
	return &other
}

// Issue 14 item 2 through SCIM, with two instances on one Redis and one
// database: instance 1 serves the provisioning client's PATCH
// active:false (Entra's form) or DELETE while instance 2 runs password
// sign-ins, single sign-on with code exchanges and refreshes, with real
// OAuth 2.0 and go-oidc clients, in loops. Flows started before the SCIM
// call and completed after it (a code issued but not exchanged, a
// password accepted with the TOTP step pending, a login page loaded)
// complete for nobody; every token any request got, before or during
// the call, is dead once it returned; and no request that started after
// it gets a token.
func TestSCIMDisableAndDeleteRaceOtherInstance(t *testing.T) {
	for _, c := range []struct {
		name, method, body string
		status             int
	}{
		{"PATCH active False", "PATCH", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`, 200},
		{"DELETE", "DELETE", "", 204},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := scimEnv(t)
			second := httptest.NewServer(e.instance().Handler())
			t.Cleanup(second.Close)
			scimTok := e.ccToken("bank", bankSecret, "stepup:scim")
			const user, pass = "raced@example.org", "raced user's passphrase 1"
			id := e.scim("POST", "/Users", scimTok, `{"userName":"`+user+`","password":"`+pass+`",
				"urn:stepup:params:scim:schemas:extension:2.0:User":{"totpSecret":"`+importedTOTP+`"}}`).wantSCIM(t, "create", 201, "").str("id")
			r1 := e.rp("spa", "")
			r2 := onInstance(r1, second)
			offline := map[string]string{"scope": "openid offline_access"}

			// Flows started on instance 2 before the SCIM call.
			b := e.browser()
			live := signIn(t, e, b, r2, offline, user, pass) // the browser's session, for SSO
			codeFlow := r2.authURL(offline)
			cb := e.browser()
			pendingCode := cb.login(cb.get(codeFlow.url), user, pass).result(t) // a code, not exchanged
			tb := e.browser()
			totpFlow := r2.authURL(map[string]string{"acr_values": mfaACR})
			pendingTOTP := tb.login(tb.get(totpFlow.url), user, pass)
			if pendingTOTP.loc != nil {
				t.Fatal("the TOTP step was not asked")
			}
			lb := e.browser()
			loginFlow := r2.authURL(nil)
			pendingLogin := lb.get(loginFlow.url)
			// Single sign-on and a step-up with a session from before,
			// whose requests read the account after the session: their
			// exchange reads no account (issue 14's one read per flow),
			// and must still refuse them.
			ssoFlow := r2.authURL(offline)
			pendingSSO := b.get(ssoFlow.url).result(t)
			sb := e.browser()
			signIn(t, e, sb, r2, nil, user, pass)
			stepFlow := r2.authURL(map[string]string{"acr_values": mfaACR})
			pendingStep := sb.get(stepFlow.url)
			if pendingStep.loc != nil {
				t.Fatal("the step-up's TOTP page was not shown")
			}
			e.clock.Advance(30 * time.Second) // a fresh TOTP time step
			stepCode := sb.code(pendingStep, "totp", e.totpCode(importedTOTP)).result(t)
			sb2 := e.browser()
			signIn(t, e, sb2, r2, nil, user, pass)
			step2Flow := r2.authURL(map[string]string{"acr_values": mfaACR})
			pendingStep2 := sb2.get(step2Flow.url)
			if pendingStep2.loc != nil {
				t.Fatal("the second step-up's TOTP page was not shown")
			}

			type got struct {
				what                 string
				access, refresh, idt string
				after                bool // the request started after the SCIM call returned
			}
			var (
				mu       sync.Mutex
				issued   []got
				returned atomic.Bool
				stop     atomic.Bool
				wg       sync.WaitGroup
				errs     = make(chan error, 8)
			)
			successes := make(chan struct{}, 4096)
			afterDone := make(chan struct{}, 4096)
			record := func(what string, after bool, tk *oauth2.Token) {
				idt, _ := tk.Extra("id_token").(string)
				mu.Lock()
				issued = append(issued, got{what, tk.AccessToken, tk.RefreshToken, idt, after})
				mu.Unlock()
				successes <- struct{}{}
			}
			loop := func(name string, step func(after bool) error) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						after := returned.Load()
						if err := step(after); err != nil {
							errs <- fmt.Errorf("%s: %w", name, err)
							return
						}
						if after {
							afterDone <- struct{}{}
						}
					}
				}()
			}
			// exchange redeems a code on instance 2 and verifies the ID
			// token with go-oidc; a refused exchange is no error.
			exchange := func(what string, after bool, a authReq, loc *url.URL) error {
				if loc == nil || !strings.HasPrefix(loc.String(), rpCallback) || loc.Query().Get("code") == "" {
					return nil
				}
				tk, err := r2.cfg.Exchange(r2.ctx, loc.Query().Get("code"), oauth2.VerifierOption(a.verifier))
				if err != nil {
					return nil
				}
				if _, err := r2.verify(tk, a.nonce); err != nil {
					return fmt.Errorf("go-oidc refused an ID token the provider issued: %w", err)
				}
				record(what, after, tk)
				return nil
			}
			loop("password sign-in", func(after bool) error {
				nb := e.browser()
				a := r2.authURL(offline)
				u, _ := url.Parse(a.url)
				p := nb.login(nb.get(on(second, u)), user, pass)
				return exchange("password sign-in", after, a, p.loc)
			})
			loop("single sign-on", func(after bool) error {
				a := r2.authURL(offline)
				resp, err := b.c.Get(a.url)
				if err != nil {
					return err
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				return exchange("single sign-on", after, a, loc)
			})
			rt := live.tok.RefreshToken
			loop("refresh", func(after bool) error {
				tk, err := r2.cfg.TokenSource(r2.ctx, &oauth2.Token{RefreshToken: rt}).Token()
				if err != nil {
					var re *oauth2.RetrieveError
					if errors.As(err, &re) {
						return nil // refused: the grant ended
					}
					return err
				}
				rt = tk.RefreshToken
				record("refresh", after, tk)
				return nil
			})
			// Every loop works before the call.
			for range 6 {
				select {
				case <-successes:
				case err := <-errs:
					t.Fatal(err)
				case <-time.After(time.Minute):
					t.Fatal("the loops got no tokens before the SCIM call")
				}
			}
			e.scim(c.method, "/Users/"+id, scimTok, c.body).wantSCIM(t, c.name, c.status, "")
			returned.Store(true)
			for range 9 {
				select {
				case <-afterDone:
				case err := <-errs:
					t.Fatal(err)
				case <-time.After(time.Minute):
					t.Fatal("the loops stopped after the SCIM call")
				}
			}
			stop.Store(true)
			wg.Wait()

			// The flows started before: none completes.
			if _, err := r2.cfg.Exchange(r2.ctx, pendingCode.code, oauth2.VerifierOption(codeFlow.verifier)); err == nil {
				t.Error("a code issued before the SCIM call was exchanged after it")
			}
			e.clock.Advance(30 * time.Second) // a fresh TOTP time step
			if p := tb.code(pendingTOTP, "totp", e.totpCode(importedTOTP)); p.loc != nil && strings.HasPrefix(p.loc.String(), rpCallback) && p.loc.Query().Get("code") != "" {
				if _, err := r2.cfg.Exchange(r2.ctx, p.loc.Query().Get("code"), oauth2.VerifierOption(totpFlow.verifier)); err == nil {
					t.Error("a flow at the TOTP step when the SCIM call came completed after it")
				}
			}
			if _, err := r2.cfg.Exchange(r2.ctx, pendingSSO.code, oauth2.VerifierOption(ssoFlow.verifier)); err == nil {
				t.Error("a single sign-on code issued before the SCIM call was exchanged after it")
			}
			if _, err := r2.cfg.Exchange(r2.ctx, stepCode.code, oauth2.VerifierOption(stepFlow.verifier)); err == nil {
				t.Error("a step-up code issued before the SCIM call was exchanged after it")
			}
			e.clock.Advance(30 * time.Second)
			if p := sb2.code(pendingStep2, "totp", e.totpCode(importedTOTP)); p.loc != nil && strings.HasPrefix(p.loc.String(), rpCallback) && p.loc.Query().Get("code") != "" {
				if _, err := r2.cfg.Exchange(r2.ctx, p.loc.Query().Get("code"), oauth2.VerifierOption(step2Flow.verifier)); err == nil {
					t.Error("a step-up at its TOTP page when the SCIM call came completed after it")
				}
			}
			if p := lb.login(pendingLogin, user, pass); p.loc != nil || (p.status != http.StatusForbidden && p.status != http.StatusUnauthorized) {
				t.Errorf("a login page loaded before the SCIM call: %d %v after it", p.status, p.loc)
			}
			a := r1.authURL(nil)
			if p := b.get(a.url); p.loc != nil && strings.HasPrefix(p.loc.String(), rpCallback) && p.loc.Query().Get("code") != "" {
				t.Errorf("single sign-on with the session from before, on instance 1, after the SCIM call: %v", p.loc)
			}
			wantTokensEnded(t, e, "the tokens from before", live)

			mu.Lock()
			defer mu.Unlock()
			for i, g := range issued {
				if g.after {
					t.Errorf("%s %d: tokens for a request started after the SCIM call returned", g.what, i)
				}
				if _, in := e.postForm("/oauth/introspect", url.Values{"token": {g.access}}, "bank", bankSecret); in["active"] != false {
					t.Errorf("%s %d: the access token is active after the SCIM call: %v", g.what, i, in)
				}
				if s := userinfoStatus(t, e, g.access); s != http.StatusUnauthorized {
					t.Errorf("%s %d: userinfo %d after the SCIM call", g.what, i, s)
				}
				if g.refresh != "" {
					if _, err := r1.cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: g.refresh}).Token(); err == nil {
						t.Errorf("%s %d: the refresh token works after the SCIM call", g.what, i)
					}
				}
			}
			t.Logf("%d token responses on instance 2, all dead after %s on instance 1", len(issued), c.name)
		})
	}
}
