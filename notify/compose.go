package notify

import (
	"fmt"
	"time"

	"github.com/stepup-dev/stepup/templates"
)

// SMS builds the text message of a code for host (the issuer's host). Its
// last line is the origin-bound form of the WebOTP API ("@host #code"),
// so browsers that support it can offer to fill the code in.
func SMS(to, code, host string, ttl time.Duration) Message {
	text := fmt.Sprintf("%s is your %s verification code. It expires in %d minutes. Do not share it.\n\n@%s #%s",
		code, host, minutes(ttl), host, code)
	return Message{To: to, Code: code, Text: text}
}

// Email builds the email of a code for host from the templates.
func Email(to, code, host string, ttl time.Duration) (Message, error) {
	subject, text, html, err := templates.CodeMail(templates.MailData{Code: code, Host: host, Minutes: minutes(ttl)})
	if err != nil {
		return Message{}, fmt.Errorf("notify: email template: %w", err)
	}
	return Message{To: to, Code: code, Text: text, Subject: subject, HTML: html}, nil
}

func minutes(d time.Duration) int { return max(int(d.Round(time.Minute)/time.Minute), 1) }
