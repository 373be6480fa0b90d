package scim

import (
	"errors"
	"fmt"
	"strings"

	"github.com/stepup-dev/stepup/account/scimuser"
)

// A PATCH path (RFC 7644 §3.5.2, the PATH rule of its Figure 1):
//
//	attr                      userName, active
//	attr.sub                  name.formatted
//	attr[valFilter]           emails[value eq "a@b"]
//	attr[valFilter].sub       emails[type eq "work" and primary eq true].value
//	urn:…:User:attr           the core or stepup's extension schema
//
// valFilter is the filter grammar of RFC 7644 §3.4.2.2 on the values of a
// multi-valued attribute: sub op value with eq ne co sw ew (strings,
// ignoring case, as emails and phoneNumbers are caseExact false), eq ne
// on true/false, sub pr, and/or/not with parentheses (and binds tighter
// than or). This is what Microsoft Entra ID and Okta send; anything else
// is 400 invalidFilter, a path that is not one 400 invalidPath.

// maxFilterDepth bounds the nesting of parentheses and not.
const maxFilterDepth = 8

// valuePath is a parsed PATCH path.
type valuePath struct {
	attr   string
	filter valFilter // nil without [ ]
	sub    string
}

// valFilter decides whether one value (an object) of a multi-valued
// attribute is selected.
type valFilter interface{ match(el map[string]any) bool }

type cmpFilter struct {
	attr, op string
	val      any // string or bool; nil for pr
}

type andFilter struct{ l, r valFilter }
type orFilter struct{ l, r valFilter }
type notFilter struct{ f valFilter }

func (f andFilter) match(el map[string]any) bool { return f.l.match(el) && f.r.match(el) }
func (f orFilter) match(el map[string]any) bool  { return f.l.match(el) || f.r.match(el) }
func (f notFilter) match(el map[string]any) bool { return !f.f.match(el) }

func (f cmpFilter) match(el map[string]any) bool {
	v, ok := el[key(el, f.attr)]
	if f.op == "pr" {
		return ok && v != nil && v != ""
	}
	switch want := f.val.(type) {
	case bool:
		got, isBool := v.(bool)
		if !ok || v == nil {
			got, isBool = false, true // stepup leaves primary false out
		}
		if !isBool {
			return f.op == "ne"
		}
		return (got == want) == (f.op == "eq")
	case string:
		got, isStr := v.(string)
		if !isStr {
			return f.op == "ne"
		}
		g, w := strings.ToLower(got), strings.ToLower(want)
		switch f.op {
		case "eq":
			return g == w
		case "ne":
			return g != w
		case "co":
			return strings.Contains(g, w)
		case "sw":
			return strings.HasPrefix(g, w)
		case "ew":
			return strings.HasSuffix(g, w)
		}
	}
	return false
}

// seed is what a new value must hold to match f, when f is only eq
// comparisons joined by and (emails[type eq "work"] adds a work email);
// ok is false for any other filter, which can only select.
func seed(f valFilter, into map[string]any) bool {
	switch x := f.(type) {
	case cmpFilter:
		if x.op != "eq" {
			return false
		}
		into[x.attr] = x.val
		return true
	case andFilter:
		return seed(x.l, into) && seed(x.r, into)
	}
	return false
}

// filterError is a valFilter stepup does not read: 400 invalidFilter.
type filterError struct{ msg string }

func (e filterError) Error() string { return e.msg }

// parsePath reads a PATCH path.
func parsePath(path string) (valuePath, error) {
	bad := func(why string) (valuePath, error) {
		return valuePath{}, pathError{fmt.Sprintf("path %q: %s", path, why)}
	}
	if len(path) > maxFilterBytes {
		return bad(fmt.Sprintf("longer than %d bytes", maxFilterBytes))
	}
	if strings.EqualFold(path, scimuser.ExtensionSchema) { // a PATCH without path: {"urn:…:User": {…}}
		return valuePath{attr: scimuser.ExtensionSchema}, nil
	}
	if p := strings.ToLower(scimuser.ExtensionSchema) + ":"; strings.HasPrefix(strings.ToLower(path), p) {
		sub := path[len(p):]
		if !attrName(sub) {
			return bad("not an attribute of " + scimuser.ExtensionSchema)
		}
		return valuePath{attr: scimuser.ExtensionSchema, sub: sub}, nil
	}
	rest := path
	if p := strings.ToLower(SchemaUser) + ":"; strings.HasPrefix(strings.ToLower(rest), p) {
		rest = rest[len(p):]
	}
	var vp valuePath
	i := strings.IndexAny(rest, "[.")
	if i < 0 {
		i = len(rest)
	}
	vp.attr, rest = rest[:i], rest[i:]
	if !attrName(vp.attr) {
		return bad("not an attribute name")
	}
	if strings.HasPrefix(rest, "[") {
		end := closingBracket(rest)
		if end < 0 {
			return bad("no closing ]")
		}
		f, err := parseValFilter(rest[1:end])
		if err != nil {
			return valuePath{}, filterError{fmt.Sprintf("path %q: %v", path, err)}
		}
		vp.filter, rest = f, rest[end+1:]
	}
	if rest != "" {
		if rest[0] != '.' || !attrName(rest[1:]) {
			return bad("only .subAttribute may follow an attribute or a [filter]")
		}
		vp.sub = rest[1:]
	}
	return vp, nil
}

// attrName is RFC 7643's ATTRNAME: ALPHA *(ALPHA / DIGIT / "-" / "_").
func attrName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '-' || c == '_')) {
			return false
		}
	}
	return true
}

// closingBracket is the index of the ] that closes s[0] == '[', outside
// quoted strings, or -1.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == '[':
			return -1 // no nested filters (RFC 7644 allows none in a valuePath)
		case !quoted && s[i] == ']':
			return i
		}
	}
	return -1
}

// parseValFilter reads valFilter (RFC 7644 §3.4.2.2) on sub-attributes.
func parseValFilter(s string) (valFilter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("an empty filter")
	}
	toks, err := tokens(s, true)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	f, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i].s)
	}
	return f, nil
}

type filterParser struct {
	toks []token
	i    int
}

func (p *filterParser) word(w string) bool {
	if p.i < len(p.toks) && !p.toks[p.i].quoted && strings.EqualFold(p.toks[p.i].s, w) {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) or(depth int) (valFilter, error) {
	l, err := p.and(depth)
	for err == nil && p.word("or") {
		var r valFilter
		if r, err = p.and(depth); err == nil {
			l = orFilter{l, r}
		}
	}
	return l, err
}

func (p *filterParser) and(depth int) (valFilter, error) {
	l, err := p.unary(depth)
	for err == nil && p.word("and") {
		var r valFilter
		if r, err = p.unary(depth); err == nil {
			l = andFilter{l, r}
		}
	}
	return l, err
}

func (p *filterParser) unary(depth int) (valFilter, error) {
	if depth > maxFilterDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxFilterDepth)
	}
	if p.word("not") {
		if !p.word("(") {
			return nil, errors.New("not takes a parenthesised filter")
		}
		f, err := p.group(depth)
		return notFilter{f}, err
	}
	if p.word("(") {
		return p.group(depth)
	}
	return p.comparison()
}

func (p *filterParser) group(depth int) (valFilter, error) {
	f, err := p.or(depth + 1)
	if err != nil {
		return nil, err
	}
	if !p.word(")") {
		return nil, errors.New("a ( without its )")
	}
	return f, nil
}

func (p *filterParser) comparison() (valFilter, error) {
	if p.i+1 >= len(p.toks) {
		return nil, errors.New("a comparison is subAttribute op value")
	}
	attr, opr := p.toks[p.i], p.toks[p.i+1]
	if attr.quoted || !attrName(attr.s) {
		return nil, fmt.Errorf("%q is not a sub-attribute name", attr.s)
	}
	op := strings.ToLower(opr.s)
	if opr.quoted {
		op = ""
	}
	p.i += 2
	switch op {
	case "pr":
		return cmpFilter{attr: attr.s, op: op}, nil
	case "eq", "ne", "co", "sw", "ew":
	default:
		return nil, fmt.Errorf("unsupported operator %q (eq ne co sw ew pr)", opr.s)
	}
	if p.i >= len(p.toks) {
		return nil, fmt.Errorf("%s %s needs a value", attr.s, op)
	}
	v := p.toks[p.i]
	p.i++
	if v.quoted {
		return cmpFilter{attr: attr.s, op: op, val: v.s}, nil
	}
	if b := strings.ToLower(v.s); (b == "true" || b == "false") && (op == "eq" || op == "ne") {
		return cmpFilter{attr: attr.s, op: op, val: b == "true"}, nil
	}
	return nil, fmt.Errorf("%s %s %s: the value is a quoted string, or true/false with eq or ne", attr.s, op, v.s)
}
