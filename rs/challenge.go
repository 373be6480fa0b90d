package rs

import (
	"strconv"
	"strings"
)

// Error codes of a Bearer challenge.
const (
	// ErrInsufficientUserAuthentication is RFC 9470 §3: the token is valid
	// but its authentication is too weak or too old for the resource.
	ErrInsufficientUserAuthentication = "insufficient_user_authentication"
	// ErrInvalidToken is RFC 6750 §3.1: the token is missing claims,
	// expired, revoked, malformed or not for this resource server.
	ErrInvalidToken = "invalid_token"
	// ErrInsufficientScope is RFC 6750 §3.1: the token lacks a scope.
	ErrInsufficientScope = "insufficient_scope"
)

// Challenge is a Bearer WWW-Authenticate challenge (RFC 6750 §3, with the
// RFC 9470 §3 parameters acr_values and max_age).
type Challenge struct {
	Realm       string
	Error       string
	Description string
	// ACRValues are the acceptable acr values, in order of preference.
	ACRValues []string
	// MaxAge is the allowable elapsed time in seconds since the last
	// active authentication; it is sent only when HasMaxAge is set.
	MaxAge    int64
	HasMaxAge bool
	Scope     string
}

// String renders the challenge as a WWW-Authenticate header value:
//
//	Bearer error="insufficient_user_authentication", error_description="…", acr_values="…", max_age="300"
//
// Every parameter value is a quoted-string, as in RFC 9470's examples.
// Characters a quoted-string cannot carry (controls, anything outside
// ASCII) are dropped, tabs become spaces, and a parameter left empty is
// not sent, so the header is always well-formed whatever a caller passes.
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer")
	n := 0
	param := func(name, value string) {
		value = clean(value)
		if strings.TrimSpace(value) == "" {
			return
		}
		if n == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		n++
		b.WriteString(name)
		b.WriteString(`="`)
		quote(&b, value)
		b.WriteByte('"')
	}
	if c.Realm != "" {
		param("realm", c.Realm)
	}
	if c.Error != "" {
		param("error", c.Error)
	}
	if c.Description != "" {
		param("error_description", c.Description)
	}
	var acrs []string
	for _, v := range c.ACRValues {
		acrs = append(acrs, strings.Fields(clean(v))...)
	}
	param("acr_values", strings.Join(acrs, " "))
	if c.HasMaxAge {
		param("max_age", strconv.FormatInt(c.MaxAge, 10))
	}
	if c.Scope != "" {
		param("scope", c.Scope)
	}
	return b.String()
}

// clean keeps what a quoted-string may carry: visible ASCII and spaces
// (tabs become spaces; RFC 6750 §3 restricts error_description to
// %x20-21 / %x23-5B / %x5D-7E, which quote's escapes then cover).
// A parameter left empty is not sent.
func clean(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\t':
			b.WriteByte(' ')
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quote writes s as the content of a quoted-string (RFC 9110 §5.6.4).
func quote(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
}
