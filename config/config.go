// Package config turns stepupd's YAML file into a validated Config.
//
// Load is strict: an unknown key is an error, and every problem in the file
// is reported at once, each with its path (clients[1].redirect_uris[0]: …).
// Secrets may be written as ${ENV_VAR}; no environment variable changes the
// configuration in any other way.
package config

import (
	"strconv"
	"strings"
	"time"
)

// Config is the whole of stepupd's configuration (PRODUCT.md §4).
type Config struct {
	Issuer string `yaml:"issuer"`
	Listen string `yaml:"listen"`
	// TrustedProxies lists the networks (CIDR) of reverse proxies whose
	// X-Forwarded-For is believed when finding the client's IP for the
	// per-IP throttle. Empty: the TCP peer is the client.
	TrustedProxies []string      `yaml:"trusted_proxies"`
	Redis          Redis         `yaml:"redis"`
	Keys           Keys          `yaml:"keys"`
	Session        SessionConfig `yaml:"session"`
	Levels         []Level       `yaml:"levels"`
	MFA            MFA           `yaml:"mfa"`
	WebAuthn       WebAuthn      `yaml:"webauthn"`
	SMS            Provider      `yaml:"sms"`
	Email          Provider      `yaml:"email"`
	Clients        []Client      `yaml:"clients"`
	Users          []User        `yaml:"users"`
	Database       Database      `yaml:"database"`
	Secrets        Secrets       `yaml:"secrets"`
	Passwords      Passwords     `yaml:"passwords"`
	// Registration is off (default) or open: open lets anyone create an
	// account on the hosted pages, with an address verified by an emailed
	// code (PRODUCT.md §11).
	Registration string `yaml:"registration"`
	// Branding names, colours and overrides the hosted pages per issuer
	// and per client (branding.go).
	Branding Branding `yaml:"branding"`

	// fromEnv holds the paths whose value Parse took, wholly or in part,
	// from ${ENV_VAR}: those secrets are not plain text (PlainSecrets).
	fromEnv map[string]bool
}

// Redis selects the store. An empty Redis (no url, no addrs) means the
// embedded in-process store (development only).
type Redis struct {
	URL        string   `yaml:"url"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
}

// Embedded reports whether the in-process store is to be used.
func (r Redis) Embedded() bool { return r.URL == "" && len(r.Addrs) == 0 }

// Database is where accounts and their factors live (PRODUCT.md §9).
type Database struct {
	// URL is postgres://… (or postgresql://…), sqlite:FILE or
	// sqlite::memory:; "" picks a default (Config.DatabaseURL).
	URL string `yaml:"url"`
}

// DefaultDatabaseURL is the database of a configuration that names none
// but has a real Redis: a SQLite file in the working directory.
const DefaultDatabaseURL = "sqlite:stepup.db"

// MemoryDatabaseURL is the database of the demo, and of a configuration
// that names none and has no Redis either (nothing persists anyway).
const MemoryDatabaseURL = "sqlite::memory:"

// DatabaseURL returns the database to use: database.url if given; else
// an in-memory SQLite when Redis is the embedded store too (the demo, a
// development setup where nothing persists), and DefaultDatabaseURL
// otherwise, so that a deployment never keeps its accounts in memory
// without saying so.
func (c *Config) DatabaseURL() string {
	switch {
	case c.Database.URL != "":
		return c.Database.URL
	case c.Redis.Embedded():
		return MemoryDatabaseURL
	}
	return DefaultDatabaseURL
}

// DatabaseIsPostgres reports whether DatabaseURL is a PostgreSQL one.
func (c *Config) DatabaseIsPostgres() bool {
	u := c.DatabaseURL()
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// Passwords sets how passwords are hashed (PRODUCT.md §9).
type Passwords struct {
	Argon2id Argon2id `yaml:"argon2id"`
	// MinLength is the shortest password a user may choose, in
	// characters (default 8, NIST SP 800-63B's minimum; at most 64).
	// Passwords set in this file are the operator's and not checked.
	MinLength int `yaml:"min_length"`
	// ConcurrentHashes is how many password hashes run at once, each in
	// a work area of argon2id.memory that is reused: hashing holds at most
	// ConcurrentHashes × memory. 0 (default): one per argon2id.threads
	// cores, at least one (each hash runs its threads in parallel).
	// Beyond it, up to 4 per core wait and the rest get 503.
	ConcurrentHashes int `yaml:"concurrent_hashes"`
}

// Argon2id are the cost parameters of new password hashes. Below OWASP's
// minimums is a configuration error; a stored hash made with other
// parameters is replaced at the user's next sign-in.
type Argon2id struct {
	// Memory is a size with a unit: KiB, MiB or GiB ("64MiB").
	Memory  string `yaml:"memory"`
	Time    int    `yaml:"time"`
	Threads int    `yaml:"threads"`
}

// MemoryKiB is Memory in KiB; ok is false when Memory is not a size.
func (a Argon2id) MemoryKiB() (kib uint64, ok bool) {
	s := strings.TrimSpace(a.Memory)
	for _, u := range []struct {
		suffix string
		mul    uint64
	}{{"KiB", 1}, {"MiB", 1 << 10}, {"GiB", 1 << 20}} {
		num, found := strings.CutSuffix(s, u.suffix)
		if !found {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 32)
		if err != nil || n == 0 {
			return 0, false
		}
		return n * u.mul, true
	}
	return 0, false
}

// Secrets are the keys that seal secrets at rest.
type Secrets struct {
	// EncryptionKeys are base64 of 32 random bytes each; the first seals,
	// all open (rotation: put a new key first, keep the old ones until
	// everything was sealed again).
	EncryptionKeys []string `yaml:"encryption_keys"`
}

// Keys configures token signing.
type Keys struct {
	// Algorithm is the ID token algorithm of the clients that register
	// no id_token_signed_response_alg: RS256 (default) | ES256 | EdDSA.
	// Access tokens are signed with ES256 whatever it is.
	Algorithm string `yaml:"algorithm"`
	// File holds the PEM private keys, one per algorithm (it must hold
	// one of Algorithm; with no P-256 key, access tokens are signed with
	// the Algorithm key); "" → key sets generated once, shared via the
	// store and rotated with `stepupd keys rotate`.
	File string `yaml:"file"`
}

// SessionConfig bounds browser sessions.
type SessionConfig struct {
	IdleTimeout     Duration `yaml:"idle_timeout"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
}

// Level is one rung of the acr ladder.
type Level struct {
	ACR               string   `yaml:"acr"`
	Factors           int      `yaml:"factors"`
	PhishingResistant bool     `yaml:"phishing_resistant"`
	Hardware          bool     `yaml:"hardware"`
	MaxAge            Duration `yaml:"max_age"`
}

// MFA is the multi-factor policy.
type MFA struct {
	Login      string   `yaml:"login"`      // never | always
	Unenrolled string   `yaml:"unenrolled"` // allow_skip | force_enroll | email_fallback
	Factors    []string `yaml:"factors"`    // totp webauthn sms email recovery
	Lockout    Lockout  `yaml:"lockout"`
	Codes      Codes    `yaml:"codes"`
}

// Codes is the policy of the one-time codes sent by SMS and email: how
// long one lives, how soon another may be asked for, and how many may be
// sent in a window per user, per destination and per client IP (against
// SMS pumping).
type Codes struct {
	TTL            Duration `yaml:"ttl"`             // default 5m
	ResendCooldown Duration `yaml:"resend_cooldown"` // default 30s
	SendWindow     Duration `yaml:"send_window"`     // default 1h
	PerUser        int      `yaml:"per_user"`        // sends per user per window, default 10
	PerDestination int      `yaml:"per_destination"` // sends per phone number or address per window, default 10
	PerIP          int      `yaml:"per_ip"`          // sends per client IP per window, default 30
}

// Lockout is the per-user failure budget and the per-client-IP throttle
// beside it.
type Lockout struct {
	MaxFailures int      `yaml:"max_failures"`
	Window      Duration `yaml:"window"`
	// IPMaxFailures is the number of failures one client IP may make in
	// a window, over every user. Default 100.
	IPMaxFailures int `yaml:"ip_max_failures"`
}

// WebAuthn configures passkeys.
type WebAuthn struct {
	RPName           string   `yaml:"rp_name"`
	UserVerification string   `yaml:"user_verification"` // required | preferred | discouraged
	HardwareAAGUIDs  []string `yaml:"hardware_aaguids"`
	// AttestationRoots is a PEM file of CA certificates; when set, only an
	// authenticator whose attestation chains to one of them is trusted as
	// hardware (and, with HardwareAAGUIDs, is also one of those models).
	AttestationRoots string `yaml:"attestation_roots"`
	// SignCount is what a signature counter that did not increase (a
	// possible cloned authenticator) does: refuse (default) or warn. Both
	// write an audit event.
	SignCount string `yaml:"sign_count"`
}

// Provider configures an SMS or email sender.
type Provider struct {
	Provider   string `yaml:"provider"` // sms: log | webhook | twilio; email: log | smtp | webhook
	URL        string `yaml:"url"`
	AccountSID string `yaml:"account_sid"`
	AuthToken  string `yaml:"auth_token"`
	From       string `yaml:"from"`
	BaseURL    string `yaml:"base_url"`
	Addr       string `yaml:"addr"`
	Username   string `yaml:"username"`
	Password   string `yaml:"password"`
}

// Client is a registered relying party.
type Client struct {
	ID                     string   `yaml:"id"`
	Public                 bool     `yaml:"public"`
	Secret                 string   `yaml:"secret"`
	SecretHash             string   `yaml:"secret_hash"`
	Name                   string   `yaml:"name"`
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	GrantTypes             []string `yaml:"grant_types"`
	Scopes                 []string `yaml:"scopes"`
	MinACR                 string   `yaml:"min_acr"`
	Unenrolled             string   `yaml:"unenrolled"`
	// IDTokenSignedResponseAlg is the algorithm of the client's ID
	// tokens (OIDC Dynamic Client Registration §2): RS256, ES256 or
	// EdDSA; "" → keys.algorithm. Access tokens are ES256 whatever it is.
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
	// CIBA configures OpenID CIBA for a client whose grant_types list
	// GrantTypeCIBA.
	CIBA CIBA `yaml:"ciba"`
}

// GrantTypeCIBA is the grant type of OpenID CIBA (CIBA Core §10.1).
const GrantTypeCIBA = "urn:openid:params:grant-type:ciba"

// CIBA is a client's backchannel authentication setup.
type CIBA struct {
	// Mode is how the client learns the result: poll (it polls the token
	// endpoint) or ping (stepup POSTs to NotificationEndpoint, then the
	// client asks the token endpoint). Default poll.
	Mode                 string `yaml:"mode"`
	NotificationEndpoint string `yaml:"notification_endpoint"`
	// MaxExpiry bounds requested_expiry, and is the lifetime of a request
	// that asks none. Default 5m.
	MaxExpiry Duration `yaml:"max_expiry"`
}

// User is an account seeded into the store at start.
type User struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordHash string `yaml:"password_hash"`
	Email        string `yaml:"email"`
	Phone        string `yaml:"phone"`
	TOTPSecret   string `yaml:"totp_secret"`
	Name         string `yaml:"name"`
	EmailMFA     bool   `yaml:"email_mfa"`
}

// Duration is a time.Duration written as "15m", "12h", "90s".
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
