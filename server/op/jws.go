package op

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Token types of the JWS header (typ): ID tokens are "JWT" (OIDC Core
// §2 does not require one; this is what RFC 7519 §5.1 recommends),
// access tokens "at+jwt" (RFC 9068 §2.1).
const (
	typIDToken     = "JWT"
	typAccessToken = "at+jwt"
)

// jwsSigner writes the compact JWS serialization (RFC 7515 §7.1) of the
// tokens stepup issues with one key: the protected header is the same
// for every token of a type, so it is encoded once per key and type, and
// a token costs the claims' JSON, one signature and the base64url text.
// go-jose did the same work through a general JWS builder (a header map
// encoded by reflection per token, the signature as big integers, a
// JSONWebSignature value to serialize): about a quarter of an ES256
// access token's CPU (docs/benchmarks.md, issue 18, client_credentials).
// Tokens are read back with go-jose (Keys.verify) and by relying parties
// and resource servers with any JOSE library: TestJWSMatchesGoJose holds
// the output to go-jose's.
type jwsSigner struct {
	alg string
	key crypto.Signer
	// idHeader and atHeader are the base64url protected headers
	// {"alg":…,"kid":…,"typ":…} of ID tokens and access tokens, with the
	// members in go-jose's (sorted) order.
	idHeader, atHeader string
}

func newJWSSigner(alg, kid string, key crypto.Signer) (*jwsSigner, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve.Params().BitSize != 256 {
			return nil, fmt.Errorf("signing key: %s cannot be signed with an ECDSA key of %d bits", alg, k.Curve.Params().BitSize)
		}
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("signing key: an RSA key cannot sign %s", alg)
		}
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("signing key: an Ed25519 key cannot sign %s", alg)
		}
	default:
		return nil, fmt.Errorf("signing key: unsupported key type %T", key)
	}
	header := func(typ string) (string, error) {
		b, err := json.Marshal(struct {
			Alg string `json:"alg"`
			KID string `json:"kid"`
			Typ string `json:"typ"`
		}{alg, kid, typ})
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	s := &jwsSigner{alg: alg, key: key}
	var err error
	if s.idHeader, err = header(typIDToken); err != nil {
		return nil, err
	}
	if s.atHeader, err = header(typAccessToken); err != nil {
		return nil, err
	}
	return s, nil
}

// sign returns header.payload.signature, header being one of s's
// encoded headers and payload the JSON of claims.
func (s *jwsSigner) sign(header string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	// The whole token in one buffer: the signing input (RFC 7515 §5.1:
	// ASCII(header || '.' || payload)), then '.' and the signature.
	buf := make([]byte, 0, len(header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(s.maxSignatureSize()))
	buf = append(buf, header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := s.signature(buf)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

func (s *jwsSigner) maxSignatureSize() int {
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		return k.Size()
	case ed25519.PrivateKey:
		return ed25519.SignatureSize
	}
	return 64
}

// signature is the JWS Signature of input (RFC 7518 §3.3, §3.4; RFC 8037
// §3.1).
func (s *jwsSigner) signature(input []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		return ecdsaJOSE(der, 32)
	case *rsa.PrivateKey:
		h := sha256.Sum256(input)
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", s.key)
}

// ecdsaJOSE converts an ASN.1 ECDSA signature (SEQUENCE of the integers
// r and s) to JWS's form: r and s as unsigned big-endian octet strings
// of size octets each, concatenated (RFC 7518 §3.4).
func ecdsaJOSE(der []byte, size int) ([]byte, error) {
	var r, s []byte
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, errors.New("malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	if err := putUnsigned(out[:size], r); err != nil {
		return nil, err
	}
	if err := putUnsigned(out[size:], s); err != nil {
		return nil, err
	}
	return out, nil
}

// putUnsigned writes the big-endian integer v (an ASN.1 INTEGER's
// content: a leading zero octet when its high bit is set) right-aligned
// in dst, which it must fit.
func putUnsigned(dst, v []byte) error {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > len(dst) {
		return errors.New("ECDSA signature integer too large")
	}
	copy(dst[len(dst)-len(v):], v)
	return nil
}
