package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// BenchmarkClientCredentials is the token endpoint's client_credentials
// grant through the whole handler (middleware, zitadel's router, client
// authentication, signing, audit log), without the network.
func BenchmarkClientCredentials(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			e := newEnv(b, func(c *config.Config) { c.Keys.Algorithm = alg })
			h := e.ln.Config.Handler
			body := url.Values{"grant_type": {"client_credentials"}}.Encode()
			b.ReportAllocs()
			b.ResetTimer()
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
