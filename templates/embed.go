// Package templates renders stepup's hosted pages: plain server-side HTML
// that works without JavaScript, styled by package static.
//
// The pages carry stable automation hooks (PRODUCT.md §5) that tests and
// customer scripts rely on: autocomplete="username" / "current-password" /
// "one-time-code", data-factor, data-action="cancel" / "continue",
// data-totp-secret, data-recovery-code and role="alert". Form fields are
// csrf_token, username, password and code.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/stepup-dev/stepup/i18n"
	"github.com/stepup-dev/stepup/static"
)

// FS holds the page templates: layout.html and one file per page.
//
//go:embed *.html
var FS embed.FS

// The pages, by the name Render takes, and the data type each expects.
const (
	PageLogin         = "login"          // LoginData
	PageCode          = "code"           // CodeData
	PageEnrollTOTP    = "enroll_totp"    // EnrollTOTPData
	PageInfo          = "info"           // InfoData
	PageError         = "error"          // ErrorData
	PageLogout        = "logout"         // LogoutData
	PageWebAuthn      = "webauthn"       // WebAuthnData
	PageAccount       = "account"        // AccountData
	PageEnrollPasskey = "enroll_passkey" // EnrollPasskeyData
	PageEnrollPhone   = "enroll_phone"   // EnrollPhoneData
	PageCIBA          = "ciba"           // CIBAData
	PageCIBAOpen      = "ciba_open"      // CIBAOpenData
	PageEmailForm     = "email_form"     // EmailFormData
	PageNewPassword   = "new_password"   // NewPasswordData
)

const layoutFile = "layout.html"

// securityHeaders are set on every rendered page. There is no form-action
// directive: after a POST the server redirects to relying parties, and
// browsers apply form-action to that redirect too.
var securityHeaders = map[string]string{
	"Content-Type":            "text/html; charset=utf-8",
	"Cache-Control":           "no-store",
	"X-Frame-Options":         "DENY",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
}

// Renderer renders the pages. It is safe for concurrent use.
type Renderer struct {
	brand *branding
	csp   string
	// pages: language → page name → template. Each language's set is
	// parsed with that language's i18n functions ({{t "key"}}), so a
	// render needs no per-request cloning.
	pages map[string]map[string]*template.Template
	// Logger receives template execution errors; nil means slog.Default().
	Logger *slog.Logger
}

// New parses every page once: layout.html together with each other .html
// file in FS, under the file's name without extension. Stylesheet links
// point at /static/<file>?v=<content hash>.
func New() (*Renderer, error) {
	return newRenderer(FS, "/static/", Options{})
}

// NewWith is New with branding: the overrides directory's templates in
// place of the embedded ones, and the brands' names, logos and colours.
// An override that does not parse is an error naming branding.dir.
func NewWith(o Options) (*Renderer, error) {
	files := fs.FS(FS)
	if o.Dir != "" {
		files = overlay{over: os.DirFS(o.Dir), base: FS}
	}
	r, err := newRenderer(files, "/static/", o)
	if err != nil && o.Dir != "" {
		return nil, fmt.Errorf("branding.dir %s: %w", o.Dir, err)
	}
	return r, err
}

func newRenderer(files fs.FS, staticPrefix string, o Options) (*Renderer, error) {
	version, err := assetVersion()
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: listing pages: %w", err)
	}
	br, err := newBranding(o)
	if err != nil {
		return nil, err
	}
	csp := securityHeaders["Content-Security-Policy"]
	if len(br.imgSrc) > 0 {
		csp = strings.Replace(csp, "img-src 'self' data:", "img-src 'self' data: "+strings.Join(br.imgSrc, " "), 1)
	}
	r := &Renderer{pages: map[string]map[string]*template.Template{}, brand: br, csp: csp}
	for _, lang := range i18n.Languages() {
		funcs := i18n.For(lang).Funcs()
		funcs["asset"] = func(name string) string { return staticPrefix + name + "?v=" + version }
		funcs["brand"] = br.of
		set := map[string]*template.Template{}
		for _, name := range names {
			if name == layoutFile {
				continue
			}
			t, err := template.New(name).Funcs(funcs).ParseFS(files, layoutFile, name)
			if err != nil {
				return nil, fmt.Errorf("templates: parsing %s: %w", name, err)
			}
			if t.Lookup("content") == nil {
				return nil, fmt.Errorf("templates: %s defines no \"content\" template", name)
			}
			set[strings.TrimSuffix(name, path.Ext(name))] = t
		}
		r.pages[lang] = set
	}
	return r, nil
}

// assetVersion is a short hash of the static files, so a changed
// stylesheet gets a new URL and the old one can be cached forever.
func assetVersion() (string, error) {
	names, err := fs.Glob(static.FS, "*")
	if err != nil {
		return "", fmt.Errorf("templates: listing static files: %w", err)
	}
	h := sha256.New()
	for _, name := range names {
		b, err := fs.ReadFile(static.FS, name)
		if err != nil {
			return "", fmt.Errorf("templates: reading static %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Pages returns the names of the parsed pages, sorted.
func (r *Renderer) Pages() []string {
	names := make([]string, 0, len(r.pages[i18n.Default]))
	for name := range r.pages[i18n.Default] {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Render writes page with data and status. The page is rendered into a
// buffer first, so a template error never leaves a half-written page: it
// answers 500 with a plain-text body that reveals nothing, and logs the
// error. Every page carries Content-Type text/html, Cache-Control no-store,
// X-Frame-Options DENY, nosniff, Referrer-Policy no-referrer and a CSP
// allowing only same-origin resources and data: images.
func (r *Renderer) Render(w http.ResponseWriter, status int, page string, data any) {
	var buf bytes.Buffer
	lang := i18n.Default
	if p, ok := data.(interface{ PageLang() string }); ok && r.pages[p.PageLang()] != nil {
		lang = p.PageLang()
	}
	t, ok := r.pages[lang][page]
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("unknown page %q", page)
	case data == nil:
		// Nil would render a page without a CSRF token rather than fail.
		err = errors.New("nil page data")
	default:
		err = t.ExecuteTemplate(&buf, "layout", data)
	}
	if err != nil {
		r.logger().Error("rendering page failed", "page", page, "err", err)
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("Internal Server Error\n"))
		return
	}
	h := w.Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Security-Policy", r.csp)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Branding serves /branding/: the brands' stylesheets and the overrides
// directory's files.
func (r *Renderer) Branding() http.Handler { return r.brand }

func (r *Renderer) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
