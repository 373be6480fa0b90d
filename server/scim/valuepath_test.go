package scim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func user(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

// RFC 7644 §3.5.2: value filters on multi-valued attributes in the
// forms Microsoft Entra ID and Okta send, with and, or, not, pr and
// parentheses; the selected values are replaced or removed, nothing
// else.
func TestPatchValueFilters(t *testing.T) {
	const two = `{"userName":"u","emails":[{"value":"a@x","type":"work","primary":true},{"value":"b@x","type":"home"}],
		"phoneNumbers":[{"value":"+15555550100","type":"mobile"},{"value":"+15555550101","type":"work","primary":true}]}`
	for _, c := range []struct {
		name string
		op   patchOp
		want string // the emails and phoneNumbers after, as JSON
	}{
		{"§3.5.2.3 replace type and primary", patchOp{"replace", `emails[type eq "work" and primary eq true].value`, json.RawMessage(`"c@x"`)},
			`[{"primary":true,"type":"work","value":"c@x"},{"type":"home","value":"b@x"}]`},
		{"§3.5.2.3 Entra string boolean", patchOp{"Replace", `emails[type eq "work" and primary eq True].value`, json.RawMessage(`"c@x"`)},
			`[{"primary":true,"type":"work","value":"c@x"},{"type":"home","value":"b@x"}]`},
		{"§3.5.2.3 replace or", patchOp{"replace", `emails[type eq "work" or value eq "B@X"].display`, json.RawMessage(`"d"`)},
			`[{"display":"d","primary":true,"type":"work","value":"a@x"},{"display":"d","type":"home","value":"b@x"}]`},
		{"§3.5.2.2 remove by value", patchOp{"remove", `emails[value eq "B@x"]`, nil},
			`[{"primary":true,"type":"work","value":"a@x"}]`},
		{"§3.5.2.2 remove not", patchOp{"remove", `emails[not (type eq "work")]`, nil},
			`[{"primary":true,"type":"work","value":"a@x"}]`},
		{"§3.5.2.2 remove matching nothing", patchOp{"remove", `emails[value eq "nobody@x"]`, nil},
			`[{"primary":true,"type":"work","value":"a@x"},{"type":"home","value":"b@x"}]`},
		{"§3.5.2.2 remove sub-attribute", patchOp{"remove", `emails[type eq "home"].type`, nil},
			`[{"primary":true,"type":"work","value":"a@x"},{"value":"b@x"}]`},
		{"§3.5.2.1 add a value described by the filter", patchOp{"Add", `emails[type eq "other" and primary eq true].value`, json.RawMessage(`"o@x"`)},
			`[{"primary":false,"type":"work","value":"a@x"},{"type":"home","value":"b@x"},{"primary":true,"type":"other","value":"o@x"}]`},
		{"§3.4.2.2 parentheses and pr", patchOp{"replace", `emails[(type eq "home" or type eq "x") and value pr].value`, json.RawMessage(`"h@x"`)},
			`[{"primary":true,"type":"work","value":"a@x"},{"type":"home","value":"h@x"}]`},
		{"§3.4.2.2 sw ew co", patchOp{"replace", `emails[value sw "A" and value ew "@X" and value co "@"].type`, json.RawMessage(`"main"`)},
			`[{"primary":true,"type":"main","value":"a@x"},{"type":"home","value":"b@x"}]`},
		{"§3.4.2.2 primary eq false matches an absent primary", patchOp{"remove", `emails[primary eq false]`, nil},
			`[{"primary":true,"type":"work","value":"a@x"}]`},
		{"§3.4.2.2 ne", patchOp{"remove", `emails[type ne "work"]`, nil},
			`[{"primary":true,"type":"work","value":"a@x"}]`},
		{"a quoted ] inside the filter", patchOp{"replace", `emails[value eq "a]@x"].type`, json.RawMessage(`"t"`)},
			`[{"primary":true,"type":"work","value":"a@x"},{"type":"home","value":"b@x"},{"type":"t","value":"a]@x"}]`},
		{"every value without a filter", patchOp{"replace", `emails.type`, json.RawMessage(`"work"`)},
			`[{"primary":true,"type":"work","value":"a@x"},{"type":"work","value":"b@x"}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := user(t, two)
			if err := applyOp(m, c.op); err != nil {
				t.Fatalf("applyOp: %v", err)
			}
			if got := js(m["emails"]); got != c.want {
				t.Fatalf("emails\n got %s\nwant %s", got, c.want)
			}
		})
	}

	m := user(t, two)
	if err := applyOp(m, patchOp{"replace", `phoneNumbers[primary eq true].value`, json.RawMessage(`"+15555550199"`)}); err != nil {
		t.Fatal(err)
	}
	if got := js(m["phoneNumbers"]); got != `[{"type":"mobile","value":"+15555550100"},{"primary":true,"type":"work","value":"+15555550199"}]` {
		t.Fatalf("phoneNumbers[primary eq true]: %s", got)
	}
	m = user(t, `{"userName":"u"}`)
	if err := applyOp(m, patchOp{"add", "", json.RawMessage(`{"urn:stepup:params:scim:schemas:extension:2.0:User":{"emailMfa":"True"}}`)}); err != nil {
		t.Fatal(err)
	}
	if got := js(m); got != `{"urn:stepup:params:scim:schemas:extension:2.0:User":{"emailMfa":true},"userName":"u"}` {
		t.Fatalf("the extension as a key of a PATCH without path: %s", got)
	}
}

// RFC 7644 §3.12: a path that is not one is invalidPath, a filter stepup
// does not read invalidFilter, a replace that selects nothing and cannot
// describe a new value noTarget.
func TestPatchPathErrors(t *testing.T) {
	for _, c := range []struct{ path, scimType string }{
		{`emails[type eq "work"`, "invalidPath"},
		{`emails[type eq "work"]value`, "invalidPath"},
		{`emails[type eq "work"].value.x`, "invalidPath"},
		{`emails[type eq "work"][primary eq true]`, "invalidPath"},
		{`9emails`, "invalidPath"},
		{`userName[value eq "x"]`, "invalidPath"},
		{`emails[type gt "work"].value`, "invalidFilter"},
		{`emails[type eq work].value`, "invalidFilter"},
		{`emails[type eq "work" and].value`, "invalidFilter"},
		{`emails[(type eq "work"].value`, "invalidFilter"},
		{`emails[type eq "work")].value`, "invalidFilter"},
		{`emails[not type eq "work"].value`, "invalidFilter"},
		{`emails[].value`, "invalidFilter"},
		{`emails[primary co true].value`, "invalidFilter"},
		{`emails[` + strings.Repeat("(", 20) + `type eq "x"` + strings.Repeat(")", 20) + `].value`, "invalidFilter"},
		{`emails[type ne "work"].value`, "noTarget"},
		{`emails[type eq "a" or type eq "b"].value`, "noTarget"},
	} {
		m := user(t, `{"userName":"u","emails":[{"value":"a@x","type":"work"}]}`)
		err := applyOp(m, patchOp{"replace", c.path, json.RawMessage(`"x@y"`)})
		if err == nil || scimTypeOf(err) != c.scimType {
			t.Errorf("replace %s: %v (%s), want %s", c.path, err, scimTypeOf(err), c.scimType)
		}
	}
	var fe filterError
	if _, err := parsePath(`emails[value eq "\x"]`); !errors.As(err, &fe) {
		t.Errorf("a bad escape: %v", err)
	}
}

// FuzzParsePath: no path panics or takes long, and applying whatever
// parses to a user never panics.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`emails[type eq "work" and primary eq true].value`, `phoneNumbers[primary eq true].value`,
		`emails[value eq "x@y"]`, `emails[not (type eq "a") or value pr]`, `name.formatted`,
		`urn:stepup:params:scim:schemas:extension:2.0:User:emailMfa`, `emails[value eq "a]b"]`, `[`, `a[(`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parsePath(s); err != nil {
			return
		}
		for _, op := range []string{"add", "replace", "remove"} {
			m := user(t, `{"userName":"u","emails":[{"value":"a@x","type":"work","primary":true}],"name":{"formatted":"n"}}`)
			_ = applyOp(m, patchOp{op, s, json.RawMessage(`"v"`)})
		}
	})
}
