package server_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

// brandedEnv: the issuer is "Acme ID" with an overrides directory (a
// logo, a style.css, an error.html override); the client "floor" is
// "Acme Bank" in green with an https logo.
func brandedEnv(t *testing.T, localhost bool) *env {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"logo.svg":   `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32" fill="#0b5a2a"/></svg>`,
		"style.css":  `.brand-name { letter-spacing: 0.02em; }`,
		"error.html": `{{define "content"}}<h1>{{t (or .Title "error.title")}}</h1><p data-override>Acme support: +1 555 0100</p>{{with .Ref}}<p>{{th "error.ref" "Ref" .}}</p>{{end}}{{end}}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return newEnvWith(t, envOptions{localhost: localhost, mutate: func(c *config.Config) {
		c.Branding = config.Branding{Name: "Acme ID", LogoURL: "/branding/files/logo.svg", Dir: dir,
			Clients: []config.ClientBrand{{ID: "floor", Name: "Acme Bank", LogoURL: "https://cdn.example.com/bank.svg",
				Colors: config.BrandColors{Accent: "#0b5a2a", Background: "#eef2ee"}}}}
	}})
}

// Issue 15 item 6: per-issuer and per-client name, logo and colours, and
// a directory of template and CSS overrides.
func TestBranding(t *testing.T) {
	e := brandedEnv(t, false)
	// The client's brand: its name, logo and colours.
	b := e.browser()
	p := b.get(e.rp("floor", bankSecret).authURL(nil).url)
	if got := words(first(t, p, "brand name", hasAttr("data-brand-name", ""))); got != "Acme Bank" {
		t.Errorf("brand name %q, want Acme Bank", got)
	}
	if src, _ := attr(first(t, p, "logo", hasAttr("class", "brand-logo")), "src"); src != "https://cdn.example.com/bank.svg" {
		t.Errorf("logo %q", src)
	}
	if !strings.Contains(p.body, "<title>Sign in · Acme Bank</title>") {
		t.Errorf("title does not carry the brand:\n%s", excerpt(p.body))
	}
	var sheet string
	for _, n := range find(p.doc, hasAttr("rel", "stylesheet")) {
		if href, _ := attr(n, "href"); strings.HasPrefix(href, "/branding/client-") {
			sheet = href
		}
	}
	if css := fetch(t, e, sheet); !strings.Contains(css, "--accent: #0b5a2a;") || !strings.Contains(css, "--bg: #eef2ee;") {
		t.Errorf("client sheet %q: %q", sheet, css)
	}
	// The logo's origin is allowed by the page's CSP, nothing else is.
	req, _ := http.NewRequest(http.MethodGet, p.url.String(), nil)
	resp, err := e.ln.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.example.com;") {
		t.Errorf("CSP %q does not allow the logo's origin", csp)
	}

	// Another client gets the issuer's brand and the overrides directory.
	p = e.browser().get(e.rp("spa", "").authURL(nil).url)
	if got := words(first(t, p, "brand name", hasAttr("data-brand-name", ""))); got != "Acme ID" {
		t.Errorf("issuer brand %q, want Acme ID", got)
	}
	logo, _ := attr(first(t, p, "logo", hasAttr("class", "brand-logo")), "src")
	if svg := fetch(t, e, logo); !strings.Contains(svg, "<svg") {
		t.Errorf("logo %s from branding.dir: %q", logo, svg)
	}
	if css := fetch(t, e, "/branding/files/style.css"); !strings.Contains(css, "letter-spacing") {
		t.Errorf("branding.dir style.css: %q", css)
	}
	if !strings.Contains(p.body, `href="/branding/files/style.css?v=`) {
		t.Error("the override stylesheet is not linked")
	}
	// A template of the directory replaces the embedded one; templates
	// themselves are never served.
	p = e.browser().get(e.issuer + "/authorize")
	if p.status != http.StatusBadRequest || len(find(p.doc, hasAttr("data-override", ""))) != 1 {
		t.Errorf("error.html override not used (status %d):\n%s", p.status, excerpt(p.body))
	}
	if resp, err := e.ln.Client().Get(e.issuer + "/branding/files/error.html"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a template of branding.dir is served: %v %v", resp.StatusCode, err)
	}
}

func fetch(t *testing.T, e *env, path string) string {
	t.Helper()
	resp, err := e.ln.Client().Get(e.issuer + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return string(b)
}
