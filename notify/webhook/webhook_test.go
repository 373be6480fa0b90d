package webhook_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/notify/webhook"
)

func TestSendPostsJSON(t *testing.T) {
	got := make(chan map[string]string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		got <- body
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ts.Close()
	s := &webhook.Sender{URL: ts.URL + "/hook"}
	if err := s.Send(t.Context(), notify.Message{To: "+15555550100", Code: "123456", Text: "123456 is your code"}); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if len(b) != 3 || b["to"] != "+15555550100" || b["code"] != "123456" || b["text"] != "123456 is your code" {
		t.Fatalf("payload %v", b)
	}
}

func TestSendFailsOnNon2xx(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer ts.Close()
	if err := (&webhook.Sender{URL: ts.URL}).Send(t.Context(), notify.Message{To: "a@b.c", Code: "1"}); err == nil {
		t.Fatal("a 502 was taken as delivered")
	}
}
