// Package passkey is stepup's WebAuthn factor: passkeys and security keys,
// built on github.com/go-webauthn/webauthn.
//
// It runs the two ceremonies — registration (BeginRegistration,
// FinishRegistration) and assertion (BeginLogin for a known user,
// BeginDiscoverable for passwordless sign-in, FinishLogin) — and decides
// what an assertion proves (Result.Verification): amr hwk + user, user
// verification (the UV flag of that assertion's own authenticator data),
// and whether the authenticator is trusted as hardware (phrh).
//
// What the caller must store, and why:
//   - the Ceremony of each Begin, until its Finish, keyed by
//     Ceremony.Challenge and consumed exactly once (GETDEL), with a TTL of a
//     few minutes: a challenge answered twice would be a replay;
//   - each Credential (Encode/Decode) per account, for as long as the
//     account keeps it, rewritten after every assertion (sign count, last
//     use, backup state).
//
// Like package authn it knows no HTTP and no Redis.
package passkey

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/stepup-dev/stepup/authn"
)

// Config configures the relying party.
type Config struct {
	// Issuer is the OpenID issuer; the RP ID is its host and the only
	// accepted origin is its scheme://host[:port].
	Issuer string
	// RPName is shown by authenticators.
	RPName string
	// UserVerification is required, preferred or discouraged, for both
	// ceremonies.
	UserVerification string
	// HardwareAAGUIDs are the authenticator models trusted as hardware.
	HardwareAAGUIDs []string
	// Roots, when set, must anchor the attestation certificate chain of a
	// credential for it to be trusted as hardware.
	Roots *x509.CertPool
	// RefuseClones refuses an assertion whose signature counter did not
	// grow (a possible cloned authenticator) instead of only reporting it.
	RefuseClones bool
	// Timeout is how long a ceremony may take (default 5 minutes).
	Timeout time.Duration
}

// ErrNoRPID means the issuer's host cannot be a WebAuthn RP ID (an IP
// address): passkeys are then unavailable.
var ErrNoRPID = errors.New("passkey: the issuer's host is an IP address, which cannot be a WebAuthn RP ID")

// ErrPossibleClone is returned by FinishLogin (with RefuseClones) when the
// signature counter went backwards or stood still.
var ErrPossibleClone = errors.New("passkey: the signature counter did not increase: possible cloned authenticator")

// RP is a configured WebAuthn relying party. It is safe for concurrent use.
type RP struct {
	wa           *webauthn.WebAuthn
	uv           protocol.UserVerificationRequirement
	hardware     []uuid.UUID
	roots        *x509.CertPool
	refuseClones bool
	timeout      time.Duration
}

// New returns the relying party of an issuer.
func New(c Config) (*RP, error) {
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkey: issuer %q is not an absolute URL", c.Issuer)
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil, ErrNoRPID
	}
	uv := protocol.UserVerificationRequirement(c.UserVerification)
	switch uv {
	case protocol.VerificationRequired, protocol.VerificationPreferred, protocol.VerificationDiscouraged:
	case "":
		uv = protocol.VerificationPreferred
	default:
		return nil, fmt.Errorf("passkey: user_verification %q is not required, preferred or discouraged", c.UserVerification)
	}
	rp := &RP{uv: uv, roots: c.Roots, refuseClones: c.RefuseClones, timeout: c.Timeout}
	if rp.timeout <= 0 {
		rp.timeout = 5 * time.Minute
	}
	for _, s := range c.HardwareAAGUIDs {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("passkey: hardware aaguid %q: %w", s, err)
		}
		rp.hardware = append(rp.hardware, id)
	}
	conveyance := protocol.PreferNoAttestation
	if rp.TrustsHardware() {
		// Only an attestation can prove the model; ask for it only when
		// the operator trusts some.
		conveyance = protocol.PreferDirectAttestation
	}
	name := c.RPName
	if name == "" {
		name = "stepup"
	}
	rp.wa, err = webauthn.New(&webauthn.Config{
		RPID:                  host,
		RPDisplayName:         name,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: conveyance,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: uv,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: rp.timeout, TimeoutUVD: rp.timeout},
			Registration: webauthn.TimeoutConfig{Timeout: rp.timeout, TimeoutUVD: rp.timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return rp, nil
}

// RPID is the relying party id (the issuer's host).
func (rp *RP) RPID() string { return rp.wa.Config.RPID }

// Timeout is how long a ceremony may take: the TTL of a stored Ceremony.
func (rp *RP) Timeout() time.Duration { return rp.timeout }

// TrustsHardware reports whether any authenticator can be trusted as
// hardware; when false, phrh is unreachable (fail closed).
func (rp *RP) TrustsHardware() bool { return len(rp.hardware) > 0 || rp.roots != nil }

// Credential is the record kept per account for one passkey.
type Credential struct {
	// WebAuthn is go-webauthn's credential record: id, public key, sign
	// count, transports, AAGUID, backup flags, attestation type and format,
	// and the raw attestation (kept so it can be re-checked later).
	WebAuthn webauthn.Credential `json:"webauthn"`
	// Name is the user's name for it ("YubiKey", "Phone").
	Name string `json:"name"`
	// UV: the authenticator verified the user (PIN, biometric) when the
	// credential was registered or last used.
	UV bool `json:"uv"`
	// Hardware: its attestation was trusted as hardware at registration.
	Hardware   bool      `json:"hardware"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// ID is the credential id, base64url without padding: its key in the
// account's store.
func (c *Credential) ID() string { return base64.RawURLEncoding.EncodeToString(c.WebAuthn.ID) }

// AAGUID is the authenticator model, as a UUID string.
func (c *Credential) AAGUID() string {
	id, err := uuid.FromBytes(c.WebAuthn.Authenticator.AAGUID)
	if err != nil {
		return uuid.Nil.String()
	}
	return id.String()
}

// Synced reports whether the credential is backed up (a synced passkey).
func (c *Credential) Synced() bool { return c.WebAuthn.Flags.BackupState }

// Encode serializes the record for the store.
func (c *Credential) Encode() ([]byte, error) { return json.Marshal(c) }

// Decode parses a stored record.
func Decode(b []byte) (*Credential, error) {
	var c Credential
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("passkey: stored credential: %w", err)
	}
	if len(c.WebAuthn.ID) == 0 || len(c.WebAuthn.PublicKey) == 0 {
		return nil, errors.New("passkey: stored credential has no id or key")
	}
	return &c, nil
}

// User is an account as WebAuthn sees it. Its user handle is the subject:
// a random identifier that reveals nothing about the person.
type User struct {
	Subject     string
	Name        string
	DisplayName string
	Credentials []*Credential
}

var _ webauthn.User = (*User)(nil)

// WebAuthnID implements webauthn.User.
func (u *User) WebAuthnID() []byte { return []byte(u.Subject) }

// WebAuthnName implements webauthn.User.
func (u *User) WebAuthnName() string { return u.Name }

// WebAuthnDisplayName implements webauthn.User.
func (u *User) WebAuthnDisplayName() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Name
}

// WebAuthnCredentials implements webauthn.User.
func (u *User) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.Credentials))
	for _, c := range u.Credentials {
		out = append(out, c.WebAuthn)
	}
	return out
}

func (u *User) find(id []byte) *Credential {
	for _, c := range u.Credentials {
		if bytes.Equal(c.WebAuthn.ID, id) {
			return c
		}
	}
	return nil
}

// Kinds of ceremony.
const (
	KindRegister = "register"
	KindLogin    = "login"    // the user is known: allowCredentials lists theirs
	KindDiscover = "discover" // passwordless: the authenticator names the user
)

// Ceremony is the server-side state of one ceremony, stored under
// Challenge until its Finish.
type Ceremony struct {
	Kind string `json:"kind"`
	// Subject is the user of a register or login ceremony ("" to discover).
	Subject string `json:"sub,omitempty"`
	// Binding ties the ceremony to where it began (the caller's browser
	// session and page); Finish refuses another.
	Binding string               `json:"binding"`
	Data    webauthn.SessionData `json:"data"`
}

// Challenge is the ceremony's challenge (base64url): its key in the store.
func (c *Ceremony) Challenge() string { return c.Data.Challenge }

// BeginRegistration starts registering a new credential for u. The
// options are the JSON for navigator.credentials.create ({"publicKey": …}).
func (rp *RP) BeginRegistration(u *User, binding string) (options []byte, cer *Ceremony, err error) {
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.Credentials {
		exclude = append(exclude, c.WebAuthn.Descriptor())
	}
	creation, data, err := rp.wa.BeginRegistration(u,
		webauthn.WithExclusions(exclude),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	options, err = json.Marshal(creation)
	if err != nil {
		return nil, nil, err
	}
	return options, &Ceremony{Kind: KindRegister, Subject: u.Subject, Binding: binding, Data: *data}, nil
}

// FinishRegistration verifies the browser's answer (the JSON of the
// PublicKeyCredential) to a registration ceremony and returns the new
// credential, named name.
func (rp *RP) FinishRegistration(u *User, cer *Ceremony, body []byte, name string, now time.Time) (*Credential, error) {
	if cer.Kind != KindRegister || cer.Subject != u.Subject {
		return nil, errors.New("passkey: not a registration ceremony of this user")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("passkey: registration response: %w", describe(err))
	}
	wc, err := rp.wa.CreateCredential(u, cer.Data, parsed)
	if err != nil {
		return nil, fmt.Errorf("passkey: registration: %w", describe(err))
	}
	if u.find(wc.ID) != nil {
		return nil, errors.New("passkey: this credential is already registered")
	}
	c := &Credential{
		WebAuthn:  *wc,
		Name:      cleanName(name),
		UV:        parsed.Response.AttestationObject.AuthData.Flags.HasUserVerified(),
		CreatedAt: now,
	}
	c.Hardware = rp.trustedHardware(wc.Authenticator.AAGUID, wc.AttestationFormat, x5c(parsed.Response.AttestationObject.AttStatement), now)
	if c.Name == "" {
		c.Name = defaultName(c)
	}
	return c, nil
}

// BeginLogin starts an assertion by a known user, listing their
// credentials (security keys without discoverable credentials need that).
func (rp *RP) BeginLogin(u *User, binding string) (options []byte, cer *Ceremony, err error) {
	assertion, data, err := rp.wa.BeginLogin(u)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	options, err = json.Marshal(assertion)
	if err != nil {
		return nil, nil, err
	}
	return options, &Ceremony{Kind: KindLogin, Subject: u.Subject, Binding: binding, Data: *data}, nil
}

// BeginDiscoverable starts a passwordless assertion: the authenticator
// offers the user's discoverable credentials and names the user.
// conditional asks for conditional mediation (autofill).
func (rp *RP) BeginDiscoverable(binding string, conditional bool) (options []byte, cer *Ceremony, err error) {
	mediation := protocol.MediationDefault
	if conditional {
		mediation = protocol.MediationConditional
	}
	assertion, data, err := rp.wa.BeginDiscoverableMediatedLogin(mediation)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin discoverable login: %w", err)
	}
	options, err = json.Marshal(assertion)
	if err != nil {
		return nil, nil, err
	}
	return options, &Ceremony{Kind: KindDiscover, Binding: binding, Data: *data}, nil
}

// Result is a verified assertion.
type Result struct {
	Subject string
	// Credential is the record with its new sign count, flags and last
	// use; the caller stores it back.
	Credential *Credential
	// UV: this assertion verified the user.
	UV bool
	// Hardware: the credential is trusted as hardware under the current
	// configuration (RP.Hardware).
	Hardware bool
	// Clone: the signature counter did not increase.
	Clone bool
}

// Verification is what the assertion proves (PRODUCT.md §2): a WebAuthn
// verification, with user verification only if this assertion carried the
// UV flag, and hardware only if it also came from a credential whose
// attestation was trusted as hardware.
func (r *Result) Verification(now time.Time) authn.Verification {
	return authn.Verification{Factor: authn.WebAuthn, At: now, UV: r.UV, Hardware: r.UV && r.Hardware}
}

// Lookup returns the user with a subject (for a discoverable assertion,
// the user handle the authenticator returned).
type Lookup func(subject string) (*User, error)

// Assertion is a parsed (not yet verified) answer to an assertion
// ceremony.
type Assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
}

// ParseAssertion parses the browser's answer (the JSON of the
// PublicKeyCredential) to an assertion ceremony.
func ParseAssertion(body []byte) (*Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("passkey: assertion response: %w", describe(err))
	}
	return &Assertion{parsed: parsed}, nil
}

// ClaimedSubject is the user handle the authenticator returned ("" for
// none): who the assertion claims to be, before it is verified.
func (a *Assertion) ClaimedSubject() string { return string(a.parsed.Response.UserHandle) }

// FinishLogin verifies an assertion against its ceremony. For a login
// ceremony lookup is called with the ceremony's subject; for a
// discoverable one with the user handle. On ErrPossibleClone the Result is
// returned too, so the caller can report it.
func (rp *RP) FinishLogin(lookup Lookup, cer *Ceremony, a *Assertion, now time.Time) (*Result, error) {
	parsed := a.parsed
	var u *User
	var wc *webauthn.Credential
	var err error
	switch cer.Kind {
	case KindLogin:
		if u, err = lookup(cer.Subject); err != nil {
			return nil, err
		}
		wc, err = rp.wa.ValidateLogin(u, cer.Data, parsed)
	case KindDiscover:
		var wu webauthn.User
		wu, wc, err = rp.wa.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
			return lookup(string(handle))
		}, cer.Data, parsed)
		if err == nil {
			u = wu.(*User)
		}
	default:
		return nil, errors.New("passkey: not an assertion ceremony")
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: assertion: %w", describe(err))
	}
	stored := u.find(wc.ID)
	if stored == nil {
		return nil, errors.New("passkey: assertion by an unknown credential")
	}
	flags := parsed.Response.AuthenticatorData.Flags
	c := *stored
	c.WebAuthn = *wc
	c.LastUsedAt = now
	c.UV = c.UV || flags.HasUserVerified()
	res := &Result{Subject: u.Subject, Credential: &c, UV: flags.HasUserVerified(), Hardware: rp.Hardware(&c), Clone: wc.Authenticator.CloneWarning}
	// The warning is about this assertion; do not carry it forever.
	c.WebAuthn.Authenticator.CloneWarning = false
	if res.Clone && rp.refuseClones {
		return res, ErrPossibleClone
	}
	return res, nil
}

// describe adds go-webauthn's details (which check failed) to its error.
func describe(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return fmt.Errorf("%w: %s", err, pe.Details)
	}
	return err
}

// MaxNameLen bounds a passkey's name.
const MaxNameLen = 64

// cleanName trims a user-given name to one printable line.
func cleanName(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }), " ")
	if r := []rune(s); len(r) > MaxNameLen {
		s = string(r[:MaxNameLen])
	}
	return s
}

// CleanName is the name a rename stores ("" when nothing printable is
// left).
func CleanName(s string) string { return cleanName(s) }

func defaultName(c *Credential) string {
	switch {
	case c.WebAuthn.Flags.BackupEligible:
		return "Passkey"
	case slices.Contains(c.WebAuthn.Transport, protocol.USB), slices.Contains(c.WebAuthn.Transport, protocol.NFC):
		return "Security key"
	}
	return "Passkey"
}
