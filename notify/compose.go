package notify

import (
	"fmt"
	"github.com/stepup-dev/stepup/i18n"
	"time"

	"github.com/stepup-dev/stepup/templates"
)

// SMS builds the text message of a code for host (the issuer's host). Its
// last line is the origin-bound form of the WebOTP API ("@host #code"),
// so browsers that support it can offer to fill the code in.
func SMS(to, code, host string, ttl time.Duration) Message {
	return SMSIn(i18n.Default, to, code, host, ttl)
}

// SMSIn is SMS in the language lang (an i18n tag; unsupported is
// English). The WebOTP line is never translated.
func SMSIn(lang, to, code, host string, ttl time.Duration) Message {
	text := i18n.For(lang).T("sms.code", "Code", code, "Host", host, "Count", minutes(ttl)) + "\n\n@" + host + " #" + code
	return Message{To: to, Code: code, Text: text}
}

// Email builds the email of a code for host from the templates.
func Email(to, code, host string, ttl time.Duration) (Message, error) {
	return EmailIn(i18n.Default, to, code, host, ttl)
}

// EmailIn is Email in the language lang.
func EmailIn(lang, to, code, host string, ttl time.Duration) (Message, error) {
	subject, text, html, err := templates.CodeMail(templates.MailData{Code: code, Host: host, Minutes: minutes(ttl), Lang: lang})
	if err != nil {
		return Message{}, fmt.Errorf("notify: email template: %w", err)
	}
	return Message{To: to, Code: code, Text: text, Subject: subject, HTML: html}, nil
}

func minutes(d time.Duration) int { return max(int(d.Round(time.Minute)/time.Minute), 1) }

// Notice builds an email that tells the owner of to about something done
// with their address (no code): lines are its paragraphs, in English.
func Notice(to, subject, host string, lines ...string) (Message, error) {
	return NoticeIn(i18n.Default, to, subject, host, lines...)
}

// NoticeIn is Notice whose subject and lines are in the language lang
// (an i18n tag; unsupported is English), which the HTML body declares.
func NoticeIn(lang, to, subject, host string, lines ...string) (Message, error) {
	text, html, err := templates.NoticeMail(templates.NoticeData{Subject: subject, Lines: lines, Host: host, Lang: lang})
	if err != nil {
		return Message{}, fmt.Errorf("notify: notice template: %w", err)
	}
	return Message{To: to, Text: text, Subject: subject, HTML: html}, nil
}
