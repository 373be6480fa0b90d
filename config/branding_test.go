package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 15 item 6: branding is validated at start, every bad entry named
// by its config path.
func TestBrandingValidation(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "logo.svg"), []byte("<svg/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := Demo()
	good.Branding = Branding{Name: "Acme", LogoURL: "/branding/files/logo.svg", Dir: dir,
		Colors:  BrandColors{Accent: "#0b5a2a", Background: "#eef2ee"},
		Clients: []ClientBrand{{ID: DemoClientID, Name: "Demo Shop", LogoURL: "https://cdn.example.com/shop.svg", Colors: BrandColors{Accent: "#6a1b9a"}}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good branding: %v", err)
	}
	if b := good.Branding.Brand(DemoClientID); b.Name != "Demo Shop" || b.Colors.Accent != "#6a1b9a" || b.Colors.Background != "#eef2ee" {
		t.Errorf("client brand over the issuer's: %+v", b)
	}
	if b := good.Branding.Brand("other"); b.Name != "Acme" {
		t.Errorf("unbranded client gets the issuer's brand: %+v", b)
	}

	bad := Demo()
	bad.Branding = Branding{Name: "two\nlines", LogoURL: "http://cdn.example.com/x.svg", Dir: filepath.Join(dir, "missing"),
		Colors: BrandColors{Accent: "#ffeb3b", Background: "blue"},
		Clients: []ClientBrand{
			{ID: "nobody", LogoURL: "/branding/files/nope.svg"},
			{ID: DemoClientID, Colors: BrandColors{Accent: "#777777", AccentText: "#ffffff"}},
		}}
	es := problems(t, bad.Validate())
	for _, want := range []struct{ path, msg string }{
		{"branding.dir", "must be a directory"},
		{"branding.name", "one line"},
		{"branding.logo_url", "must be an https URL"},
		{"branding.colors.background", "must be a colour"},
		{"branding.colors.accent", "buttons need 4.5:1"},
		{"branding.clients[0].id", `no client has the id "nobody"`},
		{"branding.clients[0].logo_url", "has no file"},
		{"branding.clients[1].colors.accent", "links need 4.5:1"},
	} {
		found := false
		for _, e := range es {
			found = found || e.Path == want.path && strings.Contains(e.Msg, want.msg)
		}
		if !found {
			t.Errorf("no error %s: …%s…; got:\n%v", want.path, want.msg, es)
		}
	}
}
