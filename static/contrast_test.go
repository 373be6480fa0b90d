package static

import (
	"io/fs"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var varRE = regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;`)

// themes returns the colour variables of the light :root and of the dark
// one (prefers-color-scheme: dark), the dark one inheriting what it does
// not set.
func themes(t *testing.T, css string) (light, dark map[string]string) {
	t.Helper()
	i := strings.Index(css, "@media (prefers-color-scheme: dark)")
	if i < 0 {
		t.Fatal("no dark theme")
	}
	light, dark = map[string]string{}, map[string]string{}
	for _, m := range varRE.FindAllStringSubmatch(css[:i], -1) {
		light[m[1]] = m[2]
	}
	end := strings.Index(css[i:], "\n}\n")
	for k, v := range light {
		dark[k] = v
	}
	for _, m := range varRE.FindAllStringSubmatch(css[i:i+end], -1) {
		dark[m[1]] = m[2]
	}
	return light, dark
}

// luminance is the WCAG 2.2 relative luminance of #rrggbb.
func luminance(hex string) float64 {
	c := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		s := float64(v) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*c(0) + 0.7152*c(1) + 0.0722*c(2)
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// WCAG 2.2 SC 1.4.11 (non-text contrast): the input borders and the focus
// ring are at least 3:1 against the card and the page in both themes; the
// destructive colour is text (SC 1.4.3: 4.5:1). The rules use those
// variables.
func TestContrast(t *testing.T) {
	b, err := fs.ReadFile(FS, "style.css")
	if err != nil {
		t.Fatal(err)
	}
	css := string(b)
	light, dark := themes(t, css)
	for name, th := range map[string]map[string]string{"light": light, "dark": dark} {
		for _, c := range []struct {
			fg  string
			min float64
		}{{"input-border", 3}, {"focus", 3}, {"danger", 4.5}, {"accent", 4.5}, {"muted", 4.5}} {
			for _, bg := range []string{"card", "bg"} {
				if th[c.fg] == "" || th[bg] == "" {
					t.Fatalf("%s: --%s or --%s missing", name, c.fg, bg)
				}
				if got := contrast(th[c.fg], th[bg]); got < c.min {
					t.Errorf("%s theme: --%s %s on --%s %s is %.2f:1, want ≥ %.1f:1", name, c.fg, th[c.fg], bg, th[bg], got, c.min)
				}
			}
		}
	}
	for _, rule := range []string{
		"border: 1px solid var(--input-border);",
		"outline: 3px solid var(--focus);",
	} {
		if !strings.Contains(css, rule) {
			t.Errorf("style.css does not use %q", rule)
		}
	}
	if testing.Verbose() {
		for _, c := range []string{"input-border", "focus", "border"} {
			t.Logf("light --%s on card: %.2f:1; dark: %.2f:1", c, contrast(light[c], light["card"]), contrast(dark[c], dark["card"]))
		}
	}
}
