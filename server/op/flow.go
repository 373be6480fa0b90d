package op

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// Flow is a pending authorization request: everything the hosted pages and
// the code issuance need, kept in the store while the user authenticates.
type Flow struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	State         string    `json:"state,omitempty"`
	Nonce         string    `json:"nonce,omitempty"`
	Scopes        []string  `json:"scopes"`
	CodeChallenge string    `json:"code_challenge,omitempty"`
	ACRValues     []string  `json:"acr_values,omitempty"`
	Essential     bool      `json:"essential,omitempty"`
	MaxAge        *int64    `json:"max_age,omitempty"`
	PromptNone    bool      `json:"prompt_none,omitempty"`
	PromptLogin   bool      `json:"prompt_login,omitempty"`
	LoginHint     string    `json:"login_hint,omitempty"`
	HintSubject   string    `json:"hint_sub,omitempty"`
	UILocales     []string  `json:"ui_locales,omitempty"`
	Start         time.Time `json:"start"`
	// Cancelled is set once the user cancelled; it stays for the rest of
	// the flow.
	Cancelled bool `json:"cancelled,omitempty"`
	// Browser is the digest of the flow-binding value of the browser that
	// started the flow (session.Manager.Binding): the flow is refused to
	// every other browser, so a link to it is worth nothing to whoever it
	// is sent to.
	Browser string `json:"browser"`
	// EnrollSecret is the TOTP secret offered for enrollment in this flow,
	// until a code confirms it.
	EnrollSecret string `json:"enroll_secret,omitempty"`
	// Account marks a verification for stepup's own pages (/account):
	// it ends by returning to ReturnTo, never with a code.
	Account  bool   `json:"account,omitempty"`
	ReturnTo string `json:"return_to,omitempty"`
	// EnrollPhone is the number a code was texted to for phone
	// enrollment in this flow, until that code confirms it.
	EnrollPhone string `json:"enroll_phone,omitempty"`
	// EnrollSubject is the subject EnrollSecret and EnrollPhone were
	// offered to. They belong to that user alone: when another user signs
	// in within the flow, both are forgotten (see forSubject).
	EnrollSubject string `json:"enroll_sub,omitempty"`
	// CIBA marks the approval of a backchannel authentication request:
	// its verifications are kept here, in Verifications, and never touch
	// a browser session (see ciba.go).
	CIBA          *CIBAApproval        `json:"ciba,omitempty"`
	Verifications []authn.Verification `json:"verifs,omitempty"`
	// Reset marks a password reset (reset.go): like an approval, its
	// verifications are kept in Verifications, for HintSubject.
	Reset *Reset `json:"reset,omitempty"`
	// ForceEnroll marks an /account verification that must end with a
	// second factor enrolled (after an administrator's recovery link).
	ForceEnroll bool `json:"force_enroll,omitempty"`
	// Shown is what /authorize decided when it sent the browser to a
	// TOTP step (see ShownStep), so that the page can be shown without
	// reading the account again.
	Shown *ShownStep `json:"shown,omitempty"`
}

// ShownStep is /authorize's decision for a step-up whose page is the
// TOTP form: the session it was made for and a digest of that session's
// verifications, the user's name and the factors asked. The TOTP page
// renders from it while the session and its verifications are still the
// same, without an account read; the page's post reads the account (the
// TOTP secret, whether it is active) and decides again, so nothing is
// granted on what ShownStep says (issue 14: one account read per
// step-up flow's completion, issue 18: fewer reads per step-up).
type ShownStep struct {
	SessionID    string         `json:"sid"`
	Verifs       string         `json:"verifs"`
	Username     string         `json:"user"`
	Need         []authn.Factor `json:"need"`
	Alternatives []authn.Factor `json:"alts,omitempty"`
	Target       string         `json:"target,omitempty"`
	// View is the session's View the decision was made with (it may have
	// been made from it, decideFromView): once the view is refreshed (a
	// post found the account changed), the page is decided again.
	View string `json:"view,omitempty"`
}

// shownStep returns what a TOTP step-up page needs of decision d, made
// for sess and acct at /authorize; nil when the page is another.
func shownStep(d authn.Decision, sess *session.Session, acct *session.Account) *ShownStep {
	if d.Outcome != authn.Need || sess == nil || acct == nil || len(d.Need) == 0 || d.Need[0] != authn.TOTP {
		return nil
	}
	return &ShownStep{SessionID: sess.ID, Verifs: VerificationsDigest(sess.Verifications), Username: acct.Username,
		Need: d.Need, Alternatives: d.Alternatives, Target: d.Target, View: sess.View}
}

// VerificationsDigest is a digest of a session's verifications: it
// changes with any verification recorded since.
func VerificationsDigest(vs []authn.Verification) string {
	b, err := json.Marshal(vs)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return b64(sum[:16])
}

// ShownFor returns the flow's ShownStep when it was decided for sess as
// it still is (same session, same verifications, same view), nil
// otherwise.
func (f *Flow) ShownFor(sess *session.Session) *ShownStep {
	sh := f.Shown
	if sh == nil || sess == nil || sh.SessionID != sess.ID || sh.View != sess.View || sh.Verifs == "" || sh.Verifs != VerificationsDigest(sess.Verifications) {
		return nil
	}
	return sh
}

// forSubject forgets the enrollment values of the flow that were offered
// to another subject than sub ("" for nobody signed in), so a secret
// shown to one user is never offered to, or accepted from, another.
func (f *Flow) forSubject(sub string) {
	if f.EnrollSubject == "" || f.EnrollSubject != sub {
		f.EnrollSecret, f.EnrollPhone, f.EnrollSubject = "", "", ""
	}
}

// authError is an OAuth error answered to the client's redirect URI.
type authError struct {
	code, desc string
}

func (e *authError) Error() string { return e.code + ": " + e.desc }

func errAuth(code, desc string) *authError { return &authError{code, desc} }

// pkceChallenge is a base64url SHA-256 digest (RFC 7636 §4.2).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// parseFlow validates everything of an authorization request but the
// client and redirect_uri (checked before, because their failure must not
// redirect). Errors are OAuth errors for the redirect.
func parseFlow(form url.Values, c *Client, now time.Time) (*Flow, *authError) {
	single := func(name string) (string, *authError) {
		if len(form[name]) > 1 {
			return "", errAuth(errInvalidRequest, name+" must not be repeated")
		}
		return form.Get(name), nil
	}
	for _, name := range []string{"response_type", "scope", "state", "nonce", "prompt", "max_age", "acr_values", "claims", "code_challenge", "code_challenge_method", "id_token_hint", "login_hint", "response_mode"} {
		if _, err := single(name); err != nil {
			return nil, err
		}
	}
	if err := checkAuthorizeLimits(form); err != nil {
		return nil, err
	}
	f := &Flow{
		ClientID:    c.GetID(),
		RedirectURI: form.Get("redirect_uri"),
		State:       form.Get("state"),
		Nonce:       form.Get("nonce"),
		LoginHint:   form.Get("login_hint"),
		UILocales:   strings.Fields(form.Get("ui_locales")),
		Start:       now,
	}
	if form.Get("request") != "" {
		return nil, errAuth("request_not_supported", "request objects are not supported")
	}
	if form.Get("request_uri") != "" {
		return nil, errAuth("request_uri_not_supported", "request_uri is not supported")
	}
	if form.Get("registration") != "" {
		return nil, errAuth("registration_not_supported", "the registration parameter is not supported")
	}
	switch rt := form.Get("response_type"); rt {
	case "code":
	case "":
		return nil, errAuth(errInvalidRequest, "response_type is required")
	default:
		return nil, errAuth("unsupported_response_type", "only response_type=code is supported")
	}
	if rm := form.Get("response_mode"); rm != "" && rm != "query" {
		return nil, errAuth(errInvalidRequest, "only response_mode=query is supported")
	}
	scopes := strings.Fields(form.Get("scope"))
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		return nil, errAuth("invalid_scope", "the openid scope is required")
	}
	f.Scopes = c.allowedScopes(scopes)

	// PKCE: S256 only; required for public clients (RFC 9700 §2.1.1).
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return nil, errAuth(errInvalidRequest, "code_challenge_method without code_challenge")
	case challenge == "" && c.Public():
		return nil, errAuth(errInvalidRequest, "PKCE (code_challenge with S256) is required for public clients")
	case challenge != "" && method != "S256":
		return nil, errAuth(errInvalidRequest, "code_challenge_method must be S256")
	case challenge != "" && !pkceChallenge.MatchString(challenge):
		return nil, errAuth(errInvalidRequest, "code_challenge must be a base64url SHA-256 digest")
	}
	f.CodeChallenge = challenge

	prompts := strings.Fields(form.Get("prompt"))
	for _, p := range prompts {
		switch p {
		case "none":
			if len(prompts) > 1 {
				return nil, errAuth(errInvalidRequest, "prompt=none must not be combined with other values")
			}
			f.PromptNone = true
		case "login", "select_account":
			f.PromptLogin = true
		case "consent":
			// Every client is registered by the operator: consent is implied.
		default:
			return nil, errAuth(errInvalidRequest, "unsupported prompt value")
		}
	}
	if v := form.Get("max_age"); v != "" {
		n, err := ParseMaxAge(v)
		if err != nil {
			return nil, errAuth(errInvalidRequest, "max_age must be a non-negative integer")
		}
		f.MaxAge = &n
	}
	f.ACRValues = strings.Fields(form.Get("acr_values"))
	if raw := form.Get("claims"); raw != "" {
		values, essential, present, err := parseClaimsACR(raw)
		if err != nil {
			return nil, errAuth(errInvalidRequest, "claims is not a valid claims request")
		}
		if present {
			// The claims parameter is the more specific request; it wins over
			// acr_values (OIDC Core §5.5.1.1).
			f.ACRValues, f.Essential = values, essential
		}
	}
	if err := CheckACRValues(f.ACRValues); err != nil {
		// The claims parameter's values: within its byte cap, thousands of
		// tiny ones still fit.
		return nil, errAuth(errInvalidRequest, err.Error())
	}
	return f, nil
}

// claimRequest is one member of the claims parameter (OIDC Core §5.5.1).
type claimRequest struct {
	Essential bool     `json:"essential"`
	Value     *string  `json:"value"`
	Values    []string `json:"values"`
}

// parseClaimsACR extracts the acr request from the claims parameter: the
// id_token member, else the userinfo member.
func parseClaimsACR(raw string) (values []string, essential, present bool, err error) {
	var req map[string]map[string]*claimRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		return nil, false, false, err
	}
	for _, where := range []string{"id_token", "userinfo"} {
		cr, ok := req[where]["acr"]
		if !ok {
			continue
		}
		if cr == nil { // "acr": null asks for the claim with default behaviour
			return nil, false, false, nil
		}
		if cr.Value != nil {
			values = append(values, *cr.Value)
		}
		values = append(values, cr.Values...)
		return values, cr.Essential, len(values) > 0 || cr.Essential, nil
	}
	return nil, false, false, nil
}

// policyRequest turns the flow into the policy's request.
func (f *Flow) policyRequest(c *Client, mfaAlways bool, hintOther bool) authn.Request {
	r := authn.Request{
		ACRValues:        f.ACRValues,
		Essential:        f.Essential,
		PromptNone:       f.PromptNone,
		PromptLogin:      f.PromptLogin,
		HintOtherSubject: hintOther,
		ClientMinACR:     c.MinACR(),
		MFAAlways:        mfaAlways,
		Unenrolled:       c.Unenrolled(),
		Cancelled:        f.Cancelled,
		Start:            f.Start,
	}
	if f.MaxAge != nil {
		// A stored max_age is never negative (parseFlow); should one be,
		// 0 asks for a fresh verification rather than none.
		d, _ := MaxAge(*f.MaxAge)
		r.MaxAge = &d
	}
	return r
}

// MaxAgeCeiling is the largest max_age, in seconds, that a time.Duration
// holds (about 292 years). max_age is a number of seconds chosen by the
// client (OIDC Core §3.1.2.1), and seconds × 10⁹ overflows int64 above
// it: 9223372037 became a negative duration (no verification ever fresh
// enough: the password page forever) and 9223372036854775807 became −1 s.
// No session lives that long, so a larger max_age asks nothing more of a
// session than this one: it is clamped, not refused.
const MaxAgeCeiling = int64(math.MaxInt64 / int64(time.Second))

// MaxAge is the duration of a max_age of seconds, clamped to
// MaxAgeCeiling; ok is false for a negative one (OIDC Core §3.1.2.1 says
// non-negative), which the caller refuses with invalid_request.
func MaxAge(seconds int64) (d time.Duration, ok bool) {
	if seconds < 0 {
		return 0, false
	}
	return time.Duration(min(seconds, MaxAgeCeiling)) * time.Second, true
}

// ParseMaxAge reads the max_age parameter: decimal digits only (no sign,
// no fraction, no spaces), clamped to MaxAgeCeiling — also when it does
// not fit in an int64.
func ParseMaxAge(v string) (int64, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, errors.New("max_age is not a non-negative integer")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > MaxAgeCeiling {
		// Only digits: the one error left is ErrRange, a number too large.
		return MaxAgeCeiling, nil
	}
	return n, nil
}

const errInvalidRequest = "invalid_request"
