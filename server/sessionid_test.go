package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// sessionCookie returns the value of the browser's session cookie.
func (b *browser) sessionCookie() string {
	b.t.Helper()
	u, _ := url.Parse(b.e.issuer)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "stepup" {
			return c.Value
		}
	}
	b.t.Fatal("the browser has no session cookie")
	return ""
}

// browserWith is a new browser that holds only the session cookie value.
func (e *env) browserWith(value string) *browser {
	b := e.browser()
	u, _ := url.Parse(e.issuer)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "stepup", Value: value, Path: "/"}})
	return b
}

// signedIn reports whether the browser's cookie holds a session: a
// prompt=none request answers a code rather than login_required.
func signedIn(t *testing.T, b *browser, r *rp) bool {
	t.Helper()
	res := b.get(r.authURL(map[string]string{"prompt": "none"}).url).result(t)
	switch res.err {
	case "":
		return true
	case "login_required":
		return false
	}
	t.Fatalf("prompt=none: %s %s", res.err, res.desc)
	return false
}

// sealedCookie is a session cookie for id and key sealed with the
// issuer's own cookie keys, as someone who stole those keys could make.
func sealedCookie(t *testing.T, e *env, id, key string) string {
	t.Helper()
	hashKey, err := e.store().InitSecret(t.Context(), "cookie-hash", make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	blockKey, err := e.store().InitSecret(t.Context(), "cookie-block", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := session.NewManager(false, hashKey, blockKey, time.Hour).Set(rec, id, key); err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies()[0].Value
}

// Issue 13 item 7: the session cookie is renewed at every elevation — a
// step-up, a prompt=login re-authentication — and keeps the session's
// data. The cookie from before an elevation (fixated or copied) no longer
// holds the session; the new one holds every verification.
func TestSessionCookieRenewedAtElevation(t *testing.T) {
	e := newEnv(t, nil)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": oneFA})
	tk1 := r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t))
	signInCookie := b.sessionCookie()

	// Step-up to multi-factor with TOTP.
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	tk2 := r.mustExchange(a, b.code(b.get(a.url), "totp", e.totpCode(aliceTOTP)).result(t))
	stepUpCookie := b.sessionCookie()
	if stepUpCookie == signInCookie {
		t.Fatal("the session cookie is the same before and after the step-up")
	}
	if signedIn(t, e.browserWith(signInCookie), r) {
		t.Fatal("the cookie from before the step-up still holds the session")
	}
	// The new cookie holds both verifications: multi-factor at once.
	holder := e.browserWith(stepUpCookie)
	a = r.authURL(map[string]string{"prompt": "none", "acr_values": mfaACR})
	tk := r.mustExchange(a, holder.get(a.url).result(t))
	if tk.claims.ACR != mfaACR || !slices.Contains(tk.claims.AMR, "pwd") || !slices.Contains(tk.claims.AMR, "otp") {
		t.Fatalf("after the step-up: acr %q amr %v, want %q with pwd and otp", tk.claims.ACR, tk.claims.AMR, mfaACR)
	}

	// prompt=login re-authenticates: the cookie is renewed again.
	a = r.authURL(map[string]string{"prompt": "login"})
	r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t))
	if again := b.sessionCookie(); again == stepUpCookie || again == signInCookie {
		t.Fatal("the session cookie was not renewed by prompt=login")
	}
	if signedIn(t, e.browserWith(stepUpCookie), r) {
		t.Fatal("the cookie from before the re-authentication still holds the session")
	}
	if !signedIn(t, b, r) {
		t.Fatal("the renewed cookie does not hold the session")
	}
	// One session throughout: its sid did not change.
	if tk1.claims.SID == "" || tk1.claims.SID != tk2.claims.SID {
		t.Fatalf("sid %q before and %q after the step-up, want one non-empty sid", tk1.claims.SID, tk2.claims.SID)
	}
	list, err := e.store().ListSessions(t.Context(), tk1.claims.Sub)
	if err != nil || len(list) != 1 {
		t.Fatalf("alice has %d sessions (%v), want 1", len(list), err)
	}
}

// Issue 13 item 11: the ID token's sid is not the session id a cookie
// carries; neither it nor the session's stable id (the admin API's
// handle) is worth anything as a cookie, even sealed with the issuer's
// own cookie keys; the admin API shows both. RP-initiated logout with the ID token still ends the
// session at once, also with a token issued before a renewal.
func TestSIDIsNotTheSessionCookie(t *testing.T) {
	e := apiEnv(t)
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(nil)
	first := r.mustExchange(a, b.login(b.get(a.url), "alice", alicePass).result(t))
	sid := first.claims.SID
	list, err := e.store().ListSessions(t.Context(), first.claims.Sub)
	if err != nil || len(list) != 1 {
		t.Fatalf("alice has %d sessions (%v), want 1", len(list), err)
	}
	id := list[0].ID
	if sid == "" || sid == id {
		t.Fatalf("sid %q: want a value derived from the session, not its id %q", sid, id)
	}
	// The admin API names the session by its handle and shows the sid of
	// its ID tokens beside it.
	got := e.api("GET", "/api/v1/users/"+first.claims.Sub+"/sessions", e.ccToken("bank", bankSecret, "stepup:admin"), nil).want(t, "list", 200, "")
	ss, _ := got.body["sessions"].([]any)
	if len(ss) != 1 || ss[0].(map[string]any)["id"] != id || ss[0].(map[string]any)["sid"] != sid {
		t.Fatalf("admin API sessions %v, want one with id %q and sid %q", ss, id, sid)
	}
	for name, v := range map[string]string{
		"sid as the cookie":         sid,
		"sealed sid":                sealedCookie(t, e, sid, ""),
		"sealed id without key":     sealedCookie(t, e, id, ""),
		"sealed id with sid as key": sealedCookie(t, e, id, sid),
	} {
		if signedIn(t, e.browserWith(v), r) {
			t.Errorf("%s holds the session", name)
		}
	}

	// A step-up renews the cookie; the sid stays, and the first ID token
	// still names this session at end_session.
	a = r.authURL(map[string]string{"acr_values": mfaACR})
	if tk := r.mustExchange(a, b.code(b.get(a.url), "totp", e.totpCode(aliceTOTP)).result(t)); tk.claims.SID != sid {
		t.Fatalf("sid after the step-up %q, want %q", tk.claims.SID, sid)
	}
	p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {first.idToken}}.Encode())
	if p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out.") {
		t.Fatalf("end_session with the ID token: status %d:\n%s", p.status, excerpt(p.body))
	}
	if signedIn(t, b, r) {
		t.Fatal("still signed in after RP-initiated logout")
	}
	if _, err := e.store().GetSession(t.Context(), id); err == nil {
		t.Fatal("the session outlived RP-initiated logout")
	}
}
