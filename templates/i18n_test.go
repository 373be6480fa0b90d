package templates

import (
	"html"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// dataStrings are the strings a page's data carries (they show as they
// are, whatever the language).
func dataStrings(v reflect.Value, out *[]string) {
	switch v.Kind() {
	case reflect.String:
		if v.Len() > 0 {
			*out = append(*out, v.String())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			dataStrings(v.Field(i), out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			dataStrings(v.Index(i), out)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			dataStrings(v.Elem(), out)
		}
	}
}

var (
	markup  = regexp.MustCompile(`(?s)<script.*?</script>|<[^>]*>`)
	english = regexp.MustCompile(`(?i)\b(the|your|you|with|this|sign in|enter|cancel|skip|verify|remove|continue)\b`)
)

// Issue 15 item 5: every page rendered in German has <html lang="de">
// and no English text of its own (what the data carries aside).
func TestPagesInGerman(t *testing.T) {
	r := newTestRenderer(t)
	for name, mk := range samples() {
		p := page("")
		p.Lang = "de"
		data := mk(p)
		_, body := render(t, r, 200, name, data)
		if !strings.Contains(body, `<html lang="de">`) {
			t.Errorf("%s: no <html lang=\"de\">", name)
		}
		var own []string
		dataStrings(reflect.ValueOf(data), &own)
		text := html.UnescapeString(markup.ReplaceAllString(body, " "))
		sort.Slice(own, func(i, j int) bool { return len(own[i]) > len(own[j]) })
		for _, s := range own {
			if len(s) < 4 {
				continue
			}
			text = strings.ReplaceAll(text, s, " ")
		}
		text = strings.ReplaceAll(text, "stepup", " ")
		if m := english.FindAllString(text, -1); len(m) > 0 {
			t.Errorf("%s: English words %q in the German page:\n%s", name, m, strings.Join(strings.Fields(text), " "))
		}
	}
}

// An override that does not parse stops the start, naming branding.dir.
func TestBrokenOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login.html"), []byte(`{{define "content"}}{{if}}{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWith(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "branding.dir") || !strings.Contains(err.Error(), "login.html") {
		t.Errorf("NewWith with a broken login.html: %v", err)
	}
}
