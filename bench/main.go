// Command bench drives a running stepupd (or, for comparison, the
// zitadel/oidc v3 example server) over HTTP on 127.0.0.1 and reports, per
// scenario, operations, operations per second, p50/p99 latency, errors and
// HTTP round trips per operation.
//
//	go run ./bench -write-config DIR -issuer http://127.0.0.1:PORT -redis-url redis://127.0.0.1:RPORT/0 -users 2000 -alg ES256
//	go run ./bench -secrets DIR/bench-secrets.json -mode all -duration 10s -concurrency 32
//	go run ./bench -target zitadel -mode all -duration 10s
//
// Modes (-mode, comma list or all):
//
//	discovery  GET /.well-known/openid-configuration
//	jwks       GET jwks_uri
//	cc         POST token endpoint, grant_type=client_credentials, client_secret_basic
//	login      a fresh browser: /authorize (code, PKCE S256) → login page →
//	           POST username/password → code → token exchange → ID token verified
//	sso        one password session per worker, set up before timing; each
//	           op is /authorize → immediate code (session reuse) → exchange
//	stepup     a pool of password-only sessions (one per user) is set up
//	           before timing; each op takes one and elevates it:
//	           /authorize acr_values=multi-factor → TOTP page → POST a valid
//	           code → code → exchange, checking acr and amr in the ID token.
//	           Each user steps up at most once per run (TOTP steps are
//	           single-use per user, and the multi-factor level then stays
//	           satisfied for its max_age, so a second step-up would be SSO);
//	           the mode ends early when the pool runs out.
//	soak       (alone) mixed traffic — login, SSO, refresh, step-up,
//	           client_credentials — with a time series every -sample and,
//	           at the end, the count of acknowledged sessions lost; faults
//	           are injected from outside (bench/soak.sh)
//
// -backends spreads the connections over several instances serving one
// issuer; bench/scale.sh uses it for the 1/2/4-instance figures.
//
// See bench/README.md for what each figure means.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

var allModes = []string{"discovery", "jwks", "cc", "login", "sso", "stepup"}

// secretsFile is what -write-config leaves beside the YAML: the plain
// secrets the bench needs and the config only holds as hashes.
type secretsFile struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURI  string `json:"redirect_uri"`
	Password     string `json:"password"`
	Users        []user `json:"users"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "issuer of the running server (loopback only); -target zitadel defaults to http://localhost:9998/")
	target := fs.String("target", "stepup", "stepup | zitadel (the zitadel/oidc v3 example server)")
	mode := fs.String("mode", "all", "comma list of "+strings.Join(allModes, ",")+", or all; or soak (mixed traffic with a time series, see bench/soak.sh)")
	duration := fs.Duration("duration", 10*time.Second, "timed phase of each mode")
	conc := fs.Int("concurrency", 32, "workers (virtual users) per mode")
	loginConc := fs.Int("login-concurrency", 8, "workers for the login mode and for setting up password sessions; stepupd runs one argon2id hash per 2 cores and lets 4 per core wait (9 on 2 cores), beyond that it answers 503 busy")
	clientID := fs.String("client-id", "bench", "confidential client for login/sso/stepup (zitadel: web)")
	clientSecret := fs.String("client-secret", "", "its secret (client_secret_basic); default from -secrets (zitadel: secret)")
	redirectURI := fs.String("redirect-uri", "http://127.0.0.1:9/cb", "registered redirect URI; never contacted (zitadel: http://localhost:9999/auth/callback)")
	ccClientID := fs.String("cc-client-id", "", "client for the cc mode (default -client-id; zitadel: sid1)")
	ccClientSecret := fs.String("cc-client-secret", "", "its secret (default -client-secret; zitadel: verysecret)")
	users := fs.Int("users", 0, "with -write-config: users to write; when running: use at most this many users from -secrets (0 = all)")
	username := fs.String("username", "", "sign every virtual user in as this one user (default: the users of -secrets; zitadel: test-user@<issuer host>)")
	passwd := fs.String("password", "", "password of the users (default from -secrets; zitadel: verysecure)")
	secretsPath := fs.String("secrets", "", "bench-secrets.json written by -write-config (client secret, password, users and their TOTP secrets)")
	warmup := fs.Bool("warmup", true, "run each mode's operation once, untimed, before measuring (fills stepupd's cache of verified client secrets, go-oidc's JWKS cache, connections)")
	verifyEvery := fs.Int64("verify-every", 1, "verify the ID token signature of every Nth code exchange (0 = never; stepup mode always verifies)")
	label := fs.String("label", "", "label for the report rows (default: target)")
	mdPath := fs.String("md", "", "append one markdown table row per mode to this file")
	writeDir := fs.String("write-config", "", "write DIR/stepup.yaml and DIR/bench-secrets.json for stepupd, then exit")
	alg := fs.String("alg", "ES256", "with -write-config: keys.algorithm RS256 | ES256 | EdDSA (every token, for a stepupd from before issue 18; with it, the ID tokens of clients that register none)")
	idTokenAlg := fs.String("id-token-alg", "", "with -write-config: the bench client's ID token algorithm, for a stepupd with two signing keys (issue 18), instead of -alg: RS256 registers none (the default), ES256 or EdDSA registers it as id_token_signed_response_alg; keys.algorithm is left out; access tokens are ES256 either way")
	redisURL := fs.String("redis-url", "", "with -write-config: redis.url (empty: the embedded store)")
	databaseURL := fs.String("database-url", "", "with -write-config: database.url (empty: a SQLite file DIR/stepup.db; none: no database section, for a stepupd from before accounts moved to SQL)")
	pids := fs.String("pid", "", "comma list of server process ids (stepupd first, then e.g. redis-server; PID+ adds the process's children, e.g. a PostgreSQL postmaster's backends): report their CPU ms per op and the first one's RSS")
	redisAddr := fs.String("redis", "", "host:port of stepupd's Redis (loopback): report Redis commands per op (stepupd's own round-trip count is read from its /metrics)")
	opRate := fs.Float64("rate", 0, "operations per second over all workers, paced (0: each worker starts its next operation as soon as the last ended); bench/scale.sh uses it to give every instance the same load")
	mdHeaderOnly := fs.Bool("md-header", false, "print the header of the -md table and exit")
	freePort := fs.Bool("free-port", false, "print a free TCP port on 127.0.0.1 and exit (for run.sh)")
	backends := fs.String("backends", "", "comma list of host:port of stepupd instances serving -issuer: connections to the issuer are spread over them, skipping one that refuses (a client-side TCP load balancer)")
	redisAddrs := fs.String("redis-addrs", "", "with -write-config: redis.addrs (comma list: Cluster seeds) instead of -redis-url")
	sessionIdle := fs.Duration("session-idle", 0, "with -write-config: session.idle_timeout (0: stepupd's default, 30m); soak: the same value, so that sessions idle longer than it at the end are counted as expired, not lost")
	sessionAbsolute := fs.Duration("session-absolute", 0, "with -write-config and -session-idle: session.absolute_timeout (0: 12h), which an online grant lives for; soak: the same value, so that sessions older at the end are counted as expired, not lost")
	sample := fs.Duration("sample", 5*time.Second, "soak: length of one line of the time series")
	pidFiles := fs.String("pidfiles", "", "soak: comma list of files holding the pid of each stepupd instance, re-read at every sample (instances restart); their RSS is reported")
	redisMem := fs.String("redis-mem", "", "soak: comma list of host:port of Redis nodes whose used_memory (summed) is reported")
	scimPrefix := fs.String("scim-prefix", "scim", "scim modes: user i is named PREFIXi (email PREFIXi@example.com, externalId ext-PREFIXi)")
	scimCount := fs.Int64("scim-count", 0, "scim-create: create this many users and stop, whatever -duration (0: until -duration)")
	scimStart := fs.Int64("scim-start", 0, "scim-create: index of the first user to create")
	scimExisting := fs.Int64("scim-existing", 0, "scim-list: users PREFIX0…PREFIX(N-1) exist; lookups pick among them")
	scimFilters := fs.String("scim-filters", "username,email,externalid,and-active,page", "scim-list: one row per kind: username, email, externalid, and-active (userName eq … and active eq true), page (startIndex in the middle, count=100, no filter)")
	_ = fs.Parse(os.Args[1:])
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if *mdHeaderOnly {
		fmt.Print(mdHeader)
		return nil
	}
	if *freePort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		return ln.Close()
	}
	if *writeDir != "" {
		n := *users
		if n <= 0 {
			n = 1000
		}
		return writeConfig(*writeDir, *issuer, *redisURL, *redisAddrs, *databaseURL, *alg, *idTokenAlg, n, *sessionIdle, *sessionAbsolute)
	}

	if *opRate < 0 {
		return fmt.Errorf("-rate %v: must be 0 or more", *opRate)
	}
	b := &bench{target: *target, verifyEvery: *verifyEvery, warmup: *warmup, redisAddr: *redisAddr, rate: *opRate,
		scim: scimConfig{prefix: *scimPrefix, count: *scimCount, start: *scimStart, existing: *scimExisting}}
	for _, k := range strings.Split(*scimFilters, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if _, ok := scimFilterKinds[k]; !ok {
				return fmt.Errorf("-scim-filters: unknown kind %q", k)
			}
			b.scim.filters = append(b.scim.filters, "scim-list:"+k)
		}
	}
	if *pids != "" {
		b.pids = strings.Split(*pids, ",")
		if _, err := procCPU(b.pids[0]); err != nil {
			return fmt.Errorf("-pid: %w", err)
		}
	}
	switch *target {
	case "stepup":
		b.expectIss = true
		b.issuer, b.clientID, b.redirectURI = *issuer, *clientID, *redirectURI
		b.clientSecret, b.password = *clientSecret, *passwd
		if *secretsPath != "" {
			s, err := readSecrets(*secretsPath)
			if err != nil {
				return err
			}
			if !set["issuer"] {
				b.issuer = s.Issuer
			}
			if !set["client-id"] {
				b.clientID = s.ClientID
			}
			if !set["client-secret"] {
				b.clientSecret = s.ClientSecret
			}
			if !set["redirect-uri"] {
				b.redirectURI = s.RedirectURI
			}
			if !set["password"] {
				b.password = s.Password
			}
			b.users = s.Users
		}
	case "zitadel":
		// The example server's fixed clients and user (storage package);
		// a flag given explicitly still wins.
		pick := func(name, def string, v *string) string {
			if set[name] {
				return *v
			}
			return def
		}
		b.issuer = pick("issuer", "http://localhost:9998/", issuer)
		b.clientID = pick("client-id", "web", clientID)
		b.clientSecret = pick("client-secret", "secret", clientSecret)
		b.redirectURI = pick("redirect-uri", "http://localhost:9999/auth/callback", redirectURI)
		b.password = pick("password", "verysecure", passwd)
		b.ccClientID = pick("cc-client-id", "sid1", ccClientID)
		b.ccClientSecret = pick("cc-client-secret", "verysecret", ccClientSecret)
		if *username == "" {
			// The example names its user after the issuer's host.
			u, _ := url.Parse(b.issuer)
			*username = "test-user@" + u.Hostname()
		}
	default:
		return fmt.Errorf("-target %q: want stepup or zitadel", *target)
	}
	if *username != "" {
		b.users = []user{{Username: *username}}
	}
	if *users > 0 && len(b.users) > *users {
		b.users = b.users[:*users]
	}
	if b.target == "stepup" {
		// stepup's bench client has client_credentials too.
		b.ccClientID, b.ccClientSecret = *ccClientID, *ccClientSecret
		if b.ccClientID == "" {
			b.ccClientID = b.clientID
		}
		if b.ccClientSecret == "" {
			b.ccClientSecret = b.clientSecret
		}
	}
	if *label == "" {
		*label = *target
	}

	soak := *mode == "soak"
	var modes []string
	if !soak {
		var err error
		if modes, err = parseModes(*mode); err != nil {
			return err
		}
	}
	var lb *balancer
	if *backends != "" {
		u, err := url.Parse(b.issuer)
		if err != nil || u.Port() == "" {
			return fmt.Errorf("-backends needs an issuer with a port, got %q", b.issuer)
		}
		lb = &balancer{front: u.Host, backends: strings.Split(*backends, ",")}
		b.backends = lb.backends
		if strings.EqualFold(u.Hostname(), "localhost") {
			lb.front = "127.0.0.1:" + u.Port()
		}
	}
	b.tr = newTransport(2*max(*conc, *loginConc)+16, lb)
	b.api = &http.Client{Transport: b.tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.discover(ctx); err != nil {
		return err
	}
	fmt.Printf("# %s at %s: authorize %s, token %s, jwks %s; %d user(s); duration %s\n",
		b.target, b.issuer, b.authEndpoint, b.tokenEndpoint, b.jwksURI, len(b.users), *duration)

	if soak {
		cfg := soakConfig{duration: *duration, sample: *sample, conc: *conc, sessionIdle: *sessionIdle, sessionAbsolute: *sessionAbsolute}
		if *pidFiles != "" {
			cfg.pidFiles = strings.Split(*pidFiles, ",")
		}
		if *redisMem != "" {
			cfg.redisNodes = strings.Split(*redisMem, ",")
		}
		return b.soak(ctx, cfg)
	}
	var expanded []string
	for _, m := range modes {
		if m == "scim-list" {
			expanded = append(expanded, b.scim.filters...)
		} else {
			expanded = append(expanded, m)
		}
	}
	for _, m := range expanded {
		if ctx.Err() != nil {
			break
		}
		c := *conc
		if m == "login" {
			c = *loginConc
		}
		r := b.runMode(ctx, m, c, *loginConc, *duration)
		r.print(os.Stdout, *label)
		if *mdPath != "" {
			if err := appendFile(*mdPath, r.mdRow(*label)+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseModes(s string) ([]string, error) {
	if s == "all" {
		return allModes, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		ok := false
		for _, a := range append(allModes, scimModes...) {
			ok = ok || a == m
		}
		if !ok {
			return nil, fmt.Errorf("-mode: unknown mode %q (want %s or all, or %s)", m, strings.Join(allModes, ","), strings.Join(scimModes, ","))
		}
		out = append(out, m)
	}
	return out, nil
}

func readSecrets(path string) (*secretsFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s secretsFile
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// errPoolEmpty ends a worker of the stepup mode: no prepared session is
// left. It is not an error of the server.
var errPoolEmpty = errors.New("pool empty")

// runMode sets a mode up (untimed) and then measures it.
func (b *bench) runMode(ctx context.Context, mode string, conc, setupConc int, d time.Duration) *result {
	r := &result{mode: mode, concurrency: conc, t: newTally()}
	var op func(ctx context.Context, worker int) error
	switch mode {
	case "discovery":
		op = func(ctx context.Context, _ int) error { return b.opGetJSON(ctx, "discovery", b.discoveryURL) }
	case "jwks":
		op = func(ctx context.Context, _ int) error { return b.opGetJSON(ctx, "jwks", b.jwksURI) }
	case "cc":
		if b.target == "zitadel" {
			r.notes = append(r.notes, "client sid1 (the example's service user)")
		}
		op = func(ctx context.Context, _ int) error { return b.opClientCredentials(ctx) }
	case "login":
		if len(b.users) == 0 {
			r.na = "no users: pass -secrets or -username/-password"
			return r
		}
		var next atomic.Int64
		op = func(ctx context.Context, _ int) error {
			u := b.users[int(next.Add(1)-1)%len(b.users)]
			return b.opLogin(ctx, u.Username)
		}
		if b.target == "zitadel" {
			r.notes = append(r.notes, "plain-text password compare, no hashing")
		}
	case "sso":
		if b.target == "zitadel" {
			r.na = "the example server keeps no browser session: every /authorize shows the login page"
			return r
		}
		if len(b.users) == 0 {
			r.na = "no users: pass -secrets or -username/-password"
			return r
		}
		vus, note := b.setupSessions(ctx, conc, setupConc)
		if note != "" {
			r.notes = append(r.notes, note)
		}
		if len(vus) == 0 {
			r.na = "no session could be set up (" + note + ")"
			return r
		}
		op = func(ctx context.Context, w int) error { return b.opSSO(ctx, vus[w%len(vus)].v) }
	case "stepup":
		if b.target == "zitadel" {
			r.na = "the example server has no second factor and ignores acr_values"
			return r
		}
		var withTOTP []user
		for _, u := range b.users {
			if u.TOTPSecret != "" {
				withTOTP = append(withTOTP, u)
			}
		}
		if len(withTOTP) == 0 {
			r.na = "no users with a TOTP secret: pass -secrets from -write-config"
			return r
		}
		pool, note := b.setupPool(ctx, withTOTP, setupConc)
		r.notes = append(r.notes, note)
		op = func(ctx context.Context, _ int) error {
			select {
			case s := <-pool:
				return b.opStepUp(ctx, s)
			default:
				return errPoolEmpty
			}
		}
	default: // scim-create, scim-list:KIND
		var (
			note string
			err  error
		)
		if op, note, err = b.scimOp(mode, b.scim); err != nil {
			r.na = err.Error()
			return r
		}
		if note != "" {
			r.notes = append(r.notes, note)
		}
		if mode == "scim-create" && b.scim.count > 0 {
			d = 24 * time.Hour // ends by count
		}
	}
	if b.warmup && mode != "scim-create" {
		// A cold start is a different measurement: stepupd verifies a
		// client's hashed secret with argon2id once and caches it, and
		// go-oidc fetches the JWKS on first use.
		if err := op(ctx, 0); err != nil && !errors.Is(err, errPoolEmpty) {
			r.notes = append(r.notes, "warm-up failed: "+err.Error())
		}
	}
	b.measure(ctx, r, conc, d, op)
	if mode == "stepup" && r.elapsed < d-100*time.Millisecond {
		r.notes = append(r.notes, fmt.Sprintf("pool exhausted after %.1fs", r.elapsed.Seconds()))
	}
	return r
}

// measure runs op in conc closed-loop workers until d has passed, timing
// each call; ops/s is taken over the time until the last worker stopped.
func (b *bench) measure(ctx context.Context, r *result, conc int, d time.Duration, op func(context.Context, int) error) {
	tallies := make([]*tally, conc)
	req0 := b.tr.n.Load()
	trips0 := b.storeTrips() // before the CPU snapshot: the scrape costs the server CPU
	cpu0 := snapCPU(b.pids, b.redisAddr)
	cpu0.trips = trips0
	start := time.Now()
	deadline := start.Add(d)
	// With -rate the workers share one token bucket (burst 1): an
	// operation starts only when a token is there, so the server sees
	// that many operations per second whatever their latency, as long as
	// the workers suffice. Waiting for a token is not timed.
	var lim *rate.Limiter
	if b.rate > 0 {
		lim = rate.NewLimiter(rate.Limit(b.rate), 1)
	}
	paceCtx, cancelPace := context.WithDeadline(ctx, deadline)
	defer cancelPace()
	var wg sync.WaitGroup
	for w := range conc {
		tallies[w] = newTally()
		wg.Go(func() {
			t := tallies[w]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if lim != nil && lim.Wait(paceCtx) != nil {
					return // the deadline came before the next token
				}
				t0 := time.Now()
				err := op(ctx, w)
				if errors.Is(err, errPoolEmpty) {
					return
				}
				if ctx.Err() != nil {
					return // interrupted: the half-done op says nothing
				}
				t.record(time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	cpu1 := snapCPU(b.pids, b.redisAddr)
	cpu1.trips = b.storeTrips()
	r.requests = b.tr.n.Load() - req0
	for _, t := range tallies {
		r.t.merge(t)
	}
	r.cpu = diffCPU(cpu0, cpu1, int64(r.ops())+r.t.errs, b.pids)
}

// pooled is a browser holding a password-only session of u.
type pooled struct {
	v *vu
	u user
}

// loginWithRetry signs a fresh browser in. stepupd sheds password logins
// beyond its hashing queue with 503 (busy); set-up retries those, since
// set-up is not what is measured.
func (b *bench) loginWithRetry(ctx context.Context, u user) (*vu, error) {
	var err error
	for attempt := range 20 {
		v := b.newVU()
		if _, _, err = b.passwordLogin(ctx, v, u.Username, nil); err == nil {
			return v, nil
		}
		var fe *flowError
		if !errors.As(err, &fe) || !strings.Contains(fe.kind, "status 503") || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	return nil, err
}

// setupSessions signs one browser per worker in (users rotate), for sso.
func (b *bench) setupSessions(ctx context.Context, n, conc int) ([]*pooled, string) {
	us := make([]user, n)
	for i := range us {
		us[i] = b.users[i%len(b.users)]
	}
	return b.signIn(ctx, us, conc)
}

// setupPool signs every TOTP user in once, untimed, and returns the
// sessions as a queue: each will be stepped up exactly once.
func (b *bench) setupPool(ctx context.Context, us []user, conc int) (chan *pooled, string) {
	vus, note := b.signIn(ctx, us, conc)
	pool := make(chan *pooled, len(vus))
	for _, s := range vus {
		pool <- s
	}
	return pool, note
}

func (b *bench) signIn(ctx context.Context, us []user, conc int) ([]*pooled, string) {
	fmt.Fprintf(os.Stderr, "  setting up %d password sessions (untimed)…\n", len(us))
	start := time.Now()
	out := make([]*pooled, len(us))
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var failed int
	var wg sync.WaitGroup
	for range min(conc, len(us)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(us) {
					return
				}
				v, err := b.loginWithRetry(ctx, us[i])
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				out[i] = &pooled{v: v, u: us[i]}
			}
		})
	}
	wg.Wait()
	var ok []*pooled
	for _, s := range out {
		if s != nil {
			ok = append(ok, s)
		}
	}
	el := time.Since(start)
	note := fmt.Sprintf("set-up: %d password sessions in %.1fs (%.1f logins/s, untimed)", len(ok), el.Seconds(), float64(len(ok))/el.Seconds())
	if failed > 0 {
		note += fmt.Sprintf(", %d failed, e.g. %v", failed, firstErr)
	}
	return ok, note
}
