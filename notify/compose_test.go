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

// Issue 15 item 5: a notice email's HTML body declares the language its
// lines are in (it said lang="en" whatever the language).
func TestNoticeInLanguage(t *testing.T) {
	for _, tc := range []struct{ lang, want string }{{"de", "de"}, {"en", "en"}, {"", "en"}, {"xx", "en"}} {
		m, err := NoticeIn(tc.lang, "a@example.com", "Betreff", "id.example.com", "Zeile eins", "Zeile zwei")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.HTML, `<html lang="`+tc.want+`">`) || !strings.Contains(m.HTML, "<p>Zeile zwei</p>") || !strings.Contains(m.Text, "Zeile eins") {
			t.Errorf("NoticeIn(%q): want lang=%q:\n%s", tc.lang, tc.want, m.HTML)
		}
	}
	if m, _ := Notice("a@example.com", "Subject", "id.example.com", "Line"); !strings.Contains(m.HTML, `<html lang="en">`) {
		t.Errorf("Notice: want lang=en:\n%s", m.HTML)
	}
}
