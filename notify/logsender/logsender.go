// Package logsender is the development provider of SMS and email codes:
// it writes each message to the log instead of delivering it, so a
// developer can read the code. It logs the code, which is why it must not
// be used in production (stepupd warns at start when it is configured).
package logsender

import (
	"context"
	"log/slog"

	"github.com/stepup-dev/stepup/notify"
)

// Sender logs messages.
type Sender struct {
	// Channel is "sms" or "email", for the record.
	Channel string
	Log     *slog.Logger
}

var _ notify.Sender = (*Sender)(nil)

// Send writes the message to the log at Warn level with msg
// "notify.log", so it stands out and is never mistaken for an audit
// record.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.WarnContext(ctx, "notify.log", "channel", s.Channel, "to", m.To, "code", m.Code, "text", m.Text,
		"note", "development provider: configure a real one for production")
	return nil
}
