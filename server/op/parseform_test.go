package op

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// parseFormBoth parses the same request with parseForm and with
// net/http's ParseForm, both behind LimitBody as in stepupd, and fails t
// unless the values, and success or failure, are the same. A body past
// MaxBodyBytes must be a *http.MaxBytesError for both (formEndpoint's
// 413).
func parseFormBoth(t *testing.T, contentType string, body string, chunked bool) {
	t.Helper()
	mk := func() *http.Request {
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = iotest.OneByteReader(rd) // no announced length, short reads
		}
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", rd)
		if chunked {
			r.ContentLength = -1
		}
		if contentType != "-" {
			r.Header.Set("Content-Type", contentType)
		}
		LimitBody(httptest.NewRecorder(), r)
		return r
	}
	ours, theirs := mk(), mk()
	errOurs, errTheirs := parseForm(ours), theirs.ParseForm()
	if (errOurs == nil) != (errTheirs == nil) {
		t.Fatalf("Content-Type %q, body %q: parseForm error %v, ParseForm error %v", contentType, body, errOurs, errTheirs)
	}
	if BodyTooLarge(errOurs) != BodyTooLarge(errTheirs) {
		t.Fatalf("Content-Type %q, body of %d bytes: too large %v (%v) vs %v (%v)", contentType, len(body), BodyTooLarge(errOurs), errOurs, BodyTooLarge(errTheirs), errTheirs)
	}
	if errTheirs != nil {
		return // formEndpoint refuses the request whatever was parsed
	}
	if !reflect.DeepEqual(ours.PostForm, theirs.PostForm) || !reflect.DeepEqual(ours.Form, theirs.Form) {
		t.Fatalf("Content-Type %q, body %q: parseForm PostForm %v Form %v, ParseForm PostForm %v Form %v",
			contentType, body, ours.PostForm, ours.Form, theirs.PostForm, theirs.Form)
	}
	// What formEndpoint and the handlers read afterwards: a second
	// ParseForm changes nothing, Get and FormValue agree.
	if err := ours.ParseForm(); err != nil {
		t.Fatal(err)
	}
	for k := range theirs.PostForm {
		if ours.PostFormValue(k) != theirs.PostFormValue(k) || ours.FormValue(k) != theirs.FormValue(k) {
			t.Fatalf("body %q: %s reads %q/%q, net/http %q/%q", body, k, ours.PostFormValue(k), ours.FormValue(k), theirs.PostFormValue(k), theirs.FormValue(k))
		}
	}
}

var parseFormCases = []string{
	"",
	"grant_type=client_credentials",
	"grant_type=client_credentials&scope=a+b%20c",
	"grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_verifier=x",
	"a=1&a=2",
	"a",
	"=x",
	"a=&b",
	"&&a=1&&",
	"a=%zz",   // bad escape: error
	"a=1;b=2", // semicolon: error (Go 1.17+)
	"a=%00b",  // NUL is a value like any other here
	"%e2%82%ac=%E2%82%AC",
	"a=1&b=%",
	strings.Repeat("k=v&", 4000),
	"big=" + strings.Repeat("x", MaxBodyBytes),     // one past the limit with the "big=": 413
	"big=" + strings.Repeat("x", MaxBodyBytes-4),   // exactly the limit
	"big=" + strings.Repeat("x", MaxBodyBytes-5),   // one under
	"big=" + strings.Repeat("x", 2*MaxBodyBytes+7), // far past
}

// TestParseFormLikeNetHTTP: formEndpoint's parser gives what
// Request.ParseForm gives, for the Content-Types clients send (and the
// ones it leaves to ParseForm), announced and unannounced lengths.
func TestParseFormLikeNetHTTP(t *testing.T) {
	types := []string{
		"application/x-www-form-urlencoded",
		"Application/X-WWW-Form-URLEncoded",
		"application/x-www-form-urlencoded; charset=UTF-8",
		"application/x-www-form-urlencoded ",
		"application/json",
		"multipart/form-data; boundary=x",
		"text/plain",
		"",
		"-", // no header
	}
	for _, ct := range types {
		for _, body := range parseFormCases {
			for _, chunked := range []bool{false, true} {
				if chunked && len(body) > 1000 && !strings.HasPrefix(body, "big=") {
					continue
				}
				parseFormBoth(t, ct, body, chunked)
			}
		}
	}
}

// TestParseFormShortcutTaken: the request shape the token endpoint
// sees (exact Content-Type, announced length) takes the short way, and
// a read error of the body is an error.
func TestParseFormShortcutTaken(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials&scope=x"))
	r.Header.Set("Content-Type", formContentType)
	LimitBody(httptest.NewRecorder(), r)
	if err := parseForm(r); err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(r.Form).Pointer() != reflect.ValueOf(r.PostForm).Pointer() {
		t.Fatal("the short way was not taken: Form and PostForm are two maps")
	}
	if got := r.PostForm.Get("scope"); got != "x" {
		t.Fatalf("scope %q", got)
	}

	broken := httptest.NewRequest(http.MethodPost, "/oauth/token", iotest.ErrReader(errors.New("connection reset")))
	broken.Header.Set("Content-Type", formContentType)
	if err := parseForm(broken); err == nil || len(broken.PostForm) != 0 {
		t.Fatalf("a body that fails to read: err %v, PostForm %v", err, broken.PostForm)
	}
}

// FuzzParseForm: any body, with the Content-Types of
// TestParseFormLikeNetHTTP's first rows.
func FuzzParseForm(f *testing.F) {
	for _, body := range parseFormCases {
		if len(body) < 1000 {
			f.Add(body, uint8(0), false)
		}
	}
	types := []string{"application/x-www-form-urlencoded", "APPLICATION/x-www-form-urlencoded", "application/x-www-form-urlencoded;charset=utf-8", "text/plain"}
	f.Fuzz(func(t *testing.T, body string, ct uint8, chunked bool) {
		parseFormBoth(t, types[int(ct)%len(types)], body, chunked)
	})
}
