package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// Issue 8: the provider on a real 3-primary Redis Cluster and on a
// Sentinel-managed primary + replica, both started by the tests from the
// Debian binaries (sessiontest.EnvTopologies gates them; CI sets it).

// topologyEnv starts an env whose instances use b.
func topologyEnv(t *testing.T, b *sessiontest.Backend) *env {
	t.Helper()
	redisstore.LogTo(slog.New(slog.DiscardHandler)) // go-redis narrates every Sentinel lookup
	return newEnvWith(t, envOptions{open: func() session.Store { return b.Store(t) }, mutate: func(c *config.Config) {
		for i := range loadUsers {
			c.Users = append(c.Users, config.User{Username: fmt.Sprintf("load%d", i), Password: bobPass})
		}
	}})
}

// The full login, step-up, SSO and refresh flows on each topology, with
// two instances sharing the store.
func TestFlowsOnTopologies(t *testing.T) {
	for name, start := range map[string]func(*testing.T) *sessiontest.Backend{
		"cluster": func(t *testing.T) *sessiontest.Backend {
			return sessiontest.NewBackendOn(t, sessiontest.StartCluster(t).Redis())
		},
		"sentinel": func(t *testing.T) *sessiontest.Backend {
			return sessiontest.NewBackendOn(t, sessiontest.StartSentinel(t).Redis())
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := topologyEnv(t, start(t))
			b, r := e.browser(), e.rp("spa", "") // public: refresh tokens rotate

			first := signIn(t, e, b, r, nil, "alice", alicePass)
			wantClaims(t, first, oneFA, []string{"pwd"})

			// SSO on a second instance: the session is in the shared store.
			e.clock.Advance(time.Minute)
			other := e.instance().Handler()
			a := r.authURL(nil)
			req, _ := http.NewRequest(http.MethodGet, a.url, nil)
			for _, c := range b.c.Jar.Cookies(req.URL) {
				req.AddCookie(c)
			}
			rec := httptest.NewRecorder()
			other.ServeHTTP(rec, req)
			if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), rpCallback) {
				t.Fatalf("SSO on a second instance: %d %s", rec.Code, rec.Header().Get("Location"))
			}
			loc, _ := url.Parse(rec.Header().Get("Location"))
			sso := r.mustExchange(a, (&page{loc: loc}).result(t))
			if sso.claims.AuthTime != first.claims.AuthTime || sso.claims.Sub != first.claims.Sub {
				t.Fatalf("SSO claims %+v, first %+v", sso.claims, first.claims)
			}

			// Step-up: the TOTP page only, then the multi-factor level.
			a = r.authURL(map[string]string{"acr_values": mfaACR})
			p := b.code(b.get(a.url), "totp", e.totpCode(aliceTOTP))
			up := r.mustExchange(a, p.result(t))
			wantClaims(t, up, mfaACR, []string{"pwd", "otp", "mfa"})

			// A replayed TOTP code is refused (SET NX on the user's slot).
			a = r.authURL(map[string]string{"acr_values": mfaACR, "prompt": "login"})
			p = b.login(b.get(a.url), "alice", alicePass)
			if p = b.code(p, "totp", e.totpCode(aliceTOTP)); p.status != http.StatusUnauthorized {
				t.Fatalf("replayed TOTP code: status %d", p.status)
			}

			// Refresh, then reuse of the old refresh token revokes the grant.
			ts := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: up.tok.RefreshToken})
			nt, err := ts.Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			rt, err := r.verify(nt, "")
			if err != nil || rt.claims.ACR != mfaACR || rt.claims.Sub != first.claims.Sub {
				t.Fatalf("refreshed ID token %+v, %v", rt.claims, err)
			}
			if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: up.tok.RefreshToken}).Token(); err == nil {
				t.Fatal("reused refresh token accepted")
			}
			if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: nt.RefreshToken}).Token(); err == nil {
				t.Fatal("refresh token of a revoked grant accepted")
			}

			// A code is redeemed once.
			a = r.authURL(nil)
			res := b.get(a.url).result(t)
			r.mustExchange(a, res)
			if _, err := r.exchange(a, res); err == nil {
				t.Fatal("code redeemed twice")
			}

			// A single sign-on code is not checked against the account
			// at its exchange (its /authorize read it): what stops it
			// after the user's sessions ended is PutGrant's check of the
			// session, a script on the session's slot.
			a = r.authURL(nil)
			res = b.get(a.url).result(t)
			if p := b.get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {first.idToken}}.Encode()); p.status != http.StatusOK {
				t.Fatalf("end_session: %d", p.status)
			}
			if _, err := r.exchange(a, res); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("exchange of a code of an ended session: %v, want invalid_grant", err)
			}
		})
	}
}

// load drives mixed traffic (password logins, SSO, refresh,
// client_credentials) from several workers and sorts every answer:
// success with verified, correct claims; a clean 503; or a failure
// (anything else: a 200 with wrong claims, a 500, a 4xx, a dropped
// connection).
type load struct {
	e    *env
	r    *rp
	subs map[string]string // username → subject

	// ok counts successes of the operations that use the store (all but
	// client_credentials, which needs none).
	ok, okCC, unavailable atomic.Int64
	mu                    sync.Mutex
	failures              []string
	acked                 []*vuser // browsers whose login answered with a code
}

// vuser is a browser of the load, its session and its refresh token.
type vuser struct {
	user     string
	c        *http.Client
	authTime int64
	refresh  string
}

var errUnavailable = errors.New("503")

// loadUsers is the number of users of the load, one per worker: a user
// signing in from four browsers at once through a failover would have
// the attempts that were counted before it and never refunded (the store
// was gone) add up to a lockout, which is the abuse budget doing its job.
const loadUsers = 4

func newLoad(t *testing.T, e *env) *load {
	// The public client: its refresh tokens rotate (a script on the
	// grant's slot), a confidential client's do not.
	l := &load{e: e, r: e.rp("spa", ""), subs: map[string]string{}}
	for i := range loadUsers {
		name := fmt.Sprintf("load%d", i)
		a, err := e.store().AccountByUsername(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		l.subs[name] = a.Subject
	}
	if err := l.login(context.Background(), l.newVU("load0")); err != nil {
		t.Fatalf("first login: %v", err)
	}
	return l
}

func (l *load) newVU(user string) *vuser {
	jar, _ := cookiejar.New(nil)
	return &vuser{user: user, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), rpCallback) {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// do sends req from v; a 503 is errUnavailable.
func (l *load) do(v *vuser, req *http.Request) (*http.Response, string, error) {
	resp, err := v.c.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return nil, "", errUnavailable
	}
	return resp, string(body), nil
}

// login runs a password login for v's user, checks the ID token, and
// marks v acknowledged.
func (l *load) login(ctx context.Context, v *vuser) error {
	a := l.r.authURL(nil)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	resp, body, err := l.do(v, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("authorize: status %d", resp.StatusCode)
	}
	doc, _ := html.Parse(strings.NewReader(body))
	p := &page{status: resp.StatusCode, url: resp.Request.URL, body: body, doc: doc}
	var form *html.Node
	for _, f := range find(doc, func(n *html.Node) bool { return n.Data == "form" }) {
		if len(find(f, hasAttr("autocomplete", "current-password"))) > 0 {
			form = f
		}
	}
	if form == nil {
		return fmt.Errorf("authorize: no login form:\n%s", excerpt(body))
	}
	resp, _, err = l.do(v, formRequest(p, form, map[string]string{"username": v.user, "password": bobPass}).WithContext(ctx))
	if err != nil {
		return err
	}
	tk, err := l.exchange(ctx, a, resp)
	if err != nil {
		return err
	}
	if err := l.check(v, tk, 0); err != nil {
		return err
	}
	v.authTime, v.refresh = tk.claims.AuthTime, tk.tok.RefreshToken
	l.mu.Lock()
	l.acked = append(l.acked, v)
	l.mu.Unlock()
	return nil
}

// sso runs /authorize in a signed-in browser: a code with no page, and
// the auth_time of its login.
func (l *load) sso(ctx context.Context, v *vuser) error {
	a := l.r.authURL(nil)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	resp, body, err := l.do(v, req)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK && strings.Contains(body, "current-password") {
		return errSessionLost
	}
	tk, err := l.exchange(ctx, a, resp)
	if err != nil {
		return err
	}
	if err := l.check(v, tk, v.authTime); err != nil {
		return err
	}
	// One grant per session and client: this authorization replaced the
	// grant's refresh token, so the one kept from before is now an old
	// token of the family (reuse, which revokes it). Keep the newest, as
	// a relying party that signs the user in again does.
	if tk.tok.RefreshToken != "" {
		v.refresh = tk.tok.RefreshToken
	}
	return nil
}

var errSessionLost = errors.New("session lost: the login page was shown to a signed-in browser")

// refresh redeems v's refresh token. After a 503 the token may or may not
// have been rotated, so it is dropped rather than retried.
func (l *load) refresh(ctx context.Context, v *vuser) error {
	rt := v.refresh
	if rt == "" {
		return l.sso(ctx, v)
	}
	v.refresh = ""
	tok, err := l.r.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return tokenErr(err)
	}
	tk, err := l.r.verify(tok, "")
	if err != nil {
		return err
	}
	if err := l.check(v, tk, v.authTime); err != nil {
		return err
	}
	v.refresh = tok.RefreshToken
	return nil
}

// clientCredentials asks the token endpoint for a client_credentials token.
func (l *load) clientCredentials(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"stepup:grants"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bank", bankSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if !strings.Contains(string(body), "access_token") {
			return fmt.Errorf("client_credentials: 200 without a token: %s", body)
		}
		return nil
	case http.StatusServiceUnavailable:
		return errUnavailable
	}
	return fmt.Errorf("client_credentials: %d %s", resp.StatusCode, body)
}

// exchange takes the redirect to the RP and redeems its code.
func (l *load) exchange(ctx context.Context, a authReq, resp *http.Response) (*tokens, error) {
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), rpCallback) {
		return nil, fmt.Errorf("%s: status %d, want a redirect to the RP", resp.Request.URL.Path, resp.StatusCode)
	}
	q := loc.Query()
	if q.Get("error") != "" || q.Get("state") != a.state || q.Get("iss") != l.e.issuer {
		return nil, fmt.Errorf("RP got error %q state %q iss %q", q.Get("error"), q.Get("state"), q.Get("iss"))
	}
	tok, err := l.r.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		return nil, tokenErr(err)
	}
	tk, err := l.r.verify(tok, a.nonce)
	if err != nil {
		return nil, err
	}
	return tk, nil
}

func tokenErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusServiceUnavailable {
		return errUnavailable
	}
	return err
}

// check: v's user, 1fa by password, and (when known) the auth_time of
// the login.
func (l *load) check(v *vuser, tk *tokens, authTime int64) error {
	c := tk.claims
	if c.Sub != l.subs[v.user] || c.ACR != oneFA || !slices.Equal(c.AMR, []string{"pwd"}) || c.AuthTime == 0 || (authTime != 0 && c.AuthTime != authTime) {
		return fmt.Errorf("wrong claims: %+v (%s is %s, auth_time %d)", c, v.user, l.subs[v.user], authTime)
	}
	return nil
}

// record sorts the outcome of one operation.
func (l *load) record(what string, err error) {
	switch {
	case err == nil && what == "client_credentials":
		l.okCC.Add(1)
	case err == nil:
		l.ok.Add(1)
	case errors.Is(err, errUnavailable):
		l.unavailable.Add(1)
	default:
		l.mu.Lock()
		l.failures = append(l.failures, what+": "+err.Error())
		l.mu.Unlock()
	}
}

// run starts workers that loop over the operations until ctx ends.
func (l *load) run(ctx context.Context, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 8))
			var mine []*vuser
			for i := 0; ctx.Err() == nil; i++ {
				var err error
				var what string
				switch {
				case len(mine) == 0 || i%4 == 0:
					what = "login"
					v := l.newVU(fmt.Sprintf("load%d", w%loadUsers))
					if err = l.login(ctx, v); err == nil {
						mine = append(mine, v)
					}
				case i%4 == 1:
					what, err = "sso", l.sso(ctx, mine[rng.IntN(len(mine))])
				case i%4 == 2:
					what, err = "refresh", l.refresh(ctx, mine[rng.IntN(len(mine))])
				default:
					what, err = "client_credentials", l.clientCredentials(ctx)
				}
				if ctx.Err() != nil {
					return // cut short by the end of the test: says nothing
				}
				l.record(what, err)
				if errors.Is(err, errUnavailable) {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return &wg
}

// snapshot returns the browsers acknowledged so far.
func (l *load) snapshot() []*vuser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked)
}

// waitOK waits until n more operations succeeded.
func (l *load) waitOK(t *testing.T, n int64, limit time.Duration) {
	t.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(limit)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d more successful operations in %v; failures: %v", l.ok.Load()-target+n, n, limit, l.failureList())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) failureList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failures)
}

// lost counts the browsers of vs whose session is gone: SSO shows the
// login page. Other errors fail t.
func (l *load) lost(t *testing.T, vs []*vuser) int {
	t.Helper()
	n := 0
	for _, v := range vs {
		err := l.sso(t.Context(), v)
		switch {
		case errors.Is(err, errSessionLost):
			n++
		case err != nil:
			t.Errorf("SSO after the fault: %v", err)
		}
	}
	return n
}

// Sentinel failover during a running load: the primary is killed
// (SIGKILL), the Sentinels promote the replica, and the flows resume by
// themselves. In between, every answer is a success with the right claims
// or a clean 503; every session acknowledged before the kill is still
// there afterwards. Both servers run appendonly with appendfsync always.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	s := sessiontest.StartSentinel(t)
	e := topologyEnv(t, sessiontest.NewBackendOn(t, s.Redis()))
	l := newLoad(t, e)
	ctx, cancel := context.WithCancel(t.Context())
	wg := l.run(ctx, 4)
	defer func() { cancel(); wg.Wait() }()

	l.waitOK(t, 40, 60*time.Second)
	old := s.Primary()
	before := l.snapshot()
	okBefore := l.ok.Load()
	killed := time.Now()
	old.Kill()
	next := s.WaitPromoted(old)
	promoted := time.Since(killed)
	l.waitOK(t, 40, 60*time.Second)
	resumed := time.Since(killed)
	cancel()
	wg.Wait()

	if f := l.failureList(); len(f) > 0 {
		t.Fatalf("%d answers were neither a success nor a clean 503, e.g. %q", len(f), f[:min(5, len(f))])
	}
	lost := l.lost(t, before)
	t.Logf("sentinel failover: %d store-backed successes before the kill, %d in all (+%d client_credentials), %d clean 503s; %s promoted %v after the kill, 40 more store-backed successes by %v; %d of %d sessions acknowledged before the kill lost",
		okBefore, l.ok.Load(), l.okCC.Load(), l.unavailable.Load(), next.Addr(), promoted.Round(time.Millisecond), resumed.Round(time.Millisecond), lost, len(before))
	if lost != 0 {
		t.Fatalf("%d of %d acknowledged sessions lost in the failover", lost, len(before))
	}
	if n := l.lost(t, l.snapshot()); n != 0 {
		t.Fatalf("%d sessions acknowledged after the failover lost", n)
	}
}

// Cluster resharding during a running load: slots (with their keys) move
// between primaries with MIGRATE while users sign in, use SSO and refresh.
// Clients follow MOVED and ASK; nobody notices.
func TestClusterReshardUnderLoad(t *testing.T) {
	c := sessiontest.StartCluster(t)
	e := topologyEnv(t, sessiontest.NewBackendOn(t, c.Redis()))
	l := newLoad(t, e)
	ctx, cancel := context.WithCancel(t.Context())
	wg := l.run(ctx, 4)
	defer func() { cancel(); wg.Wait() }()

	l.waitOK(t, 40, 60*time.Second)
	before := l.snapshot()
	okBefore := l.ok.Load()
	// Two moves of 4000 slots (about a quarter of the keys each time).
	for _, mv := range [][2]int{{0, 1}, {1, 2}} {
		if out, err := c.Reshard(mv[0], mv[1], 4000); err != nil {
			t.Fatalf("reshard %d → %d: %v\n%s", mv[0], mv[1], err, out)
		}
	}
	c.WaitOK()
	l.waitOK(t, 20, 60*time.Second)
	cancel()
	wg.Wait()

	f := l.failureList()
	t.Logf("cluster reshard: %d store-backed successes before, %d in all (+%d client_credentials), %d 503s, %d failures; %d sessions acknowledged before", okBefore, l.ok.Load(), l.okCC.Load(), l.unavailable.Load(), len(f), len(before))
	if len(f) > 0 {
		t.Fatalf("%d answers were not successes, e.g. %q", len(f), f[:min(5, len(f))])
	}
	if n := l.unavailable.Load(); n != 0 {
		t.Errorf("%d answers were 503 during resharding: not transparent", n)
	}
	if lost := l.lost(t, l.snapshot()); lost != 0 {
		t.Fatalf("%d sessions lost in the resharding", lost)
	}
}
