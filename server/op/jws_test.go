package op

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// goJoseToken is what stepup issued before jwsSigner: claims signed by a
// go-jose signer, compact serialization.
func goJoseToken(t testing.TB, s jose.Signer, claims any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// goJoseSigner is the go-jose signer stepup used for k's current key of
// alg and the token type typ.
func goJoseSigner(t testing.TB, pemBytes []byte, alg, kid, typ string) jose.Signer {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	key, err := parsePrivate(block)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifyWithJWKS verifies token with go-jose against the key of its kid
// in k's published JWKS, as a relying party or resource server does,
// and returns the header and payload.
func verifyWithJWKS(t testing.TB, k *Keys, token string) (jose.Header, []byte) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("go-jose cannot parse %s: %v", token, err)
	}
	h := jws.Signatures[0].Protected
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("go-jose does not verify %s with the published key: %v", token, err)
	}
	return h, payload
}

func segments(t testing.TB, token string) [3]string {
	t.Helper()
	p := strings.Split(token, ".")
	if len(p) != 3 {
		t.Fatalf("%q: not a compact JWS", token)
	}
	return [3]string{p[0], p[1], p[2]}
}

// The hand-written compact JWS is go-jose's, byte for byte where the
// algorithm is deterministic (RS256, EdDSA) and but for the signature
// for ES256; go-jose and go-oidc verify it against the published JWKS,
// ES256 signatures are r||s of 32 octets each (RFC 7518 §3.4).
func TestJWSMatchesGoJose(t *testing.T) {
	now := time.Now()
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			pemBytes, err := generateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			k, err := NewKeys(alg, pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			kid := k.SigningKID(alg)
			id := benchIDClaims(now)
			at := benchAccessClaims(now)
			for _, c := range []struct {
				typ    string
				claims any
				sign   func() (string, error)
			}{
				{"JWT", id, func() (string, error) { return k.signID("", id) }},
				{"at+jwt", at, func() (string, error) { return k.signAccess(at) }},
			} {
				ours, err := c.sign()
				if err != nil {
					t.Fatal(err)
				}
				theirs := goJoseToken(t, goJoseSigner(t, pemBytes, alg, kid, c.typ), c.claims)
				o, g := segments(t, ours), segments(t, theirs)
				if o[0] != g[0] {
					h0, _ := base64.RawURLEncoding.DecodeString(o[0])
					h1, _ := base64.RawURLEncoding.DecodeString(g[0])
					t.Fatalf("%s header %s, go-jose's %s", c.typ, h0, h1)
				}
				if o[1] != g[1] {
					t.Fatalf("%s payload differs from go-jose's", c.typ)
				}
				if alg != "ES256" && ours != theirs {
					t.Fatalf("%s: a deterministic signature differs from go-jose's", c.typ)
				}
				h, payload := verifyWithJWKS(t, k, ours)
				want, _ := json.Marshal(c.claims)
				if !bytes.Equal(payload, want) || h.KeyID != kid || h.Algorithm != alg || h.ExtraHeaders[jose.HeaderType] != c.typ {
					t.Fatalf("%s: header %+v payload %s", c.typ, h, payload)
				}
				if sig, _ := base64.RawURLEncoding.DecodeString(o[2]); alg == "ES256" && len(sig) != 64 {
					t.Fatalf("ES256 signature of %d octets, want 64", len(sig))
				}
			}
			// go-oidc, as a relying party verifies an ID token.
			pub := k.sets[alg].current().signing.public
			v := oidc.NewVerifier("https://id.example.com", &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}},
				&oidc.Config{ClientID: "bank", SupportedSigningAlgs: []string{alg}, Now: func() time.Time { return now }})
			tok, err := k.signID("", id)
			if err != nil {
				t.Fatal(err)
			}
			idt, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("go-oidc: %v", err)
			}
			if idt.Subject != id.Subject || idt.Nonce != id.Nonce {
				t.Fatalf("go-oidc read %+v", idt)
			}
		})
	}
}

// ecdsaJOSE pads short integers, drops ASN.1's sign octet and refuses
// what is not one SEQUENCE of two integers that fit.
func TestECDSAJOSE(t *testing.T) {
	der := func(r, s []byte) []byte {
		i := func(v []byte) []byte { return append([]byte{0x02, byte(len(v))}, v...) }
		body := append(i(r), i(s)...)
		return append([]byte{0x30, byte(len(body))}, body...)
	}
	full := bytes.Repeat([]byte{0x7f}, 32)
	high := append([]byte{0}, bytes.Repeat([]byte{0x80}, 32)...) // 33 octets with the sign octet
	short := bytes.Repeat([]byte{0x11}, 30)
	for _, c := range []struct {
		name string
		der  []byte
		want []byte // nil: refused
	}{
		{"full", der(full, full), append(bytes.Clone(full), full...)},
		{"sign octet", der(high, full), append(bytes.Repeat([]byte{0x80}, 32), full...)},
		{"short r", der(short, full), append(append([]byte{0, 0}, short...), full...)},
		{"short s", der(full, []byte{1}), append(bytes.Clone(full), append(make([]byte, 31), 1)...)},
		{"too large", der(append([]byte{1}, full...), full), nil},
		{"negative", der([]byte{0x80}, full), nil},
		{"trailing data", append(der(full, full), 0), nil},
		{"one integer", []byte{0x30, 0x03, 0x02, 0x01, 0x01}, nil},
		{"not a sequence", []byte{0x02, 0x01, 0x01}, nil},
	} {
		got, err := ecdsaJOSE(c.der, 32)
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: accepted: %x", c.name, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: %x, %v; want %x", c.name, got, err, c.want)
		}
	}
}

// Many ES256 signatures: about one in 128 has an r or s shorter than 32
// octets, which ecdsaJOSE must pad for go-jose to verify it.
func TestJWSES256ManySignatures(t *testing.T) {
	k := fuzzKeys(t).k
	at := benchAccessClaims(time.Now())
	for i := range 1000 {
		at.JTI = fmt.Sprint("cc.", i)
		tok, err := k.signAccess(at)
		if err != nil {
			t.Fatal(err)
		}
		verifyWithJWKS(t, k, tok)
	}
}

type fuzzKey struct {
	k   *Keys
	pem []byte
}

var fuzzKeysOnce = sync.OnceValues(func() (fuzzKey, error) {
	pemBytes, err := generateKey("ES256")
	if err != nil {
		return fuzzKey{}, err
	}
	k, err := NewKeys("ES256", pemBytes)
	return fuzzKey{k, pemBytes}, err
})

func fuzzKeys(t testing.TB) fuzzKey {
	k, err := fuzzKeysOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Any access token claims: the token verifies with go-jose against the
// JWKS, its header and payload segments are those of go-jose's token of
// the same claims, and the claims read back are the ones signed.
func FuzzJWSClaims(f *testing.F) {
	f.Add("https://id.example.com", "0f8fad5b-d9cb-469f-a165-70867728950e", "bank", int64(1_800_000_000), "openid profile", "urn:stepup:mfa", "pwd otp")
	f.Add("", "", "", int64(0), "", "", "")
	f.Add("https://\u00efd.example.com/<script>&", "\u2028\"\\", "\u00fc\x00", int64(-1), "a  b", "\xff\xfe", " ")
	f.Fuzz(func(t *testing.T, iss, sub, aud string, exp int64, scope, acr, amr string) {
		fk := fuzzKeys(t)
		k := fk.k
		c := accessTokenClaims{Issuer: iss, Subject: sub, Audience: aud, Expiry: exp, IssuedAt: exp - 300, JTI: "cc.x", ClientID: aud, Scope: scope, ACR: acr}
		if amr != "" {
			c.AMR = strings.Fields(amr)
		}
		tok, err := k.signAccess(c)
		if err != nil {
			t.Fatal(err)
		}
		kid := k.SigningKID("ES256")
		h, payload := verifyWithJWKS(t, k, tok)
		if h.Algorithm != "ES256" || h.KeyID != kid || h.ExtraHeaders[jose.HeaderType] != "at+jwt" {
			t.Fatalf("header %+v", h)
		}
		theirs := goJoseToken(t, goJoseSigner(t, fk.pem, "ES256", kid, "at+jwt"), c)
		o, g := segments(t, tok), segments(t, theirs)
		if o[0] != g[0] || o[1] != g[1] {
			t.Fatalf("token %s.%s, go-jose's %s.%s", o[0], o[1], g[0], g[1])
		}
		_, theirPayload := verifyWithJWKS(t, k, theirs)
		var ours, back accessTokenClaims
		if err := json.Unmarshal(payload, &ours); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(theirPayload, &back); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%#v", ours) != fmt.Sprintf("%#v", back) {
			t.Fatalf("claims read back %#v, go-jose's %#v", ours, back)
		}
		// What could be represented comes back as signed.
		if ours.Expiry != c.Expiry || ours.JTI != c.JTI || (utf8.ValidString(sub) && ours.Subject != sub) {
			t.Fatalf("claims read back %#v, signed %#v", ours, c)
		}
	})
}
