package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stepup-dev/stepup/account"
)

// maxFilterBytes bounds a filter.
const maxFilterBytes = 1024

// ParseFilter reads the filters stepup supports (PRODUCT.md §10):
// `attr eq value` for userName, externalId, emails.value (strings) and
// active (true or false), joined by `and`. Anything else is an error
// (400 invalidFilter), never a filter silently ignored.
func ParseFilter(f string) (account.Query, error) {
	var q account.Query
	if strings.TrimSpace(f) == "" {
		return q, nil
	}
	if len(f) > maxFilterBytes {
		return q, fmt.Errorf("the filter is longer than %d bytes", maxFilterBytes)
	}
	toks, err := tokens(f, false)
	if err != nil {
		return q, err
	}
	for i := 0; ; {
		if len(toks)-i < 3 {
			return q, errors.New(`a filter is attr eq value, joined by "and"`)
		}
		attr, opr, val := toks[i], toks[i+1], toks[i+2]
		if attr.quoted || opr.quoted || !strings.EqualFold(opr.s, "eq") {
			return q, fmt.Errorf("unsupported comparison %q: only eq is supported", opr.s)
		}
		name := strings.ToLower(strings.TrimPrefix(strings.ToLower(attr.s), strings.ToLower(SchemaUser)+":"))
		str := func(dst **string) error {
			if !val.quoted {
				return fmt.Errorf("%s takes a quoted string", attr.s)
			}
			if *dst != nil {
				return fmt.Errorf("%s is given twice", attr.s)
			}
			if !account.Storable(val.s) {
				return fmt.Errorf("%s: the value holds U+0000 or invalid UTF-8, which no attribute can", attr.s)
			}
			v := val.s
			*dst = &v
			return nil
		}
		switch name {
		case "username":
			err = str(&q.Username)
		case "externalid":
			err = str(&q.ExternalID)
		case "emails.value":
			err = str(&q.Email)
		case "active":
			b := strings.ToLower(val.s)
			if val.quoted || (b != "true" && b != "false") || q.Active != nil {
				err = errors.New("active takes true or false, once")
			}
			v := b == "true"
			q.Active = &v
		default:
			err = fmt.Errorf("unsupported attribute %q (userName, externalId, emails.value, active)", attr.s)
		}
		if err != nil {
			return q, err
		}
		i += 3
		if i == len(toks) {
			return q, nil
		}
		if toks[i].quoted || !strings.EqualFold(toks[i].s, "and") {
			return q, fmt.Errorf("unsupported operator %q: only and is supported", toks[i].s)
		}
		i++
	}
}

type token struct {
	s      string
	quoted bool
}

// tokens splits a filter into names, operators and quoted strings;
// parens allows ( and ) as tokens of their own (a PATCH value filter).
func tokens(f string, parens bool) ([]token, error) {
	var out []token
	for i := 0; i < len(f); {
		switch c := f[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			j := i + 1
			for ; j < len(f) && f[j] != '"'; j++ {
				if f[j] == '\\' {
					j++
				}
			}
			if j >= len(f) {
				return nil, errors.New("an unterminated string")
			}
			var s string
			if err := json.Unmarshal([]byte(f[i:j+1]), &s); err != nil {
				return nil, fmt.Errorf("a bad string %s", f[i:j+1])
			}
			out = append(out, token{s: s, quoted: true})
			i = j + 1
		case parens && (c == '(' || c == ')'):
			out = append(out, token{s: string(c)})
			i++
		case c == '(' || c == ')' || c == '[' || c == ']':
			return nil, fmt.Errorf("unsupported %q: only attr eq value joined by and", c)
		default:
			j := i
			for j < len(f) && f[j] != ' ' && f[j] != '\t' && f[j] != '"' && f[j] != '(' && f[j] != ')' && f[j] != '[' && f[j] != ']' {
				j++
			}
			out = append(out, token{s: f[i:j]})
			i = j
		}
	}
	return out, nil
}
