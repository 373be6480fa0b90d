package op

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// FuzzParseCIBARequest: the form of a backchannel authentication request
// (CIBA Core §7.1). Whatever it accepts is within every cap of
// PRODUCT.md §13 and §12 before anything is stored, names exactly one
// user hint, and asks for openid; a rejection is one of the registered
// error codes. Seeds are the examples of CIBA Core §7.1.1.
func FuzzParseCIBARequest(f *testing.F) {
	f.Add("scope=openid%20email%20example-scope&client_notification_token=8d67dc78-7faa-4d41-aabd-67707b374255&binding_message=W4SCT&login_hint_token=eyJraWQiOiJsdGFjZXNidyIsImFsZyI6IkVTMjU2In0", true)
	f.Add("scope=openid&login_hint=alice&binding_message=Withdraw%2010.00&acr_values=phr&requested_expiry=120", false)
	f.Add("scope=openid&id_token_hint=a.b.c&client_notification_token=tok", true)
	f.Add("scope=openid&login_hint=alice&login_hint=bob", false)
	f.Add("scope=openid&login_hint=%20&requested_expiry=0", false)
	f.Add("scope=openid&login_hint=a&binding_message=%E2%80%AE", false)
	f.Add("scope=openid&login_hint=a&user_code=1", false)
	f.Fuzz(func(t *testing.T, raw string, ping bool) {
		if len(raw) > 16<<10 {
			return // the endpoint caps bodies; keep every input fast
		}
		form, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, cerr := parseCIBARequest(form, ping)
		if cerr != nil {
			if req != nil {
				t.Fatal("an error with a request")
			}
			if !slices.Contains([]string{"invalid_request", "invalid_scope", "invalid_binding_message"}, cerr.code) || cerr.status != 400 {
				t.Fatalf("unregistered error %q (%d)", cerr.code, cerr.status)
			}
			return
		}
		if !slices.Contains(req.Scopes, oidc.ScopeOpenID) || len(form.Get("scope")) > MaxScopeBytes {
			t.Fatalf("accepted scope %q", form.Get("scope"))
		}
		if (req.LoginHint == "") == (req.IDTokenHint == "") {
			t.Fatalf("accepted hints %q / %q: want exactly one", req.LoginHint, req.IDTokenHint)
		}
		if len(req.LoginHint) > MaxLoginHintBytes || len(req.IDTokenHint) > MaxIDTokenHintBytes {
			t.Fatal("a hint above its cap")
		}
		if !utf8.ValidString(req.BindingMessage) || utf8.RuneCountInString(req.BindingMessage) > MaxBindingMessageChars || strings.ContainsFunc(req.BindingMessage, unicode.IsControl) {
			t.Fatalf("accepted binding_message %q", req.BindingMessage)
		}
		if CheckACRValues(req.ACRValues) != nil {
			t.Fatalf("acr_values above the caps: %d", len(req.ACRValues))
		}
		if req.RequestedExpiry < 0 || (form.Get("requested_expiry") != "" && req.RequestedExpiry == 0) {
			t.Fatalf("requested_expiry %q became %v", form.Get("requested_expiry"), req.RequestedExpiry)
		}
		if ping && req.NotificationToken == "" {
			t.Fatal("ping mode without a client_notification_token")
		}
		if len(req.NotificationToken) > MaxNotificationTokenBytes {
			t.Fatal("client_notification_token above its cap")
		}
		for k, vs := range form {
			if len(vs) > 1 {
				t.Fatalf("accepted %q twice", k)
			}
		}
	})
}
