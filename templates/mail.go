package templates

import (
	"bytes"
	"embed"
	htmltemplate "html/template"
	texttemplate "text/template"
)

// mailFS holds the email templates: one text and one HTML body per
// message.
//
//go:embed mail/*
var mailFS embed.FS

var (
	mailText = texttemplate.Must(texttemplate.ParseFS(mailFS, "mail/code.txt"))
	mailHTML = htmltemplate.Must(htmltemplate.ParseFS(mailFS, "mail/code.html"))
)

// MailData is what the one-time-code email shows.
type MailData struct {
	// Code is the one-time code.
	Code string
	// Host names the service (the issuer's host).
	Host string
	// Minutes is how long the code lives.
	Minutes int
}

// CodeMail renders the one-time-code email: its subject, plain-text body
// and HTML body (escaped by html/template).
func CodeMail(d MailData) (subject, text, html string, err error) {
	var t, h bytes.Buffer
	if err := mailText.Execute(&t, d); err != nil {
		return "", "", "", err
	}
	if err := mailHTML.Execute(&h, d); err != nil {
		return "", "", "", err
	}
	return "Your " + d.Host + " verification code", t.String(), h.String(), nil
}
