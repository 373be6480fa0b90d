package server_test

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
)

// BenchmarkSSO is bench/run.sh's sso mode in process: a browser with a
// password session asks the RP's default acr again, gets a code at once
// (/authorize), and the RP exchanges it (go-oidc verifies the ID token).
// The session is made before the timer starts. The CPU profile of the
// timed part alone goes to $STEPUP_BENCH_CPUPROFILE:
//
//	STEPUP_BENCH_CPUPROFILE=/tmp/sso.prof go test ./server -run '^$' -bench 'BenchmarkSSO$' -benchtime 1000x
//
// It needs nothing but this file and stepup_bench_test.go's signInTB, so
// it runs unchanged at c039d1e (accounts in Redis), which is how
// docs/benchmarks.md compares the two. Run it against a real Redis
// (STEPUP_TEST_REDIS_URL), as BenchmarkTOTPStepUp.
func BenchmarkSSO(b *testing.B) {
	e := newEnv(b, func(c *config.Config) {
		c.Keys.Algorithm = "ES256" // as bench/run.sh ALGS=ES256
		c.Session.IdleTimeout = config.Duration(1000 * time.Hour)
		c.Session.AbsoluteTimeout = config.Duration(1000 * time.Hour)
	})
	r := e.rp("bank", bankSecret)
	br := e.browser()
	signInTB(b, e, br, r, nil)
	if f := os.Getenv("STEPUP_BENCH_CPUPROFILE"); f != "" && b.N > 1 {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); out.Close() }()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		a := r.authURL(nil)
		tk := r.mustExchange(a, br.get(a.url).result(b))
		if tk.claims.Sub == "" {
			b.Fatal("no subject after single sign-on")
		}
	}
}
