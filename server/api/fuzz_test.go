package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzRequestBodies feeds the APIs' JSON parsing untrusted bodies: it
// must never panic, must refuse unknown fields and trailing data (and,
// through strictjson, duplicate and case-folded names: FuzzUnmarshal
// there), and whatever it accepts must survive encoding and decoding
// unchanged.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","action_type":"withdraw","code":"123456","grant_type":"ONE_TIME_USE","valid_for_seconds":300}`,
		`{"user_id":"u","action_type":"withdraw","grant":"g"}`,
		`{"username":"alice","bind_ip":true}`,
		`{"factor":"totp","code":"123456"}`,
		`{"code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","code_challenge_method":"S256","redirect_uri":"https://x/cb","max_age":300}`,
		`{"user_id":"u"} {"x":1}`,
		`{"unknown":1}`,
		`{"user_id":"a","user_id":"b"}`,
		`{"USER_ID":"u"}`,
	} {
		f.Add([]byte(seed))
	}
	targets := []func() any{
		func() any { return &verifyTOTPRequest{} },
		func() any { return &verifyGrantRequest{} },
		func() any { return &startRequest{} },
		func() any { return &verifyRequest{} },
		func() any { return &completeRequest{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range targets {
			v := mk()
			if err := decodeJSON(bytes.NewReader(body), v); err != nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T accepted %q but does not encode: %v", v, body, err)
			}
			again := mk()
			if err := decodeJSON(bytes.NewReader(b), again); err != nil || !reflect.DeepEqual(v, again) {
				t.Fatalf("%T: %q → %s → %+v (%v)", v, body, b, again, err)
			}
		}
	})
}

func TestDecodeJSONRefuses(t *testing.T) {
	for _, body := range []string{`{"unknown":1}`, `{"user_id":"u"} {"x":1}`, `{"user_id":"u"}]`, `[1]`, ``, `{"valid_for_seconds":"300"}`,
		`{"user_id":"a","user_id":"b"}`, `{"USER_ID":"u"}`, `{"user_id":"a","User_ID":"b"}`} {
		var v verifyTOTPRequest
		if err := decodeJSON(strings.NewReader(body), &v); err == nil {
			t.Errorf("%q was accepted as %+v", body, v)
		}
	}
}
