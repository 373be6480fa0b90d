package static

import (
	"io/fs"
	"strings"
	"testing"
)

func TestStylesheet(t *testing.T) {
	b, err := fs.ReadFile(FS, "style.css")
	if err != nil {
		t.Fatal(err)
	}
	css := string(b)
	if len(css) == 0 {
		t.Fatal("style.css is empty")
	}
	// The pages load nothing from elsewhere: no web fonts, no CDN.
	for _, bad := range []string{"@import", "url(", "@font-face", "http:", "https:"} {
		if strings.Contains(css, bad) {
			t.Errorf("style.css contains %q", bad)
		}
	}
	for _, want := range []string{":focus-visible", "prefers-color-scheme"} {
		if !strings.Contains(css, want) {
			t.Errorf("style.css has no %s rule", want)
		}
	}
	if strings.Count(css, "{") != strings.Count(css, "}") {
		t.Error("style.css has unbalanced braces")
	}
}
