package config

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Branding is how the hosted pages look for the issuer and, per client,
// for the applications that sign in through it (issue 15 item 6). Every
// field is optional; a client's settings override the issuer's.
type Branding struct {
	Name    string      `yaml:"name"`
	LogoURL string      `yaml:"logo_url"`
	Colors  BrandColors `yaml:"colors"`
	// Dir is a directory of overrides: *.html files replace the hosted
	// pages' templates of the same name (layout.html, login.html, …),
	// style.css is loaded after the built-in stylesheet, and every file
	// in it is served under /branding/files/ (a logo_url may point
	// there).
	Dir string `yaml:"dir"`
	// Clients brands the pages of one client each.
	Clients []ClientBrand `yaml:"clients"`
}

// ClientBrand is the brand of the client ID.
type ClientBrand struct {
	ID      string      `yaml:"id"`
	Name    string      `yaml:"name"`
	LogoURL string      `yaml:"logo_url"`
	Colors  BrandColors `yaml:"colors"`
}

func (c ClientBrand) style() BrandStyle {
	return BrandStyle{Name: c.Name, LogoURL: c.LogoURL, Colors: c.Colors}
}

func (b Branding) style() BrandStyle {
	return BrandStyle{Name: b.Name, LogoURL: b.LogoURL, Colors: b.Colors}
}

// BrandStyle is one brand: a name shown above the pages and in their
// title, a logo, and colours. LogoURL is an https URL, or a path on this
// server (/branding/files/logo.svg from Dir).
type BrandStyle struct {
	Name, LogoURL string
	Colors        BrandColors
}

// BrandColors are #rrggbb colours of the light theme (the dark theme
// keeps its own, which are checked for contrast).
type BrandColors struct {
	// Accent colours buttons and links; AccentText is the text on a
	// button (default #ffffff).
	Accent     string `yaml:"accent"`
	AccentText string `yaml:"accent_text"`
	// Background is the page behind the card.
	Background string `yaml:"background"`
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// ContrastRatio is the WCAG 2.2 contrast ratio of two #rrggbb colours.
func ContrastRatio(a, b string) float64 {
	lum := func(hex string) float64 {
		ch := func(i int) float64 {
			v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
			s := float64(v) / 255
			if s <= 0.04045 {
				return s / 12.92
			}
			return math.Pow((s+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
	}
	la, lb := lum(a), lum(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// The card the pages sit on in the light theme (static/style.css).
const cardColor = "#ffffff"

func (v *checker) branding(c *Config) {
	b := &c.Branding
	if b.Dir != "" {
		if fi, err := os.Stat(b.Dir); err != nil || !fi.IsDir() {
			v.add("branding.dir", "%q must be a directory of template and CSS overrides", b.Dir)
		}
	}
	v.brandStyle("branding", b.style(), b.Dir)
	seen := map[string]bool{}
	for i, cb := range b.Clients {
		p := fmt.Sprintf("branding.clients[%d]", i)
		found := false
		for _, cl := range c.Clients {
			found = found || cl.ID == cb.ID
		}
		switch {
		case !found:
			v.add(p+".id", "no client has the id %q", cb.ID)
		case seen[cb.ID]:
			v.add(p+".id", "%q is branded twice", cb.ID)
		}
		seen[cb.ID] = true
		v.brandStyle(p, cb.style(), b.Dir)
	}
}

func (v *checker) brandStyle(p string, s BrandStyle, dir string) {
	if n := len([]rune(s.Name)); n > 64 || strings.ContainsAny(s.Name, "\r\n") {
		v.add(p+".name", "must be one line of at most 64 characters")
	}
	if s.LogoURL != "" {
		u, err := url.Parse(s.LogoURL)
		switch {
		case err != nil:
			v.add(p+".logo_url", "%q is not a URL", s.LogoURL)
		case u.Scheme == "https" && u.Host != "":
		case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/branding/files/"):
			name := strings.TrimPrefix(u.Path, "/branding/files/")
			if dir == "" {
				v.add(p+".logo_url", "%q is a file of branding.dir, which is not set", s.LogoURL)
			} else if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name))); err != nil || fi.IsDir() || strings.Contains(name, "..") {
				v.add(p+".logo_url", "%q: branding.dir has no file %q", s.LogoURL, name)
			}
		default:
			v.add(p+".logo_url", "%q must be an https URL or /branding/files/<file in branding.dir>", s.LogoURL)
		}
	}
	cs := s.Colors
	for _, f := range []struct {
		key string
		val *string
	}{{"accent", &cs.Accent}, {"accent_text", &cs.AccentText}, {"background", &cs.Background}} {
		if *f.val != "" && !hexColor.MatchString(*f.val) {
			v.add(p+".colors."+f.key, "%q must be a colour like #1f5fbf", *f.val)
			*f.val = "" // reported; the checks below skip it
		}
	}
	// The colours must stay readable (WCAG 2.2 SC 1.4.3 text 4.5:1, SC
	// 1.4.11 controls 3:1): a brand is no reason for an unusable page.
	if cs.Accent != "" {
		text := cs.AccentText
		if text == "" {
			text = "#ffffff"
		}
		if r := ContrastRatio(cs.Accent, text); r < 4.5 {
			v.add(p+".colors.accent", "%s with button text %s is %.2f:1; buttons need 4.5:1 (WCAG 1.4.3)", cs.Accent, text, r)
		}
		if r := ContrastRatio(cs.Accent, cardColor); r < 4.5 {
			v.add(p+".colors.accent", "%s on the white card is %.2f:1; links need 4.5:1 (WCAG 1.4.3)", cs.Accent, r)
		}
	} else if cs.AccentText != "" {
		v.add(p+".colors.accent_text", "is set without colors.accent")
	}
	if cs.Background != "" && ContrastRatio(cs.Background, "#1b1f24") < 4.5 {
		v.add(p+".colors.background", "%s behind the page's text is below 4.5:1 (WCAG 1.4.3)", cs.Background)
	}
}

// Brand is the brand of the pages of clientID ("" for the issuer's own
// pages): the client's settings over the issuer's.
func (b Branding) Brand(clientID string) BrandStyle {
	out := b.style()
	i := slices.IndexFunc(b.Clients, func(c ClientBrand) bool { return c.ID == clientID })
	if clientID == "" || i < 0 {
		return out
	}
	c := b.Clients[i]
	if c.Name != "" {
		out.Name = c.Name
	}
	if c.LogoURL != "" {
		out.LogoURL = c.LogoURL
	}
	if c.Colors.Accent != "" {
		out.Colors.Accent, out.Colors.AccentText = c.Colors.Accent, c.Colors.AccentText
	}
	if c.Colors.Background != "" {
		out.Colors.Background = c.Colors.Background
	}
	return out
}
