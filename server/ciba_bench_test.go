package server_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
)

// BenchmarkCIBARound is one whole CIBA round over HTTP (loopback, one
// instance, the test store): bc-authorize with the link sent to a webhook,
// the approval page opened, a password verified (argon2id, which
// dominates), approve, and the token request that takes the ID and
// access tokens. Each round is for another user, so the per-user caps
// are not what is measured.
func BenchmarkCIBARound(b *testing.B) {
	hash, err := password.Hash(bobPass)
	if err != nil {
		b.Fatal(err)
	}
	in := newInbox(b)
	e := newEnv(b, withCIBA(in, "", func(c *config.Config) {
		for i := range b.N {
			c.Users = append(c.Users, config.User{Username: fmt.Sprintf("u%d", i), PasswordHash: hash, Email: fmt.Sprintf("u%d@example.com", i)})
		}
	}))
	rp := e.cibaRP(b, "teller", tellerSecret)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		user := fmt.Sprintf("u%d", i)
		id, _, _ := rp.start(url.Values{"login_hint": {user}, "binding_message": {"Withdraw 10.00"}})
		br := e.browser()
		p := br.login(br.open(in.link(user+"@example.com")), user, bobPass)
		br.press(p, "approve")
		e.clock.Advance(time.Minute)
		if code, cl, _ := rp.poll(id); code != "" || cl.ACR == "" {
			b.Fatalf("round %d: %q", i, code)
		}
	}
}
