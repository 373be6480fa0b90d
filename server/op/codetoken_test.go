package op

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestPlainCodeExchange: the code exchanges the token endpoint serves
// itself are the plain ones (the shape of every RP's request), so the
// comparison with zitadel's router in the server package compares the
// fast path; anything more goes to zitadel.
func TestPlainCodeExchange(t *testing.T) {
	cases := []struct {
		form  url.Values
		plain bool
	}{
		{url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"u"}, "code_verifier": {"v"}}, true},
		{url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"u"}, "client_id": {"a"}, "client_secret": {"s"}}, true},
		{url.Values{"grant_type": {"authorization_code"}}, true}, // refused on the fast path, as zitadel would
		{url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"u"}, "x_unknown": {"1"}}, false},
		{url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"u"}, "client_assertion": {"j"}, "client_assertion_type": {"t"}}, false},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}}, false},
		{url.Values{"grant_type": {"client_credentials"}}, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(tc.form.Encode()))
		r.Header.Set("Content-Type", formContentType)
		if err := parseForm(r); err != nil {
			t.Fatal(err)
		}
		if got := plainCodeExchange(r); got != tc.plain {
			t.Errorf("%v: plain %v, want %v", tc.form, got, tc.plain)
		}
	}
}
