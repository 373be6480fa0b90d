// Package scimuser maps a SCIM 2.0 User (RFC 7643 §4.1) onto an account
// record, as `stepupd import` reads them (and, later, the SCIM endpoint):
//
//	id                          → subject (sub)
//	userName, externalId        → username, external id
//	name.formatted, displayName → name (the first given)
//	emails: primary, else first → email
//	phoneNumbers type "mobile"  → phone (an enrolled SMS factor)
//	active                      → active
//	password                    → write-only; hashed by the caller
//	urn:stepup:params:scim:schemas:extension:2.0:User
//	  passwordHash              → a hash made elsewhere (bcrypt, argon2id/i, PBKDF2, scrypt, Django)
//	  totpSecret                → base32 TOTP secret (users keep their authenticator app)
//	  emailMfa                  → email codes as a second factor
//
// An attribute the User leaves out leaves the record's value as it is.
package scimuser

import (
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/authn/password"
)

// ExtensionSchema is stepup's extension of the SCIM User.
const ExtensionSchema = "urn:stepup:params:scim:schemas:extension:2.0:User"

// User is a SCIM User as stepup reads it.
type User struct {
	ID           string        `json:"id"`
	ExternalID   *string       `json:"externalId"`
	UserName     string        `json:"userName"`
	Name         *Name         `json:"name"`
	DisplayName  string        `json:"displayName"`
	Emails       []MultiValued `json:"emails"`
	PhoneNumbers []MultiValued `json:"phoneNumbers"`
	Active       *bool         `json:"active"`
	Password     string        `json:"password"`
	Extension    *Extension    `json:"urn:stepup:params:scim:schemas:extension:2.0:User"`
}

// Name is the SCIM name complex attribute; stepup keeps Formatted.
type Name struct {
	Formatted string `json:"formatted"`
}

// MultiValued is one value of emails or phoneNumbers.
type MultiValued struct {
	Value   string `json:"value"`
	Type    string `json:"type"`
	Primary bool   `json:"primary"`
}

// Extension is stepup's extension: write-only secrets and the email-code
// switch.
type Extension struct {
	PasswordHash string `json:"passwordHash"`
	TOTPSecret   string `json:"totpSecret"`
	EmailMFA     *bool  `json:"emailMfa"`
}

// Parse decodes one SCIM User.
func Parse(b []byte) (*User, error) {
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("not a SCIM User: %w", err)
	}
	if strings.TrimSpace(u.UserName) == "" {
		return nil, errors.New("userName: required")
	}
	return &u, nil
}

// Apply writes what u gives onto r, leaving the rest. The plain password
// (u.Password) is the caller's to hash. Every problem is reported with
// the attribute it is about.
func (u *User) Apply(r *account.Record) error {
	var errs []error
	r.Username = strings.TrimSpace(u.UserName)
	if u.ExternalID != nil {
		r.ExternalID = *u.ExternalID
	}
	switch {
	case u.Name != nil && u.Name.Formatted != "":
		r.Name = u.Name.Formatted
	case u.DisplayName != "":
		r.Name = u.DisplayName
	}
	if len(u.Emails) > 0 {
		e := u.Emails[0]
		for _, m := range u.Emails {
			if m.Primary {
				e = m
				break
			}
		}
		if v := strings.TrimSpace(e.Value); v != "" && !strings.Contains(v, "@") {
			errs = append(errs, fmt.Errorf("emails: %q is not an address", v))
		} else {
			r.Email = v
		}
	}
	for _, p := range u.PhoneNumbers {
		if !strings.EqualFold(p.Type, "mobile") {
			continue
		}
		if v := strings.TrimSpace(p.Value); v != "" && !e164(v) {
			errs = append(errs, fmt.Errorf("phoneNumbers[type eq \"mobile\"]: %q is not an E.164 number like +15555550100", v))
		} else {
			r.Phone = v
		}
		break
	}
	if u.Active != nil {
		r.Active = *u.Active
	}
	if x := u.Extension; x != nil {
		if x.PasswordHash != "" {
			if u.Password != "" {
				errs = append(errs, errors.New("password and passwordHash: give one"))
			} else if _, err := password.CheckHash(x.PasswordHash); err != nil {
				errs = append(errs, fmt.Errorf("%s:passwordHash: %w", ExtensionSchema, err))
			} else {
				r.PasswordHash = x.PasswordHash
			}
		}
		if x.TOTPSecret != "" {
			s := strings.ToUpper(strings.ReplaceAll(x.TOTPSecret, " ", ""))
			if b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(s, "=")); err != nil || len(b) < 10 {
				errs = append(errs, fmt.Errorf("%s:totpSecret: not a base32 secret of at least 80 bits", ExtensionSchema))
			} else {
				r.TOTPSecret = s
			}
		}
		if x.EmailMFA != nil {
			r.EmailMFA = *x.EmailMFA
		}
	}
	return errors.Join(errs...)
}

func e164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Same reports whether a and b hold the same account (what Apply and a
// password change can touch), so that an import that changes nothing
// writes nothing.
func Same(a, b *account.Record) bool {
	return a.Username == b.Username && a.ExternalID == b.ExternalID && a.Name == b.Name && a.Email == b.Email &&
		a.Phone == b.Phone && a.Active == b.Active && a.PasswordHash == b.PasswordHash && a.TOTPSecret == b.TOTPSecret &&
		a.EmailMFA == b.EmailMFA
}
