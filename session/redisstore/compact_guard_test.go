package redisstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn"
)

// Every field of authn.Verification survives the compact encoding
// (verificationValue, parseVerification): the value is built by
// reflection with each field set to something other than its zero
// value, so a field added to authn.Verification later is set here too
// and, if the compact form drops it, this test fails instead of a
// session silently losing it (a flag that restricts what a
// verification proves, lost, would let it count for more).
func TestVerificationEncodingKeepsEveryField(t *testing.T) {
	var v authn.Verification
	rv := reflect.ValueOf(&v).Elem()
	at := time.Unix(1796691246, 695960660).UTC()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(at))
		case f.Type() == reflect.TypeOf(authn.Factor("")):
			f.Set(reflect.ValueOf(authn.WebAuthn))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.String:
			f.SetString("x")
		case f.CanInt():
			f.SetInt(7)
		case f.CanUint():
			f.SetUint(7)
		default:
			t.Fatalf("authn.Verification.%s (%s): this test cannot set it; teach it, and the compact encoding, that field", rv.Type().Field(i).Name, f.Type())
		}
	}
	b, err := verificationValue(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseVerification(prefixVerify+string(v.Factor), string(b))
	if err != nil {
		t.Fatalf("parseVerification(%q): %v", b, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("compact round trip of %+v (%q) read back as %+v: a field is lost", v, b, got)
	}
}
