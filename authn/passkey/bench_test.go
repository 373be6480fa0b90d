package passkey

import (
	"testing"
	"time"
)

// BenchmarkFinishLogin is the server's share of a passkey sign-in: parse
// the browser's answer and verify it (ES256, §16.7 vector).
func BenchmarkFinishLogin(b *testing.B) {
	v := loadVectors(b)
	rp := newRP(b, Config{})
	c, err := register(b, rp, v.Registration["PackedES256WithMDS"])
	if err != nil {
		b.Fatal(err)
	}
	u := &User{Subject: subject, Credentials: []*Credential{c}}
	body := assertionBody(b, v.Authentication["PackedES256Full"])
	cer := ceremony(b, KindLogin, v.Authentication["PackedES256Full"]["challenge"], c.WebAuthn.ID)
	lookup := func(string) (*User, error) { return u, nil }
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		a, err := ParseAssertion(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rp.FinishLogin(lookup, cer, a, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChallengeOf(b *testing.B) {
	v := loadVectors(b)
	body := assertionBody(b, v.Authentication["PackedES256Full"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChallengeOf(body); err != nil {
			b.Fatal(err)
		}
	}
}
