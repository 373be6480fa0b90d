package notify

import (
	"strings"
	"testing"
	"time"
)

// Issue 15 item 5: code texts and mails speak the flow's language; the
// WebOTP line stays as browsers expect it.
func TestComposeInLanguage(t *testing.T) {
	m := SMSIn("de", "+4930123", "123456", "id.example.com", 10*time.Minute)
	if !strings.HasPrefix(m.Text, "123456 ist Ihr Bestätigungscode für id.example.com. Er läuft in 10 Minuten ab.") ||
		!strings.HasSuffix(m.Text, "\n\n@id.example.com #123456") {
		t.Errorf("German SMS: %q", m.Text)
	}
	if m := SMS("+1555", "123456", "id.example.com", time.Minute); !strings.Contains(m.Text, "expires in 1 minute.") {
		t.Errorf("English SMS, singular: %q", m.Text)
	}
	e, err := EmailIn("de", "a@example.com", "654321", "id.example.com", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if e.Subject != "Ihr Bestätigungscode für id.example.com" || !strings.Contains(e.Text, "654321") ||
		!strings.Contains(e.HTML, `<html lang="de">`) || !strings.Contains(e.HTML, "Er läuft in 10 Minuten ab") {
		t.Errorf("German mail: %q\n%s\n%s", e.Subject, e.Text, e.HTML)
	}
	e, _ = EmailIn("xx", "a@example.com", "654321", "id.example.com", 10*time.Minute)
	if e.Subject != "Your id.example.com verification code" {
		t.Errorf("unknown language must be English: %q", e.Subject)
	}
}
