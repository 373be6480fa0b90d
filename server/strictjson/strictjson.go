// Package strictjson decodes a JSON request body the one way every
// reader of it agrees on. encoding/json takes the last of two members
// with the same name and matches names without regard to case, so
// {"user_id":"a","USER_ID":"b"} means "b" to stepup while a WAF or a log
// pipeline in front of it may read "a". Decode refuses such bodies
// instead of guessing, so the body a filter judged is the body stepup
// acts on.
//
// The rules, on top of encoding/json's own:
//   - a name appears at most once in an object, at any depth;
//   - a member of a struct must be named exactly as its field's JSON
//     name (case included); unknown members are refused;
//   - the body is one JSON value, with nothing but white space after it.
//
// Structs are walked by their exported fields' json tags the way
// encoding/json names them, embedded structs included; a type that
// decodes itself (json.Unmarshaler, json.RawMessage) or an interface is
// checked for duplicate names only.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// MaxDepth bounds how deeply objects and arrays may nest: a request body
// of stepup's APIs is flat, and the walk is recursive.
const MaxDepth = 32

// Decode reads all of r and decodes it into v (a non-nil pointer) under
// the package's rules. The error says what was refused, and where.
func Decode(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return Unmarshal(data, v)
}

// Unmarshal is Decode for a body already read.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Unmarshal needs a non-nil pointer")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, rv.Type().Elem(), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	// The walk has vetted names and shape; encoding/json now does the
	// typing (and refuses a string where a number belongs, and so on).
	// Names are exact by now, so its case folding never applies.
	strict := json.NewDecoder(bytes.NewReader(data))
	strict.DisallowUnknownFields()
	return strict.Decode(v)
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// opaque reports whether t decodes itself or takes any JSON, so that its
// member names cannot be known: only duplicates are looked for.
func opaque(t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true
	}
	return t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// walk reads one JSON value from dec, checking it against t (nil: any
// shape, names unchecked). path names the value in errors.
func walk(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && opaque(t) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON%s: %w", at(path), err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar: encoding/json checks its type
	}
	if depth >= MaxDepth {
		return fmt.Errorf("JSON nested deeper than %d levels%s", MaxDepth, at(path))
	}
	switch d {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = fieldsOf(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("malformed JSON%s: %w", at(path), err)
			}
			name := kt.(string)
			member := path + "." + name
			if seen[name] {
				return fmt.Errorf("duplicate member %q", strings.TrimPrefix(member, "."))
			}
			seen[name] = true
			child := elem
			if fields != nil {
				ft, known := fields[name]
				if !known {
					return fmt.Errorf("unknown member %q (names are case-sensitive)", strings.TrimPrefix(member, "."))
				}
				child = ft
			}
			if err := walk(dec, child, member, depth+1); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	// The closing delimiter: the decoder has checked that it matches.
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("malformed JSON%s: %w", at(path), err)
	}
	return nil
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " at " + strings.TrimPrefix(path, ".")
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf maps the exact JSON names of struct t's fields to their
// types, as encoding/json names them: the json tag's name, else the Go
// name; "-" skips a field; an untagged embedded struct lends its fields.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	addFields(t, out, map[reflect.Type]bool{})
	fieldCache.Store(t, out)
	return out
}

func addFields(t reflect.Type, out map[string]reflect.Type, visiting map[reflect.Type]bool) {
	if visiting[t] {
		return
	}
	visiting[t] = true
	// A struct's own fields first, then the embedded ones: the shallower
	// name wins, as in encoding/json.
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := out[name]; !taken {
			out[name] = f.Type
		}
	}
	for _, ft := range embedded {
		addFields(ft, out, visiting)
	}
}
