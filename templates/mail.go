package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"

	"github.com/stepup-dev/stepup/i18n"
)

// mailFS holds the email templates: one text and one HTML body per
// message.
//
//go:embed mail/*
var mailFS embed.FS

type mailSet struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// mails holds the code mail's templates per language, parsed with that
// language's catalogue functions.
var mails = func() map[string]mailSet {
	out := map[string]mailSet{}
	for _, lang := range i18n.Languages() {
		funcs := i18n.For(lang).Funcs()
		out[lang] = mailSet{
			text: texttemplate.Must(texttemplate.New("code.txt").Funcs(texttemplate.FuncMap(funcs)).ParseFS(mailFS, "mail/code.txt")),
			html: htmltemplate.Must(htmltemplate.New("code.html").Funcs(funcs).ParseFS(mailFS, "mail/code.html")),
		}
	}
	return out
}()

var (
	noticeText = texttemplate.Must(texttemplate.ParseFS(mailFS, "mail/notice.txt"))
	noticeHTML = htmltemplate.Must(htmltemplate.ParseFS(mailFS, "mail/notice.html"))
)

// NoticeData is what a notice email (no code: a change made to the
// account, a registration attempt for an address that has one) shows.
type NoticeData struct {
	Subject string
	// Lines are the paragraphs of the message.
	Lines []string
	Host  string
	// Lang is the language the lines are in ("" is English): the HTML
	// body's lang, for screen readers and translation tools.
	Lang string
}

// NoticeMail renders a notice email: its plain-text and HTML bodies.
func NoticeMail(d NoticeData) (text, html string, err error) {
	if _, ok := mails[d.Lang]; !ok {
		d.Lang = i18n.Default
	}
	var t, h bytes.Buffer
	if err := noticeText.Execute(&t, d); err != nil {
		return "", "", err
	}
	if err := noticeHTML.Execute(&h, d); err != nil {
		return "", "", err
	}
	return t.String(), h.String(), nil
}

// MailData is what the one-time-code email shows.
type MailData struct {
	// Code is the one-time code.
	Code string
	// Host names the service (the issuer's host).
	Host string
	// Minutes is how long the code lives.
	Minutes int
	// Lang is the language of the mail ("" is English).
	Lang string
}

// CodeMail renders the one-time-code email: its subject, plain-text body
// and HTML body (escaped by html/template).
func CodeMail(d MailData) (subject, text, html string, err error) {
	set, ok := mails[d.Lang]
	if !ok {
		d.Lang = i18n.Default
		set = mails[d.Lang]
	}
	var t, h bytes.Buffer
	if err := set.text.Execute(&t, d); err != nil {
		return "", "", "", fmt.Errorf("templates: code mail text: %w", err)
	}
	if err := set.html.Execute(&h, d); err != nil {
		return "", "", "", fmt.Errorf("templates: code mail html: %w", err)
	}
	return i18n.For(d.Lang).T("mail.code_subject", "Host", d.Host), t.String(), h.String(), nil
}
