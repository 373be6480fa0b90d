package passkey

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/stepup-dev/stepup/authn"
)

// The ceremony glue driven by the W3C WebAuthn test vectors (§16), which
// go-webauthn carries: testdata/spec-vectors.json. Their RP ID is
// example.org, so the issuer here is https://example.org.

type vectors struct {
	Registration   map[string]map[string]string `json:"registration"`
	Authentication map[string]map[string]string `json:"authentication"`
	CA             string                       `json:"ca"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/spec-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

const subject = "3f1c0d8e9a7b6c5d4e3f2a1b0c9d8e7f"

// The AAGUID of the §16.7 packed attestation (full, with x5c).
const packedAAGUID = "876ca4f5-2071-c3e9-b255-09ef2cdf7ed6"

func newRP(t testing.TB, c Config) *RP {
	t.Helper()
	c.Issuer = "https://example.org"
	rp, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func registrationBody(t testing.TB, v map[string]string) []byte {
	t.Helper()
	id := unhex(t, v["credentialID"])
	b, _ := json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64(unhex(t, v["clientDataJSON"])),
			"attestationObject": b64(unhex(t, v["attestationObject"])),
		},
		"clientExtensionResults": map[string]any{},
	})
	return b
}

func assertionBody(t testing.TB, v map[string]string) []byte {
	t.Helper()
	id := unhex(t, v["credentialID"])
	b, _ := json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64(unhex(t, v["clientDataJSON"])),
			"authenticatorData": b64(unhex(t, v["authenticatorData"])),
			"signature":         b64(unhex(t, v["signature"])),
		},
		"clientExtensionResults": map[string]any{},
	})
	return b
}

func ceremony(t testing.TB, kind, challengeHex string, allowed ...[]byte) *Ceremony {
	t.Helper()
	return &Ceremony{Kind: kind, Subject: subject, Binding: "test", Data: webauthn.SessionData{
		Challenge:            b64(unhex(t, challengeHex)),
		RelyingPartyID:       "example.org",
		UserID:               []byte(subject),
		AllowedCredentialIDs: allowed,
		UserVerification:     protocol.VerificationPreferred,
		CredParams:           []protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: -7}},
	}}
}

func register(t testing.TB, rp *RP, v map[string]string) (*Credential, error) {
	t.Helper()
	u := &User{Subject: subject, Name: "alice"}
	return rp.FinishRegistration(u, ceremony(t, KindRegister, v["challenge"]), registrationBody(t, v), "  My\tkey\n ", time.Unix(1750000000, 0)) // after the vectors' certificates begin (2024)
}

// TestRegistrationHardwareTrust: §16.7 (packed, x5c), §16.3 (packed self
// attestation) and §16.2 (none) registered under each trust
// configuration. Only an attestation with a certificate, of a listed model
// and/or chaining to a configured root, is hardware; nothing is without
// configuration (fail closed).
func TestRegistrationHardwareTrust(t *testing.T) {
	v := loadVectors(t)
	ca, err := x509.ParseCertificate(unhex(t, v.CA))
	if err != nil {
		t.Fatal(err)
	}
	specRoots := x509.NewCertPool()
	specRoots.AddCert(ca)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(&x509.Certificate{Raw: []byte("not this one")})
	selfAAGUID := "df850e09-db6a-fbdf-ab51-697791506cfc"

	for _, tc := range []struct {
		name   string
		vector string
		cfg    Config
		want   bool
	}{
		{"§16.7 packed, nothing configured", "PackedES256WithMDS", Config{}, false},
		{"§16.7 packed, AAGUID listed", "PackedES256WithMDS", Config{HardwareAAGUIDs: []string{packedAAGUID}}, true},
		{"§16.7 packed, another AAGUID listed", "PackedES256WithMDS", Config{HardwareAAGUIDs: []string{selfAAGUID}}, false},
		{"§16.7 packed, chains to the configured root", "PackedES256WithMDS", Config{Roots: specRoots}, true},
		{"§16.7 packed, root and AAGUID", "PackedES256WithMDS", Config{Roots: specRoots, HardwareAAGUIDs: []string{packedAAGUID}}, true},
		{"§16.7 packed, root but another AAGUID", "PackedES256WithMDS", Config{Roots: specRoots, HardwareAAGUIDs: []string{selfAAGUID}}, false},
		{"§16.7 packed, AAGUID but another root", "PackedES256WithMDS", Config{Roots: otherRoots, HardwareAAGUIDs: []string{packedAAGUID}}, false},
		{"§16.3 self attestation, AAGUID listed", "PackedSelfES256", Config{HardwareAAGUIDs: []string{selfAAGUID}}, false},
		{"§16.2 none, root configured", "NoneES256", Config{Roots: specRoots}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := register(t, newRP(t, tc.cfg), v.Registration[tc.vector])
			if err != nil {
				t.Fatalf("FinishRegistration: %v", err)
			}
			if c.Hardware != tc.want {
				t.Errorf("Hardware = %v, want %v (format %q, AAGUID %s)", c.Hardware, tc.want, c.WebAuthn.AttestationFormat, c.AAGUID())
			}
			if c.Name != "My key" {
				t.Errorf("Name = %q, want the user's name cleaned to %q", c.Name, "My key")
			}
			if c.ID() != b64(unhex(t, v.Registration[tc.vector]["credentialID"])) || len(c.WebAuthn.PublicKey) == 0 {
				t.Errorf("credential id %s / key not kept", c.ID())
			}
		})
	}
}

// TestAssertionAMR: what an assertion proves follows the UV flag of that
// assertion (§16.7's authentication has UV, §16.2's has not), and hardware
// needs both UV and a hardware credential.
func TestAssertionAMR(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range []struct {
		name           string
		reg, auth      string
		cfg            Config
		wantUV, wantHW bool
	}{
		{"§16.7 UV, hardware", "PackedES256WithMDS", "PackedES256Full", Config{HardwareAAGUIDs: []string{packedAAGUID}}, true, true},
		{"§16.7 UV, not trusted", "PackedES256WithMDS", "PackedES256Full", Config{}, true, false},
		{"§16.2 no UV", "NoneES256", "NoneES256", Config{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := newRP(t, tc.cfg)
			c, err := register(t, rp, v.Registration[tc.reg])
			if err != nil {
				t.Fatal(err)
			}
			u := &User{Subject: subject, Name: "alice", Credentials: []*Credential{c}}
			a, err := ParseAssertion(assertionBody(t, v.Authentication[tc.auth]))
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1750000100, 0)
			res, err := rp.FinishLogin(func(sub string) (*User, error) {
				if sub != subject {
					t.Fatalf("lookup of %q", sub)
				}
				return u, nil
			}, ceremony(t, KindLogin, v.Authentication[tc.auth]["challenge"], c.WebAuthn.ID), a, now)
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			got := res.Verification(now)
			want := authn.Verification{Factor: authn.WebAuthn, At: now, UV: tc.wantUV, Hardware: tc.wantHW}
			if got != want {
				t.Errorf("Verification = %+v, want %+v", got, want)
			}
			if res.Subject != subject || !res.Credential.LastUsedAt.Equal(now) {
				t.Errorf("result subject %q, last used %v", res.Subject, res.Credential.LastUsedAt)
			}
			if amr := authn.AMR(got); len(amr) != 2 || amr[0] != "hwk" || amr[1] != "user" {
				t.Errorf("amr %v, want [hwk user]", amr)
			}

			// The same assertion against another challenge is refused.
			other := ceremony(t, KindLogin, v.Authentication["PackedSelfES256"]["challenge"], c.WebAuthn.ID)
			if _, err := rp.FinishLogin(func(string) (*User, error) { return u, nil }, other, a, now); err == nil {
				t.Error("an assertion was accepted for another ceremony's challenge")
			}
		})
	}
}

// TestSignCountRegression: an assertion whose counter does not exceed the
// stored one is a possible clone: refused by default, reported either way.
func TestSignCountRegression(t *testing.T) {
	v := loadVectors(t)
	for _, refuse := range []bool{true, false} {
		rp := newRP(t, Config{RefuseClones: refuse})
		c, err := register(t, rp, v.Registration["PackedES256WithMDS"])
		if err != nil {
			t.Fatal(err)
		}
		c.WebAuthn.Authenticator.SignCount = 7 // the vector's assertion says 0
		u := &User{Subject: subject, Credentials: []*Credential{c}}
		a, err := ParseAssertion(assertionBody(t, v.Authentication["PackedES256Full"]))
		if err != nil {
			t.Fatal(err)
		}
		res, err := rp.FinishLogin(func(string) (*User, error) { return u, nil },
			ceremony(t, KindLogin, v.Authentication["PackedES256Full"]["challenge"], c.WebAuthn.ID), a, time.Now())
		if res == nil || !res.Clone {
			t.Fatalf("refuse=%v: result %+v, want a clone report", refuse, res)
		}
		if refuse != errors.Is(err, ErrPossibleClone) {
			t.Fatalf("refuse=%v: err %v", refuse, err)
		}
		if res.Credential.WebAuthn.Authenticator.SignCount != 7 {
			t.Errorf("the stored counter moved to %d on a regression", res.Credential.WebAuthn.Authenticator.SignCount)
		}
	}
}

func TestCeremonyKindAndRecordRoundTrip(t *testing.T) {
	v := loadVectors(t)
	rp := newRP(t, Config{})
	u := &User{Subject: subject}
	reg := v.Registration["NoneES256"]
	if _, err := rp.FinishRegistration(u, ceremony(t, KindLogin, reg["challenge"]), registrationBody(t, reg), "", time.Now()); err == nil {
		t.Error("a login ceremony finished a registration")
	}
	c, err := register(t, rp, reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil || back.ID() != c.ID() || back.Name != c.Name || back.UV != c.UV || !back.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("Decode(Encode) = %+v, %v", back, err)
	}
	if _, err := Decode([]byte(`{"name":"x"}`)); err == nil {
		t.Error("a record without id and key decoded")
	}
	u.Credentials = []*Credential{c}
	if _, err := rp.FinishRegistration(u, ceremony(t, KindRegister, reg["challenge"]), registrationBody(t, reg), "", time.Now()); err == nil {
		// The exclusion list is the browser's job; the server refuses too.
		t.Error("the same credential registered twice")
	}
}

func TestNewRPFromIssuer(t *testing.T) {
	rp, err := New(Config{Issuer: "http://localhost:8080"})
	if err != nil || rp.RPID() != "localhost" {
		t.Fatalf("localhost issuer: %v, %v", rp, err)
	}
	if _, err := New(Config{Issuer: "http://127.0.0.1:8080"}); !errors.Is(err, ErrNoRPID) {
		t.Fatalf("IP issuer: %v, want ErrNoRPID", err)
	}
	if _, err := New(Config{Issuer: "https://id.example.com", UserVerification: "sometimes"}); err == nil {
		t.Fatal("bad user_verification accepted")
	}
	if rp, _ := New(Config{Issuer: "https://id.example.com"}); rp.TrustsHardware() {
		t.Fatal("hardware trusted with nothing configured")
	}
}

func TestChallengeOf(t *testing.T) {
	v := loadVectors(t)
	for name, reg := range v.Registration {
		got, err := ChallengeOf(registrationBody(t, reg))
		if err != nil || got != b64(unhex(t, reg["challenge"])) {
			t.Errorf("%s: ChallengeOf = %q, %v", name, got, err)
		}
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `{"response":{"clientDataJSON":"!!"}}`,
		`{"response":{"clientDataJSON":"` + b64([]byte(`{"type":"webauthn.get","challenge":"short"}`)) + `"}}`,
		`{"response":{"clientDataJSON":"` + b64([]byte(`{"type":"payment.get","challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)) + `"}}`,
		`{"response":{"clientDataJSON":"` + b64([]byte(`{"type":"webauthn.get","challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*"}`)) + `"}}`,
	} {
		if c, err := ChallengeOf([]byte(bad)); err == nil {
			t.Errorf("ChallengeOf(%s) = %q, want an error", bad, c)
		}
	}
}

// TestHardwareFollowsConfiguration: trust is judged again at each
// assertion, so an operator who stops trusting a model or a root takes
// phrh away from credentials registered before.
func TestHardwareFollowsConfiguration(t *testing.T) {
	v := loadVectors(t)
	ca, err := x509.ParseCertificate(unhex(t, v.CA))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	c, err := register(t, newRP(t, Config{Roots: roots, HardwareAAGUIDs: []string{packedAAGUID}}), v.Registration["PackedES256WithMDS"])
	if err != nil || !c.Hardware {
		t.Fatalf("registered as hardware: %v, %v", c, err)
	}
	// Through the store and back.
	b, _ := c.Encode()
	if c, err = Decode(b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"same configuration", Config{Roots: roots, HardwareAAGUIDs: []string{packedAAGUID}}, true},
		{"root only", Config{Roots: roots}, true},
		{"nothing trusted any more", Config{}, false},
		{"model removed from the list", Config{HardwareAAGUIDs: []string{"df850e09-db6a-fbdf-ab51-697791506cfc"}}, false},
		{"root replaced", Config{Roots: x509.NewCertPool(), HardwareAAGUIDs: []string{packedAAGUID}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := newRP(t, tc.cfg)
			if got := rp.Hardware(c); got != tc.want {
				t.Errorf("Hardware = %v, want %v", got, tc.want)
			}
			if got := rp.Enrollment(c).Hardware; got != tc.want {
				t.Errorf("Enrollment().Hardware = %v, want %v", got, tc.want)
			}
			u := &User{Subject: subject, Credentials: []*Credential{c}}
			a, err := ParseAssertion(assertionBody(t, v.Authentication["PackedES256Full"]))
			if err != nil {
				t.Fatal(err)
			}
			res, err := rp.FinishLogin(func(string) (*User, error) { return u, nil },
				ceremony(t, KindLogin, v.Authentication["PackedES256Full"]["challenge"], c.WebAuthn.ID), a, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Verification(time.Now()).Hardware; got != tc.want {
				t.Errorf("assertion Hardware = %v, want %v", got, tc.want)
			}
		})
	}
}
