// Package i18n is stepup's message catalogue: every text a person reads on
// a hosted page, in an email or in a text message comes from
// locales/<lang>.yaml by a stable key, in the language the request asks
// for.
//
// The language is chosen by the OpenID Connect ui_locales parameter
// (carried in the sign-in flow), then the browser's Accept-Language, then
// English (Match). A key missing in a language falls back to English; a
// key missing in English shows as itself (and a test fails on both).
//
// Messages are go-i18n templates ({{.Name}}); a message may have CLDR
// plural forms (one, other), chosen by the argument named Count. Numbers
// given as arguments are formatted for the language (1,234 / 1.234);
// Date and DateTime format times with localised month names.
package i18n

import (
	"embed"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// locales holds one YAML file per language: key → message, or key →
// {one, other} for plurals.
//
//go:embed locales/*.yaml
var locales embed.FS

// Default is the language used when nothing the user asks for is
// supported.
const Default = "en"

var (
	loadOnce sync.Once
	bundle   *goi18n.Bundle
	tags     []language.Tag // supported languages, Default first
	matcher  language.Matcher
	keys     map[string]map[string]bool // lang → keys
	loadErr  error
)

func load() {
	bundle = goi18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	keys = map[string]map[string]bool{}
	names, err := fs.Glob(locales, "locales/*.yaml")
	if err != nil {
		loadErr = err
		return
	}
	sort.Slice(names, func(i, j int) bool { // Default first: the matcher's fallback
		return strings.HasPrefix(path.Base(names[i]), Default+".") && !strings.HasPrefix(path.Base(names[j]), Default+".")
	})
	for _, name := range names {
		b, err := locales.ReadFile(name)
		if err != nil {
			loadErr = err
			return
		}
		mf, err := bundle.ParseMessageFileBytes(b, name)
		if err != nil {
			loadErr = fmt.Errorf("i18n: %s: %w", name, err)
			return
		}
		lang := mf.Tag.String()
		keys[lang] = map[string]bool{}
		for _, m := range mf.Messages {
			keys[lang][m.ID] = true
		}
		tags = append(tags, mf.Tag)
	}
	matcher = language.NewMatcher(tags)
}

func mustLoad() {
	loadOnce.Do(load)
	if loadErr != nil {
		panic(loadErr) // the catalogue is embedded: a bad file is a build error, caught by the tests
	}
}

// Languages returns the supported language tags ("en" first).
func Languages() []string {
	mustLoad()
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.String()
	}
	return out
}

// Keys returns the message keys of lang, sorted (nil for an unsupported
// language).
func Keys(lang string) []string {
	mustLoad()
	var out []string
	for k := range keys[lang] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Has reports whether the English catalogue has key.
func Has(key string) bool {
	mustLoad()
	return keys[Default][key]
}

// Match picks the language of a request: the first supported tag of
// uiLocales (OpenID Connect Core §3.1.2.1, in order of preference), else
// the best match of the Accept-Language header, else English. It never
// returns a language that has no catalogue.
func Match(uiLocales []string, acceptLanguage string) string {
	mustLoad()
	for _, l := range uiLocales {
		t, err := language.Parse(l)
		if err != nil {
			continue
		}
		if _, _, c := matcher.Match(t); c >= language.High {
			return supported(t)
		}
	}
	if want, _, err := language.ParseAcceptLanguage(acceptLanguage); err == nil {
		for _, w := range want {
			if _, _, c := matcher.Match(w); c >= language.High {
				return supported(w)
			}
		}
	}
	return Default
}

// supported maps a requested tag (de-AT) to the catalogue's (de).
func supported(t language.Tag) string {
	_, i, _ := matcher.Match(t)
	return tags[i].String()
}

// Localizer renders messages in one language. The zero value and nil
// speak English.
type Localizer struct {
	lang    string
	loc     *goi18n.Localizer
	printer *message.Printer
	// plain holds the renderings of messages without arguments (most of
	// a page's): go-i18n's Localize matches the language and runs the
	// message's template on every call, though the embedded catalogue
	// never changes. Keyed by plainKey; at most two entries per key.
	plain sync.Map
}

type plainKey struct {
	key    string
	escape bool
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*Localizer{}
)

// For returns the Localizer of lang; an unsupported lang gets English.
func For(lang string) *Localizer {
	mustLoad()
	if keys[lang] == nil {
		lang = Default
	}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if l := cache[lang]; l != nil {
		return l
	}
	tag := language.MustParse(lang)
	l := &Localizer{lang: lang, loc: goi18n.NewLocalizer(bundle, lang), printer: message.NewPrinter(tag)}
	cache[lang] = l
	return l
}

func (l *Localizer) or() *Localizer {
	if l == nil || l.loc == nil {
		return For(Default)
	}
	return l
}

// Lang is the BCP 47 tag of l's language, for <html lang>.
func (l *Localizer) Lang() string { return l.or().lang }

// T renders the message key with args given as name, value pairs
// ("Client", "Acme"). An argument named Count picks the plural form.
// Integer arguments are formatted for the language. A key the catalogue
// does not have is returned as it is, so a text that is not (yet) a key
// still shows.
func (l *Localizer) T(key string, args ...any) string {
	return l.or().render(key, false, args)
}

// HTML renders a message that may carry markup (<strong>): the arguments
// are HTML-escaped, the message itself is trusted (it is the embedded
// catalogue).
func (l *Localizer) HTML(key string, args ...any) template.HTML {
	return template.HTML(l.or().render(key, true, args)) //nolint:gosec // escaped arguments, trusted catalogue
}

func (l *Localizer) render(key string, escape bool, args []any) string {
	if !keys[Default][key] && !keys[l.lang][key] {
		if escape {
			return html.EscapeString(key)
		}
		return key
	}
	if len(args) == 0 {
		pk := plainKey{key, escape}
		if s, ok := l.plain.Load(pk); ok {
			return s.(string)
		}
		s := l.localize(key, escape, nil)
		l.plain.Store(pk, s)
		return s
	}
	return l.localize(key, escape, args)
}

func (l *Localizer) localize(key string, escape bool, args []any) string {
	data := map[string]any{}
	var count any
	for i := 0; i+1 < len(args); i += 2 {
		name, _ := args[i].(string)
		v := args[i+1]
		if name == "Count" {
			count = v
		}
		switch n := v.(type) {
		case int, int64, uint, uint64, int32:
			v = l.printer.Sprintf("%d", n)
		case time.Time:
			v = l.Date(n)
		case fmt.Stringer:
			v = n.String()
		}
		if escape {
			v = html.EscapeString(fmt.Sprint(v))
		}
		data[name] = v
	}
	s, err := l.loc.Localize(&goi18n.LocalizeConfig{MessageID: key, TemplateData: data, PluralCount: count})
	if s == "" && err != nil {
		return key
	}
	return s
}

// Number formats n for the language (1,234 in English, 1.234 in German).
func (l *Localizer) Number(n int) string { return l.or().printer.Sprintf("%d", n) }

// Date formats t's day in UTC with a localised month name ("7 December
// 2026", "7. Dezember 2026").
func (l *Localizer) Date(t time.Time) string {
	l = l.or()
	t = t.UTC()
	return l.T("format.date", "Day", fmt.Sprint(t.Day()), "Month", l.T(fmt.Sprintf("month.%d", int(t.Month()))), "Year", fmt.Sprint(t.Year()))
}

// DateTime is Date with the UTC time of day ("7 December 2026, 16:04 UTC").
func (l *Localizer) DateTime(t time.Time) string {
	l = l.or()
	return l.T("format.datetime", "Date", l.Date(t), "Time", t.UTC().Format("15:04"))
}

// Funcs are the template functions of l's language: t (text), th
// (message with markup), date, datetime, number, lang.
func (l *Localizer) Funcs() template.FuncMap {
	l = l.or()
	return template.FuncMap{
		"t":        l.T,
		"th":       l.HTML,
		"date":     l.Date,
		"datetime": l.DateTime,
		"number":   l.Number,
		"lang":     l.Lang,
	}
}
