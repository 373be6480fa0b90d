package smtp_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/notify/smtp"
)

// received is one message the test server accepted.
type received struct {
	from    string
	to      []string
	data    []byte
	tls     bool
	user    string
	authTLS bool
}

// backend is an in-process SMTP submission server that requires TLS
// before AUTH PLAIN and records what it gets.
type backend struct {
	mu   sync.Mutex
	msgs []received
	user string
	pass string
}

// all returns the messages received so far.
func (b *backend) all() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type sess struct {
	b    *backend
	c    *gosmtp.Conn
	cur  received
	auth bool
}

func (b *backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return &sess{b: b, c: c}, nil
}

func (s *sess) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *sess) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.b.user || pass != s.b.pass {
			return errors.New("invalid credentials")
		}
		_, isTLS := s.c.TLSConnectionState()
		s.cur.user, s.cur.authTLS, s.auth = user, isTLS, true
		return nil
	}), nil
}

func (s *sess) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.b.user != "" && !s.auth {
		return gosmtp.ErrAuthRequired
	}
	s.cur.from = from
	return nil
}

func (s *sess) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *sess) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.tls = s.c.TLSConnectionState()
	s.cur.data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *sess) Reset()        {}
func (s *sess) Logout() error { return nil }

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test smtp"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// serve starts the server (with STARTTLS when withTLS) on a loopback port.
func serve(t *testing.T, b *backend, withTLS bool) (addr string, pool *x509.CertPool) {
	t.Helper()
	srv := gosmtp.NewServer(b)
	srv.Domain = "smtp.test"
	srv.AllowInsecureAuth = false
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if withTLS {
		var cert tls.Certificate
		cert, pool = selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), pool
}

func TestSendSTARTTLSAuthAndMIME(t *testing.T) {
	b := &backend{user: "mailer", pass: "mail-secret"}
	addr, pool := serve(t, b, true)
	date := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	s := &smtp.Sender{
		Addr: addr, From: "stepup <no-reply@id.example.com>",
		Username: "mailer", Password: "mail-secret",
		TLSConfig: &tls.Config{RootCAs: pool},
		Now:       func() time.Time { return date },
	}
	m, err := notify.Email("alice@example.com", "482913", "id.example.com", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := b.all()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received", len(msgs))
	}
	got := msgs[0]
	if !got.tls || !got.authTLS || got.user != "mailer" {
		t.Fatalf("tls %v, auth over tls %v as %q: want STARTTLS before AUTH", got.tls, got.authTLS, got.user)
	}
	if got.from != "no-reply@id.example.com" || len(got.to) != 1 || got.to[0] != "alice@example.com" {
		t.Fatalf("envelope from %q to %v", got.from, got.to)
	}

	r, err := mail.CreateReader(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("not a MIME message: %v\n%s", err, got.data)
	}
	h := r.Header
	if subj, _ := h.Subject(); subj != "Your id.example.com verification code" {
		t.Errorf("Subject %q", subj)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != "no-reply@id.example.com" || from[0].Name != "stepup" {
		t.Errorf("From %v", from)
	}
	if to, _ := h.AddressList("To"); len(to) != 1 || to[0].Address != "alice@example.com" {
		t.Errorf("To %v", to)
	}
	if d, err := h.Date(); err != nil || !d.Equal(date) {
		t.Errorf("Date %v, %v", d, err)
	}
	if id, err := h.MessageID(); err != nil || id == "" {
		t.Errorf("Message-Id %q, %v", id, err)
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/alternative" {
		t.Errorf("Content-Type %q, want multipart/alternative", mt)
	}
	if h.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME-Version %q", h.Get("Mime-Version"))
	}
	var types []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ih, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			t.Fatalf("part %T is not inline", p.Header)
		}
		mt, params, _ := ih.ContentType()
		types = append(types, mt)
		body, _ := io.ReadAll(p.Body)
		if params["charset"] != "utf-8" || !strings.Contains(string(body), "482913") || !strings.Contains(string(body), "5 minutes") {
			t.Errorf("part %s (charset %q) lacks the code or the lifetime:\n%s", mt, params["charset"], body)
		}
		if mt == "text/html" && !strings.Contains(string(body), "<p") {
			t.Errorf("html part is not HTML:\n%s", body)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Fatalf("parts %v, want text/plain then text/html", types)
	}
}

func TestSendWrongPasswordFails(t *testing.T) {
	b := &backend{user: "mailer", pass: "mail-secret"}
	addr, pool := serve(t, b, true)
	s := &smtp.Sender{Addr: addr, From: "no-reply@id.example.com", Username: "mailer", Password: "nope", TLSConfig: &tls.Config{RootCAs: pool}}
	m, _ := notify.Email("alice@example.com", "111111", "h", time.Minute)
	err := s.Send(t.Context(), m)
	if err == nil || len(b.all()) != 0 {
		t.Fatalf("Send with a wrong password = %v (%d messages)", err, len(b.all()))
	}
	if strings.Contains(err.Error(), "111111") || strings.Contains(err.Error(), "nope") {
		t.Fatalf("error %q quotes the code or the password", err)
	}
}

func TestSendUntrustedCertificateFails(t *testing.T) {
	b := &backend{}
	addr, _ := serve(t, b, true)
	s := &smtp.Sender{Addr: addr, From: "no-reply@id.example.com"}
	m, _ := notify.Email("alice@example.com", "222222", "h", time.Minute)
	if err := s.Send(t.Context(), m); err == nil || len(b.all()) != 0 {
		t.Fatalf("Send to a server with an untrusted certificate = %v (%d messages)", err, len(b.all()))
	}
}

// A local relay without STARTTLS (loopback) is accepted, in clear.
func TestSendLoopbackRelayWithoutTLS(t *testing.T) {
	b := &backend{}
	addr, _ := serve(t, b, false)
	s := &smtp.Sender{Addr: addr, From: "no-reply@id.example.com"}
	m, _ := notify.Email("bob@example.com", "333333", "h", time.Minute)
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if msgs := b.all(); len(msgs) != 1 || msgs[0].tls {
		t.Fatalf("messages %+v", msgs)
	}
}
