package scim

import (
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	q, err := ParseFilter(`UserName Eq "a\"b" AND emails.value eq "X@y" and active eq False and externalId eq "e"`)
	if err != nil || q.Username == nil || *q.Username != `a"b` || q.Email == nil || *q.Email != "X@y" ||
		q.Active == nil || *q.Active || q.ExternalID == nil || *q.ExternalID != "e" {
		t.Fatalf("ParseFilter = %+v, %v", q, err)
	}
	if q, err := ParseFilter(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "u"`); err != nil || *q.Username != "u" {
		t.Fatalf("a URN-qualified attribute: %+v, %v", q, err)
	}
	for _, f := range []string{`userName`, `userName eq`, `userName ne "a"`, `userName eq "a" and userName eq "b"`, `active eq true or active eq false`,
		`not (active eq true)`, `userName eq "a" "b"`, `"userName" eq "a"`, `emails eq "a"`, strings.Repeat(`a`, 2000)} {
		if _, err := ParseFilter(f); err == nil {
			t.Errorf("ParseFilter(%q) accepted", f)
		}
	}
}

// FuzzParseFilter: no input panics, and whatever parses parses again the
// same from its own values.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `active eq true and emails.value eq "x@y"`, `externalId eq "\u00e9"`, `(`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseFilter(s)
		if err != nil || q.Username == nil {
			return
		}
		if _, err := ParseFilter(`userName eq "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(*q.Username) + `"`); err != nil && !strings.ContainsAny(*q.Username, "\x00\n\r\t\x7f") {
			t.Fatalf("%q parsed to username %q, which does not parse back: %v", s, *q.Username, err)
		}
	})
}
