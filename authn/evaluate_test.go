package authn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// at is testNow shifted by secs seconds (negative = in the past).
func at(secs int) time.Time { return testNow.Add(time.Duration(secs) * time.Second) }

func verif(f Factor, secs int) Verification { return Verification{Factor: f, At: at(secs)} }

func passkey(secs int, uv, hw bool) Verification {
	return Verification{Factor: WebAuthn, At: at(secs), UV: uv, Hardware: hw}
}

func enrolled(fs ...Factor) []Enrollment {
	var out []Enrollment
	for _, f := range fs {
		out = append(out, Enrollment{Factor: f, UV: f == WebAuthn})
	}
	return out
}

// user is a typical account: a password, an email address, TOTP
// enrollable in the flow, plus the given second factors.
func user(fs ...Factor) Account {
	return Account{HasPassword: true, HasEmail: true, Enrolled: enrolled(fs...), Enrollable: []Factor{TOTP}}
}

func secs(n int) *time.Duration {
	d := time.Duration(n) * time.Second
	return &d
}

func describe(d Decision) string {
	switch d.Outcome {
	case OK:
		return fmt.Sprintf("OK acr=%s amr=%v auth_time=%v", d.ACR, d.AMR, d.AuthTime.Sub(testNow))
	case Need:
		return fmt.Sprintf("Need %v alternatives=%v", d.Need, d.Alternatives)
	case Enroll:
		return fmt.Sprintf("Enroll %s skippable=%v", d.EnrollFactor, d.Skippable)
	case Fail:
		return fmt.Sprintf("Fail %s (%s)", d.Error, d.Description)
	}
	return d.Outcome.String()
}

type want struct {
	outcome  Outcome
	acr      string
	amr      []string
	authTime int
	need     []Factor
	alts     []Factor
	enroll   Factor
	skip     bool
	err      string
	// target, when set, is compared with Target ("-" for "") together
	// with essential.
	target    string
	essential bool
}

func issued(acr string, authTime int, amr ...string) want {
	return want{outcome: OK, acr: acr, amr: amr, authTime: authTime}
}
func need(fs ...Factor) want               { return want{outcome: Need, need: fs} }
func enroll(f Factor, skippable bool) want { return want{outcome: Enroll, enroll: f, skip: skippable} }
func failWith(code string) want            { return want{outcome: Fail, err: code} }

func (w want) withAlts(fs ...Factor) want { w.alts = fs; return w }
func (w want) withTarget(acr string, essential bool) want {
	w.target, w.essential = acr, essential
	return w
}

func (w want) check(t *testing.T, got Decision) {
	t.Helper()
	if got.Outcome != w.outcome {
		t.Fatalf("got %s, want %s", describe(got), w.outcome)
	}
	switch w.outcome {
	case OK:
		if got.ACR != w.acr || !sameSet(got.AMR, w.amr) || !got.AuthTime.Equal(at(w.authTime)) {
			t.Errorf("got %s, want acr=%s amr=%v auth_time=%ds", describe(got), w.acr, w.amr, w.authTime)
		}
	case Need:
		if !slices.Equal(got.Need, w.need) || !slices.Equal(got.Alternatives, w.alts) {
			t.Errorf("got %s, want need %v alternatives=%v", describe(got), w.need, w.alts)
		}
	case Enroll:
		if got.EnrollFactor != w.enroll || got.Skippable != w.skip {
			t.Errorf("got %s, want enroll %s skippable=%v", describe(got), w.enroll, w.skip)
		}
	case Fail:
		if got.Error != w.err {
			t.Errorf("got %s, want %s", describe(got), w.err)
		}
		if got.Description == "" {
			t.Error("Fail without a description")
		}
	}
	if w.target != "" {
		wantTarget := w.target
		if wantTarget == "-" {
			wantTarget = ""
		}
		if got.Target != wantTarget || got.Essential != w.essential {
			t.Errorf("target=%q essential=%v, want %q %v", got.Target, got.Essential, wantTarget, w.essential)
		}
	}
}

func TestEvaluate(t *testing.T) {
	custom := Ladder{
		{ACR: "urn:example:low", Factors: 1},
		{ACR: "urn:example:high", Factors: 2, MaxAge: time.Hour},
	}
	twoFactorFloor := Ladder{
		{ACR: "urn:example:strong", Factors: 2},
	}
	noMFA := Ladder{{ACR: "urn:example:only", Factors: 1}}
	fido := func(uv, hw bool) []Enrollment { return []Enrollment{{Factor: WebAuthn, UV: uv, Hardware: hw}} }
	withEnrollable := func(a Account, fs ...Factor) Account { a.Enrollable = fs; return a }
	withLastUsed := func(a Account, f Factor) Account { a.LastUsed = f; return a }

	tests := []struct {
		name   string
		ladder Ladder
		verifs []Verification
		acct   Account
		req    Request
		// later shifts now past testNow, for boundaries finer than a second.
		later time.Duration
		want  want
	}{
		// Freshness: the request's max_age and prompt=login.
		{
			name:   "OIDC Core 3.1.2.1 max_age: a verification exactly max_age old counts",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{MaxAge: secs(60)},
			want:   issued(ACR1FA, -60, "pwd"),
		},
		{
			name:   "OIDC Core 3.1.2.1 max_age: 1ns older than max_age does not count",
			verifs: []Verification{{Factor: Password, At: at(-60).Add(-time.Nanosecond)}},
			acct:   user(),
			req:    Request{MaxAge: secs(60)},
			want:   need(Password),
		},
		{
			name:   "OIDC Core 3.1.2.1 max_age: measured from the request's start, so the flow's own verifications count",
			verifs: []Verification{verif(Password, -35)},
			acct:   user(),
			req:    Request{MaxAge: secs(10), Start: at(-30)},
			want:   issued(ACR1FA, -35, "pwd"),
		},
		{
			name:   "OIDC Core 3.1.2.1 max_age=0: only verifications made during this request count",
			verifs: []Verification{verif(Password, -31)},
			acct:   user(),
			req:    Request{MaxAge: secs(0), Start: at(-30)},
			want:   need(Password),
		},
		{
			name:   "OIDC Core 3.1.2.1 prompt=login: a verification at the request's start counts",
			verifs: []Verification{verif(Password, -30)},
			acct:   user(),
			req:    Request{PromptLogin: true, Start: at(-30)},
			want:   issued(ACR1FA, -30, "pwd"),
		},
		{
			name:   "OIDC Core 3.1.2.1 prompt=login: 1ns before the request's start does not count",
			verifs: []Verification{{Factor: Password, At: at(-30).Add(-time.Nanosecond)}},
			acct:   user(),
			req:    Request{PromptLogin: true, Start: at(-30)},
			want:   need(Password),
		},
		{
			name:   "OIDC Core 3.1.2.1 prompt=login with max_age: the stricter cutoff wins",
			verifs: []Verification{verif(Password, -40)},
			acct:   user(),
			req:    Request{PromptLogin: true, MaxAge: secs(3600), Start: at(-30)},
			want:   need(Password),
		},
		{
			name:   "OIDC Core 3.1.2.1 prompt=login: a zero Start means now",
			verifs: []Verification{verif(Password, 0)},
			acct:   user(),
			req:    Request{PromptLogin: true},
			want:   issued(ACR1FA, 0, "pwd"),
		},
		{
			name:   "OIDC Core 3.1.2.1 prompt=login with mfa requested: password first, then the default factor",
			verifs: []Verification{verif(Password, -5), passkey(-3, true, false)},
			acct:   Account{HasPassword: true, Enrolled: fido(true, false)},
			req:    Request{PromptLogin: true, ACRValues: []string{ACRPHR}},
			want:   need(Password, WebAuthn),
		},

		// Level lifetimes (PRODUCT.md §2).
		{
			name:   "PRODUCT §2 level max_age: mfa exactly 15m old still holds",
			verifs: []Verification{verif(Password, -900), verif(TOTP, -900)},
			acct:   user(TOTP),
			want:   issued(ACRMFA, -900, "pwd", "otp", "mfa"),
		},
		{
			name:   "PRODUCT §2 level max_age: mfa 1ns past 15m decays to 1fa",
			verifs: []Verification{verif(Password, -900), {Factor: TOTP, At: at(-900).Add(-time.Nanosecond)}},
			acct:   user(TOTP),
			want:   issued(ACR1FA, -900, "pwd", "otp"),
		},
		{
			name:   "PRODUCT §2 level max_age: phrh exactly 5m old still holds",
			verifs: []Verification{passkey(-300, true, true)},
			acct:   Account{Enrolled: fido(true, true)},
			want:   issued(ACRPHRH, -300, "hwk", "user", "mfa"),
		},
		{
			name:   "PRODUCT §2 level max_age: phrh 1ns past 5m decays to phr",
			verifs: []Verification{passkey(-300, true, true)},
			acct:   Account{Enrolled: fido(true, true)},
			later:  time.Nanosecond,
			want:   issued(ACRPHR, -300, "hwk", "user", "mfa"),
		},
		{
			name:   "PRODUCT §2 level max_age: amr lists only what counts for the issued level",
			verifs: []Verification{verif(Password, -2000), passkey(-60, true, false)},
			acct:   Account{HasPassword: true, Enrolled: fido(true, false)},
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   issued(ACRMFA, -60, "hwk", "user", "mfa"),
		},

		// Categories (PRODUCT.md §2, RFC 8176).
		{
			name:   "RFC 8176: otp from TOTP, email and recovery appears once",
			verifs: []Verification{verif(TOTP, -30), verif(Email, -20), verif(Recovery, -10)},
			acct:   user(TOTP, Email, Recovery),
			want:   issued(ACR1FA, -10, "otp"),
		},
		{
			name:   "PRODUCT §2 categories: two possession factors are one category, the password fills the gap",
			verifs: []Verification{verif(TOTP, -30), verif(SMS, -20)},
			acct:   user(TOTP, SMS),
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   need(Password),
		},
		{
			name:   "PRODUCT §2 categories: with a possession factor fresh, a UV passkey adds inherence before the password",
			verifs: []Verification{verif(TOTP, -30)},
			acct:   user(TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   need(WebAuthn),
		},
		{
			name:   "PRODUCT §2 phishing_resistant: password + security key without UV is not phr (voluntary → mfa)",
			verifs: []Verification{verif(Password, -60), passkey(-30, false, false)},
			acct:   Account{HasPassword: true, Enrolled: fido(false, false), Enrollable: []Factor{TOTP}},
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   issued(ACRMFA, -30, "pwd", "hwk", "user", "mfa"),
		},
		{
			name:   "PRODUCT §2 phishing_resistant: password + security key without UV cannot meet essential phr",
			verifs: []Verification{verif(Password, -60), passkey(-30, false, false)},
			acct:   Account{HasPassword: true, Enrolled: fido(false, false), Enrollable: []Factor{TOTP}},
			req:    Request{ACRValues: []string{ACRPHR}, Essential: true},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §2 phishing_resistant: a key without UV plus an enrollable passkey → enroll a passkey",
			verifs: []Verification{verif(Password, -60), passkey(-30, false, false)},
			acct:   Account{HasPassword: true, Enrolled: fido(false, false), Enrollable: []Factor{TOTP, WebAuthn}},
			req:    Request{ACRValues: []string{ACRPHR}, Essential: true},
			want:   enroll(WebAuthn, true).withTarget(ACRPHR, true),
		},
		{
			name:   "PRODUCT §2 phishing_resistant: an enrolled UV passkey is asked for, with no alternative",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}},
			want:   need(WebAuthn).withTarget(ACRPHR, false),
		},
		{
			name:   "PRODUCT §2 hardware: phrh is never issued without a hardware authenticator",
			verifs: []Verification{passkey(-30, true, false)},
			acct:   Account{Enrolled: fido(true, false), Enrollable: []Factor{TOTP, WebAuthn}},
			req:    Request{ACRValues: []string{ACRPHRH}},
			want:   issued(ACRPHR, -30, "hwk", "user", "mfa"),
		},
		{
			name:   "PRODUCT §2 hardware: essential phrh without a hardware authenticator fails closed (enrolling cannot promise hardware)",
			verifs: []Verification{passkey(-30, true, false)},
			acct:   Account{Enrolled: fido(true, false), Enrollable: []Factor{TOTP, WebAuthn}},
			req:    Request{ACRValues: []string{ACRPHRH}, Essential: true},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §2 hardware: a hardware assertion without UV is not phrh",
			verifs: []Verification{passkey(-30, false, true)},
			acct:   Account{Enrolled: fido(false, true)},
			want:   issued(ACR1FA, -30, "hwk", "user"),
		},
		{
			name:   "PRODUCT §2 hardware: stale phrh with a hardware passkey enrolled → that passkey again",
			verifs: []Verification{verif(Password, -60), passkey(-400, true, true)},
			acct:   Account{HasPassword: true, Enrolled: []Enrollment{{Factor: WebAuthn, UV: true}, {Factor: WebAuthn, UV: true, Hardware: true}}},
			req:    Request{ACRValues: []string{ACRPHRH}, Essential: true},
			want:   need(WebAuthn).withTarget(ACRPHRH, true),
		},
		{
			name:   "PRODUCT §2 categories: a UV passkey with a password issues the first requested value",
			verifs: []Verification{verif(Password, -60), passkey(-30, true, false)},
			acct:   Account{HasPassword: true, Enrolled: fido(true, false)},
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   issued(ACRMFA, -30, "pwd", "hwk", "user", "mfa"),
		},

		// The default factor and its alternatives (PRODUCT.md §5).
		{
			name:   "PRODUCT §5 default factor: webauthn first, the others in order",
			verifs: []Verification{verif(Password, -60)},
			acct:   Account{HasPassword: true, Enrolled: append(enrolled(Recovery, SMS, TOTP), Enrollment{Factor: WebAuthn})},
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   need(WebAuthn).withAlts(TOTP, SMS, Recovery),
		},
		{
			name:   "PRODUCT §5 default factor: the one used last comes first",
			verifs: []Verification{verif(Password, -60)},
			acct:   withLastUsed(user(Recovery, SMS, TOTP, WebAuthn), SMS),
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   need(SMS).withAlts(WebAuthn, TOTP, Recovery),
		},
		{
			name:   "PRODUCT §5 default factor: a last-used factor no longer enrolled is skipped",
			verifs: []Verification{verif(Password, -60)},
			acct:   withLastUsed(user(SMS, TOTP), WebAuthn),
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   need(TOTP).withAlts(SMS),
		},
		{
			name:   "PRODUCT §5 default factor: email codes turned on are an enrolled factor",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(Email, SMS),
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   need(SMS).withAlts(Email),
		},
		{
			name:   "PRODUCT §3 email_fallback: email is offered beside the enrolled factors",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{ACRValues: []string{ACRMFA}, Unenrolled: EmailFallback},
			want:   need(TOTP).withAlts(Email),
		},
		{
			name:   "PRODUCT §3 email_fallback: without an email address the policy falls back to enrolling",
			verifs: []Verification{verif(Password, -60)},
			acct:   Account{HasPassword: true, Enrollable: []Factor{TOTP}},
			req:    Request{ACRValues: []string{ACRMFA}, Unenrolled: EmailFallback},
			want:   enroll(TOTP, true),
		},
		{
			name:   "PRODUCT §3 email_fallback: email is not a factor under allow_skip",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{ACRValues: []string{ACRMFA}, Essential: true},
			want:   enroll(TOTP, true),
		},

		// Cancel (PRODUCT.md §3).
		{
			name:   "PRODUCT §3 cancel: voluntary step-up completes at the level reached",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{ACRValues: []string{ACRMFA}, Cancelled: true},
			want:   issued(ACR1FA, -60, "pwd"),
		},
		{
			name:   "PRODUCT §3 cancel: skipping a voluntary enrollment completes at the level reached",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{ACRValues: []string{ACRMFA}, Unenrolled: AllowSkip, Cancelled: true},
			want:   issued(ACR1FA, -60, "pwd"),
		},
		{
			name:   "PRODUCT §3 cancel: essential acr → unmet",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{ACRValues: []string{ACRMFA}, Essential: true, Cancelled: true},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 cancel: the client floor is essential → unmet",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{ClientMinACR: ACRMFA, Cancelled: true},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 cancel: mfa.login always is essential → unmet",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{MFAAlways: true, Cancelled: true},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 cancel: an essential value the session satisfies is enough",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR, ACRMFA}, Essential: true, Cancelled: true},
			want:   issued(ACRMFA, -30, "pwd", "otp", "mfa"),
		},
		{
			name:   "PRODUCT §3 cancel: a voluntary value above a satisfied floor is dropped",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}, ClientMinACR: ACRMFA, Cancelled: true},
			want:   issued(ACRMFA, -30, "pwd", "otp", "mfa"),
		},
		{
			name: "PRODUCT §3 cancel: first login → access_denied",
			acct: user(TOTP),
			req:  Request{Cancelled: true},
			want: failWith(ErrAccessDenied),
		},
		{
			name: "PRODUCT §3 cancel: first login with an essential floor is still access_denied",
			acct: user(TOTP),
			req:  Request{ClientMinACR: ACRMFA, Cancelled: true},
			want: failWith(ErrAccessDenied),
		},
		{
			name:   "PRODUCT §3 cancel: cancelling the re-login of prompt=login → access_denied",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{PromptLogin: true, Cancelled: true},
			want:   failWith(ErrAccessDenied),
		},

		{
			name:   "PRODUCT §3 cancel: nothing satisfied and only the acr claim asked for → access_denied",
			ladder: twoFactorFloor,
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{Essential: true, Cancelled: true},
			want:   failWith(ErrAccessDenied),
		},

		// prompt=none (OIDC Core 3.1.2.1, 3.1.2.6).
		{
			name:   "OIDC Core 3.1.2.6 prompt=none: a decayed elevation with factors at hand → interaction_required",
			verifs: []Verification{verif(Password, -1000), verif(TOTP, -950)},
			acct:   user(TOTP),
			req:    Request{PromptNone: true, ACRValues: []string{ACRMFA}},
			want:   failWith(ErrInteractionRequired).withTarget(ACRMFA, false),
		},
		{
			name:   "OIDC Core 3.1.2.6 prompt=none: a session older than max_age → login_required",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{PromptNone: true, MaxAge: secs(30)},
			want:   failWith(ErrLoginRequired),
		},
		{
			name:   "OIDC Core 3.1.2.6 prompt=none: prompt=login's cutoff is measured the same way",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{PromptNone: true, PromptLogin: true},
			want:   failWith(ErrLoginRequired),
		},
		{
			name:   "OIDC Core 3.1.2.1 prompt=none: a satisfied session gets its code",
			verifs: []Verification{verif(Password, -60), verif(SMS, -20)},
			acct:   user(SMS),
			req:    Request{PromptNone: true, ACRValues: []string{ACRMFA}},
			want:   issued(ACRMFA, -20, "pwd", "sms", "mfa"),
		},
		{
			name:   "PRODUCT §3 prompt=none: a floor reachable only by enrolling → unmet",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{PromptNone: true, ClientMinACR: ACRMFA},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 prompt=none: mfa.login always with a factor at hand → interaction_required",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{PromptNone: true, MFAAlways: true},
			want:   failWith(ErrInteractionRequired).withTarget(ACRMFA, true),
		},
		{
			name:   "PRODUCT §3 prompt=none: email under email_fallback is a factor at hand → interaction_required",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{PromptNone: true, ACRValues: []string{ACRMFA}, Essential: true, Unenrolled: EmailFallback},
			want:   failWith(ErrInteractionRequired),
		},
		{
			name:   "PRODUCT §3 prompt=none: a voluntary value above a satisfied floor still needs interaction",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP, WebAuthn),
			req:    Request{PromptNone: true, ACRValues: []string{ACRPHR}, ClientMinACR: ACRMFA},
			want:   failWith(ErrInteractionRequired).withTarget(ACRPHR, false),
		},

		// id_token_hint (OIDC Core 3.1.2.1).
		{
			name:   "OIDC Core 3.1.2.1 id_token_hint: another subject without prompt=none → login page",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP),
			req:    Request{HintOtherSubject: true},
			want:   need(Password),
		},

		// Required level (PRODUCT.md §3).
		{
			name:   "PRODUCT §3 floor: an unknown min_acr fails closed",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP),
			req:    Request{ClientMinACR: "urn:example:typo"},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 floor: a floor nobody can reach → unmet",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{ClientMinACR: ACRPHR},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 floor: force_enroll offers enrollment without skip",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			req:    Request{ClientMinACR: ACRMFA, Unenrolled: ForceEnroll},
			want:   enroll(TOTP, false).withTarget(ACRMFA, true),
		},
		{
			name:   "PRODUCT §3 floor: the highest satisfied level is issued when nothing is requested",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP),
			req:    Request{ClientMinACR: ACR1FA},
			want:   issued(ACRMFA, -30, "pwd", "otp", "mfa"),
		},
		{
			name:   "PRODUCT §3 floor: a voluntary value above the floor is the target",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP, WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR}, ClientMinACR: ACRMFA},
			want:   need(WebAuthn).withTarget(ACRPHR, false),
		},
		{
			name:   "PRODUCT §3 requested: a voluntary value nobody can reach is dropped",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollable(user()),
			req:    Request{ACRValues: []string{ACRMFA}},
			want:   issued(ACR1FA, -60, "pwd"),
		},
		{
			name:   "PRODUCT §3 requested: an essential value nobody can reach → unmet",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollable(user()),
			req:    Request{ACRValues: []string{ACRMFA}, Essential: true},
			want:   failWith(ErrUnmetRequirements),
		},
		{
			name:   "PRODUCT §3 requested: unknown values are skipped, the next known one counts",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{ACRValues: []string{"urn:example:unknown", ACRMFA}, Essential: true},
			want:   need(TOTP).withTarget(ACRMFA, true),
		},
		{
			name:   "PRODUCT §3 requested: a value reachable now beats a more preferred one needing enrollment",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollable(user(TOTP), WebAuthn),
			req:    Request{ACRValues: []string{ACRPHR, ACRMFA}},
			want:   need(TOTP).withTarget(ACRMFA, false),
		},
		{
			name:   "PRODUCT §3 requested: with nothing reachable now, the most preferred enrollable one",
			verifs: []Verification{verif(Password, -60)},
			acct:   withEnrollable(user(), WebAuthn, TOTP),
			req:    Request{ACRValues: []string{ACRPHR, ACRMFA}, Unenrolled: ForceEnroll},
			want:   enroll(WebAuthn, false).withTarget(ACRPHR, false),
		},
		{
			name:   "OIDC Core 5.5.1.1 essential without values asks for the claim, not a level",
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			req:    Request{Essential: true},
			want:   issued(ACR1FA, -60, "pwd"),
		},
		{
			name: "PRODUCT §3 password first: no session and no second factor → password, enrollment after",
			acct: user(),
			req:  Request{ACRValues: []string{ACRMFA}, Essential: true},
			want: need(Password).withTarget(ACRMFA, true),
		},
		{
			name: "PRODUCT §3 password first: no session, mfa requested → every factor in order",
			acct: user(SMS, TOTP),
			req:  Request{ACRValues: []string{ACRMFA}},
			want: need(Password, TOTP),
		},
		{
			name: "PRODUCT §3 password first: an account without a password starts with its passkey",
			acct: Account{Enrolled: fido(true, false)},
			want: need(WebAuthn).withTarget("-", false),
		},
		{
			name: "PRODUCT §3 password first: an unknown user (zero Account) gets the login page",
			req:  Request{ACRValues: []string{ACRPHR}, Essential: true},
			want: need(Password),
		},
		{
			name:   "PRODUCT §3 mfa.login always: the lowest multi-factor level is issued over a requested 1fa",
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP),
			req:    Request{ACRValues: []string{ACR1FA}, MFAAlways: true},
			want:   issued(ACRMFA, -30, "pwd", "otp", "mfa"),
		},
		{
			name:   "PRODUCT §3 mfa.login always: a UV passkey alone satisfies it",
			verifs: []Verification{passkey(-30, true, false)},
			acct:   Account{Enrolled: fido(true, false)},
			req:    Request{MFAAlways: true},
			want:   issued(ACRPHR, -30, "hwk", "user", "mfa"),
		},
		{
			name:   "PRODUCT §3 mfa.login always: a ladder without a multi-factor level fails closed",
			ladder: noMFA,
			verifs: []Verification{verif(Password, -60), verif(TOTP, -30)},
			acct:   user(TOTP),
			req:    Request{MFAAlways: true},
			want:   failWith(ErrUnmetRequirements),
		},

		// Custom ladders (PRODUCT.md §4).
		{
			name:   "PRODUCT §4 custom ladder: its own acr values, lifetimes and default-ladder values unknown",
			ladder: custom,
			verifs: []Verification{verif(Password, -3000), verif(SMS, -60)},
			acct:   user(SMS),
			req:    Request{ACRValues: []string{ACRMFA, "urn:example:high"}},
			want:   issued("urn:example:high", -60, "pwd", "sms", "mfa"),
		},
		{
			name:   "PRODUCT §4 custom ladder: lifetime passed → password again",
			ladder: custom,
			verifs: []Verification{verif(Password, -3601), verif(SMS, -60)},
			acct:   user(SMS),
			req:    Request{ACRValues: []string{"urn:example:high"}},
			want:   need(Password),
		},
		{
			name:   "PRODUCT §4 custom ladder: a lowest level of two factors is what any session needs",
			ladder: twoFactorFloor,
			verifs: []Verification{verif(Password, -60)},
			acct:   user(TOTP),
			want:   need(TOTP).withTarget("-", false),
		},
		{
			name:   "PRODUCT §4 custom ladder: an empty ladder fails closed",
			ladder: Ladder{},
			verifs: []Verification{verif(Password, -60)},
			acct:   user(),
			want:   failWith(ErrUnmetRequirements),
		},

		// Fail closed on verifications that cannot be true.
		{
			name:   "PRODUCT §3 auth_time: a verification in the future is ignored",
			verifs: []Verification{verif(Password, 10)},
			acct:   user(),
			want:   need(Password),
		},
		{
			name:   "RFC 8176: an unknown factor proves nothing and never appears in amr",
			verifs: []Verification{verif(Password, -60), verif("magic", -30)},
			acct:   user(),
			want:   issued(ACR1FA, -60, "pwd"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.ladder
			if l == nil {
				l = DefaultLadder()
			}
			req := tt.req
			if req.Start.IsZero() && !req.PromptLogin {
				req.Start = testNow
			}
			now := testNow.Add(tt.later)
			got := l.Evaluate(req, tt.verifs, tt.acct, now)
			tt.want.check(t, got)
			checkInvariants(t, l, req, tt.verifs, tt.acct, now, got)
		})
	}
}

func TestLadder(t *testing.T) {
	l := DefaultLadder()
	if got := len(l); got != 4 {
		t.Fatalf("default ladder has %d levels", got)
	}
	for i, acr := range []string{ACR1FA, ACRMFA, ACRPHR, ACRPHRH} {
		if r := l.Rank(acr); r != i {
			t.Errorf("Rank(%q) = %d, want %d", acr, r, i)
		}
		if lv, ok := l.Level(acr); !ok || lv.ACR != acr {
			t.Errorf("Level(%q) = %v, %v", acr, lv, ok)
		}
	}
	if r := l.Rank("urn:example:unknown"); r != -1 {
		t.Errorf("Rank(unknown) = %d, want -1", r)
	}
	if _, ok := l.Level("urn:example:unknown"); ok {
		t.Error("Level(unknown) found")
	}
	if mf := []bool{l[0].MultiFactor(), l[1].MultiFactor(), l[2].MultiFactor(), l[3].MultiFactor()}; !slices.Equal(mf, []bool{false, true, true, true}) {
		t.Errorf("MultiFactor = %v", mf)
	}
	l[0].ACR = "changed"
	if DefaultLadder()[0].ACR != ACR1FA {
		t.Error("DefaultLadder shares its backing array")
	}
}

func TestAMR(t *testing.T) {
	tests := []struct {
		name string
		v    Verification
		want []string
	}{
		{"RFC 8176 pwd: password", Verification{Factor: Password}, []string{"pwd"}},
		{"RFC 8176 otp: TOTP", Verification{Factor: TOTP}, []string{"otp"}},
		{"RFC 8176 otp: email code", Verification{Factor: Email}, []string{"otp"}},
		{"RFC 8176 otp: recovery code", Verification{Factor: Recovery}, []string{"otp"}},
		{"RFC 8176 sms: SMS code", Verification{Factor: SMS}, []string{"sms"}},
		{"RFC 8176 hwk+user: passkey with UV", Verification{Factor: WebAuthn, UV: true}, []string{"hwk", "user"}},
		{"RFC 8176 hwk+user: security key without UV", Verification{Factor: WebAuthn}, []string{"hwk", "user"}},
		{"RFC 8176: unknown factor has no amr", Verification{Factor: "magic"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AMR(tt.v); !slices.Equal(got, tt.want) {
				t.Errorf("AMR = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSatisfied(t *testing.T) {
	l := DefaultLadder()
	tests := []struct {
		name   string
		verifs []Verification
		want   []string
	}{
		{"PRODUCT §2: nothing satisfies nothing", nil, nil},
		{"PRODUCT §2: password → 1fa", []Verification{verif(Password, -60)}, []string{ACR1FA}},
		{"PRODUCT §2: password + TOTP → 1fa, mfa", []Verification{verif(Password, -60), verif(TOTP, -30)}, []string{ACR1FA, ACRMFA}},
		{"PRODUCT §2: SMS + email → 1fa only", []Verification{verif(SMS, -60), verif(Email, -30)}, []string{ACR1FA}},
		{"PRODUCT §2: hardware UV passkey → every level", []Verification{passkey(-30, true, true)}, []string{ACR1FA, ACRMFA, ACRPHR, ACRPHRH}},
		{"PRODUCT §2 max_age: phrh decays first", []Verification{passkey(-301, true, true)}, []string{ACR1FA, ACRMFA, ACRPHR}},
		{"PRODUCT §2 max_age: mfa and phr decay, 1fa stays", []Verification{passkey(-901, true, true)}, []string{ACR1FA}},
		{"PRODUCT §2: a future verification counts for nothing", []Verification{passkey(1, true, true)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Satisfied(tt.verifs, testNow); !slices.Equal(got, tt.want) {
				t.Errorf("Satisfied = %v, want %v", got, tt.want)
			}
		})
	}
}

// checkInvariants asserts what must hold for every decision, computed here
// independently of the implementation: an OK never claims more than the
// verifications show (PRODUCT.md §3 "tell the truth").
func checkInvariants(t *testing.T, l Ladder, req Request, verifs []Verification, acct Account, now time.Time, d Decision) {
	t.Helper()
	switch d.Outcome {
	case OK, Need, Enroll, Fail:
	default:
		t.Fatalf("invalid outcome %d", d.Outcome)
	}
	if (req.PromptNone || req.Cancelled) && d.Outcome != OK && d.Outcome != Fail {
		t.Fatalf("prompt=none or cancelled must not show a page: %s", describe(d))
	}
	switch d.Outcome {
	case Fail:
		switch d.Error {
		case ErrLoginRequired, ErrInteractionRequired, ErrAccessDenied, ErrUnmetRequirements:
		default:
			t.Fatalf("unregistered error %q", d.Error)
		}
	case Need:
		if len(d.Need) == 0 {
			t.Fatal("Need without a factor")
		}
		if slices.Contains(d.Alternatives, d.Need[0]) {
			t.Fatalf("alternatives %v repeat %s", d.Alternatives, d.Need[0])
		}
		seen := map[Factor]bool{}
		for _, f := range d.Need {
			if seen[f] {
				t.Fatalf("Need %v repeats %s", d.Need, f)
			}
			seen[f] = true
		}
	case Enroll:
		if !slices.Contains(acct.Enrollable, d.EnrollFactor) {
			t.Fatalf("enroll %s is not enrollable (%v)", d.EnrollFactor, acct.Enrollable)
		}
		if d.Skippable == (req.Unenrolled == ForceEnroll) {
			t.Fatalf("skippable=%v under %q", d.Skippable, req.Unenrolled)
		}
	case OK:
		checkIssued(t, l, req, verifs, now, d)
	}
}

func checkIssued(t *testing.T, l Ladder, req Request, verifs []Verification, now time.Time, d Decision) {
	t.Helper()
	rank := l.Rank(d.ACR)
	if rank < 0 {
		t.Fatalf("issued acr %q is not in the ladder", d.ACR)
	}
	lv := l[rank]
	if req.HintOtherSubject {
		t.Fatalf("issued %s from a session of another subject", d.ACR)
	}
	start := req.Start
	if start.IsZero() {
		start = now
	}
	var (
		cats       = map[string]bool{}
		pr, hw     bool
		amr        = map[string]bool{}
		latest     time.Time
		nCountedOK int
	)
	for _, v := range verifs {
		known := false
		switch v.Factor {
		case Password, TOTP, SMS, Email, Recovery, WebAuthn:
			known = true
		}
		if !known || v.At.IsZero() || v.At.After(now) ||
			(lv.MaxAge != 0 && now.Sub(v.At) > lv.MaxAge) ||
			(req.MaxAge != nil && v.At.Before(start.Add(-*req.MaxAge))) ||
			(req.PromptLogin && v.At.Before(start)) {
			continue
		}
		nCountedOK++
		switch v.Factor {
		case Password:
			cats["knowledge"] = true
		case WebAuthn:
			cats["possession"] = true
			if v.UV {
				cats["inherence"] = true
				pr = true
				hw = hw || v.Hardware
			}
		default:
			cats["possession"] = true
		}
		for _, m := range AMR(v) {
			amr[m] = true
		}
		if v.At.After(latest) {
			latest = v.At
		}
	}
	if nCountedOK == 0 {
		t.Fatalf("issued %s with no verification counting", d.ACR)
	}
	if len(cats) < max(lv.Factors, 1) || (lv.PhishingResistant && !pr) || (lv.Hardware && !hw) {
		t.Fatalf("issued %s but the counted verifications do not satisfy it (categories %v, pr %v, hw %v)", d.ACR, cats, pr, hw)
	}
	if lv.MultiFactor() {
		amr["mfa"] = true
	}
	if slices.Contains(d.AMR, "mfa") != lv.MultiFactor() {
		t.Fatalf("amr %v for %s (multi-factor %v)", d.AMR, d.ACR, lv.MultiFactor())
	}
	var wantAMR []string
	for m := range amr {
		wantAMR = append(wantAMR, m)
	}
	if !sameSet(d.AMR, wantAMR) {
		t.Fatalf("amr %v, want %v", d.AMR, wantAMR)
	}
	if !d.AuthTime.Equal(latest) {
		t.Fatalf("auth_time %v, want %v", d.AuthTime, latest)
	}
	if req.ClientMinACR != "" && rank < l.Rank(req.ClientMinACR) {
		t.Fatalf("issued %s below the floor %s", d.ACR, req.ClientMinACR)
	}
	if req.MFAAlways && !lv.MultiFactor() {
		t.Fatalf("issued %s under mfa.login always", d.ACR)
	}
	if req.Essential && len(req.ACRValues) > 0 && !req.Cancelled {
		// An essential request is met by one of its values or, when the
		// floor is higher, by a level at or above it.
		if !slices.Contains(req.ACRValues, d.ACR) && (req.ClientMinACR == "" || rank < l.Rank(req.ClientMinACR)) && !req.MFAAlways {
			t.Fatalf("issued %s for essential %v", d.ACR, req.ACRValues)
		}
	}
}

// scenario decodes arbitrary bytes into an Evaluate call, so the fuzzer and
// the randomized test explore the same space.
type scenario struct {
	ladder Ladder
	req    Request
	verifs []Verification
	acct   Account
}

func decodeScenario(b []byte) scenario {
	next := func(n int) int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0]) % n
		b = b[1:]
		return v
	}
	flag := func() bool { return next(2) == 1 }
	ages := []time.Duration{0, time.Second, 59 * time.Second, time.Minute, 299 * time.Second, 5 * time.Minute,
		301 * time.Second, 899 * time.Second, 15 * time.Minute, 901 * time.Second, time.Hour, -time.Second}
	factors := []Factor{Password, TOTP, SMS, Email, Recovery, WebAuthn, "magic"}
	maxAges := []time.Duration{0, 5 * time.Minute, 15 * time.Minute, time.Hour}

	var s scenario
	if next(4) == 0 {
		for i := range 1 + next(4) {
			s.ladder = append(s.ladder, Level{
				ACR:               fmt.Sprintf("urn:example:%d", i),
				Factors:           next(4),
				PhishingResistant: flag(),
				Hardware:          next(4) == 0,
				MaxAge:            maxAges[next(len(maxAges))],
			})
		}
	} else {
		s.ladder = DefaultLadder()
	}
	acrs := []string{"urn:example:unknown"}
	for _, lv := range s.ladder {
		acrs = append(acrs, lv.ACR)
	}

	for range next(6) {
		s.verifs = append(s.verifs, Verification{
			Factor:   factors[next(len(factors))],
			At:       testNow.Add(-ages[next(len(ages))]),
			UV:       flag(),
			Hardware: flag(),
		})
	}

	s.acct = Account{HasPassword: next(8) != 0, HasEmail: flag(), LastUsed: factors[next(len(factors))]}
	for range next(4) {
		s.acct.Enrolled = append(s.acct.Enrolled, Enrollment{Factor: factors[1+next(5)], UV: flag(), Hardware: flag()})
	}
	for range next(3) {
		s.acct.Enrollable = append(s.acct.Enrollable, factors[1+next(5)])
	}

	for range next(4) {
		s.req.ACRValues = append(s.req.ACRValues, acrs[next(len(acrs))])
	}
	s.req.Essential = flag()
	if m := next(6); m > 0 {
		d := []time.Duration{0, 10 * time.Second, time.Minute, 200 * time.Second, time.Hour}[m-1]
		s.req.MaxAge = &d
	}
	s.req.PromptNone = next(3) == 0
	s.req.PromptLogin = next(4) == 0
	s.req.HintOtherSubject = next(6) == 0
	if next(3) == 0 {
		s.req.ClientMinACR = acrs[next(len(acrs))]
	}
	s.req.MFAAlways = next(4) == 0
	s.req.Unenrolled = []Unenrolled{"", AllowSkip, ForceEnroll, EmailFallback}[next(4)]
	s.req.Cancelled = next(4) == 0
	s.req.Start = testNow.Add(-[]time.Duration{0, 0, 30 * time.Second}[next(3)])
	return s
}

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 0, 0, 0, 0, 1, 1, 0, 1, 3, 1, 0, 0, 1, 2})
	f.Add([]byte{0, 3, 2, 1, 0, 1, 5, 4, 1, 1, 5, 2, 1, 1, 1, 0, 2, 3, 1, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := decodeScenario(b)
		d := s.ladder.Evaluate(s.req, s.verifs, s.acct, testNow)
		checkInvariants(t, s.ladder, s.req, s.verifs, s.acct, testNow, d)
	})
}

// TestEvaluateRandomized runs the fuzz property over a fixed pseudo-random
// sample so plain `go test` explores far more than the seed corpus.
func TestEvaluateRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	counts := map[Outcome]int{}
	b := make([]byte, 64)
	for range n {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		s := decodeScenario(b)
		d := s.ladder.Evaluate(s.req, s.verifs, s.acct, testNow)
		counts[d.Outcome]++
		checkInvariants(t, s.ladder, s.req, s.verifs, s.acct, testNow, d)
		if t.Failed() {
			t.Fatalf("scenario %+v", s)
		}
	}
	// The sample must reach every outcome, or the property says little.
	for _, o := range []Outcome{OK, Need, Enroll, Fail} {
		if counts[o] == 0 {
			t.Errorf("no %s in %d random scenarios: %v", o, n, counts)
		}
	}
}
