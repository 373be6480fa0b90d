// Package authn is stepup's authentication policy: the ladder of assurance
// levels (acr), the factors (amr) and the one decision every authorization
// request goes through — Ladder.Evaluate.
//
// It is pure: no HTTP, no Redis, no clock of its own. Callers pass the
// session's factor verifications, what the account has enrolled and "now",
// and act on the Decision. Levels are always computed from the timestamped
// verifications, never stored as a flag, so an elevation decays by itself
// when a level's max_age passes.
package authn

import "time"

// Factor names a kind of factor verification held by a session.
type Factor string

// The factors stepup knows. Their amr values and categories are in AMR and
// categories.
const (
	Password Factor = "pwd"
	TOTP     Factor = "totp"
	SMS      Factor = "sms"
	Email    Factor = "email"
	Recovery Factor = "recovery"
	WebAuthn Factor = "webauthn"
)

// Verification is one successful factor verification. Sessions keep the
// latest verification of each factor.
type Verification struct {
	Factor Factor    `json:"f"`
	At     time.Time `json:"at"`
	// UV is set for a WebAuthn assertion with user verification.
	UV bool `json:"uv,omitempty"`
	// Hardware is set for a WebAuthn assertion from an authenticator whose
	// attestation the operator trusts as hardware.
	Hardware bool `json:"hw,omitempty"`
}

// Level is one rung of the ladder.
type Level struct {
	ACR string
	// Factors is the number of distinct factor categories required (≥ 1).
	Factors int
	// PhishingResistant requires a WebAuthn assertion with user verification.
	PhishingResistant bool
	// Hardware requires that assertion to come from a trusted hardware
	// authenticator.
	Hardware bool
	// MaxAge is the elevation lifetime: verifications older than this do
	// not count for the level. Zero means no limit.
	MaxAge time.Duration
}

// MultiFactor reports whether the level is multi-factor (its amr carries
// "mfa").
func (l Level) MultiFactor() bool { return l.Factors >= 2 || l.PhishingResistant }

// Ladder is the ordered list of levels, lowest first.
type Ladder []Level

// Unenrolled is the policy for users who have not enrolled a factor the
// required level needs.
type Unenrolled string

// The unenrolled policies of PRODUCT.md §3.
const (
	AllowSkip     Unenrolled = "allow_skip"
	ForceEnroll   Unenrolled = "force_enroll"
	EmailFallback Unenrolled = "email_fallback"
)

// Request is what the authorization request (and the client's
// configuration) asks of the authentication.
type Request struct {
	// ACRValues are the requested acr values in order of preference: the
	// acr_values parameter, or the value/values of the claims parameter's
	// id_token acr member (which takes precedence when present).
	ACRValues []string
	// Essential is set when the claims parameter marks acr essential.
	Essential bool
	// MaxAge is the request's max_age; nil when absent. prompt=login is
	// expressed as PromptLogin, not as MaxAge.
	MaxAge *time.Duration
	// PromptNone: never show a page.
	PromptNone bool
	// PromptLogin: re-authenticate (max_age=0 for this request); also set
	// for prompt=select_account.
	PromptLogin bool
	// HintOtherSubject: id_token_hint names someone other than the
	// session's subject, so the session is not used.
	HintOtherSubject bool
	// ClientMinACR is the client's configured floor ("" for none).
	ClientMinACR string
	// MFAAlways is mfa.login: always.
	MFAAlways bool
	// Unenrolled is the effective policy (client override or global);
	// "" means AllowSkip.
	Unenrolled Unenrolled
	// Cancelled: the user cancelled the step-up; complete with what has
	// been reached or fail.
	Cancelled bool
	// Start is when the authorization request arrived. max_age and
	// prompt=login are measured from it, so verifications made during the
	// flow always count.
	Start time.Time
}

// Enrollment is a factor the account can verify now.
type Enrollment struct {
	Factor Factor
	// For WebAuthn: whether the credential performs user verification, and
	// whether it is trusted as hardware.
	UV       bool
	Hardware bool
}

// Account is what the policy needs to know about the user.
type Account struct {
	// HasPassword: the account has a password (almost always).
	HasPassword bool
	// Enrolled lists the second factors the user has and can use now
	// (TOTP, a verified phone for SMS, email when email codes are on,
	// recovery codes, passkeys). Password is not listed here.
	Enrolled []Enrollment
	// HasEmail: the account has an email address (usable as a factor under
	// the email_fallback policy).
	HasEmail bool
	// LastUsed is the second factor used last; it is offered first.
	LastUsed Factor
	// Enrollable lists the factors the hosted flow can enroll now (those
	// enabled in mfa.factors that have an in-flow enrollment), in the order
	// they are offered.
	Enrollable []Factor
}

// Outcome is the kind of a Decision.
type Outcome int

// The outcomes of Evaluate.
const (
	// OK: issue a code with ACR, AMR, AuthTime.
	OK Outcome = iota + 1
	// Need: show the page for Need[0].
	Need
	// Enroll: show the enrollment page for EnrollFactor.
	Enroll
	// Fail: answer the client with the OAuth error Error.
	Fail
)

// Decision is the answer of Evaluate.
type Decision struct {
	Outcome Outcome

	// OK
	ACR      string
	AMR      []string
	AuthTime time.Time

	// Need: the factors to verify now, in order; the page for Need[0] is
	// shown. Alternatives lists the other enrolled factors that would fill
	// the same step as Need[0], in the order they are offered.
	Need         []Factor
	Alternatives []Factor

	// Enroll
	EnrollFactor Factor
	Skippable    bool

	// Fail: a registered OAuth error code (login_required,
	// interaction_required, unmet_authentication_requirements,
	// access_denied) and a human description.
	Error       string
	Description string

	// Target is the acr of the required level, "" when nothing above "any
	// session" is required; Essential reports whether it may not be
	// lowered (floor, mfa.login, essential claims).
	Target    string
	Essential bool
}
