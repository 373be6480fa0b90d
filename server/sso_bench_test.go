package server_test

import "testing"

// BenchmarkSSO is bench/run.sh's sso mode in process: a browser with a
// password session asks the RP's default acr again, gets a code at once
// (/authorize), and the RP exchanges it (go-oidc verifies the ID token).
// The session is made before the timer starts. The CPU profile of the
// timed part alone goes to $STEPUP_BENCH_CPUPROFILE:
//
//	STEPUP_BENCH_CPUPROFILE=/tmp/sso.prof go test ./server -run '^$' -bench 'BenchmarkSSO$' -benchtime 1000x
//
// It needs nothing but this file and stepup_bench_test.go's helpers, so
// it runs unchanged at c039d1e (accounts in Redis), which is how
// docs/benchmarks.md compares the two. Run it against a real Redis
// (STEPUP_TEST_REDIS_URL), as BenchmarkTOTPStepUp.
func BenchmarkSSO(b *testing.B) {
	e := benchEnv(b)
	r := e.rp("bank", bankSecret)
	br := e.browser()
	signInTB(b, e, br, r, nil)
	defer timeWithProfile(b)()
	for range b.N {
		a := r.authURL(nil)
		tk := r.mustExchange(a, br.get(a.url).result(b))
		if tk.claims.Sub == "" {
			b.Fatal("no subject after single sign-on")
		}
	}
}
