// Package notify delivers one-time codes to users: by SMS (log, webhook,
// twilio) and by email (log, smtp, webhook). Each provider is a small
// package behind the one Sender interface; notify/senders builds the one
// the configuration names.
//
// A Message carries the code in clear because delivering it is the
// point; no provider logs it except notify/logsender, which exists for
// development and says so.
package notify

import "context"

// Message is one code to deliver.
type Message struct {
	// To is the phone number (E.164) or email address exactly as the
	// account holds it.
	To string
	// Code is the one-time code.
	Code string
	// Text is the whole message as plain text: the SMS body, or the text
	// part of an email.
	Text string
	// Subject and HTML are the email's subject and HTML part; SMS
	// providers ignore them.
	Subject string
	HTML    string
}

// Sender delivers messages through one provider. Send returns when the
// provider has accepted the message (or refused it); errors never quote
// the code or a credential.
type Sender interface {
	Send(ctx context.Context, m Message) error
}
