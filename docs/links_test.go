// Package docs holds the guides; its tests keep their links true.
package docs

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// TestLinksResolve checks every relative link of README.md, the guides in
// docs/ and the READMEs of the client kits: the file or directory exists
// inside the repository, and a #fragment into a Markdown file names one of
// its headings by GitHub's slug rules. A guide that moves breaks this test
// rather than its readers.
func TestLinksResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files := markdownFiles(t, root)
	if !slices.Contains(files, filepath.Join(root, "README.md")) || len(files) < 5 {
		t.Fatalf("found only %v: the walk is broken", files)
	}
	for _, f := range files {
		for _, problem := range checkFile(root, f) {
			t.Error(problem)
		}
	}
}

// TestNoReferenceOutsideRepository: the documents must stand on their own;
// the team's contract and notes are not shipped with the repository.
func TestNoReferenceOutsideRepository(t *testing.T) {
	root, _ := filepath.Abs("..")
	outside := regexp.MustCompile(`\b(PRODUCT|NOTES|STYLE|PROTOCOL)\.md\b`)
	for _, f := range markdownFiles(t, root) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) {
				rel, _ := filepath.Rel(root, f)
				t.Errorf("%s:%d names a file that is not in the repository: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestCheckerFindsBrokenLinks shows the checker can fail: a missing file,
// a missing heading in another file, a missing heading in the same file
// and a link leaving the repository are each reported, and good links
// (including a duplicate heading's "-1" slug) are not.
func TestCheckerFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/guide.md", "# Guide\n\n## JSON APIs under `/api/v1/`\n\n## Notes\n\n## Notes\n")
	write("README.md", strings.Join([]string{
		"# Top",
		"[ok](docs/guide.md#json-apis-under-apiv1) [ok2](docs/guide.md#notes-1) [self](#top)",
		"[dir](docs/) [ext](https://example.com/x.md#nowhere) [mail](mailto:a@example.com)",
		"[gone](docs/missing.md) [badanchor](docs/guide.md#nope) [badself](#nothing)",
		"[outside](../elsewhere/PRODUCT.md)",
		"```",
		"[in code](not/checked.md)",
		"```",
	}, "\n"))
	got := checkFile(root, filepath.Join(root, "README.md"))
	want := []string{"docs/missing.md", "docs/guide.md#nope", "#nothing", "../elsewhere/PRODUCT.md"}
	if len(got) != len(want) {
		t.Fatalf("problems %q, want one for each of %q", got, want)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it about %q", i, got[i], w)
		}
	}
}

func TestGitHubSlug(t *testing.T) {
	for in, want := range map[string]string{
		"JSON APIs under /api/v1/":                    "json-apis-under-apiv1",
		"Passkeys (WebAuthn) and the account page":    "passkeys-webauthn-and-the-account-page",
		"The demo bank (cmd/stepup-demo)":             "the-demo-bank-cmdstepup-demo",
		"SMS, email and recovery codes":               "sms-email-and-recovery-codes",
		"Issue 13: findings of the attacker's review": "issue-13-findings-of-the-attackers-review",
		"1. (High) Sign-in flows":                     "1-high-sign-in-flows",
		"snake_case stays":                            "snake_case-stays",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	for _, dir := range []string{"docs", "clients"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && p == filepath.Join(root, dir) {
					return filepath.SkipDir
				}
				return err
			}
			if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "dist") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".md") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

var md = goldmark.New(goldmark.WithExtensions(extension.GFM))

// checkFile returns one message per link of file that does not resolve.
func checkFile(root, file string) []string {
	src, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}
	}
	rel, _ := filepath.Rel(root, file)
	var problems []string
	for _, dest := range links(src) {
		u, err := url.Parse(dest)
		if err != nil {
			problems = append(problems, rel+": unparsable link "+dest)
			continue
		}
		if u.Scheme != "" || u.Host != "" {
			continue // external: not this test's business
		}
		target := file
		if u.Path != "" {
			target = filepath.Join(filepath.Dir(file), filepath.FromSlash(u.Path))
			if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				problems = append(problems, rel+": link leaves the repository: "+dest)
				continue
			}
			if _, err := os.Stat(target); err != nil {
				problems = append(problems, rel+": no such file: "+dest)
				continue
			}
		}
		if u.Fragment == "" || !strings.HasSuffix(target, ".md") {
			continue // fragments into source files are line numbers
		}
		tsrc, err := os.ReadFile(target)
		if err != nil {
			problems = append(problems, rel+": "+err.Error())
			continue
		}
		if !slices.Contains(anchors(tsrc), u.Fragment) {
			problems = append(problems, rel+": no heading for "+dest)
		}
	}
	return problems
}

// links lists the destinations of the links and images of a Markdown
// document, as a renderer sees them (so nothing inside code is a link).
func links(src []byte) []string {
	var out []string
	doc := md.Parser().Parse(text.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch l := n.(type) {
		case *ast.Link:
			out = append(out, string(l.Destination))
		case *ast.Image:
			out = append(out, string(l.Destination))
		}
		return ast.WalkContinue, nil
	})
	return out
}

// anchors lists the ids GitHub gives the headings of a document: the slug of
// each, with "-1", "-2"… for repeats.
func anchors(src []byte) []string {
	var out []string
	seen := map[string]int{}
	doc := md.Parser().Parse(text.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		h, ok := n.(*ast.Heading)
		if !ok || !entering {
			return ast.WalkContinue, nil
		}
		s := slug(plain(h, src))
		if k := seen[s]; k > 0 {
			out = append(out, s+"-"+strconv.Itoa(k))
		} else {
			out = append(out, s)
		}
		seen[s]++
		return ast.WalkSkipChildren, nil
	})
	return out
}

// plain is the text of a heading as rendered, code spans included.
func plain(n ast.Node, src []byte) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch t := c.(type) {
		case *ast.Text:
			b.Write(t.Segment.Value(src))
		case *ast.String:
			b.Write(t.Value)
		case *ast.RawHTML:
		default:
			b.WriteString(plain(c, src))
		}
	}
	return b.String()
}

// slug follows GitHub: lower case; letters, digits, marks, connector
// punctuation (_), hyphens and spaces kept, everything else dropped; each
// space becomes a hyphen.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r) || unicode.Is(unicode.Pc, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
