package op

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Limits on untrusted input (PRODUCT.md §13), in one place. Every value a
// request can make stepup store — a pending flow lives 30 minutes, a code
// carries its nonce into the ID token — has a cap, checked before the
// store is touched, so an unauthenticated request can neither park
// megabytes in Redis nor make every later page of its flow slow.
const (
	// MaxStateBytes bounds state; it is echoed to the redirect URI.
	MaxStateBytes = 512
	// MaxNonceBytes bounds nonce; it is kept until the ID token.
	MaxNonceBytes = 512
	// MaxLoginHintBytes bounds login_hint; longer than any username.
	MaxLoginHintBytes = 256
	// MaxACRValues and MaxACRValueBytes bound the requested acr values,
	// from acr_values or the claims parameter: each is compared with the
	// ladder on every page of the flow.
	MaxACRValues     = 16
	MaxACRValueBytes = 256
	// MaxClaimsBytes bounds the claims parameter (OIDC Core §5.5).
	MaxClaimsBytes = 4 << 10
	// MaxUILocales and MaxUILocaleBytes bound ui_locales; 35 characters
	// is the length RFC 5646 §4.4.1 asks implementations to support.
	MaxUILocales     = 8
	MaxUILocaleBytes = 35
	// MaxBodyBytes bounds every request body (forms and JSON): well above
	// a request at every cap above, or a WebAuthn response.
	MaxBodyBytes = 64 << 10
)

// errTooLong says which cap a value exceeds.
func errTooLong(name string, limit int) *authError {
	return errAuth(errInvalidRequest, fmt.Sprintf("%s is longer than %d bytes", name, limit))
}

// checkAuthorizeLimits returns the first cap the authorization request
// exceeds, nil when it is within all of them.
func checkAuthorizeLimits(form url.Values) *authError {
	for _, c := range []struct {
		name  string
		limit int
	}{{"state", MaxStateBytes}, {"nonce", MaxNonceBytes}, {"login_hint", MaxLoginHintBytes}, {"claims", MaxClaimsBytes}} {
		if len(form.Get(c.name)) > c.limit {
			return errTooLong(c.name, c.limit)
		}
	}
	if err := CheckACRValues(strings.Fields(form.Get("acr_values"))); err != nil {
		return errAuth(errInvalidRequest, err.Error())
	}
	locales := strings.Fields(form.Get("ui_locales"))
	if len(locales) > MaxUILocales {
		return errAuth(errInvalidRequest, fmt.Sprintf("ui_locales has more than %d tags", MaxUILocales))
	}
	for _, l := range locales {
		if len(l) > MaxUILocaleBytes {
			return errTooLong("a ui_locales tag", MaxUILocaleBytes)
		}
	}
	return nil
}

// CheckACRValues enforces MaxACRValues and MaxACRValueBytes on requested
// acr values, whichever parameter carried them.
func CheckACRValues(values []string) error {
	if len(values) > MaxACRValues {
		return fmt.Errorf("more than %d acr values are requested", MaxACRValues)
	}
	for _, v := range values {
		if len(v) > MaxACRValueBytes {
			return fmt.Errorf("an acr value is longer than %d bytes", MaxACRValueBytes)
		}
	}
	return nil
}

// LimitBody caps r's body at MaxBodyBytes: reading past it fails with
// an *http.MaxBytesError, and the connection is closed after the answer.
func LimitBody(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
}

// BodyTooLarge reports whether err is the failure of a body read past
// MaxBodyBytes.
func BodyTooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}
