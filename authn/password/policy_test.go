package password

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyCheck(t *testing.T) {
	p := Policy{MinLength: 10}
	for _, tc := range []struct {
		name string
		pw   string
		ids  []string
		want error
	}{
		{"SP800-63B 5.1.1.2 long passphrase", "correct horse battery staple", nil, nil},
		{"SP800-63B 5.1.1.2 below the minimum", "abc123!x", nil, ErrTooShort},
		{"SP800-63B 5.1.1.2 length in code points, not bytes", "ééééééééé", nil, ErrTooShort},
		{"SP800-63B 5.1.1.2 ten code points of two bytes", "éééééééééé", nil, nil},
		{"max 256 bytes", strings.Repeat("x", MaxBytes+1), nil, ErrTooLong},
		{"exactly 256 bytes", strings.Repeat("xy", MaxBytes/2), nil, nil},
		{"SP800-63B 5.1.1.2 common password", "qwertyuiop", nil, ErrCommon},
		{"SP800-63B 5.1.1.2 common password ignoring case", "QwertyUIOP", nil, ErrCommon},
		{"SP800-63B 5.1.1.2 context: the username", "Alice-Example", []string{"alice-example", "a@x.org"}, ErrPersonal},
		{"SP800-63B 5.1.1.2 context: the email", "Carol@Example.com", []string{"carol", "carol@example.com"}, ErrPersonal},
		{"SP800-63B 5.1.1.2 context: the email's local part", "carol.longname", []string{"c", "carol.longname@example.com"}, ErrPersonal},
		{"no composition rules: all lowercase letters", "purple elephants dance", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.pw, tc.ids...)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Check(%q) = %v, want %v", tc.pw, err, tc.want)
			}
			if err != nil && p.Message(err) == "" {
				t.Fatal("no message for the user")
			}
		})
	}
}

func TestPolicyDefaultMinimum(t *testing.T) {
	if err := (Policy{}).Check("7chars!"); !errors.Is(err, ErrTooShort) {
		t.Fatalf("zero policy accepted 7 characters: %v", err)
	}
	if err := (Policy{}).Check("8 chars!"); err != nil {
		t.Fatalf("zero policy refused 8 characters: %v", err)
	}
}

func TestCommonList(t *testing.T) {
	for _, pw := range []string{"password", "12345678", "iloveyou", "sunshine1"} {
		if !IsCommon(pw) {
			t.Errorf("%q is not on the list", pw)
		}
	}
	if IsCommon("correct horse battery staple") {
		t.Error("a passphrase is on the list")
	}
	if len(common) < 15000 {
		t.Errorf("the list has %d entries, want the ~15.7k of common.txt", len(common))
	}
}
