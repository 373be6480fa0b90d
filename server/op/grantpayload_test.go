package op

import (
	"reflect"
	"testing"

	"github.com/stepup-dev/stepup/session"
)

// A sign-in's grant payload is compact: one listpack field of at most
// 64 bytes (issue 18: Redis bytes per login), and read back whole. Fails
// with the JSON payload back (95 B).
func TestGrantPayloadCompact(t *testing.T) {
	gd := grantData{authClaims: authClaims{Subject: "s", ACR: "urn:stepup:loa:1fa", AMR: []string{"pwd"}, AuthTime: 1796691251},
		Scopes: []string{"openid", "profile"}}
	b, err := encodeGrant(gd)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 64 || b[0] != grantCompact {
		t.Fatalf("payload %q, %d B: want the compact form in at most 64", b, len(b))
	}
	for _, gd := range []grantData{gd,
		{authClaims: authClaims{Subject: "s", ACR: "urn:stepup:loa:2fa", AMR: []string{"pwd", "otp", "mfa"}, AuthTime: 1}, Scopes: []string{"openid", "offline_access", "email"}},
		{authClaims: authClaims{Subject: "s"}},
		// Not for the compact form: stored as JSON, read the same.
		{authClaims: authClaims{Subject: "s", ACR: "a\x1fb", AMR: []string{"pwd"}}, Scopes: []string{"openid"}},
		{authClaims: authClaims{Subject: "s", AMR: []string{"p w d"}}, Scopes: []string{"openid"}},
		{authClaims: authClaims{Subject: "s"}, Scopes: []string{""}},
	} {
		b, err := encodeGrant(gd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeGrant(&session.Grant{Subject: "s", Data: b})
		if err != nil || !reflect.DeepEqual(got, gd) {
			t.Errorf("%q read back as %+v, %v; want %+v", b, got, err, gd)
		}
	}
}

// Payloads earlier versions stored (JSON, with or without the subject)
// are read; a payload that is neither form, or names another subject, is
// refused.
func TestGrantPayloadLegacy(t *testing.T) {
	want := grantData{authClaims: authClaims{Subject: "s", ACR: "urn:stepup:loa:1fa", AMR: []string{"pwd"}, AuthTime: 1796691251},
		Scopes: []string{"openid", "profile"}}
	for _, b := range []string{
		`{"acr":"urn:stepup:loa:1fa","amr":["pwd"],"auth_time":1796691251,"scopes":["openid","profile"]}`,
		`{"sub":"s","acr":"urn:stepup:loa:1fa","amr":["pwd"],"auth_time":1796691251,"scopes":["openid","profile"]}`,
	} {
		got, err := decodeGrant(&session.Grant{Subject: "s", Data: []byte(b)})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s read as %+v, %v", b, got, err)
		}
	}
	for _, b := range []string{
		`{"sub":"other","acr":"x"}`, "1acr\x1fpwd\x1f12", "1acr\x1fpwd\x1fx\x1fopenid", "1a\x1fb\x1f-1\x1fc", "x", "",
	} {
		if got, err := decodeGrant(&session.Grant{Subject: "s", Data: []byte(b)}); err == nil {
			t.Errorf("%q read as %+v, want an error", b, got)
		}
	}
}
