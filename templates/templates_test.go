package templates

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

const csrf = "csrf-TOKEN-123"

func newTestRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return r
}

func render(t *testing.T, r *Renderer, status int, page string, data any) (*httptest.ResponseRecorder, string) {
	t.Helper()
	w := httptest.NewRecorder()
	r.Render(w, status, page, data)
	return w, w.Body.String()
}

// tag is one start tag: its name and attributes (a valueless attribute
// maps to "").
type tag struct {
	name  string
	attrs map[string]string
	pos   int
}

func (t tag) has(a string) bool { _, ok := t.attrs[a]; return ok }

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s>"=]+(?:="[^"]*")?)*)\s*>`)
	attrRE = regexp.MustCompile(`([^\s>"=]+)(?:="([^"]*)")?`)
)

func tags(body, name string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatchIndex(body, -1) {
		n := body[m[2]:m[3]]
		if !strings.EqualFold(n, name) {
			continue
		}
		t := tag{name: n, attrs: map[string]string{}, pos: m[0]}
		for _, a := range attrRE.FindAllStringSubmatch(body[m[4]:m[5]], -1) {
			t.attrs[a[1]] = a[2]
		}
		out = append(out, t)
	}
	return out
}

// withAttr returns the tags named name whose attribute a equals v.
func withAttr(body, name, a, v string) []tag {
	var out []tag
	for _, t := range tags(body, name) {
		if val, ok := t.attrs[a]; ok && val == v {
			out = append(out, t)
		}
	}
	return out
}

// forms returns the body of every <form>…</form>, opening tag included.
func forms(body string) []string {
	var out []string
	for rest := body; ; {
		i := strings.Index(rest, "<form")
		if i < 0 {
			return out
		}
		j := strings.Index(rest[i:], "</form>")
		if j < 0 {
			return append(out, rest[i:])
		}
		out = append(out, rest[i:i+j])
		rest = rest[i+j:]
	}
}

func page(title string) Page {
	return Page{Title: title, CSRF: csrf, ClientName: "Acme Bank"}
}

func withError(p Page) Page {
	p.Error = "That code is not right."
	return p
}

// samples returns one value of every page's data with everything set.
func samples() map[string]func(Page) any {
	return map[string]func(Page) any{
		PageLogin: func(p Page) any {
			return LoginData{Page: p, Action: "/login/submit", Username: "alice", CancelAction: "/login/cancel", ForgotURL: "/reset?from=f", RegisterURL: "/register?from=f"}
		},
		PageCode: func(p Page) any {
			return CodeData{Page: p, Factor: "totp", Action: "/step/totp", Hint: "Open your app.",
				Alternatives: []FactorLink{
					{Factor: "sms", Label: "Text me a code", URL: "/step/sms"},
					{Factor: "recovery", Label: "Use a recovery code", URL: "/step/recovery"},
				},
				CancelAction: "/step/cancel", Step: "Step-up required for Acme Bank: confirm it is you."}
		},
		PageEnrollTOTP: func(p Page) any {
			return EnrollTOTPData{Page: p, Action: "/enroll/totp", Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
				QRDataURI: "data:image/png;base64,iVBORw0KGgo=", CancelAction: "/enroll/skip"}
		},
		PageEnrollPhone: func(p Page) any {
			return EnrollPhoneData{Page: p, PhoneAction: "/enroll/phone", Phone: "+15555550100", CodeAction: "/enroll/sms",
				ResendAction: "/resend/enroll-sms", CancelAction: "/enroll/skip",
				Alternatives: []FactorLink{{Factor: "totp", Label: "An authenticator app", URL: "/enroll?f=totp"}}}
		},
		PageInfo: func(p Page) any {
			return InfoData{Page: p, Message: "Store these codes safely.",
				RecoveryCodes: []string{"abcd-efgh", "ijkl-mnop"}, ContinueURL: "/continue"}
		},
		PageError: func(p Page) any {
			return ErrorData{Page: p, Message: "The redirect URI is not registered for this client."}
		},
		PageLogout: func(p Page) any {
			return LogoutData{Page: p, Action: "/logout", ClientID: "spa", PostLogoutURI: "https://rp.example.com/bye", State: "st-1"}
		},
		PageWebAuthn: func(p Page) any {
			return WebAuthnData{Page: p, Ceremony: Ceremony{Kind: "get", Begin: "/w/begin", Finish: "/w/finish"},
				Alternatives: []FactorLink{{Factor: "totp", Label: "Authenticator app", URL: "/step/totp"}},
				CancelAction: "/step/cancel", Step: "Step-up required."}
		},
		PageEnrollPasskey: func(p Page) any {
			return EnrollPasskeyData{Page: p, Ceremony: Ceremony{Kind: "create", Begin: "/e/begin", Finish: "/e/finish"},
				CancelAction: "/step/cancel", Step: "Acme asks for a passkey."}
		},
		PageCIBA: func(p Page) any {
			return CIBAData{Page: p, BindingMessage: "Withdraw 10.00", Level: "phr", ApproveAction: "/login/x/ciba/approve", DenyAction: "/login/x/ciba/deny"}
		},
		PageCIBAOpen: func(p Page) any {
			return CIBAOpenData{Page: p, Action: "/ciba/x.y"}
		},
		PageEmailForm: func(p Page) any {
			return EmailFormData{Page: p, Intro: "We will email you a code.", Action: "/reset", Email: "a@example.com",
				Hidden: map[string]string{"from": "f1"}, CancelURL: "/login/f1"}
		},
		PageNewPassword: func(p Page) any {
			return NewPasswordData{Page: p, Intro: "Your code was right.", Action: "/reset/x/password", Username: "alice",
				MinLength: 8, Pending: "p", CancelURL: "/account"}
		},
		PageAccount: func(p Page) any {
			return AccountData{Page: p, Username: "alice", Name: "Alice", Notice: "Done.", VerifyAction: "/account/verify",
				PasswordAction: "/account/password", AccountEmail: "alice@example.com", AddressAction: "/account/address",
				HasPassword: true, TOTPOn: true, TOTP: true, TOTPAction: "/account/totp/new", TOTPRemove: "/account/totp/remove",
				RecoveryOn: true, RecoveryLeft: 3, RecoveryAction: "/account/recovery",
				PhoneOn: true, Phone: "+1••••••0100", PhoneAction: "/account/phone", PhoneRemove: "/account/phone/remove",
				EmailOn: true, Email: "a•••@example.com", EmailOnAction: "/account/email/on", EmailOffAction: "/account/email/off",
				PasskeysOn: true, PasskeyBegin: "/account/passkeys/begin", PasskeyFinish: "/account/passkeys/finish",
				Passkeys: []PasskeyRow{{ID: "cred1", Name: "YubiKey", Created: "2026-01-01", UV: true, Hardware: true,
					RenameAction: "/account/passkeys/cred1/rename", RemoveAction: "/account/passkeys/cred1/remove"}},
				Sessions: []SessionRow{{Created: "2026-01-01", LastSeen: "2026-01-02", Current: true, RevokeAction: "/account/sessions/h/revoke"}}}
		},
	}
}

func TestEveryTemplateParses(t *testing.T) {
	r := newTestRenderer(t)
	want := []string{PageAccount, PageCIBA, PageCIBAOpen, PageCode, PageEmailForm, PageEnrollPasskey, PageEnrollPhone, PageEnrollTOTP, PageError, PageInfo, PageLogin, PageLogout, PageNewPassword, PageWebAuthn}
	if got := r.Pages(); !slices.Equal(got, want) {
		t.Errorf("Pages() = %v, want %v", got, want)
	}
	if len(samples()) != len(want) {
		t.Errorf("samples cover %d pages, want %d", len(samples()), len(want))
	}
}

func TestNewRejectsBrokenTemplates(t *testing.T) {
	layout, _ := FS.ReadFile(layoutFile)
	for name, files := range map[string]fstest.MapFS{
		"syntax error": {layoutFile: {Data: layout}, "bad.html": {Data: []byte(`{{define "content"}}{{if}}{{end}}`)}},
		"no content":   {layoutFile: {Data: layout}, "bad.html": {Data: []byte(`<p>hi</p>`)}},
		"no layout":    {"bad.html": {Data: []byte(`{{define "content"}}{{end}}`)}},
	} {
		if _, err := newRenderer(files, "/static/", Options{}); err == nil {
			t.Errorf("%s: newRenderer succeeded, want an error", name)
		}
	}
}

func TestCommonStructure(t *testing.T) {
	r := newTestRenderer(t)
	for name, mk := range samples() {
		for _, status := range []int{http.StatusOK, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusBadRequest} {
			w, body := render(t, r, status, name, mk(page("Title")))
			if w.Code != status {
				t.Errorf("%s: status = %d, want %d", name, w.Code, status)
			}
			for k, v := range map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Cache-Control":           "no-store",
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
			} {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", name, k, got, v)
				}
			}
			if strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action") {
				t.Errorf("%s: CSP has form-action, which would block redirects to relying parties", name)
			}
			if status != http.StatusOK {
				continue
			}
			if !strings.HasPrefix(body, "<!doctype html>") {
				t.Errorf("%s: body does not start with a doctype", name)
			}
			for _, want := range []string{
				`<html lang="en">`, `<meta charset="utf-8">`,
				`<meta name="viewport" content="width=device-width, initial-scale=1">`,
				`<title>Title · stepup</title>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("%s: missing %s", name, want)
				}
			}
			css := withAttr(body, "link", "rel", "stylesheet")
			if len(css) != 1 || !regexp.MustCompile(`^/static/style\.css\?v=[0-9a-f]{12}$`).MatchString(css[0].attrs["href"]) {
				t.Errorf("%s: stylesheet links = %v", name, css)
			}
			// No external resources, no inline script or style (CSP).
			// The only script is the ceremony code of static/, with no
			// inline body.
			for _, tg := range tags(body, "script") {
				if !regexp.MustCompile(`^/static/passkey\.js\?v=[0-9a-f]{12}$`).MatchString(tg.attrs["src"]) {
					t.Errorf("%s: script %v is not static/passkey.js", name, tg.attrs)
				}
			}
			if strings.Count(body, "<script") != strings.Count(body, "></script>") {
				t.Errorf("%s: inline script", name)
			}
			for _, bad := range []string{"style=", "<style", "@import", "//fonts.", "cdn"} {
				if strings.Contains(body, bad) {
					t.Errorf("%s: body contains %q", name, bad)
				}
			}
			for _, el := range []string{"link", "img", "script"} {
				for _, tg := range tags(body, el) {
					for _, a := range []string{"src", "href"} {
						if v := tg.attrs[a]; strings.Contains(v, "//") {
							t.Errorf("%s: <%s %s=%q> loads an external resource", name, el, a, v)
						}
					}
				}
			}
		}
	}
}

func TestEveryFormHasCSRF(t *testing.T) {
	r := newTestRenderer(t)
	for name, mk := range samples() {
		_, body := render(t, r, 200, name, mk(page("")))
		fs := forms(body)
		if name != PageInfo && name != PageError && len(fs) == 0 {
			t.Errorf("%s: no form", name)
		}
		for i, f := range fs {
			tgs := tags(f, "form")
			if len(tgs) != 1 || tgs[0].attrs["method"] != "post" {
				t.Errorf("%s: form %d is not method=post: %v", name, i, tgs)
			}
			hidden := withAttr(f, "input", "name", "csrf_token")
			if len(hidden) != 1 || hidden[0].attrs["type"] != "hidden" || hidden[0].attrs["value"] != csrf {
				t.Errorf("%s: form %d csrf_token inputs = %v", name, i, hidden)
			}
		}
	}
}

func TestAlertOnlyWithError(t *testing.T) {
	r := newTestRenderer(t)
	for name, mk := range samples() {
		_, body := render(t, r, 401, name, mk(page("")))
		if n := strings.Count(body, `role="alert"`); n != 0 {
			t.Errorf("%s without Error: %d role=alert elements", name, n)
		}
		_, body = render(t, r, 401, name, mk(withError(page(""))))
		if n := strings.Count(body, `role="alert"`); n != 1 {
			t.Errorf("%s with Error: %d role=alert elements, want 1", name, n)
		}
		if !regexp.MustCompile(`role="alert">That code is not right\.</`).MatchString(body) {
			t.Errorf("%s: the alert does not hold the error text", name)
		}
	}
}

func TestLockedStatus(t *testing.T) {
	r := newTestRenderer(t)
	p := withError(page(""))
	p.Status = "locked"
	_, body := render(t, r, http.StatusTooManyRequests, PageLogin, LoginData{Page: p, Action: "/login"})
	if len(withAttr(body, "main", "data-status", "locked")) != 1 {
		t.Error(`locked login page has no <main data-status="locked">`)
	}
	_, body = render(t, r, 200, PageLogin, LoginData{Page: page(""), Action: "/login"})
	if strings.Contains(body, "data-status") {
		t.Error("data-status present without Status")
	}
}

func TestLoginPage(t *testing.T) {
	r := newTestRenderer(t)
	_, body := render(t, r, 200, PageLogin, LoginData{Page: page(""), Action: "/login/submit", Username: "alice", CancelAction: "/login/cancel"})

	user := withAttr(body, "input", "autocomplete", "username")
	if len(user) != 1 || user[0].attrs["name"] != "username" || user[0].attrs["value"] != "alice" {
		t.Errorf(`username inputs = %v, want one name="username" autocomplete="username"`, user)
	}
	pw := withAttr(body, "input", "autocomplete", "current-password")
	if len(pw) != 1 || pw[0].attrs["name"] != "password" || pw[0].attrs["type"] != "password" {
		t.Errorf(`password inputs = %v, want one name="password" type="password"`, pw)
	}
	for _, id := range []string{"username", "password"} {
		if len(withAttr(body, "label", "for", id)) != 1 {
			t.Errorf("no <label for=%q>", id)
		}
	}
	fs := forms(body)
	if len(fs) != 2 || tags(fs[0], "form")[0].attrs["action"] != "/login/submit" {
		t.Fatalf("forms = %d, want login then cancel", len(fs))
	}
	if !strings.Contains(fs[0], `type="submit"`) {
		t.Error("login form has no submit button")
	}
	cancel := withAttr(body, "button", "data-action", "cancel")
	if len(cancel) != 1 || !strings.Contains(fs[1], `data-action="cancel"`) || tags(fs[1], "form")[0].attrs["action"] != "/login/cancel" {
		t.Errorf("cancel control: %v in form %q", cancel, fs[1])
	}

	_, body = render(t, r, 200, PageLogin, LoginData{Page: page(""), Action: "/login/submit"})
	if strings.Contains(body, `data-action="cancel"`) {
		t.Error("cancel shown without CancelAction")
	}
	if len(forms(body)) != 1 {
		t.Error("cancel form rendered without CancelAction")
	}
}

func TestUserInputIsEscaped(t *testing.T) {
	r := newTestRenderer(t)
	evil := `"><script>alert(1)</script>`
	p := Page{CSRF: evil, Error: evil, ClientName: evil, Title: evil}
	cases := map[string]any{
		PageLogin: LoginData{Page: p, Action: "/login", Username: evil},
		PageCode: CodeData{Page: p, Factor: "totp", Action: "/c", Hint: evil, Step: evil,
			Alternatives: []FactorLink{{Factor: evil, Label: evil, URL: "javascript:alert(1)"}}},
		PageEnrollTOTP: EnrollTOTPData{Page: p, Action: "/e", Secret: evil},
		PageEnrollPhone: EnrollPhoneData{Page: p, PhoneAction: "/p", Phone: evil, CodeAction: "/c",
			Alternatives: []FactorLink{{Factor: evil, Label: evil, URL: "javascript:alert(1)"}}},
		PageInfo:   InfoData{Page: p, Message: evil, RecoveryCodes: []string{evil}, ContinueURL: "javascript:alert(1)"},
		PageError:  ErrorData{Page: p, Message: evil},
		PageLogout: LogoutData{Page: p, Action: "/logout", ClientID: evil, PostLogoutURI: evil, State: evil},
	}
	for name, data := range cases {
		w, body := render(t, r, 200, name, data)
		if w.Code != 200 {
			t.Fatalf("%s: status %d", name, w.Code)
		}
		if strings.Contains(body, "<script") || strings.Contains(body, `javascript:`) {
			t.Errorf("%s: user input not escaped:\n%s", name, body)
		}
	}
	_, body := render(t, r, 200, PageLogin, LoginData{Page: page(""), Username: "<script>"})
	if !strings.Contains(body, `value="&lt;script&gt;"`) {
		t.Error(`Username "<script>" not escaped as &lt;script&gt;`)
	}
}

func TestCodePage(t *testing.T) {
	r := newTestRenderer(t)
	for _, factor := range []string{"totp", "sms", "email", "recovery"} {
		t.Run(factor, func(t *testing.T) {
			data := samples()[PageCode](page("")).(CodeData)
			data.Factor = factor
			_, body := render(t, r, 200, PageCode, data)

			codeForms := withAttr(body, "form", "data-factor", factor)
			if len(codeForms) != 1 || codeForms[0].attrs["action"] != "/step/totp" {
				t.Fatalf("forms with data-factor=%q: %v", factor, codeForms)
			}
			in := withAttr(body, "input", "autocomplete", "one-time-code")
			if len(in) != 1 || in[0].attrs["name"] != "code" {
				t.Fatalf(`one-time-code inputs = %v, want one name="code"`, in)
			}
			wantMode := "numeric"
			if factor == "recovery" {
				wantMode = "text"
			}
			if got := in[0].attrs["inputmode"]; got != wantMode {
				t.Errorf("inputmode = %q, want %q", got, wantMode)
			}
			if in[0].pos < codeForms[0].pos || len(withAttr(body, "label", "for", in[0].attrs["id"])) != 1 {
				t.Error("code input is outside its form or has no label")
			}
			links := tags(body, "a")
			var alt []tag
			for _, l := range links {
				if l.has("data-factor") {
					alt = append(alt, l)
				}
			}
			if len(alt) != 2 || alt[0].attrs["data-factor"] != "sms" || alt[0].attrs["href"] != "/step/sms" ||
				alt[1].attrs["data-factor"] != "recovery" || alt[1].attrs["href"] != "/step/recovery" {
				t.Errorf("alternative links = %v", alt)
			}
			if !strings.Contains(body, `data-factor="sms">Text me a code</a>`) {
				t.Error("alternative link label missing")
			}
			if len(withAttr(body, "button", "data-action", "cancel")) != 1 {
				t.Error(`no data-action="cancel" button`)
			}
			if !strings.Contains(body, "Step-up required for Acme Bank: confirm it is you.") {
				t.Error("Step text missing")
			}
		})
	}

	_, body := render(t, r, 200, PageCode, CodeData{Page: page(""), Factor: "sms", Action: "/step/sms"})
	if strings.Contains(body, `data-action="cancel"`) {
		t.Error("cancel shown without CancelAction")
	}
	if strings.Contains(body, "alternatives") || strings.Contains(body, "<a href=\"/step") {
		t.Error("alternatives shown without Alternatives")
	}
}

func TestEnrollTOTPPage(t *testing.T) {
	r := newTestRenderer(t)
	data := samples()[PageEnrollTOTP](page("")).(EnrollTOTPData)
	_, body := render(t, r, 200, PageEnrollTOTP, data)

	m := regexp.MustCompile(`<code[^>]*\sdata-totp-secret[\s>][^>]*>?([^<]*)</code>`).FindStringSubmatch(body)
	if m == nil || m[1] != data.Secret {
		t.Errorf("data-totp-secret element = %v, want text %q", m, data.Secret)
	}
	imgs := tags(body, "img")
	if len(imgs) != 1 || imgs[0].attrs["src"] != string(data.QRDataURI) || imgs[0].attrs["alt"] == "" {
		t.Errorf("QR image = %v, want src=data URI with alt text", imgs)
	}
	f := withAttr(body, "form", "data-factor", "totp")
	if len(f) != 1 || f[0].attrs["action"] != "/enroll/totp" {
		t.Errorf(`confirm forms = %v`, f)
	}
	if in := withAttr(body, "input", "autocomplete", "one-time-code"); len(in) != 1 || in[0].attrs["name"] != "code" {
		t.Errorf("one-time-code inputs = %v", in)
	}
	if len(withAttr(body, "button", "data-action", "cancel")) != 1 {
		t.Error(`skippable enrollment has no data-action="cancel"`)
	}

	data.CancelAction = ""
	_, body = render(t, r, 200, PageEnrollTOTP, data)
	if strings.Contains(body, `data-action="cancel"`) {
		t.Error("forced enrollment shows a cancel control")
	}
}

func TestInfoPage(t *testing.T) {
	r := newTestRenderer(t)
	data := samples()[PageInfo](page("Recovery codes")).(InfoData)
	_, body := render(t, r, 200, PageInfo, data)
	cont := withAttr(body, "a", "data-action", "continue")
	if len(cont) != 1 || cont[0].attrs["href"] != "/continue" {
		t.Errorf(`data-action="continue" links = %v`, cont)
	}
	got := regexp.MustCompile(`data-recovery-code>([^<]*)<`).FindAllStringSubmatch(body, -1)
	if len(got) != 2 || got[0][1] != "abcd-efgh" || got[1][1] != "ijkl-mnop" {
		t.Errorf("data-recovery-code elements = %v", got)
	}
	if len(forms(body)) != 0 {
		t.Error("info page has a form")
	}

	_, body = render(t, r, 200, PageInfo, InfoData{Page: page(""), Message: "Done."})
	if strings.Contains(body, "data-action") || strings.Contains(body, "data-recovery-code") {
		t.Error("continue or recovery codes shown without data")
	}
}

func TestErrorPage(t *testing.T) {
	r := newTestRenderer(t)
	w, body := render(t, r, http.StatusBadRequest, PageError, ErrorData{Page: Page{}, Message: "Unknown client."})
	if w.Code != http.StatusBadRequest || !strings.Contains(body, "Unknown client.") {
		t.Errorf("error page: status %d, body %q", w.Code, body)
	}
	if strings.Contains(strings.ToLower(body), "http-equiv") || w.Header().Get("Location") != "" {
		t.Error("error page redirects")
	}
}

func TestLogoutPage(t *testing.T) {
	r := newTestRenderer(t)
	data := samples()[PageLogout](page("")).(LogoutData)
	_, body := render(t, r, 200, PageLogout, data)
	fs := forms(body)
	if len(fs) != 1 {
		t.Fatalf("%d forms, want 1", len(fs))
	}
	for name, want := range map[string]string{"client_id": data.ClientID, "post_logout_redirect_uri": data.PostLogoutURI, "state": data.State} {
		in := withAttr(fs[0], "input", "name", name)
		if len(in) != 1 || in[0].attrs["type"] != "hidden" || in[0].attrs["value"] != want {
			t.Errorf("hidden %s = %v, want %q", name, in, want)
		}
	}
	if !strings.Contains(body, "Sign out?") || !strings.Contains(body, `>Stay signed in</a>`) {
		t.Error("missing heading or stay link")
	}

	_, body = render(t, r, 200, PageLogout, LogoutData{Page: page(""), Action: "/logout", StayURL: "/account"})
	if strings.Contains(body, "post_logout_redirect_uri") || strings.Contains(body, `name="state"`) || strings.Contains(body, "client_id") {
		t.Error("empty hidden inputs rendered")
	}
	if !strings.Contains(body, `<a href="/account" data-action="stay">Stay signed in</a>`) {
		t.Error("StayURL not used")
	}
}

func TestRenderFailureIsOpaque(t *testing.T) {
	var logs bytes.Buffer
	r := newTestRenderer(t)
	r.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for name, c := range map[string]struct {
		page string
		data any
	}{
		"unknown page":    {"nope", LoginData{}},
		"wrong data type": {PageLogin, CodeData{Page: Page{Error: "secret detail"}}},
		"nil data":        {PageCode, nil},
	} {
		w, body := render(t, r, http.StatusOK, c.page, c.data)
		if w.Code != http.StatusInternalServerError {
			t.Errorf("%s: status = %d, want 500", name, w.Code)
		}
		if body != "Internal Server Error\n" {
			t.Errorf("%s: body = %q, want a fixed message", name, body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type = %q", name, ct)
		}
	}
	if !strings.Contains(logs.String(), "rendering page failed") {
		t.Error("render failure not logged")
	}
}

func TestContentLength(t *testing.T) {
	r := newTestRenderer(t)
	w, body := render(t, r, 200, PageError, ErrorData{Message: "x"})
	if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length = %s, body is %d bytes", got, len(body))
	}
}

func BenchmarkRenderLogin(b *testing.B) {
	r, err := New()
	if err != nil {
		b.Fatal(err)
	}
	data := LoginData{Page: page(""), Action: "/login", Username: "alice", CancelAction: "/cancel"}
	for b.Loop() {
		r.Render(httptest.NewRecorder(), 200, PageLogin, data)
	}
}

// TestPasskeyHooks checks the WebAuthn hooks of PRODUCT.md §5: a
// data-action="passkey" control on the login page (with conditional UI on
// the username input), on the webauthn step-up form (data-factor=
// "webauthn") and on /account; the ceremony script comes from /static.
func TestPasskeyHooks(t *testing.T) {
	r := newTestRenderer(t)
	_, body := render(t, r, 200, PageLogin, LoginData{Page: page(""), Action: "/login/submit",
		Passkey: &Ceremony{Kind: "get", Begin: "/b", Finish: "/f"}})
	for _, want := range []string{`autocomplete="username webauthn"`, `data-action="passkey"`, `data-begin="/b"`, `data-csrf="csrf-TOKEN-123"`, `<script src="/static/passkey.js?v=`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page with passkeys lacks %s:\n%s", want, body)
		}
	}
	_, body = render(t, r, 200, PageLogin, LoginData{Page: page(""), Action: "/login/submit"})
	if strings.Contains(body, "webauthn") || strings.Contains(body, `data-action="passkey"`) || strings.Contains(body, "<script") {
		t.Errorf("login page without passkeys offers them:\n%s", body)
	}
	_, body = render(t, r, 200, PageWebAuthn, samples()[PageWebAuthn](page("")))
	for _, want := range []string{`data-factor="webauthn"`, `data-action="passkey"`, `data-action="cancel"`, `data-factor="totp"`} {
		if !strings.Contains(body, want) {
			t.Errorf("webauthn page lacks %s", want)
		}
	}
	_, body = render(t, r, 200, PageAccount, samples()[PageAccount](page("")))
	for _, want := range []string{`data-ceremony="create"`, `data-action="passkey"`, `data-action="remove"`, `data-action="rename"`, `data-action="revoke"`, `data-action="verify"`, `data-action="totp"`, `data-action="recovery-codes"`,
		`data-action="phone"`, `data-action="remove-phone"`, `data-phone=`, `data-action="email-on"`, `data-email-mfa="off"`} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %s", want)
		}
	}
}
