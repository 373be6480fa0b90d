package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/scimuser"
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
				scimType := "invalidValue"
				var pe pathError
				if errors.As(err, &pe) {
					scimType = "invalidPath"
				}
				fail(w, http.StatusBadRequest, scimType, err.Error())
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

func lastName(path string) string {
	if i := strings.LastIndexAny(path, ".:"); i >= 0 {
		return path[i+1:]
	}
	return path
}

// splitPath parses attr, attr.sub, attr[type eq "x"].sub and the
// extension's urn:…:User:attr.
func splitPath(path string) (attr, filterType, sub string, err error) {
	if strings.HasPrefix(strings.ToLower(path), strings.ToLower(scimuser.ExtensionSchema)+":") {
		return scimuser.ExtensionSchema, "", path[len(scimuser.ExtensionSchema)+1:], nil
	}
	path = strings.TrimPrefix(path, SchemaUser+":")
	if i := strings.IndexByte(path, '['); i >= 0 {
		j := strings.IndexByte(path, ']')
		if j < i {
			return "", "", "", pathError{fmt.Sprintf("path %q: unterminated [", path)}
		}
		f := strings.Fields(path[i+1 : j])
		if len(f) != 3 || !strings.EqualFold(f[0], "type") || !strings.EqualFold(f[1], "eq") {
			return "", "", "", pathError{fmt.Sprintf("path %q: only [type eq \"…\"] is supported", path)}
		}
		var t string
		if err := json.Unmarshal([]byte(f[2]), &t); err != nil {
			return "", "", "", pathError{fmt.Sprintf("path %q: a bad string", path)}
		}
		return path[:i], t, strings.TrimPrefix(path[j+1:], "."), nil
	}
	attr, sub, _ = strings.Cut(path, ".")
	return attr, "", sub, nil
}

func set(m map[string]any, path string, v any, kind string) error {
	attr, typ, sub, err := splitPath(path)
	if err != nil {
		return err
	}
	k := key(m, attr)
	switch {
	case typ != "":
		list, _ := m[k].([]any)
		var el map[string]any
		for _, e := range list {
			if o, ok := e.(map[string]any); ok && strings.EqualFold(fmt.Sprint(o["type"]), typ) {
				el = o
			}
		}
		if el == nil {
			el = map[string]any{"type": typ}
			list = append(list, el)
		}
		if sub == "" {
			o, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("path %q needs an object value", path)
			}
			for kk, e := range o {
				el[kk] = e
			}
		} else {
			el[key(el, sub)] = v
		}
		m[k] = list
	case sub != "":
		o, _ := m[k].(map[string]any)
		if o == nil {
			o = map[string]any{}
		}
		o[key(o, sub)] = v
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

func remove(m map[string]any, path string) error {
	attr, typ, sub, err := splitPath(path)
	if err != nil {
		return err
	}
	k := key(m, attr)
	switch {
	case typ != "":
		list, _ := m[k].([]any)
		kept := list[:0]
		for _, e := range list {
			o, ok := e.(map[string]any)
			if ok && strings.EqualFold(fmt.Sprint(o["type"]), typ) {
				if sub == "" {
					continue
				}
				delete(o, key(o, sub))
			}
			kept = append(kept, e)
		}
		m[k] = kept
	case sub != "":
		if o, ok := m[k].(map[string]any); ok {
			delete(o, key(o, sub))
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
