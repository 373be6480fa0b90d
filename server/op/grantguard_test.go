package op

import (
	"reflect"
	"testing"

	"github.com/stepup-dev/stepup/session"
)

// setEveryField sets every field of the struct v points to (embedded
// structs included) to a value other than its zero value, with suffix
// in its strings; a field of a kind it does not know fails t.
func setEveryField(t *testing.T, v reflect.Value, suffix string) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		switch f.Kind() {
		case reflect.Struct:
			setEveryField(t, f, suffix)
		case reflect.String:
			f.SetString(sf.Name + suffix)
		case reflect.Slice:
			if f.Type().Elem().Kind() != reflect.String {
				t.Fatalf("%s (%s): teach this test, and the grant payload, that field", sf.Name, f.Type())
			}
			f.Set(reflect.ValueOf([]string{sf.Name + suffix, "b"}))
		case reflect.Int, reflect.Int64, reflect.Int32:
			f.SetInt(1796691251)
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("%s (%s): teach this test, and the grant payload, that field", sf.Name, f.Type())
		}
	}
}

// Every field of grantData survives the stored grant payload, in its
// compact form and in JSON: the value is built by reflection, so a field
// added to grantData or authClaims later (what every token of the grant
// claims) is set here too and, if encodeGrant drops it, this test fails
// instead of refreshed tokens silently losing it.
func TestGrantPayloadKeepsEveryField(t *testing.T) {
	for _, suffix := range []string{"", " spaced"} { // compact, then JSON
		var gd grantData
		setEveryField(t, reflect.ValueOf(&gd).Elem(), suffix)
		b, err := encodeGrant(gd)
		if err != nil {
			t.Fatal(err)
		}
		if compact := b[0] == grantCompact; compact != (suffix == "") {
			t.Fatalf("payload %q: compact %v, want %v", b, compact, suffix == "")
		}
		got, err := decodeGrant(&session.Grant{Subject: gd.Subject, Data: b})
		if err != nil {
			t.Fatalf("decodeGrant(%q): %v", b, err)
		}
		if !reflect.DeepEqual(got, gd) {
			t.Fatalf("grant payload %q of %+v read back as %+v: a field is lost", b, gd, got)
		}
	}
}
