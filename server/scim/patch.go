package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/stepup-dev/stepup/account"
)

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// patch is PATCH /scim/v2/Users/{id} (RFC 7644 §3.5.2): the operations
// are applied in order to the user's writable attributes, then the
// result replaces the user. op is read ignoring case ("Replace", as
// Entra ID sends) and a boolean may come as the string "True" or "False".
func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	var req patchRequest
	if err := json.Unmarshal(b, &req); err != nil {
		fail(w, http.StatusBadRequest, "invalidSyntax", "not a PatchOp: "+err.Error())
		return
	}
	if len(req.Operations) == 0 || len(req.Operations) > maxPatchOps {
		fail(w, http.StatusBadRequest, "invalidValue", fmt.Sprintf("a PatchOp needs 1 to %d Operations", maxPatchOps))
		return
	}
	h.modify(w, r, func(rec *account.Record) bool {
		m := h.userJSON(rec)
		for _, o := range req.Operations {
			if err := applyOp(m, o); err != nil {
				fail(w, http.StatusBadRequest, scimTypeOf(err), err.Error())
				return false
			}
		}
		out, _ := json.Marshal(m)
		u, ok := parseUser(w, out)
		return ok && h.apply(w, r, u, rec, true)
	})
}

type pathError struct{ msg string }

func (e pathError) Error() string { return e.msg }

// boolAttrs are the boolean attributes, whose value may come as a string.
var boolAttrs = map[string]bool{"active": true, "emailmfa": true, "primary": true}

// normalise turns "True"/"False" for a boolean attribute into a bool, in
// v and in the objects it holds.
func normalise(name string, v any) any {
	switch x := v.(type) {
	case string:
		if boolAttrs[strings.ToLower(name)] {
			switch strings.ToLower(x) {
			case "true":
				return true
			case "false":
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(k, e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(name, e)
		}
	}
	return v
}

// key finds the attribute name in m ignoring case (attribute names are
// case-insensitive, RFC 7643 §2.1), or returns name.
func key(m map[string]any, name string) string {
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

func applyOp(m map[string]any, o patchOp) error {
	kind := strings.ToLower(o.Op)
	if kind != "add" && kind != "replace" && kind != "remove" {
		return fmt.Errorf("op %q: add, replace or remove", o.Op)
	}
	var v any
	if kind != "remove" || len(o.Value) > 0 {
		if err := json.Unmarshal(o.Value, &v); err != nil {
			return fmt.Errorf("op %s: value: %v", o.Op, err)
		}
	}
	path := strings.TrimSpace(o.Path)
	if path == "" {
		if kind == "remove" {
			return pathError{"remove needs a path (noTarget)"}
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("op %s without a path needs an object value", o.Op)
		}
		for k, e := range obj {
			if err := set(m, k, normalise(lastName(k), e), kind); err != nil {
				return err
			}
		}
		return nil
	}
	if kind == "remove" {
		return remove(m, path)
	}
	return set(m, path, normalise(lastName(path), v), kind)
}

// lastName is the attribute a path's value is for (value in
// emails[type eq "work"].value), to read "True" as a boolean.
func lastName(path string) string {
	vp, err := parsePath(path)
	switch {
	case err != nil:
		return ""
	case vp.sub != "":
		return vp.sub
	}
	return vp.attr
}

// noTargetError is a replace whose value filter selects nothing and
// cannot describe a new value (RFC 7644 §3.5.2.3): 400 noTarget.
type noTargetError struct{ msg string }

func (e noTargetError) Error() string { return e.msg }

// scimTypeOf is the scimType of an operation's error.
func scimTypeOf(err error) string {
	var (
		pe pathError
		fe filterError
		ne noTargetError
	)
	switch {
	case errors.As(err, &pe):
		return "invalidPath"
	case errors.As(err, &fe):
		return "invalidFilter"
	case errors.As(err, &ne):
		return "noTarget"
	}
	return "invalidValue"
}

// multiValued are the User's multi-valued attributes (RFC 7643 §4.1.2):
// a sub-attribute path without a filter (emails.value) means every value.
var multiValued = map[string]bool{"emails": true, "phonenumbers": true, "ims": true, "photos": true, "addresses": true,
	"groups": true, "entitlements": true, "roles": true, "x509certificates": true}

// values is the list at m[k] and whether the path may treat it as one:
// absent, or a list.
func values(m map[string]any, k string) ([]any, bool) {
	switch x := m[k].(type) {
	case nil:
		return nil, true
	case []any:
		return x, true
	}
	return nil, false
}

// selected is the values of list that f selects (every value without f).
func selected(list []any, f valFilter) []map[string]any {
	var out []map[string]any
	for _, e := range list {
		if o, ok := e.(map[string]any); ok && (f == nil || f.match(o)) {
			out = append(out, o)
		}
	}
	return out
}

func set(m map[string]any, path string, v any, kind string) error {
	vp, err := parsePath(path)
	if err != nil {
		return err
	}
	k := key(m, vp.attr)
	if vp.filter != nil || (vp.sub != "" && multiValued[strings.ToLower(vp.attr)]) {
		list, ok := values(m, k)
		if !ok {
			return pathError{fmt.Sprintf("path %q: %s is not multi-valued", path, vp.attr)}
		}
		els := selected(list, vp.filter)
		if len(els) == 0 {
			// Nothing selected: a filter of eq joined by and (Entra's
			// emails[type eq "work"].value) describes the value to add.
			el := map[string]any{}
			if vp.filter != nil && !seed(vp.filter, el) {
				return noTargetError{fmt.Sprintf("path %q selects no value", path)}
			}
			list = append(list, el)
			els = []map[string]any{el}
		}
		for _, el := range els {
			if vp.sub != "" {
				el[key(el, vp.sub)] = v
				continue
			}
			o, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("path %q needs an object value", path)
			}
			for kk, e := range o {
				el[key(el, kk)] = e
			}
		}
		m[k] = onePrimary(list, els)
		return nil
	}
	switch {
	case vp.sub != "":
		o, _ := m[k].(map[string]any)
		if o == nil {
			o = map[string]any{}
		}
		o[key(o, vp.sub)] = v
		m[k] = o
	default:
		if list, ok := v.([]any); ok && kind == "add" {
			if old, ok := m[k].([]any); ok {
				v = append(old, list...)
			}
		}
		if obj, ok := v.(map[string]any); ok {
			if old, ok := m[k].(map[string]any); ok {
				for kk, e := range obj {
					old[key(old, kk)] = e
				}
				v = old
			}
		}
		m[k] = v
	}
	return nil
}

// onePrimary keeps at most one primary value (RFC 7643 §2.4): one just
// written primary wins over the others.
func onePrimary(list []any, written []map[string]any) []any {
	for _, el := range written {
		if el[key(el, "primary")] != true {
			continue
		}
		for _, e := range list {
			if o, ok := e.(map[string]any); ok {
				if k := key(o, "primary"); o[k] == true {
					o[k] = false
				}
			}
		}
		el[key(el, "primary")] = true
		break
	}
	return list
}

func remove(m map[string]any, path string) error {
	vp, err := parsePath(path)
	if err != nil {
		return err
	}
	k := key(m, vp.attr)
	if vp.filter != nil || (vp.sub != "" && multiValued[strings.ToLower(vp.attr)]) {
		list, ok := values(m, k)
		if !ok {
			return pathError{fmt.Sprintf("path %q: %s is not multi-valued", path, vp.attr)}
		}
		if _, present := m[k]; !present {
			return nil
		}
		kept := []any{}
		for _, e := range list {
			o, ok := e.(map[string]any)
			if ok && (vp.filter == nil || vp.filter.match(o)) {
				if vp.sub == "" {
					continue // the value goes
				}
				delete(o, key(o, vp.sub))
			}
			kept = append(kept, e)
		}
		m[k] = kept // an empty list clears (phoneNumbers: see apply)
		return nil
	}
	switch {
	case vp.sub != "":
		if o, ok := m[k].(map[string]any); ok {
			delete(o, key(o, vp.sub))
		}
	default:
		if _, ok := m[k].([]any); ok {
			m[k] = []any{} // an empty list clears (phoneNumbers: see apply)
		} else {
			delete(m, k)
		}
	}
	return nil
}
