package i18n

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Every language has exactly the keys of English: a missing translation
// fails here, not in front of a user.
func TestCatalogueComplete(t *testing.T) {
	langs := Languages()
	if len(langs) < 2 || langs[0] != Default {
		t.Fatalf("languages = %v, want English first and at least one more", langs)
	}
	en := Keys(Default)
	if len(en) == 0 {
		t.Fatal("English catalogue is empty")
	}
	for _, lang := range langs[1:] {
		got := Keys(lang)
		for _, k := range en {
			if !slices.Contains(got, k) {
				t.Errorf("%s: key %q missing (present in %s)", lang, k, Default)
			}
		}
		for _, k := range got {
			if !slices.Contains(en, k) {
				t.Errorf("%s: key %q is not in %s", lang, k, Default)
			}
		}
	}
}

// A translation that is the English text verbatim is almost always an
// untranslated copy; the few legitimate ones are listed.
func TestCatalogueTranslated(t *testing.T) {
	same := map[string]bool{"month.4": true, "month.8": true, "month.9": true, "month.11": true, "brand.logo": true}
	en := For(Default)
	for _, lang := range Languages()[1:] {
		l := For(lang)
		for _, k := range Keys(Default) {
			if strings.HasPrefix(k, "format.") || same[k] {
				continue
			}
			if a, b := en.T(k), l.T(k); a == b && len(a) > 3 {
				t.Errorf("%s: %q is the English text %q", lang, k, a)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ui     []string
		accept string
		want   string
	}{
		{"nothing: English", nil, "", "en"},
		{"OIDC Core 3.1.2.1: ui_locales first", []string{"de"}, "en", "de"},
		{"ui_locales in order of preference, unsupported skipped", []string{"fr-CA", "de-AT", "en"}, "", "de"},
		{"ui_locales unsupported: Accept-Language", []string{"ja"}, "de-DE,de;q=0.9,en;q=0.5", "de"},
		{"Accept-Language by q", nil, "fr;q=0.9, de;q=0.8, en;q=0.1", "de"},
		{"Accept-Language nothing supported", nil, "ja, zh", "en"},
		{"garbage", []string{"!!"}, ";;;q=x", "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Match(tc.ui, tc.accept); got != tc.want {
				t.Errorf("Match(%v, %q) = %q, want %q", tc.ui, tc.accept, got, tc.want)
			}
		})
	}
}

func TestLocalise(t *testing.T) {
	de := For("de")
	if got := de.T("logout.body_return", "Client", "Acme"); !strings.Contains(got, "zurück zu Acme.") {
		t.Errorf("German template data: %q", got)
	}
	if got := de.HTML("layout.signing_in_to", "Client", "<b>x</b>"); !strings.Contains(string(got), "&lt;b&gt;x&lt;/b&gt;") || !strings.Contains(string(got), "<strong>") {
		t.Errorf("HTML message must escape its arguments and keep its own markup: %q", got)
	}
	if got := de.T("not a key. Shown as is."); got != "not a key. Shown as is." {
		t.Errorf("unknown key: %q", got)
	}
	d := time.Date(2026, 12, 7, 16, 4, 0, 0, time.UTC)
	if got, want := de.DateTime(d), "7. Dezember 2026, 16:04 Uhr UTC"; got != want {
		t.Errorf("German date: %q, want %q", got, want)
	}
	if got, want := For("en").Date(d), "7 December 2026"; got != want {
		t.Errorf("English date: %q, want %q", got, want)
	}
	if got, want := de.Number(1234567), "1.234.567"; got != want {
		t.Errorf("German number: %q, want %q", got, want)
	}
	if got, want := For("en").Number(1234567), "1,234,567"; got != want {
		t.Errorf("English number: %q, want %q", got, want)
	}
	// Messages without arguments are rendered once and kept: the kept
	// rendering is the language's, and a message with arguments is not
	// served from it.
	for range 2 {
		if got := de.T("login.title"); got == "" || got == For("en").T("login.title") {
			t.Errorf("German login.title kept as %q", got)
		}
		if got := de.T("logout.body_return", "Client", "Beta"); !strings.Contains(got, "zurück zu Beta.") {
			t.Errorf("German template data after a kept rendering: %q", got)
		}
	}
	var nilLoc *Localizer
	if nilLoc.T("login.title") != "Sign in" || For("xx").Lang() != "en" {
		t.Error("nil or unknown-language Localizer must speak English")
	}
}
