package password

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxBytes is the longest password accepted, in bytes: long enough for
// any passphrase (NIST SP 800-63B §5.1.1.2 asks for at least 64
// characters), short enough that hashing it costs nothing extra.
const MaxBytes = 256

// DefaultMinLength is the shortest password a user may choose, in
// characters (NIST SP 800-63B §5.1.1.2: at least 8).
const DefaultMinLength = 8

// Policy decides whether a password a user chooses is acceptable
// (NIST SP 800-63B §5.1.1.2): long enough, not too long, not one of the
// commonly used passwords, not the user's own name or address. It has no
// composition rules (no "one digit, one symbol"), which the standard
// advises against. The zero value uses DefaultMinLength.
type Policy struct {
	// MinLength is the minimum length in Unicode code points.
	MinLength int
}

// The reasons Check refuses a password. Each message is written for the
// user who chose it.
var (
	ErrTooShort = errors.New("password too short")
	ErrTooLong  = errors.New("password too long")
	ErrCommon   = errors.New("password is a commonly used one")
	ErrPersonal = errors.New("password is the username or email address")
)

// Check returns nil when pw may be chosen by a user known by identities
// (username, email address: compared ignoring case, the address also by
// its part before @), else one of the errors above, wrapped with the
// limit it broke.
func (p Policy) Check(pw string, identities ...string) error {
	min := p.MinLength
	if min <= 0 {
		min = DefaultMinLength
	}
	if len(pw) > MaxBytes {
		return fmt.Errorf("%w: at most %d bytes", ErrTooLong, MaxBytes)
	}
	if n := utf8.RuneCountInString(pw); n < min {
		return fmt.Errorf("%w: at least %d characters", ErrTooShort, min)
	}
	lower := strings.ToLower(pw)
	for _, id := range identities {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		local, _, _ := strings.Cut(id, "@")
		if lower == id || lower == local {
			return ErrPersonal
		}
	}
	if IsCommon(pw) {
		return ErrCommon
	}
	return nil
}

// Message is what a page says to the user whose new password err refused.
func (p Policy) Message(err error) string {
	min := p.MinLength
	if min <= 0 {
		min = DefaultMinLength
	}
	switch {
	case errors.Is(err, ErrTooShort):
		return fmt.Sprintf("Choose a password of at least %d characters. A few unrelated words make a good one.", min)
	case errors.Is(err, ErrTooLong):
		return fmt.Sprintf("Choose a password of at most %d bytes.", MaxBytes)
	case errors.Is(err, ErrPersonal):
		return "Choose a password that is not your username or email address."
	case errors.Is(err, ErrCommon):
		return "This password is one of the most commonly used, so it is among the first an attacker tries. Choose another."
	}
	return "Choose another password."
}

//go:embed common.txt
var commonText string

var (
	commonOnce sync.Once
	common     map[string]struct{}
)

// IsCommon reports whether pw, ignoring case, is on the embedded list of
// common passwords (common.txt: zxcvbn's list, see NOTICE.common).
func IsCommon(pw string) bool {
	commonOnce.Do(func() {
		common = make(map[string]struct{}, 16000)
		for _, line := range strings.Split(commonText, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				common[line] = struct{}{}
			}
		}
	})
	_, ok := common[strings.ToLower(pw)]
	return ok
}
