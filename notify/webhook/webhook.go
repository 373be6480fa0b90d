// Package webhook delivers codes by POSTing JSON to an operator's URL
// (PRODUCT.md §4): {"to": "...", "code": "...", "text": "..."}, where to
// is the user's phone or email exactly as configured. Any 2xx answer is
// success.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/stepup-dev/stepup/notify"
)

// Sender posts messages to URL.
type Sender struct {
	URL string
	// Client sends the requests; nil means a client with a 10 s timeout.
	Client *http.Client
}

var _ notify.Sender = (*Sender)(nil)

var defaultClient = &http.Client{Timeout: 10 * time.Second}

type payload struct {
	To   string `json:"to"`
	Code string `json:"code"`
	Text string `json:"text"`
}

// Send posts the message and waits for a 2xx answer.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	body, err := json.Marshal(payload{To: m.To, Code: m.Code, Text: m.Text})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stepup")
	c := s.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		// Without the URL: its query often holds the receiver's token, and
		// the error goes to the audit log.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("webhook: %s: %w", ue.Op, ue.Err)
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: the receiver answered %d", resp.StatusCode)
	}
	return nil
}
