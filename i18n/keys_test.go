package i18n

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// keyUse finds the catalogue keys the code and templates use:
// {{t "key"}} / {{th "key"}} in templates, and .T("key") / .HTML("key") /
// i18n.K("key") in Go. A key is dotted lower case (login.title), which
// tells it apart from a literal English text passed where a key may go.
var keyUse = []*regexp.Regexp{
	regexp.MustCompile(`\{\{-?\s*(?:[^}]*[\s(])?(?:t|th)\s+"([a-z0-9_]+(?:\.[a-z0-9_]+)+)"`),
	regexp.MustCompile(`\(or \.Title "([a-z0-9_]+(?:\.[a-z0-9_]+)+)"\)`),
	regexp.MustCompile(`\b(?:T|HTML|K|tr|trh)\(\s*(?:[a-zA-Z_.]+,\s*)*"([a-z0-9_]+(?:\.[a-z0-9_]+)+)"`),
	// Go: any literal shaped like a key of one of the catalogue's groups
	// (h.page(w, r, st, "login.title", …), h.Error(…, "error.csrf")).
	regexp.MustCompile(`"((?:account|ciba|ciba_open|code|common|enroll|enroll_passkey|enroll_phone|enroll_totp|error|factor|info|layout|login|logout|mail|passkey|phone|recovery|sms|step|webauthn|brand|forgot|register|password)\.[a-z0-9_]+)"`),
}

// pageCode is the Go code whose key-shaped literals are page texts.
var pageCode = regexp.MustCompile(`(?:^|/)(?:server/login|server/op|server/demo|notify|templates)/[^/]+\.go$`)

var fileName = regexp.MustCompile(`\.(?:html|js|txt|css|go|png|yaml)$`)

// Every key a template or Go file uses is in the English catalogue (and
// so, by TestCatalogueComplete, in every language).
func TestEveryUsedKeyExists(t *testing.T) {
	root := ".."
	used := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != ".." && (strings.HasPrefix(n, ".") || n == "node_modules" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(p)
		if ext != ".html" && ext != ".txt" && ext != ".go" || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, re := range keyUse {
			if i == len(keyUse)-1 && !pageCode.MatchString(filepath.ToSlash(p)) {
				continue // audit event names look like keys too
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				if fileName.MatchString(m[1]) {
					continue
				}
				used++
				if !Has(m[1]) {
					t.Errorf("%s uses key %q, which the catalogue does not have", p, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if used < 20 {
		t.Errorf("found only %d key uses: the scanner is broken", used)
	}
}
