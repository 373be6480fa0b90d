package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
)

// processCPU is the process's user+sys CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClientCredentials is the token endpoint's client_credentials
// grant through the whole handler (middleware, zitadel's router, client
// authentication, signing, audit log), without the network. cpu-ns/op
// is the process's CPU per request (both cores), which a crowded machine
// moves less than ns/op (wall time).
func BenchmarkClientCredentials(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			e := newEnv(b, func(c *config.Config) { c.Keys.Algorithm = alg })
			h := e.ln.Config.Handler
			body := url.Values{"grant_type": {"client_credentials"}}.Encode()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			defer func() { b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth("bank", bankSecret)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						// Fatal is not allowed off the benchmark's goroutine.
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			})
		})
	}
}
