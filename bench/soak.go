package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The soak mode: mixed traffic for -duration while someone (bench/soak.sh)
// injects faults — a Redis crash and restart, an instance restart — and a
// time series every -sample: operations and errors by kind, p50/p99,
// each instance's RSS and Redis's used_memory. At the end every session
// that was acknowledged (a login that ended with a verified ID token) is
// checked by SSO: a login page there is a session lost.
//
// Traffic per worker, in turn: a password login (new browser), SSO with
// one of its sessions, a refresh-token grant, a step-up to the
// multi-factor level by TOTP (on a fresh password session of a user with
// a TOTP secret), a client_credentials grant.

// soakOps names the operations of the mix, in the order of the report.
var soakOps = []string{"login", "sso", "refresh", "stepup", "cc"}

// soakSession is an acknowledged browser session.
type soakSession struct {
	v       *vu
	user    string
	refresh string
	used    time.Time // last request that slid the session's idle timeout
	created time.Time
}

// soakWindow is what happened during one sample.
type soakWindow struct {
	mu    sync.Mutex
	ok    map[string]int
	lat   []time.Duration
	kinds map[string]int
}

func newWindow() *soakWindow { return &soakWindow{ok: map[string]int{}, kinds: map[string]int{}} }

func (w *soakWindow) record(op string, d time.Duration, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.ok[op]++
		w.lat = append(w.lat, d)
		return
	}
	kind := op + ": other"
	var fe *flowError
	if errors.As(err, &fe) {
		kind = op + ": " + fe.kind
	}
	w.kinds[kind]++
}

type soakConfig struct {
	duration, sample time.Duration
	conc             int
	pidFiles         []string
	redisNodes       []string
	sessionIdle      time.Duration // stepupd's session.idle_timeout, if set
	sessionAbsolute  time.Duration // and its absolute_timeout, if set
}

func (b *bench) soak(ctx context.Context, cfg soakConfig) error {
	var totp []user
	for _, u := range b.users {
		if u.TOTPSecret != "" {
			totp = append(totp, u)
		}
	}
	if len(b.users) == 0 || len(totp) == 0 {
		return fmt.Errorf("soak needs users with TOTP secrets: pass -secrets from -write-config")
	}
	var (
		cur      atomic.Pointer[soakWindow]
		total    = newWindow()
		ackMu    sync.Mutex
		acked    []*soakSession
		nextUser atomic.Int64
		nextTOTP atomic.Int64
	)
	cur.Store(newWindow())
	record := func(op string, d time.Duration, err error) {
		cur.Load().record(op, d, err)
		total.record(op, d, err)
	}
	login := func(ctx context.Context, u user) (*soakSession, error) {
		v := b.newVU()
		c, a, err := b.passwordLogin(ctx, v, u.Username, nil)
		if err != nil {
			return nil, err
		}
		tok, err := b.exchangeTok(ctx, c, a, func(idClaims) error { return nil })
		if err != nil {
			return nil, err
		}
		now := time.Now()
		s := &soakSession{v: v, user: u.Username, used: now, created: now}
		s.refresh, _ = tok["refresh_token"].(string)
		ackMu.Lock()
		acked = append(acked, s)
		ackMu.Unlock()
		return s, nil
	}

	start := time.Now()
	deadline := start.Add(cfg.duration)
	wctx, stop := context.WithDeadline(ctx, deadline)
	defer stop()
	fmt.Printf("# soak: %d workers for %s, sample %s, started %s\n", cfg.conc, cfg.duration, cfg.sample, start.UTC().Format(time.TimeOnly))
	fmt.Printf("%-8s %-8s %7s %7s %7s %7s %7s %6s %8s %8s  %-22s %s\n", "utc", "t", "login", "sso", "refresh", "stepup", "cc", "errors", "p50 ms", "p99 ms", "stepupd RSS MiB", "redis MiB")

	var wg sync.WaitGroup
	for w := range cfg.conc {
		wg.Go(func() {
			var mine []*soakSession
			for i := w; wctx.Err() == nil; i++ {
				op := soakOps[i%len(soakOps)]
				if len(mine) == 0 && (op == "sso" || op == "refresh") {
					op = "login"
				}
				t0 := time.Now()
				var err error
				switch op {
				case "login":
					var s *soakSession
					if s, err = login(wctx, b.users[int(nextUser.Add(1))%len(b.users)]); err == nil {
						mine = append(mine, s)
						if len(mine) > 8 {
							mine = mine[1:]
						}
					}
				case "sso":
					// The session's grant is stored again: keep its new
					// refresh token, as an RP does (the old one is no
					// longer the grant's).
					s := mine[i%len(mine)]
					var tok map[string]any
					t := time.Now()
					if tok, err = b.opSSOTok(wctx, s.v); err == nil {
						s.used = t
						if rt, _ := tok["refresh_token"].(string); rt != "" {
							s.refresh = rt
						}
					}
				case "refresh":
					s := mine[i%len(mine)]
					if s.refresh == "" {
						op, err = "sso", b.opSSO(wctx, s.v)
						break
					}
					var tok map[string]any
					tok, err = b.postToken(wctx, "token (refresh)", b.clientID, b.clientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.refresh}})
					if err == nil {
						if rt, _ := tok["refresh_token"].(string); rt != "" {
							s.refresh = rt
						}
					}
				case "stepup":
					// A fresh password session (untimed set-up), then the
					// timed step-up. A user's TOTP step is accepted once, so
					// users rotate.
					u := totp[int(nextTOTP.Add(1))%len(totp)]
					var s *soakSession
					if s, err = login(wctx, u); err != nil {
						op = "login"
						break
					}
					record("login", time.Since(t0), nil)
					t0 = time.Now()
					err = b.opStepUp(wctx, &pooled{v: s.v, u: u})
				case "cc":
					err = b.opClientCredentials(wctx)
				}
				if wctx.Err() != nil {
					return
				}
				record(op, time.Since(t0), err)
				if err != nil {
					time.Sleep(50 * time.Millisecond) // a real client backs off
				}
			}
		})
	}

	tick := time.NewTicker(cfg.sample)
	defer tick.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var rows []string
	last := start
	printWindow := func(now time.Time) {
		w := cur.Swap(newWindow())
		rows = append(rows, w.line(now, now.Sub(start), now.Sub(last), cfg))
		fmt.Println(rows[len(rows)-1])
		last = now
	}
loop:
	for {
		select {
		case now := <-tick.C:
			printWindow(now)
		case <-done:
			break loop
		}
	}
	if now := time.Now(); now.Sub(last) > time.Second {
		printWindow(now)
	}

	// Every acknowledged session must still be there, unless it was idle
	// longer than session.idle_timeout or created longer ago than
	// absolute_timeout, less a margin (a third of it, at most 20 s) for the
	// check's own duration: then it may have expired.
	check, expired := acked, 0
	if cfg.sessionIdle > 0 {
		check = nil
		cut := time.Now().Add(-cfg.sessionIdle + min(cfg.sessionIdle/3, 20*time.Second))
		cutAbs := time.Time{}
		if a := cfg.sessionAbsolute; a > 0 {
			cutAbs = time.Now().Add(-a + min(a/3, 20*time.Second))
		}
		for _, s := range acked {
			if s.used.Before(cut) || s.created.Before(cutAbs) {
				expired++
				continue
			}
			check = append(check, s)
		}
	}
	fmt.Fprintf(os.Stderr, "  checking %d acknowledged sessions…\n", len(check))
	lost, unknown := b.checkSessions(ctx, check, cfg.conc)
	fmt.Printf("\n# soak totals over %s\n", time.Since(start).Round(time.Second))
	for _, op := range soakOps {
		fmt.Printf("%-8s %d ok\n", op, total.ok[op])
	}
	sort.Slice(total.lat, func(i, j int) bool { return total.lat[i] < total.lat[j] })
	fmt.Printf("latency of successful operations: p50 %s ms, p99 %s ms\n", ms(pct(total.lat, 50)), ms(pct(total.lat, 99)))
	kinds := make([]string, 0, len(total.kinds))
	for k := range total.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Printf("errors by kind (%d):\n", len(kinds))
	for _, k := range kinds {
		fmt.Printf("  %6d  %s\n", total.kinds[k], k)
	}
	fmt.Printf("acknowledged sessions: %d, past session.idle_timeout or absolute_timeout (expired, not checked): %d, lost: %d, not checkable (store unavailable at the end): %d\n", len(acked), expired, lost, unknown)
	if lost > 0 {
		return fmt.Errorf("%d acknowledged sessions lost", lost)
	}
	return nil
}

// line renders one sample: successes per operation, errors, latency, RSS
// of each instance, Redis memory.
func (w *soakWindow) line(now time.Time, at, span time.Duration, cfg soakConfig) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	slices.Sort(w.lat)
	errs := 0
	var kinds []string
	for k, n := range w.kinds {
		errs += n
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	var rss []string
	for _, f := range cfg.pidFiles {
		raw, err := os.ReadFile(f)
		kib, err2 := rssKiB(strings.TrimSpace(string(raw)))
		if err != nil || err2 != nil {
			rss = append(rss, "down")
			continue
		}
		rss = append(rss, strconv.FormatInt(kib/1024, 10))
	}
	mem := "-"
	if len(cfg.redisNodes) > 0 {
		var sum int64
		for _, n := range cfg.redisNodes {
			v, err := redisInfoInt(n, "memory", "used_memory")
			if err != nil {
				sum = -1
				break
			}
			sum += v
		}
		mem = "down"
		if sum >= 0 {
			mem = fmt.Sprintf("%.1f", float64(sum)/(1<<20))
		}
	}
	per := func(op string) string { return fmt.Sprintf("%.1f", float64(w.ok[op])/span.Seconds()) }
	s := fmt.Sprintf("%-8s %-8s %7s %7s %7s %7s %7s %6d %8s %8s  %-22s %s",
		now.UTC().Format(time.TimeOnly), at.Round(time.Second), per("login"), per("sso"), per("refresh"), per("stepup"), per("cc"),
		errs, ms(pct(w.lat, 50)), ms(pct(w.lat, 99)), strings.Join(rss, " "), mem)
	if len(kinds) > 0 {
		s += "  " + strings.Join(kinds, ", ")
	}
	return s
}

// pct is the nearest-rank percentile of sorted latencies.
func pct(lat []time.Duration, p float64) time.Duration {
	n := len(lat)
	if n == 0 {
		return 0
	}
	return lat[max(0, min(n-1, int(p/100*float64(n)+0.5)-1))]
}

// checkSessions runs SSO in every acknowledged browser. A login page is a
// lost session; a 503 is retried for up to a minute (the store may still
// be coming back), then counted as unknown.
func (b *bench) checkSessions(ctx context.Context, ss []*soakSession, conc int) (lost, unknown int64) {
	var nLost, nUnknown atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, len(ss)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(ss) {
					return
				}
				giveUp := time.Now().Add(time.Minute)
				for {
					a := b.newAuthReq(nil)
					p, err := ss[i].v.get(ctx, "authorize (check)", a.url)
					if err == nil && p.loc != nil {
						break // a code: the session is there
					}
					if err == nil && p.status == http.StatusOK && strings.Contains(string(p.body), "current-password") {
						nLost.Add(1)
						break
					}
					if time.Now().After(giveUp) || ctx.Err() != nil {
						nUnknown.Add(1)
						break
					}
					time.Sleep(time.Second)
				}
			}
		})
	}
	wg.Wait()
	return nLost.Load(), nUnknown.Load()
}

// redisInfoInt reads one integer field of an INFO section.
func redisInfoInt(addr, section, field string) (int64, error) {
	c, err := loopbackDial(context.Background(), "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("INFO " + section + "\r\n")); err != nil {
		return 0, err
	}
	body, err := readBulk(c)
	if err != nil {
		return 0, fmt.Errorf("redis %s: %w", addr, err)
	}
	for _, line := range strings.Split(body, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redis %s: no %s", addr, field)
}

// readBulk reads one RESP bulk string.
func readBulk(r io.Reader) (string, error) {
	var head []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n") {
		if _, err := r.Read(one); err != nil {
			return "", err
		}
		head = append(head, one[0])
	}
	if head[0] != '$' {
		return "", fmt.Errorf("unexpected reply %q", head)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(head[1:])))
	if err != nil || n < 0 {
		return "", fmt.Errorf("bad length %q", head)
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return string(body), err
}
