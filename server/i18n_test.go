package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"

	"golang.org/x/net/html"
)

// htmlLang is the lang attribute of the page's <html> element.
func htmlLang(p *page) string {
	for _, n := range find(p.doc, func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "html" }) {
		v, _ := attr(n, "lang")
		return v
	}
	return ""
}

// Issue 15 item 5: the language is chosen by ui_locales (OIDC Core
// §3.1.2.1, carried through the flow), then Accept-Language, then English.
func TestLanguageChoice(t *testing.T) {
	e := newEnv(t, nil)
	r := e.rp("spa", "")
	for _, tc := range []struct {
		name, ui, accept, lang, text string
	}{
		{"default English", "", "", "en", "Sign in"},
		{"Accept-Language", "", "de-DE,de;q=0.9,en;q=0.4", "de", "Benutzername"},
		{"ui_locales wins over Accept-Language", "de", "en-US,en", "de", "Benutzername"},
		{"unsupported ui_locales falls to Accept-Language", "ja", "de", "de", "Passwort"},
		{"nothing supported: English", "ja", "zh-CN", "en", "Username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			if tc.accept != "" {
				b.header = http.Header{"Accept-Language": {tc.accept}}
			}
			params := map[string]string{}
			if tc.ui != "" {
				params["ui_locales"] = tc.ui
			}
			p := b.get(r.authURL(params).url)
			if p.status != http.StatusOK || htmlLang(p) != tc.lang || !strings.Contains(p.body, tc.text) {
				t.Fatalf("status %d, lang %q (want %q), want text %q:\n%s", p.status, htmlLang(p), tc.lang, tc.text, excerpt(p.body))
			}
			// The choice holds through the flow: the failed attempt is in
			// the same language, whatever the browser says now.
			b.header = http.Header{"Accept-Language": {"en"}}
			if tc.ui != "de" {
				return // only a supported ui_locales is carried
			}
			p = b.login(p, "alice", "wrong password")
			wantAlert(t, p, http.StatusUnauthorized, "wrong password")
			if htmlLang(p) != tc.lang {
				t.Errorf("after a failed attempt: lang %q, want %q", htmlLang(p), tc.lang)
			}
			if tc.lang == "de" && !strings.Contains(p.body, "Benutzername oder Passwort ist falsch") {
				t.Errorf("German alert missing:\n%s", excerpt(p.body))
			}
		})
	}
}

// Issue 15 item 5: the code text message of a German sign-in is German
// (the flow's ui_locales reaches the sender); the WebOTP line is kept.
func TestCodeTextInFlowLanguage(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in))
	b, r := e.browser(), e.rp("spa", "")
	b.header = http.Header{"Accept-Language": {"en"}}
	p := b.login(b.get(r.authURL(map[string]string{"ui_locales": "de", "acr_values": mfaACR}).url), "carol", carolPass)
	if !codeForm(p, "sms") || htmlLang(p) != "de" {
		t.Fatalf("want the German SMS code page (lang %q):\n%s", htmlLang(p), excerpt(p.body))
	}
	in.last(carolPhone) // a code was sent
	in.mu.Lock()
	text := ""
	for _, m := range in.msgs {
		if m["to"] == carolPhone {
			text = m["text"]
		}
	}
	in.mu.Unlock()
	if !strings.Contains(text, "ist Ihr Bestätigungscode für") || !strings.Contains(text, "\n\n@") {
		t.Errorf("the SMS of a German sign-in: %q", text)
	}
}

// lastText is the text of the latest message to to.
func (in *inbox) lastText(to string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := len(in.msgs) - 1; i >= 0; i-- {
		if in.msgs[i]["to"] == to {
			return in.msgs[i]["text"]
		}
	}
	return ""
}

// Issue 15 item 5 through the API: an API session has no ui_locales, so
// POST …/send takes the caller's Accept-Language (a native app passes the
// device's), and without one the text is English.
func TestAPICodeTextInCallersLanguage(t *testing.T) {
	in := newInbox(t)
	e := newEnv(t, withCodes(in, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:authn"}
			}
		}
	}))
	tok := e.ccToken("bank", bankSecret, "stepup:authn")
	for _, tc := range []struct{ accept, want string }{
		{"de-DE,de;q=0.9,en;q=0.5", "ist Ihr Bestätigungscode für"},
		{"", "verification code. It expires in"},
	} {
		id := e.api("POST", "/api/v1/authn/sessions", tok, map[string]any{"username": "carol"}).want(t, "start", 201, "").str("id")
		path := "/api/v1/authn/sessions/" + id
		e.api("POST", path+"/verify", tok, map[string]any{"factor": "password", "password": carolPass}).want(t, "password", 200, "")
		var h []string
		if tc.accept != "" {
			h = []string{"Accept-Language", tc.accept}
		}
		e.api("POST", path+"/send", tok, map[string]any{"factor": "sms"}, h...).want(t, "send", 202, "")
		in.last(carolPhone) // a code was sent, in the text
		if text := in.lastText(carolPhone); !strings.Contains(text, tc.want) || !strings.Contains(text, "\n\n@") {
			t.Errorf("Accept-Language %q: the SMS %q, want %q", tc.accept, text, tc.want)
		}
		e.clock.Advance(2 * time.Minute) // past the resend cooldown
	}
}
