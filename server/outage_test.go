package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// redisProcess is a redis-server of the test's own, which it can stop and
// start again on the same port and data directory.
type redisProcess struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed; .ci/run installs it")
		}
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisProcess{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisProcess) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// start runs redis-server with an append-only file synced on every write,
// as docker-compose.yml runs it, so a restart keeps every session.
func (r *redisProcess) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	eventually(r.t, "redis-server accepting connections", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop shuts redis-server down cleanly (SIGTERM) and waits for it.
func (r *redisProcess) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	r.cmd = nil
}

func getStatus(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	return resp.StatusCode, body
}

// PRODUCT.md §8 and issue 4: a real redis-server stopped and restarted
// under a running server. Requests that need the store answer 503 (an
// HTML page for browsers, a JSON error at the token endpoint), /readyz is
// false, nothing is half-written, and everything recovers by itself —
// with the session from before the outage still valid.
func TestRealRedisStoppedAndRestarted(t *testing.T) {
	rp0 := startRedis(t)
	metrics := obs.NewMetrics()
	var stores []*redisstore.Store
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	open := func() session.Store {
		s, err := redisstore.Open(config.Redis{URL: rp0.url()}, redisstore.Options{OnRoundTrip: metrics.StoreRoundTrip})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
		return s
	}
	e := newEnvWith(t, envOptions{open: open, metrics: metrics})
	b, r := e.browser(), e.rp("bank", bankSecret)
	r.cfg.Scopes = append(r.cfg.Scopes, "offline_access")
	before := signIn(t, e, b, r, nil, "alice", alicePass)
	// bob has a login page open when Redis goes away.
	bob := e.browser()
	bobPage := bob.get(r.authURL(nil).url)

	rp0.stop()

	if code, body := getStatus(t, e.issuer+"/readyz"); code != http.StatusServiceUnavailable || body["store"] != false {
		t.Fatalf("/readyz during the outage: %d %v", code, body)
	}
	if code, _ := getStatus(t, e.issuer+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during the outage: %d (the process is alive)", code)
	}
	if p := b.get(r.authURL(nil).url); p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "temporarily unavailable") {
		t.Fatalf("/authorize during the outage: %d\n%s", p.status, excerpt(p.body))
	}
	if p := bob.login(bobPage, "bob", bobPass); p.status != http.StatusServiceUnavailable {
		t.Fatalf("sign-in during the outage: %d", p.status)
	}
	code, body := e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before.tok.RefreshToken}}, "bank", bankSecret)
	if code != http.StatusServiceUnavailable || body["error"] == nil {
		t.Fatalf("/oauth/token during the outage: %d %v", code, body)
	}
	if m := scrape(t, e); m["stepup_store_errors_total"] == 0 {
		t.Error("stepup_store_errors_total did not count the outage")
	}

	rp0.start()
	eventually(t, "/readyz true after Redis returned", func() bool {
		code, _ := getStatus(t, e.issuer+"/readyz")
		return code == http.StatusOK
	})
	// The refresh token from before still works (before the SSO below,
	// which stores the session's grant for this client again and so
	// replaces it).
	if _, err := r.cfg.TokenSource(r.ctx, &oauth2.Token{RefreshToken: before.tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh after the outage: %v", err)
	}
	// The session from before: SSO, no page, same auth_time.
	a := r.authURL(nil)
	after := r.mustExchange(a, b.get(a.url).result(t))
	if after.claims.Sub != before.claims.Sub || after.claims.AuthTime != before.claims.AuthTime {
		t.Fatalf("after the outage: %+v, before %+v", after.claims, before.claims)
	}
	// bob's attempt during the outage wrote nothing: no session, no
	// failure counted.
	acct, err := e.store().AccountByUsername(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if list, err := e.store().ListSessions(t.Context(), acct.Subject); err != nil || len(list) != 0 {
		t.Fatalf("bob's sessions after a sign-in during the outage: %v, %v", list, err)
	}
	if p := bob.login(bob.get(r.authURL(nil).url), "bob", bobPass); p.loc == nil {
		t.Fatalf("bob cannot sign in after the outage: %d", p.status)
	}
}
