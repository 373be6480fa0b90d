package passkey

import (
	"encoding/base64"
	"os"
	"testing"
)

// FuzzChallengeOf feeds ChallengeOf — the first code to read a browser's
// ceremony answer, before go-webauthn — arbitrary bodies: it must never
// panic, and whatever it returns must be usable as a store key (a short
// base64url string).
func FuzzChallengeOf(f *testing.F) {
	f.Add([]byte(`{"response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSJ9"}}`))
	f.Add([]byte(`{"response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0="}}`))
	f.Add([]byte(`{"response":{"clientDataJSON":null}}`))
	f.Add([]byte(`{"response":[]}`))
	f.Add([]byte(`null`))
	if b, err := os.ReadFile("testdata/spec-vectors.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ChallengeOf(body)
		if err != nil {
			return
		}
		if len(c) < 22 || len(c) > 128 {
			t.Fatalf("challenge %q has a bad length", c)
		}
		if _, err := base64.RawURLEncoding.DecodeString(c); err != nil {
			t.Fatalf("challenge %q is not base64url", c)
		}
	})
}
