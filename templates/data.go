package templates

import "html/template"

// Page is what every page shows besides its own content. Each page's data
// type embeds it.
type Page struct {
	// Title is the page title (the <title> element and the heading when the
	// page has no fixed one).
	Title string
	// CSRF is the token every form posts back as csrf_token.
	CSRF string
	// Error, when set, is shown in an element with role="alert": a failed
	// attempt re-renders its form with it (status 401 or 429).
	Error string
	// Status is "" or "locked" (too many failures; the form still works
	// once the lockout window has passed). It is exposed as data-status on
	// the <main> element.
	Status string
	// ClientName names the relying party the user is signing in to, when
	// there is one.
	ClientName string
	// SignedInAs names the signed-in user on the pages of a step-up
	// ("Signed in as alice · Not you?"); NotYouURL signs out.
	SignedInAs, NotYouURL string
	// NotYouPost makes "Not you?" a form posting csrf_token to NotYouURL
	// (the flow's switch) rather than a link.
	NotYouPost bool
	// AccountURL, when set, adds an "Account" link (data-action=account)
	// beside "Not you?": the signed-in user's way to /account.
	AccountURL string
	// Client is the id of the client whose pages these are ("" for the
	// issuer's own): it picks the brand.
	Client string
	// Lang is the page's language (i18n.Match); "" is English. Every
	// text of the page comes from that language's catalogue.
	Lang string
}

// PageLang is the language Render renders the page in.
func (p Page) PageLang() string { return p.Lang }

// LoginData is the data of the username/password page (PageLogin).
type LoginData struct {
	Page
	// Action is where the form posts username, password and csrf_token.
	Action string
	// Username pre-fills the username input (login_hint, or the previous
	// attempt).
	Username string
	// CancelAction, when set, shows a cancel form (data-action="cancel")
	// that posts csrf_token there.
	CancelAction string
	// Passkey, when set, offers passwordless sign-in: a data-action=
	// "passkey" button, and conditional UI on the username input
	// (autocomplete="username webauthn").
	Passkey *Ceremony
	// ForgotURL, when set, is a data-action="forgot" link (forgot
	// password); RegisterURL a data-action="register" link (registration:
	// open).
	ForgotURL, RegisterURL string
}

// Ceremony is what static/passkey.js needs to run a WebAuthn ceremony:
// the JSON endpoints that begin and finish it. The CSRF token goes in the
// X-CSRF-Token header.
type Ceremony struct {
	Begin  string
	Finish string
	// Kind is "get" (assertion) or "create" (registration).
	Kind string
}

// WebAuthnData is the data of the passkey step-up page (PageWebAuthn):
// a form with data-factor="webauthn" whose data-action="passkey" button
// runs the assertion.
type WebAuthnData struct {
	Page
	Ceremony     Ceremony
	Alternatives []FactorLink
	CancelAction string
	Step         string
}

// EnrollPasskeyData is the data of the in-flow passkey registration page
// (PageEnrollPasskey): a data-action="passkey" button that creates one,
// and a skip control (data-action="cancel") when enrollment may be
// skipped.
type EnrollPasskeyData struct {
	Page
	Ceremony     Ceremony
	CancelAction string
	Step         string
	// SkipFails: skipping can only end the sign-in unsuccessfully (the
	// level is essential, the client's floor, mfa.login: always); the
	// skip control then says so and reads "Cancel sign-in".
	SkipFails bool
}

// PasskeyRow is one passkey on the account page.
type PasskeyRow struct {
	ID, Name, Created, LastUsed string
	// Synced: backed up by a passkey provider; UV: verifies the user;
	// Hardware: attested as trusted hardware.
	Synced, UV, Hardware       bool
	RenameAction, RemoveAction string
}

// SessionRow is one session on the account page.
type SessionRow struct {
	// Device is "<browser> on <system>" ("" when unknown); Clients are
	// the applications' names.
	Device                              string
	Created, LastSeen, Clients, Methods string
	Current                             bool
	RevokeAction                        string
}

// AccountData is the data of the account security page (PageAccount).
type AccountData struct {
	Page
	Username, Name string
	// Notice confirms what was just done (role="status").
	Notice string
	// Fresh: the session was verified recently enough to change factors;
	// otherwise VerifyAction asks for that first.
	Fresh        bool
	VerifyAction string
	HasPassword  bool
	// TOTPOn: authenticator apps are enabled; TOTP: one is set up.
	TOTPOn, TOTP bool
	TOTPAction   string
	TOTPRemove   string
	// RecoveryOn: recovery codes are enabled; RecoveryLeft unused codes
	// remain; RecoveryAction makes a new set (shown once).
	RecoveryOn     bool
	RecoveryLeft   int
	RecoveryAction string
	// EmailOn: email codes can be a factor here. Email is the (masked)
	// address, "" when the account has none; EmailMFA: the user turned
	// email codes on. EmailOnAction sends a code that confirms turning
	// them on; EmailOffAction turns them off.
	EmailOn                       bool
	Email                         string
	EmailMFA                      bool
	EmailOnAction, EmailOffAction string
	// EmailRequired: the configuration turns email codes on for this
	// user (email_mfa: true), so there is no control to turn them off.
	EmailRequired bool
	// PhoneOn: SMS codes can be a factor here. Phone is the verified
	// number (masked), "" for none; PhoneAction texts a code to a new
	// number; PhoneRemove removes the number.
	PhoneOn                  bool
	Phone                    string
	PhoneAction, PhoneRemove string
	// PasskeysOn: passkeys can be used here.
	PasskeysOn                  bool
	PasskeyBegin, PasskeyFinish string
	Passkeys                    []PasskeyRow
	Sessions                    []SessionRow
	// PasswordAction asks for a new password (data-action=
	// "change-password"); AccountEmail is the account's address, in
	// data-account-email; AddressAction, when set, asks for a new one
	// (data-action="change-email").
	PasswordAction, AccountEmail, AddressAction string
}

// FactorLink offers another enrolled factor on a code page.
type FactorLink struct {
	Factor string // totp | sms | email | recovery | webauthn
	Label  string
	URL    string
}

// CodeData is the data of a one-time code page (PageCode): TOTP, SMS,
// email or recovery code.
type CodeData struct {
	Page
	// Factor is totp, sms, email or recovery; it is the form's data-factor.
	Factor string
	// Action is where the form posts code and csrf_token.
	Action string
	// Hint says where the code comes from ("Sent to +1 ••• 0100").
	Hint string
	// Alternatives are the user's other factors, each a link carrying
	// data-factor.
	Alternatives []FactorLink
	// CancelAction, when set, shows a cancel form (data-action="cancel").
	CancelAction string
	// Step explains a step-up ("Step-up required for Acme Bank: …").
	Step string
	// ResendAction, when set (SMS and email codes), shows a form
	// (data-action="resend") that asks for a new code.
	ResendAction string
	// CancelLink makes the cancel control a link to CancelAction (the
	// account page) instead of a form.
	CancelLink bool
	// Pending, when set, is posted back by the code and resend forms as
	// the hidden input "pending".
	Pending string
}

// EnrollTOTPData is the data of the authenticator-app enrollment page
// (PageEnrollTOTP).
type EnrollTOTPData struct {
	Page
	// Action is where the confirmation form posts code and csrf_token.
	Action string
	// Secret is the base32 secret, shown as text in data-totp-secret.
	Secret string
	// QRDataURI is a data:image/png;base64 URI of the QR code.
	QRDataURI template.URL
	// CancelAction, when set, shows a skip control (data-action="cancel");
	// "" means enrollment cannot be skipped.
	CancelAction string
	// CancelLink makes the cancel control a link to CancelAction (the
	// account page) instead of a form.
	CancelLink bool
	// Pending, when set, is posted back as the hidden input "pending"
	// (the sealed secret of an /account setup).
	Pending string
	// Alternatives are the other factors the user may enroll instead,
	// each a link carrying data-enroll.
	Alternatives []FactorLink
	// SkipFails: skipping can only end the sign-in unsuccessfully (the
	// level is essential, the client's floor, mfa.login: always); the
	// skip control then says so and reads "Cancel sign-in".
	SkipFails bool
}

// EnrollPhoneData is the data of the phone enrollment page
// (PageEnrollPhone): first a form for the number (data-enroll="sms"),
// then, once a code was texted to it, the code form (data-factor="sms").
type EnrollPhoneData struct {
	Page
	// PhoneAction is where the number form posts phone and csrf_token.
	PhoneAction string
	// Phone is the number being verified; "" shows the number form.
	Phone string
	// CodeAction is where the code form posts code and csrf_token.
	CodeAction string
	// ResendAction, when set, shows a form (data-action="resend") that
	// texts a new code.
	ResendAction string
	// CancelAction, when set, shows a skip control (data-action="cancel").
	CancelAction string
	// CancelLink makes the cancel control a link to CancelAction (the
	// account page) instead of a form.
	CancelLink bool
	// Pending, when set, is posted back by the code and resend forms as
	// the hidden input "pending" (the sealed number of an /account change).
	Pending string
	// Alternatives are the other factors the user may enroll instead,
	// each a link carrying data-enroll.
	Alternatives []FactorLink
	// SkipFails: skipping can only end the sign-in unsuccessfully (the
	// level is essential, the client's floor, mfa.login: always); the
	// skip control then says so and reads "Cancel sign-in".
	SkipFails bool
}

// InfoData is the data of a page that only informs (PageInfo), such as
// recovery codes shown once.
type InfoData struct {
	Page
	Message string
	// RecoveryCodes, when set, are listed each in an element carrying
	// data-recovery-code.
	RecoveryCodes []string
	// ContinueURL, when set, shows a data-action="continue" link to it,
	// labelled ContinueLabel (a catalogue key; "" is "Continue").
	ContinueURL   string
	ContinueLabel string
}

// ErrorData is the data of the error page (PageError), shown with a 4xx or
// 5xx status; it never redirects.
type ErrorData struct {
	Page
	Message string
	// Ref is the id to quote to support (also logged), in an element
	// carrying data-error-ref.
	Ref string
	// BackURL, when set, is a way back (data-action="back").
	BackURL string
}

// LogoutData is the data of the sign-out confirmation page (PageLogout).
type LogoutData struct {
	Page
	// Action is where the form posts csrf_token, client_id,
	// post_logout_redirect_uri and state.
	Action string
	// ClientID, PostLogoutURI and State are carried through the
	// confirmation as hidden inputs client_id, post_logout_redirect_uri and
	// state (each omitted when empty).
	ClientID      string
	PostLogoutURI string
	State         string
	// StayURL is the "stay signed in" link; "" links to /account.
	StayURL string
	// Username names the account that signs out ("" when none is
	// signed in).
	Username string
}

// CIBAData is the data of the approval page of a backchannel
// authentication request (PageCIBA), shown once the user has
// authenticated to the requested level: the client's name (Page's
// ClientName), the binding message and the level, with a
// data-action="approve" and a data-action="deny" button.
type CIBAData struct {
	Page
	BindingMessage string
	Level          string
	// ApproveAction and DenyAction are where the two forms post
	// csrf_token.
	ApproveAction, DenyAction string
}

// CIBAOpenData is the data of the page of an approval link nobody has
// opened yet (PageCIBAOpen): one data-action="continue" button whose form
// posts csrf_token to Action. It shows nothing of the request.
type CIBAOpenData struct {
	Page
	Action string
}

// EmailFormData is the data of a page that asks for an email address
// (PageEmailForm): forgot password, registration, a new address on
// /account. Its input has autocomplete="email" (PRODUCT.md §11).
type EmailFormData struct {
	Page
	// Intro explains what happens with the address.
	Intro string
	// Action is where the form posts email and csrf_token.
	Action string
	// Email pre-fills the input.
	Email string
	// Hidden are more hidden inputs the form posts back.
	Hidden map[string]string
	// Submit is the button's label ("" for Continue).
	Submit string
	// CancelURL, when set, shows a data-action="cancel" link to it.
	CancelURL string
}

// NewPasswordData is the data of the page where a user chooses a
// password (PageNewPassword): after a reset, at registration, on
// /account. Its input has autocomplete="new-password"; a refused
// password re-renders it with 400 and the reason in role="alert".
type NewPasswordData struct {
	Page
	Intro string
	// Action is where the form posts password and csrf_token.
	Action string
	// Username, when set, is shown in a read-only autocomplete="username"
	// input, so the user sees whose password this is and password
	// managers store it for the right account.
	Username string
	// MinLength is the policy's minimum, in characters.
	MinLength int
	// Pending, when set, is posted back as the hidden input "pending".
	Pending string
	Submit  string
	// CancelURL, when set, shows a data-action="cancel" link to it.
	CancelURL string
}
