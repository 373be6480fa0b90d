package passkey

import (
	"crypto/x509"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/google/uuid"

	"github.com/stepup-dev/stepup/authn"
)

// trustedHardware decides whether a new credential counts as hardware
// (phrh). It fails closed: nothing is trusted unless the operator
// configured hardware_aaguids or attestation roots, and a credential
// without an attestation certificate (format "none", self attestation)
// is never trusted, because its AAGUID is only the authenticator's claim.
//
//   - With roots, the certificate chain of the attestation (which
//     go-webauthn has verified signs this registration) must lead to one of
//     them.
//   - With hardware_aaguids, the AAGUID must be listed. Without roots the
//     model claim is then as good as the authenticator's certificate, which
//     is not anchored: the operator chose to trust the list.
func (rp *RP) trustedHardware(aaguid []byte, format string, chain [][]byte, at time.Time) bool {
	if !rp.TrustsHardware() || format == "" || format == "none" || len(chain) == 0 {
		return false
	}
	if len(rp.hardware) > 0 {
		id, err := uuid.FromBytes(aaguid)
		if err != nil || id == uuid.Nil || !slices.Contains(rp.hardware, id) {
			return false
		}
	}
	if rp.roots == nil {
		return true
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return false
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return false
		}
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         rp.roots,
		Intermediates: inter,
		// Attestation certificates carry no extended key usage of their
		// own (WebAuthn §8.2.1 lists what they must carry).
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		// Judged as of the registration: an attestation certificate that
		// expires later does not make the authenticator less genuine.
		CurrentTime: at,
	})
	return err == nil
}

// x5c extracts the attestation certificate chain (DER, leaf first) from
// an attestation statement; nil when there is none.
func x5c(stmt map[string]any) [][]byte {
	raw, ok := stmt["x5c"].([]any)
	if !ok {
		return nil
	}
	var out [][]byte
	for _, c := range raw {
		der, ok := c.([]byte)
		if !ok {
			return nil
		}
		out = append(out, der)
	}
	return out
}

// Hardware reports whether the credential is trusted as hardware under
// the configuration in force now: it was at registration, and its stored
// attestation still passes the current hardware_aaguids and roots. An
// operator who removes a model or a root takes phrh away from credentials
// registered before.
func (rp *RP) Hardware(c *Credential) bool {
	if !c.Hardware || !rp.TrustsHardware() {
		return false
	}
	var obj protocol.AttestationObject
	if err := webauthncbor.Unmarshal(c.WebAuthn.Attestation.Object, &obj); err != nil {
		return false
	}
	return rp.trustedHardware(c.WebAuthn.Authenticator.AAGUID, obj.Format, x5c(obj.AttStatement), c.CreatedAt)
}

// Enrollment is what the policy knows of the credential now.
func (rp *RP) Enrollment(c *Credential) authn.Enrollment {
	return authn.Enrollment{Factor: authn.WebAuthn, UV: c.UV, Hardware: c.UV && rp.Hardware(c)}
}
