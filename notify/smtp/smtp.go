// Package smtp sends codes by email through an SMTP submission server:
// STARTTLS (or implicit TLS on port 465), AUTH PLAIN when a username is
// configured, and a MIME multipart/alternative message with a plain-text
// and an HTML part. SMTP is github.com/emersion/go-smtp, MIME
// github.com/emersion/go-message.
//
// TLS is required: a server that does not offer STARTTLS is refused,
// except on a loopback address (a local relay), because the message
// carries a sign-in code and the credentials would travel in clear.
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/stepup-dev/stepup/notify"
)

// Sender submits messages to one SMTP server.
type Sender struct {
	// Addr is host:port of the submission server.
	Addr string
	// From is the sender address (may carry a display name).
	From string
	// Username and Password authenticate with AUTH PLAIN; no AUTH when
	// Username is "".
	Username string
	Password string
	// TLSConfig verifies the server; nil means the system roots and the
	// host of Addr.
	TLSConfig *tls.Config
	// Timeout bounds the whole submission; 0 means 20 s.
	Timeout time.Duration
	// Now dates the message; nil means time.Now.
	Now func() time.Time
}

var _ notify.Sender = (*Sender)(nil)

// Send submits m to the server.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	raw, err := s.compose(m)
	if err != nil {
		return fmt.Errorf("smtp: compose: %w", err)
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("smtp: from: %w", err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("smtp: the server offers no AUTH")
		}
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.SendMail(from.Address, []string{m.To}, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("smtp: send: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("smtp: quit: %w", err)
	}
	return nil
}

// dial connects with TLS: implicit on port 465, else STARTTLS, which only
// a loopback server may lack.
func (s *Sender) dial(ctx context.Context) (*gosmtp.Client, error) {
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp: addr: %w", err)
	}
	tc := s.TLSConfig
	if tc == nil {
		tc = &tls.Config{}
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	connect := func() (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		return conn, nil
	}
	conn, err := connect()
	if err != nil {
		return nil, err
	}
	if port == "465" {
		return gosmtp.NewClient(tls.Client(conn, tc)), nil
	}
	ip := net.ParseIP(host)
	if (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		// A local relay may speak plain SMTP; use TLS when it offers it.
		c := gosmtp.NewClient(conn)
		if err := c.Hello("localhost"); err != nil {
			c.Close()
			return nil, fmt.Errorf("smtp: hello: %w", err)
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return c, nil
		}
		c.Close()
		if conn, err = connect(); err != nil {
			return nil, err
		}
	}
	c, err := gosmtp.NewClientStartTLS(conn, tc)
	if err != nil {
		return nil, fmt.Errorf("smtp: starttls: %w", err)
	}
	return c, nil
}

// compose builds the MIME message: multipart/alternative with the text
// part first, so clients that show HTML pick the last.
func (s *Sender) compose(m notify.Message) ([]byte, error) {
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return nil, err
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var h mail.Header
	h.SetDate(now())
	h.SetAddressList("From", []*mail.Address{from})
	h.SetAddressList("To", []*mail.Address{to})
	h.SetSubject(m.Subject)
	if err := h.GenerateMessageID(); err != nil {
		return nil, err
	}
	// A sign-in code must not trigger vacation replies.
	h.Set("Auto-Submitted", "auto-generated")
	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, part := range []struct{ ctype, body string }{
		{"text/plain", m.Text},
		{"text/html", m.HTML},
	} {
		var ph mail.InlineHeader
		ph.SetContentType(part.ctype, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
