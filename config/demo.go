package config

// The demo client and user, for stepupd to print at start-up.
const (
	DemoClientID   = "demo"
	DemoUsername   = "demo"
	DemoPassword   = "demo-password-123"
	DemoEmail      = "demo@example.com"
	DemoTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	// DemoBankClientID and DemoBankSecret are the demo bank's client
	// (cmd/stepup-demo on http://localhost:9000), registered for the
	// code flow and OpenID CIBA ("approve on your phone").
	DemoBankClientID = "demo-bank"
	DemoBankSecret   = "demo-bank-secret-123"
)

// Demo returns the configuration stepupd runs with when started without
// -config: issuer http://localhost:8080 listening on :8080, the embedded
// in-process store, the default ladder, the public client DemoClientID
// (redirect URI http://localhost:8080/demo/callback), the demo bank's
// confidential client DemoBankClientID with OpenID CIBA, and the user
// DemoUsername with DemoPassword and the TOTP secret DemoTOTPSecret already
// enrolled. The caller may change Listen and Issuer together. Demo passes
// Validate; its password is plain text, so PlainSecrets lists it.
func Demo() *Config {
	c := &Config{
		Issuer: "http://localhost:8080",
		Listen: ":8080",
		Clients: []Client{{
			ID:                     DemoClientID,
			Name:                   "stepup demo",
			Public:                 true,
			RedirectURIs:           []string{"http://localhost:8080/demo/callback"},
			PostLogoutRedirectURIs: []string{"http://localhost:8080/demo/"},
		}, {
			ID:           DemoBankClientID,
			Name:         "Demo Bank",
			Secret:       DemoBankSecret,
			RedirectURIs: []string{"http://localhost:9000/callback"},
			GrantTypes:   []string{"authorization_code", "refresh_token", GrantTypeCIBA},
			CIBA:         CIBA{Mode: "poll"},
		}},
		Users: []User{{
			Username:   DemoUsername,
			Password:   DemoPassword,
			Email:      DemoEmail,
			Name:       "Demo User",
			TOTPSecret: DemoTOTPSecret,
		}},
		// The demo relying party is a branded client (issue 15 item 6):
		// its pages carry its name and colour, the bank's the defaults.
		Branding: Branding{Clients: []ClientBrand{{ID: DemoClientID, Name: "Demo Shop", Colors: BrandColors{Accent: "#6a1b9a"}}}},
	}
	applyDefaults(c, nil)
	return c
}
