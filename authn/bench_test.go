package authn_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
)

// Ladder.Evaluate runs on every authorization request and again after
// each factor the hosted pages verify. These benchmarks cover the typical
// decisions on the default ladder; each checks its decision once before
// timing, so that it measures the path it names.

var benchNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// benchAccount is a typical account: a password, an email address, TOTP
// and SMS enrolled, TOTP used last, TOTP enrollable in the flow.
var benchAccount = authn.Account{
	HasPassword: true,
	HasEmail:    true,
	Enrolled:    []authn.Enrollment{{Factor: authn.TOTP}, {Factor: authn.SMS}},
	LastUsed:    authn.TOTP,
	Enrollable:  []authn.Factor{authn.TOTP},
}

func ago(d time.Duration) time.Time { return benchNow.Add(-d) }

type evalCase struct {
	req    authn.Request
	verifs []authn.Verification
	acct   authn.Account
	// check validates the decision before timing.
	check func(authn.Decision) bool
}

func benchmarkEvaluate(b *testing.B, c evalCase) {
	ladder := authn.DefaultLadder()
	if d := ladder.Evaluate(c.req, c.verifs, c.acct, benchNow); !c.check(d) {
		b.Fatalf("unexpected decision %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		ladder.Evaluate(c.req, c.verifs, c.acct, benchNow)
	}
}

// SSO: a password session from an hour ago, a request that asks for
// nothing in particular: a code at 1fa, no page.
func BenchmarkEvaluateSSO1FA(b *testing.B) {
	benchmarkEvaluate(b, evalCase{
		req:    authn.Request{Start: benchNow},
		verifs: []authn.Verification{{Factor: authn.Password, At: ago(time.Hour)}},
		acct:   benchAccount,
		check: func(d authn.Decision) bool {
			return d.Outcome == authn.OK && d.ACR == authn.ACR1FA
		},
	})
}

// Step-up: a password session from five minutes ago (within the
// multi-factor level's max_age), a request for multi-factor: the TOTP page
// only, with SMS as the alternative.
func BenchmarkEvaluateMFANeedTOTP(b *testing.B) {
	benchmarkEvaluate(b, evalCase{
		req:    authn.Request{ACRValues: []string{authn.ACRMFA}, Start: benchNow},
		verifs: []authn.Verification{{Factor: authn.Password, At: ago(5 * time.Minute)}},
		acct:   benchAccount,
		check: func(d authn.Decision) bool {
			return d.Outcome == authn.Need && slices.Equal(d.Need, []authn.Factor{authn.TOTP}) &&
				slices.Equal(d.Alternatives, []authn.Factor{authn.SMS})
		},
	})
}

// After the step-up: password and a fresh TOTP satisfy multi-factor.
func BenchmarkEvaluateMFASatisfied(b *testing.B) {
	benchmarkEvaluate(b, evalCase{
		req: authn.Request{ACRValues: []string{authn.ACRMFA}, Start: ago(time.Minute)},
		verifs: []authn.Verification{
			{Factor: authn.Password, At: ago(5 * time.Minute)},
			{Factor: authn.TOTP, At: ago(10 * time.Second)},
		},
		acct: benchAccount,
		check: func(d authn.Decision) bool {
			return d.Outcome == authn.OK && d.ACR == authn.ACRMFA
		},
	})
}

// No session yet: the login page (password first).
func BenchmarkEvaluateNoSession(b *testing.B) {
	benchmarkEvaluate(b, evalCase{
		req:  authn.Request{ACRValues: []string{authn.ACRMFA}, Start: benchNow},
		acct: authn.Account{HasPassword: true, Enrollable: []authn.Factor{authn.TOTP}},
		check: func(d authn.Decision) bool {
			return d.Outcome == authn.Need && len(d.Need) > 0 && d.Need[0] == authn.Password
		},
	})
}

// A client floor of multi-factor for a user with no second factor under
// force_enroll: the TOTP enrollment page, not skippable.
func BenchmarkEvaluateMFAForceEnroll(b *testing.B) {
	benchmarkEvaluate(b, evalCase{
		req: authn.Request{ClientMinACR: authn.ACRMFA, Unenrolled: authn.ForceEnroll, Start: benchNow},
		verifs: []authn.Verification{
			{Factor: authn.Password, At: ago(5 * time.Second)},
		},
		acct: authn.Account{HasPassword: true, HasEmail: true, Enrollable: []authn.Factor{authn.TOTP}},
		check: func(d authn.Decision) bool {
			return d.Outcome == authn.Enroll && d.EnrollFactor == authn.TOTP && !d.Skippable
		},
	})
}

// prompt=none with an essential acr the session cannot meet: the
// interaction_required error, on a session holding every kind of factor.
func BenchmarkEvaluatePromptNoneFail(b *testing.B) {
	benchmarkEvaluate(b, evalCase{
		req: authn.Request{ACRValues: []string{authn.ACRPHRH}, Essential: true, PromptNone: true, Start: benchNow},
		verifs: []authn.Verification{
			{Factor: authn.Password, At: ago(time.Hour)},
			{Factor: authn.TOTP, At: ago(30 * time.Minute)},
			{Factor: authn.WebAuthn, At: ago(20 * time.Minute), UV: true, Hardware: true},
		},
		acct: authn.Account{
			HasPassword: true,
			Enrolled: []authn.Enrollment{
				{Factor: authn.TOTP},
				{Factor: authn.WebAuthn, UV: true, Hardware: true},
			},
		},
		check: func(d authn.Decision) bool {
			return d.Outcome == authn.Fail && d.Error == authn.ErrInteractionRequired
		},
	})
}
