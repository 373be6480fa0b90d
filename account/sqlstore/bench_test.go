package sqlstore_test

import (
	"fmt"
	"testing"

	"github.com/stepup-dev/stepup/account/accounttest"
	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// BenchmarkAccount measures the database round trips a sign-in adds:
// AccountByUsername (password page), GetAccount (every later step, one
// query with the recovery count and passkeys) and SetLastFactor (a write
// after a second factor). SQLite file, or PostgreSQL with
// STEPUP_TEST_POSTGRES_URL.
func BenchmarkAccount(b *testing.B) {
	s := accounttest.NewStore(b)
	ctx := b.Context()
	const n = 1000
	for i := range n {
		a := &session.Account{Subject: fmt.Sprintf("sub-%d", i), Username: fmt.Sprintf("user%d", i), TOTPSecret: "JBSWY3DPEHPK3PXP",
			PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"}
		if _, err := s.SeedAccount(ctx, a); err != nil {
			b.Fatal(err)
		}
		if err := s.PutPasskey(ctx, a.Subject, session.StoredPasskey{ID: "c", Data: make([]byte, 300)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("AccountByUsername", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.AccountByUsername(ctx, fmt.Sprintf("USER%d", i%n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetAccount", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.GetAccount(ctx, fmt.Sprintf("sub-%d", i%n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("SetLastFactor", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := s.SetLastFactor(ctx, fmt.Sprintf("sub-%d", i%n), authn.TOTP); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
