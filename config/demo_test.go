package config

import (
	"slices"
	"testing"
)

func TestDemoValidates(t *testing.T) {
	c := Demo()
	if err := c.Validate(); err != nil {
		t.Fatalf("Demo() does not validate:\n%v", err)
	}
	if c.Issuer != "http://localhost:8080" || c.Listen != ":8080" || !c.Redis.Embedded() {
		t.Errorf("issuer %q, listen %q, embedded %v", c.Issuer, c.Listen, c.Redis.Embedded())
	}
	if !slices.Equal(c.MFA.Factors, mfaFactors) || len(c.Levels) != len(DefaultLevels()) {
		t.Errorf("demo does not use the defaults: %+v", c)
	}
	cl, u := c.Clients[0], c.Users[0]
	if cl.ID != DemoClientID || !cl.Public || cl.RedirectURIs[0] != "http://localhost:8080/demo/callback" {
		t.Errorf("client %+v", cl)
	}
	if u.Username != DemoUsername || u.Password != DemoPassword || u.TOTPSecret != DemoTOTPSecret || u.Email != DemoEmail {
		t.Errorf("user %+v", u)
	}
	if bank := c.Clients[1]; bank.ID != DemoBankClientID || bank.Public || !slices.Contains(bank.GrantTypes, GrantTypeCIBA) || bank.CIBA.Mode != "poll" {
		t.Errorf("demo bank client %+v: want a confidential client with the CIBA grant", bank)
	}
	if len(DemoTOTPSecret) != 32 {
		t.Errorf("demo TOTP secret has %d characters, want 32", len(DemoTOTPSecret))
	}
	// Each call is a fresh value: callers may change it.
	c.Clients[0].ID = "changed"
	c.Levels[0].ACR = "changed"
	if d := Demo(); d.Clients[0].ID != DemoClientID || d.Levels[0].ACR != ACR1FA {
		t.Errorf("Demo() shares state between calls")
	}
}
