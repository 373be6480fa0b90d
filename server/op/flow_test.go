package op

import (
	"net/url"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/config"
)

// max_age is a client-chosen number of seconds (OIDC Core §3.1.2.1). The
// decision it feeds must hold for every value an int64 — or the query
// string — can carry: a password verified an hour ago satisfies any
// max_age of an hour or more, and never a smaller one.
func TestMaxAgeParameter(t *testing.T) {
	c := newClient(config.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost/cb"}}, "")
	now := time.Unix(1_700_000_000, 0)
	hourOld := []authn.Verification{{Factor: authn.Password, At: now.Add(-time.Hour)}}
	for _, tc := range []struct {
		name, value string
		// invalid: invalid_request; otherwise seconds is what the flow keeps
		// and fresh whether the hour-old password counts.
		invalid bool
		seconds int64
		fresh   bool
	}{
		{name: "OIDC Core 3.1.2.1 max_age=0 asks for a verification now", value: "0", seconds: 0},
		{name: "OIDC Core 3.1.2.1 max_age one second short of the verification's age", value: "3599", seconds: 3599},
		{name: "OIDC Core 3.1.2.1 max_age exactly the verification's age", value: "3600", seconds: 3600, fresh: true},
		{name: "OIDC Core 3.1.2.1 leading zeros are still a non-negative integer", value: "0003600", seconds: 3600, fresh: true},
		{name: "OIDC Core 3.1.2.1 the largest max_age a Duration holds", value: "9223372036", seconds: MaxAgeCeiling, fresh: true},
		{name: "OIDC Core 3.1.2.1 one past it used to overflow into a negative Duration: clamped", value: "9223372037", seconds: MaxAgeCeiling, fresh: true},
		{name: "OIDC Core 3.1.2.1 the largest int64 used to become −1 s: clamped", value: "9223372036854775807", seconds: MaxAgeCeiling, fresh: true},
		{name: "OIDC Core 3.1.2.1 beyond int64 is still a non-negative integer: clamped", value: "99999999999999999999999", seconds: MaxAgeCeiling, fresh: true},
		{name: "OIDC Core 3.1.2.1 a negative max_age is invalid_request", value: "-1", invalid: true},
		{name: "OIDC Core 3.1.2.1 the smallest int64 is invalid_request", value: "-9223372036854775808", invalid: true},
		{name: "OIDC Core 3.1.2.1 a sign is not part of the integer", value: "+60", invalid: true},
		{name: "OIDC Core 3.1.2.1 a fraction is invalid_request", value: "1.5", invalid: true},
		{name: "OIDC Core 3.1.2.1 an exponent is invalid_request", value: "1e3", invalid: true},
		{name: "OIDC Core 3.1.2.1 spaces are invalid_request", value: " 60", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {"http://localhost/cb"},
				"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}, "max_age": {tc.value}}
			f, aerr := parseFlow(form, c, now)
			if tc.invalid {
				if aerr == nil || aerr.code != errInvalidRequest {
					t.Fatalf("max_age=%q: %v, want invalid_request", tc.value, aerr)
				}
				return
			}
			if aerr != nil {
				t.Fatalf("max_age=%q: %v", tc.value, aerr)
			}
			if f.MaxAge == nil || *f.MaxAge != tc.seconds {
				t.Fatalf("max_age=%q kept as %v, want %d", tc.value, f.MaxAge, tc.seconds)
			}
			req := f.policyRequest(c, false, false)
			if *req.MaxAge < 0 {
				t.Fatalf("max_age=%q became a negative duration %v", tc.value, *req.MaxAge)
			}
			d := authn.DefaultLadder().Evaluate(req, hourOld, authn.Account{HasPassword: true}, now)
			if got := d.Outcome == authn.OK; got != tc.fresh {
				t.Fatalf("max_age=%q: an hour-old password counts %v, want %v (%v)", tc.value, got, tc.fresh, d.Outcome)
			}
		})
	}
}

// MaxAge converts the API's max_age (a JSON integer) the same way.
func TestMaxAgeDuration(t *testing.T) {
	for _, tc := range []struct {
		name    string
		seconds int64
		want    time.Duration
		ok      bool
	}{
		{"OIDC Core 3.1.2.1 zero", 0, 0, true},
		{"OIDC Core 3.1.2.1 an hour", 3600, time.Hour, true},
		{"OIDC Core 3.1.2.1 the ceiling", MaxAgeCeiling, time.Duration(MaxAgeCeiling) * time.Second, true},
		{"OIDC Core 3.1.2.1 one past the ceiling is clamped", MaxAgeCeiling + 1, time.Duration(MaxAgeCeiling) * time.Second, true},
		{"OIDC Core 3.1.2.1 the largest int64 is clamped", 1<<63 - 1, time.Duration(MaxAgeCeiling) * time.Second, true},
		{"OIDC Core 3.1.2.1 negative is refused", -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := MaxAge(tc.seconds)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("MaxAge(%d) = %v, %v; want %v, %v", tc.seconds, got, ok, tc.want, tc.ok)
			}
		})
	}
}
