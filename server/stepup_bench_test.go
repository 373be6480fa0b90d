package server_test

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
)

// BenchmarkTOTPStepUp is bench/run.sh's step-up mode in process: a
// browser with a password session asks for the multi-factor acr, gets the
// code page, posts a TOTP code, and the RP exchanges the code (go-oidc
// verifies the ID token). Every iteration uses its own password session,
// made before the timer starts (argon2 is not what is measured); the
// account's last factor is already TOTP, as for a returning user. The
// CPU profile of the timed part alone goes to $STEPUP_BENCH_CPUPROFILE
// (go test's -cpuprofile would include the password logins):
//
//	STEPUP_BENCH_CPUPROFILE=/tmp/stepup.prof go test ./server -run '^$' -bench TOTPStepUp -benchtime 300x
//
// The same file runs unchanged at 7c30706 (accounts in Redis), which is
// how docs/benchmarks.md compares the two. Run it against a real Redis
// (STEPUP_TEST_REDIS_URL): with miniredis its key scans dominate the
// profile. The 30 s per step-up also expires the signing-key view
// (keySetRefresh) at every exchange, a reload a real server makes twice
// a minute: leave it out with pprof's -ignore 'op.\(\*Keys\).current'.
func BenchmarkTOTPStepUp(b *testing.B) {
	e := benchEnv(b)
	r := e.rp("bank", bankSecret)
	warm := e.browser()
	signInTB(b, e, warm, r, map[string]string{"acr_values": mfaACR})
	// Each step-up needs the next TOTP step, so the clock moves 30 s per
	// step-up; a password login older than the step-up's bound would be
	// asked again. So session i signs in at t0+30 s·i, and the clock goes
	// back to t0 before the timed loop: each step-up finds a 30 s old
	// password session.
	e.clock.mu.Lock()
	t0 := e.clock.now
	e.clock.mu.Unlock()
	pool := make([]*browser, b.N)
	for i := range pool {
		e.clock.Advance(30 * time.Second)
		pool[i] = e.browser()
		signInTB(b, e, pool[i], r, nil)
	}
	e.clock.mu.Lock()
	e.clock.now = t0
	e.clock.mu.Unlock()
	defer timeWithProfile(b)()
	for i, br := range pool {
		e.clock.Advance(30 * time.Second)
		a := r.authURL(map[string]string{"acr_values": mfaACR})
		p := br.get(a.url)
		if len(find(p.doc, hasAttr("data-factor", "totp"))) == 0 {
			b.Fatalf("step-up %d of %d: no TOTP form (status %d at %s):\n%s", i, b.N, p.status, p.url, excerpt(p.body))
		}
		tk := r.mustExchange(a, br.code(p, "totp", e.totpCode(aliceTOTP)).result(b))
		if tk.claims.ACR != mfaACR {
			b.Fatalf("acr %q after the step-up", tk.claims.ACR)
		}
	}
}

// benchEnv is the server of the in-process benchmarks: ES256, as
// bench/run.sh ALGS=ES256, and sessions that outlive any -benchtime.
func benchEnv(b *testing.B) *env {
	return newEnv(b, func(c *config.Config) {
		c.Keys.Algorithm = "ES256"
		c.Session.IdleTimeout = config.Duration(1000 * time.Hour)
		c.Session.AbsoluteTimeout = config.Duration(1000 * time.Hour)
	})
}

// timeWithProfile starts the timed part of a benchmark: allocations
// reported, the timer reset and, with $STEPUP_BENCH_CPUPROFILE, a CPU
// profile of that part alone (go test's -cpuprofile would include the
// untimed set-up). Defer what it returns.
func timeWithProfile(b *testing.B) (stop func()) {
	stop = func() {}
	if f := os.Getenv("STEPUP_BENCH_CPUPROFILE"); f != "" && b.N > 1 {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		stop = func() { pprof.StopCPUProfile(); out.Close() }
	}
	b.ReportAllocs()
	b.ResetTimer()
	return stop
}

// signInTB is signIn for a benchmark: a password login, and TOTP when
// the request asks for it.
func signInTB(b *testing.B, e *env, br *browser, r *rp, params map[string]string) {
	b.Helper()
	a := r.authURL(params)
	p := br.login(br.get(a.url), "alice", alicePass)
	if p.loc == nil {
		p = br.code(p, "totp", e.totpCode(aliceTOTP))
	}
	r.mustExchange(a, p.result(b))
}
