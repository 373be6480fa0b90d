package twilio_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/notify/twilio"
)

func TestSendExactRequest(t *testing.T) {
	type seen struct {
		method, path, ctype, user, pass string
		basic                           bool
		form                            url.Values
	}
	got := make(chan seen, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("body %q is not a form: %v", body, err)
		}
		u, p, ok := r.BasicAuth()
		got <- seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), u, p, ok, form}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM123","status":"queued"}`)
	}))
	defer ts.Close()

	s := &twilio.Sender{BaseURL: ts.URL + "/", AccountSID: "AC0123456789abcdef", AuthToken: "tok-secret", From: "+15555550000"}
	m := notify.SMS("+15555550100", "123456", "id.example.com", 0)
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.method != http.MethodPost || r.path != "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json" {
		t.Errorf("request %s %s", r.method, r.path)
	}
	if r.ctype != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", r.ctype)
	}
	if !r.basic || r.user != "AC0123456789abcdef" || r.pass != "tok-secret" {
		t.Errorf("basic auth %v %q %q", r.basic, r.user, r.pass)
	}
	want := url.Values{"To": {"+15555550100"}, "From": {"+15555550000"}, "Body": {m.Text}}
	if r.form.Encode() != want.Encode() {
		t.Errorf("form %v, want %v", r.form, want)
	}
	if !strings.HasPrefix(m.Text, "123456 is your id.example.com verification code") || !strings.HasSuffix(m.Text, "@id.example.com #123456") {
		t.Errorf("body %q", m.Text)
	}
}

func TestSendReportsTwilioError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`)
	}))
	defer ts.Close()
	s := &twilio.Sender{BaseURL: ts.URL, AccountSID: "AC1", AuthToken: "tok-secret", From: "+15555550000"}
	err := s.Send(t.Context(), notify.SMS("+1", "654321", "h", 0))
	if err == nil || !strings.Contains(err.Error(), "21211") {
		t.Fatalf("error %v, want Twilio's code 21211", err)
	}
	if strings.Contains(err.Error(), "654321") || strings.Contains(err.Error(), "tok-secret") {
		t.Fatalf("error %q quotes the code or the token", err)
	}
}
