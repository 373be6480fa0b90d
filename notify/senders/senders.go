// Package senders builds the notify.Sender that the sms: and email:
// sections of the configuration name.
package senders

import (
	"fmt"
	"log/slog"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/notify"
	"github.com/stepup-dev/stepup/notify/logsender"
	"github.com/stepup-dev/stepup/notify/smtp"
	"github.com/stepup-dev/stepup/notify/twilio"
	"github.com/stepup-dev/stepup/notify/webhook"
)

// SMS returns the SMS sender of cfg (sms: log | webhook | twilio).
func SMS(cfg config.Provider, log *slog.Logger) (notify.Sender, error) {
	switch cfg.Provider {
	case "", "log":
		return &logsender.Sender{Channel: "sms", Log: log}, nil
	case "webhook":
		return &webhook.Sender{URL: cfg.URL}, nil
	case "twilio":
		return &twilio.Sender{BaseURL: cfg.BaseURL, AccountSID: cfg.AccountSID, AuthToken: cfg.AuthToken, From: cfg.From}, nil
	}
	return nil, fmt.Errorf("sms.provider: unknown provider %q", cfg.Provider)
}

// Email returns the email sender of cfg (email: log | smtp | webhook).
func Email(cfg config.Provider, log *slog.Logger) (notify.Sender, error) {
	switch cfg.Provider {
	case "", "log":
		return &logsender.Sender{Channel: "email", Log: log}, nil
	case "webhook":
		return &webhook.Sender{URL: cfg.URL}, nil
	case "smtp":
		return &smtp.Sender{Addr: cfg.Addr, From: cfg.From, Username: cfg.Username, Password: cfg.Password}, nil
	}
	return nil, fmt.Errorf("email.provider: unknown provider %q", cfg.Provider)
}
