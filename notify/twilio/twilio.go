// Package twilio sends SMS through the Twilio Messages API: a form POST of
// To, From and Body to {base_url}/2010-04-01/Accounts/{sid}/Messages.json
// with HTTP basic auth (account SID, auth token).
package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/notify"
)

// DefaultBaseURL is Twilio's API.
const DefaultBaseURL = "https://api.twilio.com"

// Sender sends SMS through Twilio.
type Sender struct {
	// BaseURL is DefaultBaseURL unless a test or a proxy says otherwise.
	BaseURL    string
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164) or alphanumeric sender id.
	From string
	// Client sends the requests; nil means a client with a 10 s timeout.
	Client *http.Client
}

var _ notify.Sender = (*Sender)(nil)

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// apiError is Twilio's error body.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Send creates a Message resource; Twilio answers 201 when it accepted it.
func (s *Sender) Send(ctx context.Context, m notify.Message) error {
	base := strings.TrimRight(s.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(s.AccountSID) + "/Messages.json"
	form := url.Values{"To": {m.To}, "From": {s.From}, "Body": {m.Text}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	req.SetBasicAuth(s.AccountSID, s.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "stepup")
	c := s.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var e apiError
	if json.Unmarshal(body, &e) == nil && e.Code != 0 {
		return fmt.Errorf("twilio: status %d: error %d: %s", resp.StatusCode, e.Code, e.Message)
	}
	return fmt.Errorf("twilio: status %d", resp.StatusCode)
}
