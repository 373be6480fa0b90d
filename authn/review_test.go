package authn

import "testing"

// Enrolling a new factor in the sign-in flow must not be a way around the
// factors the user already has: someone who knows only the password of an
// account protected by TOTP would otherwise register their own passkey
// when a client asks for phr, get phr at once and keep a credential that
// alone is multi-factor. The user proves an existing second factor first
// (as /account asks before any factor change); then the enrollment.
func TestEnrollingNeedsAnExistingSecondFactorFirst(t *testing.T) {
	l := DefaultLadder()
	tests := []struct {
		name   string
		verifs []Verification
		acct   Account
		req    Request
		want   want
	}{
		{
			name:   "TOTP user, password only, voluntary phr → TOTP before the passkey enrollment",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollableOf(user(TOTP), TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   need(TOTP).withTarget(ACRPHR, false),
		},
		{
			name:   "TOTP user, password only, essential phr under force_enroll → TOTP first",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollableOf(user(TOTP), TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}, Essential: true, Unenrolled: ForceEnroll},
			want:   need(TOTP).withTarget(ACRPHR, true),
		},
		{
			name:   "nothing fresh: password, then TOTP, before any enrollment",
			verifs: nil,
			acct:   withEnrollableOf(user(TOTP), TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   need(Password, TOTP).withTarget(ACRPHR, false),
		},
		{
			name:   "a security key without UV, not fresh, is asserted before a passkey is enrolled",
			verifs: []Verification{verif(Password, -60)},
			acct:   Account{HasPassword: true, Enrolled: []Enrollment{{Factor: WebAuthn}}, Enrollable: []Factor{TOTP, WebAuthn}},
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   need(WebAuthn).withTarget(ACRPHR, false),
		},
		{
			name:   "TOTP verified: now the enrollment",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   withEnrollableOf(user(TOTP), TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   enroll(WebAuthn, true).withTarget(ACRPHR, false),
		},
		{
			name:   "no second factor at all: the enrollment right after the password (unchanged)",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollableOf(user(), TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   enroll(WebAuthn, true).withTarget(ACRPHR, false),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Start = testNow
			got := l.Evaluate(req, tt.verifs, tt.acct, testNow)
			tt.want.check(t, got)
			checkInvariants(t, l, req, tt.verifs, tt.acct, testNow, got)
		})
	}
}

func withEnrollableOf(a Account, fs ...Factor) Account { a.Enrollable = fs; return a }
