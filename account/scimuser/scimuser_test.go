package scimuser

import (
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/account"
)

func TestApply(t *testing.T) {
	tests := []struct {
		name, json string
		wantErr    string // "" for none
		check      func(r *account.Record) bool
	}{
		{"primary email wins", `{"userName":"a","emails":[{"value":"x@e.com"},{"value":"p@e.com","primary":true}]}`, "",
			func(r *account.Record) bool { return r.Email == "p@e.com" }},
		{"first email without a primary", `{"userName":"a","emails":[{"value":"x@e.com"},{"value":"y@e.com"}]}`, "",
			func(r *account.Record) bool { return r.Email == "x@e.com" }},
		{"mobile phone only", `{"userName":"a","phoneNumbers":[{"value":"+15555550100","type":"work"},{"value":"+15555550111","type":"mobile"}]}`, "",
			func(r *account.Record) bool { return r.Phone == "+15555550111" }},
		{"name.formatted before displayName", `{"userName":"a","name":{"formatted":"F"},"displayName":"D"}`, "",
			func(r *account.Record) bool { return r.Name == "F" }},
		{"absent attributes stay", `{"userName":"a"}`, "",
			func(r *account.Record) bool { return r.Name == "kept" && r.Phone == "+15555550199" && r.Active }},
		{"active false", `{"userName":"a","active":false}`, "", func(r *account.Record) bool { return !r.Active }},
		{"totp secret normalised", `{"userName":"a","urn:stepup:params:scim:schemas:extension:2.0:User":{"totpSecret":"jbsw y3dp ehpk 3pxp"}}`, "",
			func(r *account.Record) bool { return r.TOTPSecret == "JBSWY3DPEHPK3PXP" }},
		{"bad phone", `{"userName":"a","phoneNumbers":[{"value":"555-0100","type":"mobile"}]}`, "phoneNumbers", nil},
		{"bad email", `{"userName":"a","emails":[{"value":"nope"}]}`, "emails", nil},
		{"short totp", `{"userName":"a","urn:stepup:params:scim:schemas:extension:2.0:User":{"totpSecret":"JBSW"}}`, "totpSecret", nil},
		{"bad hash", `{"userName":"a","urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"md5:abc"}}`, "passwordHash", nil},
		{"password and hash", `{"userName":"a","password":"x","urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"$2y$05$eHD3WfV3Y35z6qtZRXYJh.g9Gk5zDLDDQRtQn8lQpVFswnQR0YxdG"}}`, "give one", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			r := &account.Record{Active: true}
			r.Name, r.Phone = "kept", "+15555550199"
			err = u.Apply(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Apply = %v, want an error about %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(r) {
				t.Fatalf("Apply = %v, record %+v", err, r)
			}
		})
	}
	if _, err := Parse([]byte(`{"displayName":"x"}`)); err == nil {
		t.Fatal("a User without userName parsed")
	}
}
