package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/server/op"
)

// The back-channel endpoints answer malformed form bodies with the
// registered OAuth error (RFC 6749 §5.2: invalid_request; 413 for a body
// over the cap), through the real server and whatever parser takes the
// body (991f27c's short way for an exact Content-Type, net/http's for
// the rest): a parameter given twice (RFC 6749 §3.1), a bad percent
// escape, a semicolon separator, and the same with a charset parameter
// or another case in the Content-Type; and a well-formed request is
// served whatever the Content-Type's case or charset.
func TestFormEndpointsMalformedBodies(t *testing.T) {
	e := newEnv(t, nil)
	post := func(path, ct, body string, basic bool) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if basic {
			req.SetBasicAuth("bank", bankSecret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	cts := []string{"application/x-www-form-urlencoded", "APPLICATION/X-WWW-FORM-URLENCODED", "application/x-www-form-urlencoded; charset=UTF-8"}
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/oauth/revoke"} {
		for _, ct := range cts {
			for _, body := range []string{
				"grant_type=client_credentials&grant_type=client_credentials&token=x",
				"grant_type=client_credentials&token=x&token=y",
				"grant_type=client_credentials&token=%zz",
				"grant_type=client_credentials;token=x",
				"grant_type=client_credentials&token=" + strings.Repeat("x", op.MaxBodyBytes),
			} {
				status, out := post(path, ct, body, true)
				want := http.StatusBadRequest
				if len(body) > op.MaxBodyBytes {
					want = http.StatusRequestEntityTooLarge
				}
				if status != want || out["error"] != "invalid_request" {
					t.Errorf("%s, %s, %.60q: %d %v, want %d invalid_request", path, ct, body, status, out, want)
				}
			}
		}
	}
	for _, ct := range cts {
		if status, out := post("/oauth/token", ct, "grant_type=client_credentials", true); status != http.StatusOK || out["access_token"] == nil {
			t.Errorf("client_credentials with Content-Type %q: %d %v", ct, status, out)
		}
	}
}
