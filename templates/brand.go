package templates

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
)

// Brand is how pages look for the issuer or one client: a name shown
// above the card and in the title, a logo, and light-theme colours
// (#rrggbb, "" keeps the built-in one).
type Brand struct {
	Name, LogoURL                  string
	Accent, AccentText, Background string
}

// Options change what NewWith builds.
type Options struct {
	// Dir is a directory of overrides: its *.html files replace the
	// embedded templates of the same name, its style.css is linked after
	// the built-in stylesheet, and its files are served under
	// /branding/files/.
	Dir string
	// Issuer is the brand of every page; Clients override it for the
	// pages of one client (by client id), field by field.
	Issuer  Brand
	Clients map[string]Brand
}

// brandView is what the layout gets from {{brand .Client}}.
type brandView struct {
	Name, LogoURL string
	// CSS is the URL of the brand's colour sheet ("" with no colours);
	// DirCSS the overrides directory's style.css.
	CSS, DirCSS string
}

// branding is the rendered form of Options: a view and a stylesheet per
// brand.
type branding struct {
	dir     string
	dirCSS  string
	issuer  *brandView
	clients map[string]*brandView
	sheets  map[string][]byte // /branding/<name>.css → body
	imgSrc  []string          // logo origins for the CSP
}

func newBranding(o Options) (*branding, error) {
	b := &branding{dir: o.Dir, clients: map[string]*brandView{}, sheets: map[string][]byte{}}
	if o.Dir != "" {
		if css, err := os.ReadFile(path.Join(o.Dir, "style.css")); err == nil {
			b.dirCSS = "/branding/files/style.css?v=" + short(css)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("branding.dir: %w", err)
		}
	}
	view := func(key string, br Brand) *brandView {
		v := &brandView{Name: br.Name, LogoURL: br.LogoURL, DirCSS: b.dirCSS}
		if css := brandSheet(br); css != "" {
			v.CSS = "/branding/" + key + ".css?v=" + short([]byte(css))
			b.sheets[key+".css"] = []byte(css)
		}
		if u, err := url.Parse(br.LogoURL); err == nil && u.Scheme == "https" && !slices.Contains(b.imgSrc, u.Scheme+"://"+u.Host) {
			b.imgSrc = append(b.imgSrc, u.Scheme+"://"+u.Host)
		}
		return v
	}
	b.issuer = view("issuer", o.Issuer)
	ids := make([]string, 0, len(o.Clients))
	for id := range o.Clients {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c, merged := o.Clients[id], o.Issuer
		if c.Name != "" {
			merged.Name = c.Name
		}
		if c.LogoURL != "" {
			merged.LogoURL = c.LogoURL
		}
		if c.Accent != "" {
			merged.Accent, merged.AccentText = c.Accent, c.AccentText
		}
		if c.Background != "" {
			merged.Background = c.Background
		}
		// Client ids are the configuration's; the sheet's name is a hash
		// of one, so any id makes a plain path.
		sum := sha256.Sum256([]byte(id))
		b.clients[id] = view("client-"+hex.EncodeToString(sum[:8]), merged)
	}
	return b, nil
}

func short(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// brandSheet sets the stylesheet's variables to the brand's colours in
// the light theme; the dark theme keeps its own, checked, colours.
func brandSheet(br Brand) string {
	var vars []string
	if br.Accent != "" {
		text := br.AccentText
		if text == "" {
			text = "#ffffff"
		}
		vars = append(vars, "--accent: "+br.Accent+";", "--accent-text: "+text+";")
	}
	if br.Background != "" {
		vars = append(vars, "--bg: "+br.Background+";")
	}
	if len(vars) == 0 {
		return ""
	}
	return "@media not (prefers-color-scheme: dark) {\n  :root {\n    " + strings.Join(vars, "\n    ") + "\n  }\n}\n"
}

// of is the brand of the pages of clientID ("" for the issuer's).
func (b *branding) of(clientID string) *brandView {
	if v, ok := b.clients[clientID]; ok {
		return v
	}
	return b.issuer
}

// ServeHTTP serves /branding/<brand>.css and the overrides directory's
// files under /branding/files/ (never its templates, never a listing).
func (b *branding) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/branding/")
	if css, ok := b.sheets[name]; ok {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(css)
		return
	}
	file, ok := strings.CutPrefix(name, "files/")
	if !ok || b.dir == "" || !fs.ValidPath(file) || strings.HasSuffix(file, ".html") {
		http.NotFound(w, r)
		return
	}
	fsys := os.DirFS(b.dir)
	if fi, err := fs.Stat(fsys, file); err != nil || fi.IsDir() {
		http.NotFound(w, r)
		return
	}
	http.ServeFileFS(w, r, fsys, file)
}

// overlay is the embedded templates with the files of dir in their
// place.
type overlay struct {
	over, base fs.FS
}

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.over.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

// ReadDir lists the base's entries: an override replaces a template, it
// does not add a page.
func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	return fs.ReadDir(o.base, name)
}
