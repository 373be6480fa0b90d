package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/session"
)

// Seeder is what Seed needs of a store.
type Seeder interface {
	SeedAccount(ctx context.Context, a *session.Account) (*session.Account, error)
}

// Seed creates the configured users that do not exist yet (idempotent: a
// user keeps its subject across restarts and instances, and whatever
// changed at runtime). It returns the accounts as stored, in
// configuration order.
func Seed(ctx context.Context, store Seeder, users []config.User) ([]*session.Account, error) {
	return SeedWith(ctx, store, users, password.DefaultParams)
}

// SeedWith is Seed hashing plain-text passwords with p (the configured
// passwords.argon2id, op.PasswordParams).
func SeedWith(ctx context.Context, store Seeder, users []config.User, p password.Params) ([]*session.Account, error) {
	out := make([]*session.Account, 0, len(users))
	for i, u := range users {
		hash := u.PasswordHash
		if hash == "" && u.Password != "" {
			var err error
			if hash, err = password.HashWith(p, u.Password); err != nil {
				return nil, fmt.Errorf("users[%d]: %w", i, err)
			}
		}
		a, err := store.SeedAccount(ctx, &session.Account{
			Subject:      newSubject(),
			Username:     u.Username,
			PasswordHash: hash,
			Email:        u.Email,
			Phone:        u.Phone,
			Name:         u.Name,
			TOTPSecret:   u.TOTPSecret,
			EmailMFA:     u.EmailMFA,
		})
		if err != nil {
			return nil, fmt.Errorf("seeding users[%d] (%s): %w", i, u.Username, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// newSubject is a random, never reassigned subject identifier.
func newSubject() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}
