package strictjson

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
)

type inner struct {
	Name string `json:"name"`
	N    int    `json:"n,omitempty"`
}

type Base struct {
	Kind string `json:"kind"`
}

type target struct {
	Base
	UserID  string          `json:"user_id"`
	MaxAge  *int64          `json:"max_age"`
	Tags    []string        `json:"tags"`
	Inner   inner           `json:"inner"`
	Items   []inner         `json:"items"`
	Extra   map[string]any  `json:"extra"`
	Raw     json.RawMessage `json:"raw"`
	Skipped string          `json:"-"`
	Plain   string
}

func TestUnmarshal(t *testing.T) {
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"exact names", `{"user_id":"u","max_age":3,"tags":["a"],"inner":{"name":"x"},"items":[{"name":"y","n":1}],"extra":{"a":{"b":1}},"raw":{"k":1},"kind":"k","Plain":"p"}`, true},
		{"null members", `{"user_id":null,"inner":null,"extra":null}`, true},
		{"empty object", `{}`, true},
		{"white space after", "{}\n\t ", true},
		{"RFC 8259 §4 duplicate name", `{"user_id":"a","user_id":"b"}`, false},
		{"duplicate in a nested struct", `{"inner":{"name":"a","name":"b"}}`, false},
		{"duplicate in an array element", `{"items":[{"name":"a"},{"n":1,"n":2}]}`, false},
		{"duplicate in a map", `{"extra":{"a":1,"a":2}}`, false},
		{"duplicate deep in an any", `{"extra":{"a":[{"b":1,"b":2}]}}`, false},
		{"duplicate in a raw message", `{"raw":{"k":1,"k":2}}`, false},
		{"case-folded name", `{"USER_ID":"a"}`, false},
		{"case-folded nested name", `{"inner":{"Name":"a"}}`, false},
		{"case-folded untagged name", `{"plain":"p"}`, false},
		{"case-folded embedded name", `{"Kind":"k"}`, false},
		{"name and case-folded name", `{"user_id":"a","User_Id":"b"}`, false},
		{"json:\"-\" field", `{"Skipped":"x"}`, false},
		{"unknown member", `{"admin":true}`, false},
		{"trailing value", `{} {}`, false},
		{"trailing bracket", `{}]`, false},
		{"not JSON", `{"user_id":`, false},
		{"empty", ``, false},
		{"wrong type", `{"max_age":"3"}`, false},
		{"too deep", `{"extra":{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v target
			err := Unmarshal([]byte(c.body), &v)
			if (err == nil) != c.ok {
				t.Fatalf("%s: err %v, want ok=%v", c.body, err, c.ok)
			}
		})
	}
	var v target
	if err := Unmarshal([]byte(`{"user_id":"u","inner":{"name":"x"},"kind":"k"}`), &v); err != nil || v.UserID != "u" || v.Inner.Name != "x" || v.Kind != "k" {
		t.Fatalf("decoded %+v, %v", v, err)
	}
	if err := Unmarshal([]byte(`{}`), v); err == nil {
		t.Fatal("a non-pointer was accepted")
	}
}

// countMembers counts the members of every object in the JSON value dec
// is at, duplicates included.
func countMembers(t *testing.T, dec *json.Decoder) int {
	tok, err := dec.Token()
	if err != nil {
		t.Fatalf("accepted body does not tokenize: %v", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return 0
	}
	n := 0
	for dec.More() {
		if d == '{' {
			_, _ = dec.Token()
			n++
		}
		n += countMembers(t, dec)
	}
	_, _ = dec.Token()
	return n
}

// mapMembers counts the members of the objects of a decoded value, where
// a name given twice has collapsed into one.
func mapMembers(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			n += mapMembers(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += mapMembers(e)
		}
		return n
	}
	return 0
}

func namesIn(t *testing.T, v any, allowed ...string) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			t.Fatalf("accepted a member named %q", k)
		}
	}
}

// FuzzUnmarshal: whatever Unmarshal accepts has no name twice in any
// object (counted independently: members in the text = members after
// encoding/json has collapsed duplicates), uses only the exact names of
// the target's fields, and is one value.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u","max_age":3,"tags":["a"],"inner":{"name":"x"},"items":[{"name":"y","n":1}],"extra":{"a":{"b":1}},"raw":{"k":1},"kind":"k","Plain":"p"}`,
		`{"user_id":"a","user_id":"b"}`,
		`{"USER_ID":"a"}`,
		`{"extra":{"a":[{"b":1,"b":2}]}}`,
		`{"inner":{"Name":"a"}}`,
		`{} {}`,
		`{"items":[{"n":1,"n":2}]}`,
	} {
		f.Add([]byte(s))
	}
	top := []string{"kind", "user_id", "max_age", "tags", "inner", "items", "extra", "raw", "Plain"}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v target
		if Unmarshal(body, &v) != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		written := countMembers(t, dec)
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("accepted %q with data after the value", body)
		}
		var generic any
		if err := json.Unmarshal(body, &generic); err != nil {
			t.Fatalf("accepted %q that encoding/json refuses: %v", body, err)
		}
		if kept := mapMembers(generic); kept != written {
			t.Fatalf("accepted %q: %d members written, %d distinct", body, written, kept)
		}
		namesIn(t, generic, top...)
		m, _ := generic.(map[string]any)
		namesIn(t, m["inner"], "name", "n")
		items, _ := m["items"].([]any)
		for _, it := range items {
			namesIn(t, it, "name", "n")
		}
	})
}
