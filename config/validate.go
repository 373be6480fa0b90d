package config

import (
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ACRs of the default ladder (PRODUCT.md §2).
const (
	ACR1FA         = "urn:stepup:loa:1fa"
	ACRMultiFactor = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	ACRPHR         = "phr"
	ACRPHRH        = "phrh"
)

// DefaultLevels returns the default ladder, lowest first: used when the
// configuration has no levels key.
func DefaultLevels() []Level {
	return []Level{
		{ACR: ACR1FA, Factors: 1},
		{ACR: ACRMultiFactor, Factors: 2, MaxAge: Duration(15 * time.Minute)},
		{ACR: ACRPHR, Factors: 1, PhishingResistant: true, MaxAge: Duration(15 * time.Minute)},
		{ACR: ACRPHRH, Factors: 1, PhishingResistant: true, Hardware: true, MaxAge: Duration(5 * time.Minute)},
	}
}

// The accepted values of enumerated keys, in the order error messages list
// them.
var (
	algorithms       = []string{"RS256", "ES256", "EdDSA"}
	mfaLogins        = []string{"never", "always"}
	unenrolledValues = []string{"allow_skip", "force_enroll", "email_fallback"}
	mfaFactors       = []string{"totp", "webauthn", "sms", "email", "recovery"}
	userVerification = []string{"required", "preferred", "discouraged"}
	smsProviders     = []string{"log", "webhook", "twilio"}
	emailProviders   = []string{"log", "smtp", "webhook"}
	grantTypes       = []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeCIBA}
	// oidcScopes are always allowed, so listing one in a client's scopes
	// is a mistake.
	oidcScopes = []string{"openid", "profile", "email", "phone", "offline_access"}
)

// applyDefaults fills in PRODUCT.md §4's defaults. given reports the paths
// present in the file; a value that is given, even as an explicit zero, is
// left for Validate. A nil given treats every zero value as absent.
func applyDefaults(c *Config, given map[string]bool) {
	unset := func(path string, zero bool) bool { return zero && !given[path] }

	if unset("listen", c.Listen == "") {
		c.Listen = ":8080"
	}
	if unset("keys.algorithm", c.Keys.Algorithm == "") {
		c.Keys.Algorithm = "RS256"
	}
	if unset("session.idle_timeout", c.Session.IdleTimeout == 0) {
		c.Session.IdleTimeout = Duration(30 * time.Minute)
	}
	if unset("session.absolute_timeout", c.Session.AbsoluteTimeout == 0) {
		c.Session.AbsoluteTimeout = Duration(12 * time.Hour)
	}
	if unset("levels", c.Levels == nil) {
		c.Levels = DefaultLevels()
	}
	for i := range c.Levels {
		if unset(fmt.Sprintf("levels[%d].factors", i), c.Levels[i].Factors == 0) {
			c.Levels[i].Factors = 1
		}
	}
	if unset("mfa.login", c.MFA.Login == "") {
		c.MFA.Login = "never"
	}
	if unset("mfa.unenrolled", c.MFA.Unenrolled == "") {
		c.MFA.Unenrolled = "allow_skip"
	}
	if unset("mfa.factors", c.MFA.Factors == nil) {
		c.MFA.Factors = slices.Clone(mfaFactors)
	}
	if unset("mfa.lockout.max_failures", c.MFA.Lockout.MaxFailures == 0) {
		c.MFA.Lockout.MaxFailures = 5
	}
	if unset("mfa.lockout.window", c.MFA.Lockout.Window == 0) {
		c.MFA.Lockout.Window = Duration(15 * time.Minute)
	}
	if unset("mfa.lockout.ip_max_failures", c.MFA.Lockout.IPMaxFailures == 0) {
		c.MFA.Lockout.IPMaxFailures = 100
	}
	codeDefaults := []struct {
		key   string
		unset bool
		set   func()
	}{
		{"ttl", c.MFA.Codes.TTL == 0, func() { c.MFA.Codes.TTL = Duration(5 * time.Minute) }},
		{"resend_cooldown", c.MFA.Codes.ResendCooldown == 0, func() { c.MFA.Codes.ResendCooldown = Duration(30 * time.Second) }},
		{"send_window", c.MFA.Codes.SendWindow == 0, func() { c.MFA.Codes.SendWindow = Duration(time.Hour) }},
		{"per_user", c.MFA.Codes.PerUser == 0, func() { c.MFA.Codes.PerUser = 10 }},
		{"per_destination", c.MFA.Codes.PerDestination == 0, func() { c.MFA.Codes.PerDestination = 10 }},
		{"per_ip", c.MFA.Codes.PerIP == 0, func() { c.MFA.Codes.PerIP = 30 }},
	}
	for _, d := range codeDefaults {
		if unset("mfa.codes."+d.key, d.unset) {
			d.set()
		}
	}
	if unset("webauthn.rp_name", c.WebAuthn.RPName == "") {
		c.WebAuthn.RPName = "stepup"
	}
	if unset("webauthn.user_verification", c.WebAuthn.UserVerification == "") {
		c.WebAuthn.UserVerification = "preferred"
	}
	if unset("webauthn.sign_count", c.WebAuthn.SignCount == "") {
		c.WebAuthn.SignCount = "refuse"
	}
	if unset("sms.provider", c.SMS.Provider == "") {
		c.SMS.Provider = "log"
	}
	if c.SMS.Provider == "twilio" && unset("sms.base_url", c.SMS.BaseURL == "") {
		c.SMS.BaseURL = "https://api.twilio.com"
	}
	if unset("passwords.argon2id.memory", c.Passwords.Argon2id.Memory == "") {
		c.Passwords.Argon2id.Memory = "64MiB"
	}
	if unset("passwords.argon2id.time", c.Passwords.Argon2id.Time == 0) {
		c.Passwords.Argon2id.Time = 1
	}
	if unset("passwords.argon2id.threads", c.Passwords.Argon2id.Threads == 0) {
		c.Passwords.Argon2id.Threads = 2
	}
	if unset("passwords.min_length", c.Passwords.MinLength == 0) {
		c.Passwords.MinLength = 8
	}
	if unset("registration", c.Registration == "") {
		c.Registration = "off"
	}
	if unset("email.provider", c.Email.Provider == "") {
		c.Email.Provider = "log"
	}
	for i := range c.Clients {
		if unset(fmt.Sprintf("clients[%d].grant_types", i), c.Clients[i].GrantTypes == nil) {
			c.Clients[i].GrantTypes = []string{"authorization_code", "refresh_token"}
		}
		if slices.Contains(c.Clients[i].GrantTypes, GrantTypeCIBA) {
			if unset(fmt.Sprintf("clients[%d].ciba.mode", i), c.Clients[i].CIBA.Mode == "") {
				c.Clients[i].CIBA.Mode = "poll"
			}
			if unset(fmt.Sprintf("clients[%d].ciba.max_expiry", i), c.Clients[i].CIBA.MaxExpiry == 0) {
				c.Clients[i].CIBA.MaxExpiry = Duration(5 * time.Minute)
			}
		}
	}
	// Make the database the URL selects visible in DB as well.
	if db, ok := redisURLDB(c.Redis.URL); ok && unset("redis.db", c.Redis.DB == 0) {
		c.Redis.DB = db
	}
}

// Validate checks the configuration against PRODUCT.md §4 and returns an
// Errors listing every problem, or nil. It expects defaults to have been
// applied (Parse and Demo do that): an empty listen, for instance, is an
// error here. It reads the file system only to check that keys.file
// exists.
func (c *Config) Validate() error {
	v := &checker{}
	v.issuer(c.Issuer)
	v.listen(c.Listen)
	v.trustedProxies(c.TrustedProxies)
	v.redis(&c.Redis)
	v.keys(&c.Keys)
	v.session(&c.Session)
	v.levels(c.Levels)
	v.mfa(&c.MFA, c.Levels)
	v.webauthn(&c.WebAuthn)
	v.provider("sms", &c.SMS, smsProviders)
	v.provider("email", &c.Email, emailProviders)
	v.clients(c)
	v.users(c)
	v.database(c)
	v.passwords(&c.Passwords.Argon2id)
	if n := c.Passwords.MinLength; n < 8 || n > 64 {
		v.add("passwords.min_length", "%d must be 8 to 64 characters (NIST SP 800-63B: at least 8)", n)
	}
	if n := c.Passwords.ConcurrentHashes; n < 0 || n > 256 {
		v.add("passwords.concurrent_hashes", "%d must be 0 (one per argon2id.threads cores) to 256", n)
	}
	v.oneOf("registration", c.Registration, []string{"off", "open"})
	v.branding(c)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

type checker struct{ errs Errors }

func (v *checker) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// oneOf checks an enumerated value.
func (v *checker) oneOf(path, value string, allowed []string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	v.add(path, "%q must be one of %s", value, strings.Join(allowed, ", "))
	return false
}

func (v *checker) issuer(s string) {
	const p = "issuer"
	if s == "" {
		v.add(p, "required: the URL relying parties know this provider by, like https://id.example.com")
		return
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.Host == "" {
		v.add(p, "%q must be an absolute URL, like https://id.example.com", s)
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			v.add(p, "%q must be https (http is allowed only on a loopback host: localhost, 127.0.0.1, [::1])", s)
		}
	default:
		v.add(p, "%q must be an https URL", s)
	}
	if u.User != nil {
		v.add(p, "%q must not contain user information", s)
	}
	if u.RawQuery != "" || u.ForceQuery {
		v.add(p, "%q must not have a query (OpenID Connect Discovery §3)", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		v.add(p, "%q must not have a fragment (OpenID Connect Discovery §3)", s)
	}
}

func (v *checker) listen(s string) {
	if s == "" {
		v.add("listen", "required: host:port, like :8080")
		return
	}
	if !validHostPort(s, true) {
		v.add("listen", "%q must be host:port with a numeric port, like :8080 or 127.0.0.1:8080", s)
	}
}

func (v *checker) trustedProxies(list []string) {
	for i, s := range list {
		if _, err := ParseNetwork(s); err != nil {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q must be a network like 10.0.0.0/8 or an address", s)
		}
	}
}

// ParseNetwork parses an entry of trusted_proxies: a network in CIDR
// form, or one address (a network of its own).
func ParseNetwork(s string) (netip.Prefix, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network nor an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validHostPort checks host:port with a numeric port in 0..65535; the host
// may be empty only when emptyHost is set.
func validHostPort(s string, emptyHost bool) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || (host == "" && !emptyHost) {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n <= 65535
}

// redisURLDB returns the database the path of a redis URL selects.
func redisURLDB(s string) (int, bool) {
	u, err := url.Parse(s)
	if err != nil {
		return 0, false
	}
	p := strings.TrimPrefix(u.Path, "/")
	if p == "" || strings.TrimLeft(p, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	return n, err == nil
}

// owaspArgon2idFloor is OWASP's Password Storage Cheat Sheet minimum
// memory (KiB) of argon2id for each number of passes (1 to 5; 5 and more
// share the last), with parallelism 1.
var owaspArgon2idFloor = []uint64{47104, 19456, 12288, 9216, 7168}

// passwords checks passwords.argon2id: OWASP's minimums as the floor, and
// the cost caps every verification obeys (1 GiB, 10 passes, memory ×
// passes ≤ 1 GiB) as the ceiling.
func (v *checker) passwords(a *Argon2id) {
	const p = "passwords.argon2id"
	kib, ok := a.MemoryKiB()
	if !ok {
		v.add(p+".memory", "%q must be a size like 64MiB (KiB, MiB or GiB)", a.Memory)
	}
	if a.Time < 1 || a.Time > 10 {
		v.add(p+".time", "%d must be 1 to 10 passes", a.Time)
	}
	if a.Threads < 1 || a.Threads > 255 {
		v.add(p+".threads", "%d must be 1 to 255", a.Threads)
	}
	if !ok || a.Time < 1 || a.Time > 10 {
		return
	}
	floor := owaspArgon2idFloor[min(a.Time, len(owaspArgon2idFloor))-1]
	switch {
	case kib < floor:
		v.add(p+".memory", "%s with time %d is below OWASP's minimum for argon2id (%d MiB at %d pass(es); 46 MiB at 1, 19 MiB at 2, 12 MiB at 3, 9 MiB at 4, 7 MiB at 5)",
			a.Memory, a.Time, floor>>10, a.Time)
	case kib > 1<<20:
		v.add(p+".memory", "%s is above the 1 GiB a hash may take", a.Memory)
	case kib*uint64(a.Time) > 1<<20:
		v.add(p+".time", "memory × time is above 1 GiB·pass: every sign-in would take more than about half a second of CPU")
	}
}

// database checks database.url and secrets.encryption_keys (PRODUCT.md
// §9). The URL may hold a password: messages never quote it.
func (v *checker) database(c *Config) {
	if raw := c.Database.URL; raw != "" {
		switch {
		case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
			if u, err := url.Parse(raw); err != nil || u.Host == "" {
				v.add("database.url", "must be a URL like postgres://stepup:${DB_PASSWORD}@db:5432/stepup")
			}
		case raw == MemoryDatabaseURL:
		case strings.HasPrefix(raw, "sqlite:"):
			if p := strings.TrimPrefix(raw, "sqlite:"); p == "" || strings.ContainsAny(p, "?#") {
				v.add("database.url", "%q must be sqlite: and a file path, like sqlite:/var/lib/stepup/stepup.db (or sqlite::memory:)", raw)
			}
		default:
			v.add("database.url", "must be postgres://…, sqlite:FILE or sqlite::memory:")
		}
	}
	seen := map[string]int{}
	for i, k := range c.Secrets.EncryptionKeys {
		p := fmt.Sprintf("secrets.encryption_keys[%d]", i)
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimSpace(k))
		}
		switch {
		case err != nil:
			v.add(p, "must be base64 of 32 random bytes (openssl rand -base64 32)")
		case len(b) != 32:
			v.add(p, "is %d bytes, must be 32 (openssl rand -base64 32)", len(b))
		default:
			if j, dup := seen[string(b)]; dup {
				v.add(p, "is the same key as secrets.encryption_keys[%d]", j)
			}
			seen[string(b)] = i
		}
	}
	if len(c.Secrets.EncryptionKeys) == 0 && c.DatabaseIsPostgres() {
		v.add("secrets.encryption_keys", "required with a PostgreSQL database: TOTP secrets are stored encrypted under it (base64 of 32 random bytes: openssl rand -base64 32)")
	}
}

func (v *checker) redis(r *Redis) {
	if r.URL != "" {
		// The URL may hold a password: messages describe it, never quote it.
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			v.add("redis.url", "is not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.add("redis.url", "must be a redis:// or rediss:// URL")
		case u.Opaque != "":
			v.add("redis.url", "must be a URL like redis://host:6379/0")
		default:
			if p := strings.TrimPrefix(u.Path, "/"); p != "" {
				if db, ok := redisURLDB(r.URL); !ok {
					v.add("redis.url", "the path selects the database and must be a number, like /0")
				} else if r.DB != 0 && r.DB != db {
					v.add("redis.db", "%d contradicts database /%d in redis.url", r.DB, db)
				}
			}
		}
		if len(r.Addrs) > 0 {
			v.add("redis.addrs", "not allowed together with redis.url: give one or the other")
		}
	}
	for i, a := range r.Addrs {
		if !validHostPort(a, false) {
			v.add(fmt.Sprintf("redis.addrs[%d]", i), "%q must be host:port", a)
		}
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		v.add("redis.master_name", "needs redis.addrs (the Sentinel addresses)")
	}
	if r.DB < 0 {
		v.add("redis.db", "must not be negative")
	}
	if len(r.Addrs) > 1 && r.MasterName == "" && r.DB != 0 {
		v.add("redis.db", "a Redis Cluster (several addrs, no master_name) has only database 0")
	}
	// Credentials without a server would silently select the embedded,
	// development-only store.
	if r.Embedded() {
		if r.Username != "" {
			v.add("redis.username", "has no effect without redis.url or redis.addrs (the embedded store is used)")
		}
		if r.Password != "" {
			v.add("redis.password", "has no effect without redis.url or redis.addrs (the embedded store is used)")
		}
		if r.DB != 0 {
			v.add("redis.db", "has no effect without redis.url or redis.addrs (the embedded store is used)")
		}
	}
}

func (v *checker) keys(k *Keys) {
	v.oneOf("keys.algorithm", k.Algorithm, algorithms)
	if k.File == "" {
		return
	}
	fi, err := os.Stat(k.File)
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.add("keys.file", "%q does not exist", k.File)
	case errors.As(err, &pe):
		v.add("keys.file", "%q: %v", k.File, pe.Err)
	case err != nil:
		v.add("keys.file", "%q: %v", k.File, err)
	case !fi.Mode().IsRegular():
		v.add("keys.file", "%q is not a regular file", k.File)
	}
}

func (v *checker) session(s *SessionConfig) {
	if s.IdleTimeout <= 0 {
		v.add("session.idle_timeout", "%v must be positive", s.IdleTimeout)
	}
	if s.AbsoluteTimeout <= 0 {
		v.add("session.absolute_timeout", "%v must be positive", s.AbsoluteTimeout)
	}
	if s.IdleTimeout > 0 && s.AbsoluteTimeout > 0 && s.IdleTimeout > s.AbsoluteTimeout {
		v.add("session.idle_timeout", "%v must not exceed session.absolute_timeout (%v)", s.IdleTimeout, s.AbsoluteTimeout)
	}
}

func (v *checker) levels(levels []Level) {
	if len(levels) == 0 {
		v.add("levels", "must list at least one level (leave levels out for the default ladder)")
		return
	}
	seen := map[string]int{}
	for i, l := range levels {
		p := fmt.Sprintf("levels[%d]", i)
		switch j, dup := seen[l.ACR]; {
		case l.ACR == "":
			v.add(p+".acr", "required")
		case hasSpaceOrControl(l.ACR):
			v.add(p+".acr", "%q must not contain spaces or control characters (acr_values is space-separated)", l.ACR)
		case dup:
			v.add(p+".acr", "%q is already levels[%d]", l.ACR, j)
		default:
			seen[l.ACR] = i
		}
		if l.Factors < 1 || l.Factors > 3 {
			v.add(p+".factors", "%d must be 1, 2 or 3 (distinct factor categories)", l.Factors)
		}
		if l.Hardware && !l.PhishingResistant {
			v.add(p+".hardware", "needs phishing_resistant: true (hardware qualifies the WebAuthn assertion)")
		}
		if l.MaxAge < 0 {
			v.add(p+".max_age", "%v must not be negative", l.MaxAge)
		}
	}
}

func (v *checker) mfa(m *MFA, levels []Level) {
	if v.oneOf("mfa.login", m.Login, mfaLogins) && m.Login == "always" {
		if !slices.ContainsFunc(levels, func(l Level) bool { return l.Factors >= 2 || l.PhishingResistant }) {
			v.add("mfa.login", "always needs a multi-factor level (factors: 2 or phishing_resistant) in levels")
		}
	}
	if v.oneOf("mfa.unenrolled", m.Unenrolled, unenrolledValues) && m.Unenrolled == "email_fallback" && !slices.Contains(m.Factors, "email") {
		v.add("mfa.unenrolled", "email_fallback needs email in mfa.factors")
	}
	v.set("mfa.factors", m.Factors, mfaFactors)
	if m.Lockout.MaxFailures < 1 {
		v.add("mfa.lockout.max_failures", "%d must be at least 1", m.Lockout.MaxFailures)
	}
	if m.Lockout.Window <= 0 {
		v.add("mfa.lockout.window", "%v must be positive", m.Lockout.Window)
	}
	cd := m.Codes
	if cd.TTL < Duration(time.Second) {
		v.add("mfa.codes.ttl", "%v must be at least 1s", cd.TTL)
	}
	if cd.ResendCooldown <= 0 || cd.ResendCooldown > cd.TTL {
		v.add("mfa.codes.resend_cooldown", "%v must be positive and at most ttl (%v): a user must be able to ask for a new code once the old one has expired", cd.ResendCooldown, cd.TTL)
	}
	if cd.SendWindow <= 0 {
		v.add("mfa.codes.send_window", "%v must be positive", cd.SendWindow)
	}
	for _, n := range []struct {
		key string
		n   int
	}{{"per_user", cd.PerUser}, {"per_destination", cd.PerDestination}, {"per_ip", cd.PerIP}} {
		if n.n < 1 {
			v.add("mfa.codes."+n.key, "%d must be at least 1", n.n)
		}
	}
	if m.Lockout.IPMaxFailures < m.Lockout.MaxFailures {
		v.add("mfa.lockout.ip_max_failures", "%d must be at least max_failures (%d): one client IP may lock out at least one user", m.Lockout.IPMaxFailures, m.Lockout.MaxFailures)
	}
}

// set checks that list is a subset of allowed without duplicates.
func (v *checker) set(path string, list, allowed []string) {
	first := map[string]int{}
	for i, s := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		if j, dup := first[s]; dup {
			v.add(p, "%q is already %s[%d]", s, path, j)
			continue
		}
		first[s] = i
		v.oneOf(p, s, allowed)
	}
}

func (v *checker) webauthn(w *WebAuthn) {
	if w.RPName == "" {
		v.add("webauthn.rp_name", "must not be empty")
	}
	v.oneOf("webauthn.user_verification", w.UserVerification, userVerification)
	v.oneOf("webauthn.sign_count", w.SignCount, []string{"refuse", "warn"})
	if w.AttestationRoots != "" {
		if _, err := LoadCertPool(w.AttestationRoots); err != nil {
			v.add("webauthn.attestation_roots", "%v", err)
		}
	}
	for i, a := range w.HardwareAAGUIDs {
		if !isUUID(a) {
			v.add(fmt.Sprintf("webauthn.hardware_aaguids[%d]", i), "%q is not a UUID (like cb69481e-8ff7-4039-93ec-0a2729a154a8)", a)
		}
	}
}

// providerFields are the keys each provider uses; any other key set in the
// section is an error, so that a forgotten provider: line is caught.
var providerFields = map[string][]string{
	"log":     {},
	"webhook": {"url"},
	"twilio":  {"account_sid", "auth_token", "from", "base_url"},
	"smtp":    {"addr", "from", "username", "password"},
}

func (v *checker) provider(section string, p *Provider, allowed []string) {
	if !v.oneOf(section+".provider", p.Provider, allowed) {
		return
	}
	required := func(key, value string) {
		if value == "" {
			v.add(section+"."+key, "required by provider %s", p.Provider)
		}
	}
	switch p.Provider {
	case "webhook":
		required("url", p.URL)
		if p.URL != "" {
			v.httpURL(section+".url", p.URL)
		}
	case "twilio":
		required("account_sid", p.AccountSID)
		required("auth_token", p.AuthToken)
		required("from", p.From)
		required("base_url", p.BaseURL)
		if p.BaseURL != "" {
			v.httpURL(section+".base_url", p.BaseURL)
		}
	case "smtp":
		required("addr", p.Addr)
		if p.Addr != "" && !validHostPort(p.Addr, false) {
			v.add(section+".addr", "%q must be host:port, like smtp.example.com:587", p.Addr)
		}
		required("from", p.From)
		if p.From != "" {
			if _, err := mail.ParseAddress(p.From); err != nil {
				v.add(section+".from", "%q is not an email address", p.From)
			}
		}
		if p.Password != "" && p.Username == "" {
			v.add(section+".username", "required when a password is given")
		}
	}
	used := providerFields[p.Provider]
	for _, f := range []struct{ key, value string }{
		{"url", p.URL}, {"account_sid", p.AccountSID}, {"auth_token", p.AuthToken},
		{"from", p.From}, {"base_url", p.BaseURL}, {"addr", p.Addr},
		{"username", p.Username}, {"password", p.Password},
	} {
		if f.value != "" && !slices.Contains(used, f.key) {
			v.add(section+"."+f.key, "not used by provider %s", p.Provider)
		}
	}
}

// httpURL checks an absolute http(s) URL with a host.
func (v *checker) httpURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "%q must be an http or https URL", s)
	}
}

func (v *checker) clients(c *Config) {
	acrs := make([]string, len(c.Levels))
	for i, l := range c.Levels {
		acrs[i] = l.ACR
	}
	ids := map[string]int{}
	for i, cl := range c.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			v.add(p+".id", "required")
		} else if j, dup := ids[cl.ID]; dup {
			v.add(p+".id", "%q is already clients[%d]", cl.ID, j)
		} else {
			ids[cl.ID] = i
		}

		switch {
		case cl.Public:
			if cl.Secret != "" {
				v.add(p+".secret", "a public client has no secret (remove it, or public: true)")
			}
			if cl.SecretHash != "" {
				v.add(p+".secret_hash", "a public client has no secret (remove it, or public: true)")
			}
		case cl.Secret != "" && cl.SecretHash != "":
			v.add(p+".secret", "give secret or secret_hash, not both")
		case cl.Secret == "" && cl.SecretHash == "":
			v.add(p+".secret", "a confidential client needs secret or secret_hash (or public: true)")
		}
		if cl.SecretHash != "" {
			if msg := phcProblem(cl.SecretHash); msg != "" {
				v.add(p+".secret_hash", "%s", msg)
			}
		}

		if cl.GrantTypes != nil && len(cl.GrantTypes) == 0 {
			v.add(p+".grant_types", "must list at least one grant type (leave it out for authorization_code, refresh_token)")
		}
		v.set(p+".grant_types", cl.GrantTypes, grantTypes)
		if cl.Public {
			if j := slices.Index(cl.GrantTypes, "client_credentials"); j >= 0 {
				v.add(fmt.Sprintf("%s.grant_types[%d]", p, j), "a public client cannot use client_credentials")
			}
			if j := slices.Index(cl.GrantTypes, GrantTypeCIBA); j >= 0 {
				v.add(fmt.Sprintf("%s.grant_types[%d]", p, j), "a public client cannot use CIBA: the backchannel endpoint authenticates the client")
			}
		}
		v.ciba(p, cl)
		// A client that only uses client_credentials never redirects.
		if len(cl.RedirectURIs) == 0 && slices.Contains(cl.GrantTypes, "authorization_code") {
			v.add(p+".redirect_uris", "required: at least one redirect URI")
		}
		v.redirectURIs(p+".redirect_uris", cl.RedirectURIs)
		v.redirectURIs(p+".post_logout_redirect_uris", cl.PostLogoutRedirectURIs)

		firstScope := map[string]int{}
		for j, s := range cl.Scopes {
			sp := fmt.Sprintf("%s.scopes[%d]", p, j)
			k, dup := firstScope[s]
			if !dup {
				firstScope[s] = j
			}
			switch {
			case s == "":
				v.add(sp, "must not be empty")
			case slices.Contains(oidcScopes, s):
				v.add(sp, "%q is an OpenID Connect scope, always allowed: list only other scopes", s)
			case !validScopeToken(s):
				v.add(sp, "%q is not a valid scope (RFC 6749 §3.3: printable ASCII, no space, \" or \\)", s)
			case dup:
				v.add(sp, "%q is already %s.scopes[%d]", s, p, k)
			}
		}

		if cl.IDTokenSignedResponseAlg != "" {
			v.oneOf(p+".id_token_signed_response_alg", cl.IDTokenSignedResponseAlg, algorithms)
		}
		if cl.MinACR != "" && !slices.Contains(acrs, cl.MinACR) {
			v.add(p+".min_acr", "%q is not the acr of a level (levels: %s)", cl.MinACR, strings.Join(acrs, ", "))
		}
		if cl.Unenrolled != "" && v.oneOf(p+".unenrolled", cl.Unenrolled, unenrolledValues) &&
			cl.Unenrolled == "email_fallback" && !slices.Contains(c.MFA.Factors, "email") {
			v.add(p+".unenrolled", "email_fallback needs email in mfa.factors")
		}
	}
}

func (v *checker) redirectURIs(path string, uris []string) {
	first := map[string]int{}
	for j, s := range uris {
		p := fmt.Sprintf("%s[%d]", path, j)
		if msg := redirectURIProblem(s); msg != "" {
			v.add(p, "%s", msg)
		} else if k, dup := first[s]; dup {
			v.add(p, "%q is already %s[%d]", s, path, k)
		} else {
			first[s] = j
		}
	}
}

// ciba checks a client's ciba block (CIBA Core §4: poll and ping).
func (v *checker) ciba(p string, cl Client) {
	c := cl.CIBA
	if !slices.Contains(cl.GrantTypes, GrantTypeCIBA) {
		if c != (CIBA{}) {
			v.add(p+".ciba", "is set but grant_types does not list %s", GrantTypeCIBA)
		}
		return
	}
	v.oneOf(p+".ciba.mode", c.Mode, []string{"poll", "ping"})
	switch {
	case c.Mode == "ping" && c.NotificationEndpoint == "":
		v.add(p+".ciba.notification_endpoint", "required in ping mode")
	case c.Mode == "poll" && c.NotificationEndpoint != "":
		v.add(p+".ciba.notification_endpoint", "only for ping mode (poll clients are not called back)")
	case c.NotificationEndpoint != "":
		if msg := notificationEndpointProblem(c.NotificationEndpoint); msg != "" {
			v.add(p+".ciba.notification_endpoint", "%s", msg)
		}
	}
	if c.MaxExpiry.D() < 10*time.Second || c.MaxExpiry.D() > time.Hour {
		v.add(p+".ciba.max_expiry", "must be between 10s and 1h")
	}
}

// notificationEndpointProblem says what is wrong with a CIBA client
// notification endpoint, "" if nothing: https (CIBA Core §4), or http on
// a loopback host as redirect URIs allow, for development.
func notificationEndpointProblem(s string) string {
	if hasSpaceOrControl(s) {
		return fmt.Sprintf("%q must not contain spaces or control characters", s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Sprintf("%q must be an https URL", s)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Sprintf("%q must be https (http only on localhost, 127.0.0.1 or [::1])", s)
	case u.User != nil || u.Fragment != "":
		return fmt.Sprintf("%q must not contain user information or a fragment", s)
	}
	return ""
}

// redirectURIProblem says what is wrong with a redirect URI, "" if
// nothing. Allowed (PRODUCT.md §4, RFC 8252 §7, RFC 9700 §2.1): https; http
// on a loopback host (localhost, 127.0.0.1, [::1]); a private-use scheme
// for native apps, which must contain a dot because RFC 8252 §7.1 requires
// a reverse domain name (com.example.app:/cb) — so myapp:/cb is refused,
// and with it javascript:, data: and the like. No fragment (RFC 6749
// §3.1.2).
func redirectURIProblem(s string) string {
	const rule = "must be https, http on a loopback host, or a private-use scheme"
	if s == "" {
		return "must not be empty"
	}
	if hasSpaceOrControl(s) {
		return fmt.Sprintf("%q must not contain spaces or control characters", s)
	}
	if strings.Contains(s, "#") {
		return fmt.Sprintf("%q must not have a fragment (RFC 6749 §3.1.2)", s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return fmt.Sprintf("%q %s", s, rule)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Sprintf("%q has no host", s)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Sprintf("%q %s: http is allowed only on localhost, 127.0.0.1 or [::1]", s, rule)
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			if u.Host != "" {
				return fmt.Sprintf("%q %s", s, rule)
			}
			return fmt.Sprintf("%q %s; a private-use scheme is a reverse domain name with a dot, like com.example.app:/cb (RFC 8252 §7.1)", s, rule)
		}
	}
	if u.User != nil {
		return fmt.Sprintf("%q must not contain user information", s)
	}
	return ""
}

func (v *checker) users(c *Config) {
	names := map[string]int{}
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		key := strings.ToLower(u.Username)
		switch j, dup := names[key]; {
		case u.Username == "":
			v.add(p+".username", "required")
		case hasSpaceOrControl(u.Username):
			v.add(p+".username", "%q must not contain spaces or control characters", u.Username)
		case dup:
			v.add(p+".username", "%q is already users[%d] (usernames are case-insensitive)", u.Username, j)
		default:
			names[key] = i
		}

		switch {
		case u.Password != "" && u.PasswordHash != "":
			v.add(p+".password", "give password or password_hash, not both")
		case u.Password == "" && u.PasswordHash == "":
			v.add(p+".password", "required: password or password_hash")
		}
		if u.PasswordHash != "" {
			if msg := phcProblem(u.PasswordHash); msg != "" {
				v.add(p+".password_hash", "%s", msg)
			}
		}

		if u.Email != "" {
			if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email || a.Name != "" {
				v.add(p+".email", "%q is not an email address", u.Email)
			}
		}
		if u.EmailMFA {
			if u.Email == "" {
				v.add(p+".email_mfa", "needs the user's email")
			} else if !slices.Contains(c.MFA.Factors, "email") {
				v.add(p+".email_mfa", "needs email in mfa.factors")
			}
		}
		if u.Phone != "" && !isE164(u.Phone) {
			v.add(p+".phone", "%q must be an E.164 number: + and 8 to 15 digits, like +15555550100", u.Phone)
		}
		if u.TOTPSecret != "" {
			if msg := totpSecretProblem(u.TOTPSecret); msg != "" {
				v.add(p+".totp_secret", "%s", msg)
			} else if !slices.Contains(c.MFA.Factors, "totp") {
				v.add(p+".totp_secret", "needs totp in mfa.factors")
			}
		}
	}
}

func isLoopback(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

func hasSpaceOrControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
}

// validScopeToken implements RFC 6749 §3.3: scope-token = 1*( %x21 /
// %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// isUUID checks the 8-4-4-4-12 hexadecimal form, either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// isE164 checks + followed by 8 to 15 digits, the first not 0 (no country
// code starts with 0).
func isE164(s string) bool {
	d, ok := strings.CutPrefix(s, "+")
	if !ok || len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return false
	}
	return strings.TrimLeft(d, "0123456789") == ""
}

// totpSecretProblem checks RFC 4648 base32 (upper case, = padding
// optional) of at least 16 characters, i.e. 80 bits (RFC 4226 §4 asks for
// at least 128 and recommends 160; 80 is what authenticator apps accept
// as a floor). The message never repeats the secret.
func totpSecretProblem(s string) string {
	trimmed := strings.TrimRight(s, "=")
	if strings.TrimLeft(trimmed, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		return "must be base32 in upper case (A–Z, 2–7), without spaces"
	}
	if len(trimmed) < 16 {
		return fmt.Sprintf("is %d characters; at least 16 base32 characters (80 bits) are needed", len(trimmed))
	}
	if len(s) != len(trimmed) && len(s)%8 != 0 {
		return "has wrong = padding"
	}
	if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(trimmed); err != nil {
		return "is not valid base32 (wrong length)"
	}
	return ""
}

// phcB64 is the PHC encoding of salt and hash: standard alphabet, no
// padding, no stray bits.
var phcB64 = base64.RawStdEncoding.Strict()

// phcProblem checks an argon2id PHC string,
// $argon2id$v=19$m=…,t=…,p=…$salt$hash, with the bounds that
// authn/password accepts (1 ≤ t ≤ 10, 8·p KiB ≤ m ≤ 1 GiB, p ≥ 1, salt
// 8–64 bytes, hash 16–64 bytes), so that a hash stepupd could not verify
// fails at start-up. The message never repeats the hash.
func phcProblem(s string) string {
	const want = "must be an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return want
	}
	if f[2] != "v=19" {
		return want + ": version must be v=19"
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return want + ": want parameters m,t,p"
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		raw, ok := strings.CutPrefix(params[i], name+"=")
		if !ok || raw == "" || (len(raw) > 1 && raw[0] == '0') || strings.TrimLeft(raw, "0123456789") != "" {
			return want + ": want parameters m,t,p in that order, in decimal"
		}
		n, err := strconv.ParseUint(raw, 10, 32)
		if err != nil {
			return want + ": parameter " + name + " out of range"
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case t < 1 || t > 10:
		return fmt.Sprintf("argon2id time t=%d must be 1..10", t)
	case p < 1 || p > 255:
		return fmt.Sprintf("argon2id parallelism p=%d must be 1..255", p)
	case m < 8*p || m > 1<<20:
		return fmt.Sprintf("argon2id memory m=%d KiB must be %d..%d", m, 8*p, 1<<20)
	}
	if strings.ContainsAny(f[4]+f[5], "\r\n") {
		return want + ": line break in salt or hash"
	}
	salt, err := phcB64.DecodeString(f[4])
	if err != nil {
		return want + ": salt is not unpadded base64"
	}
	key, err := phcB64.DecodeString(f[5])
	if err != nil {
		return want + ": hash is not unpadded base64"
	}
	if len(salt) < 8 || len(salt) > 64 {
		return fmt.Sprintf("argon2id salt is %d bytes; must be 8..64", len(salt))
	}
	if len(key) < 16 || len(key) > 64 {
		return fmt.Sprintf("argon2id hash is %d bytes; must be 16..64", len(key))
	}
	return ""
}

// LoadCertPool reads a PEM file of CA certificates (webauthn.
// attestation_roots); a file without a certificate is an error.
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%q: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%q holds no PEM certificate", path)
	}
	return pool, nil
}
