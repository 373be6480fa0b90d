package config

import (
	"slices"
	"testing"
	"time"
)

// PRODUCT.md §12: a client's ciba block, checked at start with the path
// of each bad line.
func TestCIBAConfig(t *testing.T) {
	c := mustParse(t, minimal+`
clients:
  - id: teller
    secret: s
    grant_types: [urn:openid:params:grant-type:ciba]
  - id: pinger
    secret: s
    grant_types: [urn:openid:params:grant-type:ciba]
    ciba: {mode: ping, notification_endpoint: "http://localhost:9000/ciba", max_expiry: 2m}
`, nil)
	if got := c.Clients[0].CIBA; got.Mode != "poll" || got.MaxExpiry.D() != 5*time.Minute {
		t.Errorf("defaults: %+v, want poll and 5m", got)
	}
	if got := c.Clients[1].CIBA; got.Mode != "ping" || got.MaxExpiry.D() != 2*time.Minute {
		t.Errorf("ping client: %+v", got)
	}

	_, err := Parse([]byte(minimal+`
clients:
  - id: a
    secret: s
    grant_types: [urn:openid:params:grant-type:ciba]
    ciba: {mode: ping}
  - id: b
    secret: s
    grant_types: [urn:openid:params:grant-type:ciba]
    ciba: {mode: poll, notification_endpoint: "https://b.example/cb"}
  - id: c
    secret: s
    grant_types: [urn:openid:params:grant-type:ciba]
    ciba: {mode: ping, notification_endpoint: "http://c.example/cb"}
  - id: d
    public: true
    grant_types: [urn:openid:params:grant-type:ciba]
  - id: e
    secret: s
    redirect_uris: [https://e.example/cb]
    ciba: {mode: poll}
  - id: f
    secret: s
    grant_types: [urn:openid:params:grant-type:ciba]
    ciba: {mode: push, max_expiry: 2h}
`), env(nil))
	want := []string{
		"clients[0].ciba.notification_endpoint",
		"clients[1].ciba.notification_endpoint",
		"clients[2].ciba.notification_endpoint",
		"clients[3].grant_types[0]",
		"clients[4].ciba",
		"clients[5].ciba.mode",
		"clients[5].ciba.max_expiry",
	}
	got := pathsOf(problems(t, err))
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("no problem at %s (got %q)", p, got)
		}
	}
}
