// Package account is the system of record for users: the durable half of
// what stepup keeps (accounts and their enrolled factors), beside
// package session's short-lived half in Redis.
//
// Store is what a durable backend implements (account/sqlstore on
// PostgreSQL or SQLite); account/accounttest is the conformance suite
// every Store must pass. Overlay joins a Store and a session.Store into
// the one session.Store the server works with.
package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/session"
)

// ErrConflict is returned by Update when the record changed since the
// version the caller read: nobody's update is lost; the caller reads the
// account again and decides.
var ErrConflict = errors.New("account changed since it was read (version mismatch)")

// ErrTaken is returned when a username or email is already another
// account's (both are unique, ignoring case).
var ErrTaken = errors.New("username or email already taken")

// Record is an account as the database keeps it: the session.Account the
// flows use, and what administration needs beside it.
type Record struct {
	session.Account
	// Active is false for a disabled account.
	Active bool
	// ExternalID is the id a provisioning client (SCIM) knows it by.
	ExternalID string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Version counts the changes of the account record; Update succeeds
	// only with the current one (optimistic concurrency).
	Version int64
}

// Store keeps accounts and their enrolled factors durably. Its methods
// with the names of session's interfaces have their contracts.
type Store interface {
	// SeedAccount creates the account of a.Username if none exists
	// (ignoring case) and returns the account as stored; an existing
	// account is returned unchanged (see session.AccountStore).
	SeedAccount(ctx context.Context, a *session.Account) (*session.Account, error)
	GetAccount(ctx context.Context, subject string) (*session.Account, error)
	AccountByUsername(ctx context.Context, username string) (*session.Account, error)
	// AccountByEmail is session.EmailFinder's: ignoring case, ErrNotFound
	// without one.
	AccountByEmail(ctx context.Context, email string) (*session.Account, error)
	SetTOTPSecret(ctx context.Context, subject, secret string) error
	SetEmailMFA(ctx context.Context, subject string, on bool) error
	SetLastFactor(ctx context.Context, subject string, f authn.Factor) error
	session.PasswordStore
	session.PhoneStore
	session.RecoveryStore
	PutPasskey(ctx context.Context, subject string, p session.StoredPasskey) error
	UpdatePasskey(ctx context.Context, subject string, p session.StoredPasskey) error
	DeletePasskey(ctx context.Context, subject, id string) error
	// SetLocked records an operator's lock (session.AdminStore); ErrNotFound
	// without an account.
	SetLocked(ctx context.Context, subject string, locked bool) error

	// Create stores a new account (r.Subject and r.Username required);
	// ErrTaken when its subject, username or email is taken.
	Create(ctx context.Context, r *Record) (*Record, error)
	// Get returns the record of subject (ErrNotFound without one).
	Get(ctx context.Context, subject string) (*Record, error)
	// Update writes the profile of r (username, email, phone, name,
	// password hash, TOTP secret, email codes, active, external id) if
	// r.Version is still the stored version, and returns the record with
	// its new version; ErrConflict when another write came first,
	// ErrNotFound when the account is gone, ErrTaken as for Create.
	Update(ctx context.Context, r *Record) (*Record, error)
	// Delete removes an account and its factors (ErrNotFound without one).
	Delete(ctx context.Context, subject string) error

	// InitSecret is session.SecretStore's, durable; LookupSecret reads a
	// shared secret without storing one (ErrNotFound without one).
	InitSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	LookupSecret(ctx context.Context, name string) ([]byte, error)
	// SwapSecret is session.SecretStore's, durable.
	SwapSecret(ctx context.Context, name string, old, value []byte) (bool, error)

	Ping(ctx context.Context) error
	Close() error
}

// Query selects accounts for a search (SCIM's filter): every field set
// must match (usernames and emails ignoring case), in creation order,
// skipping Offset and returning at most Limit.
type Query struct {
	Username, Email, ExternalID *string
	Active                      *bool
	Offset, Limit               int
}

// Searcher is a Store that can search its accounts: the records of one
// page and the number of all that match.
type Searcher interface {
	Search(ctx context.Context, q Query) ([]*Record, int, error)
}

// Storable reports whether a text value can be stored in a column on
// every database the store runs on: valid UTF-8 without a NUL byte
// (PostgreSQL's text refuses both). A value that is not can name no
// account: lookups by it find nothing, and writes refuse it before the
// database does.
func Storable(v string) bool {
	return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0
}
