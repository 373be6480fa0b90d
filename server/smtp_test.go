package server_test

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/stepup-dev/stepup/config"
)

// mailbox is an in-process SMTP relay on loopback (no TLS, which the smtp
// provider accepts only from a loopback relay) that keeps every message.
type mailbox struct {
	mu   sync.Mutex
	msgs [][]byte
	rcpt []string
}

type mailSession struct {
	mb *mailbox
	to string
}

func (m *mailbox) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &mailSession{mb: m}, nil }
func (s *mailSession) Mail(string, *gosmtp.MailOptions) error      { return nil }
func (s *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error { s.to = to; return nil }
func (s *mailSession) Reset()                                      {}
func (s *mailSession) Logout() error                               { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.msgs = append(s.mb.msgs, b)
	s.mb.rcpt = append(s.mb.rcpt, s.to)
	return nil
}

func startMailbox(t *testing.T) (*mailbox, string) {
	t.Helper()
	mb := &mailbox{}
	srv := gosmtp.NewServer(mb)
	srv.Domain = "mail.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb, ln.Addr().String()
}

var mailCode = regexp.MustCompile(`\b([0-9]{6})\b`)

// lastCode returns the recipient of the latest message and the code of
// its text part.
func (m *mailbox) lastCode(t *testing.T) (to, code string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == 0 {
		t.Fatal("no email was sent")
	}
	r, err := mail.CreateReader(bytes.NewReader(m.msgs[len(m.msgs)-1]))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(p.Body)
	c := mailCode.FindSubmatch(body)
	if c == nil {
		t.Fatalf("no code in the text part:\n%s", body)
	}
	return m.rcpt[len(m.rcpt)-1], string(c[1])
}

// The global email_fallback policy with the smtp provider, end to end:
// config → sender → SMTP → the code in the text part → amr pwd otp mfa.
func TestGlobalEmailFallbackOverSMTP(t *testing.T) {
	mb, addr := startMailbox(t)
	e := newEnv(t, func(c *config.Config) {
		c.MFA.Unenrolled = "email_fallback"
		c.Email = config.Provider{Provider: "smtp", Addr: addr, From: "stepup <no-reply@example.com>"}
	})
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "bob", bobPass)
	if !codeForm(p, "email") {
		t.Fatalf("no email code form:\n%s", excerpt(p.body))
	}
	to, code := mb.lastCode(t)
	if to != "bob@example.com" {
		t.Fatalf("mail to %q", to)
	}
	wantClaims(t, r.mustExchange(a, b.code(p, "email", code).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
}
