package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig is a valid configuration for rules to break one at a time.
func validConfig() *Config {
	c := &Config{
		Issuer: "https://id.example.com",
		Clients: []Client{
			{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:5173/callback"}},
			{ID: "bank", SecretHash: testHash, RedirectURIs: []string{"https://bank.example.com/callback"}},
		},
		Users: []User{{
			Username: "alice", PasswordHash: testHash, Email: "alice@example.com",
			Phone: "+15555550100", TOTPSecret: "JBSWY3DPEHPK3PXP",
		}},
	}
	applyDefaults(c, nil)
	return c
}

func validatePaths(t *testing.T, c *Config) (Errors, []string) {
	t.Helper()
	err := c.Validate()
	es := problems(t, err)
	return es, pathsOf(es)
}

func TestValidConfigIsValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("base configuration:\n%v", err)
	}
}

// Validate returns a nil error, not a nil Errors in a non-nil interface.
func TestValidateNilError(t *testing.T) {
	var err error = validConfig().Validate()
	if err != nil {
		t.Fatalf("Validate() = %#v, want untyped nil", err)
	}
}

func TestValidateRules(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	minutes := func(n int) Duration { return Duration(time.Duration(n) * time.Minute) }
	twilio := func(c *Config) {
		c.SMS = Provider{Provider: "twilio", AccountSID: "AC1", AuthToken: "t", From: "+15555550199", BaseURL: "https://api.twilio.com"}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // error paths in order; nil for valid
	}{
		// issuer
		{"issuer required", func(c *Config) { c.Issuer = "" }, []string{"issuer"}},
		{"issuer relative", func(c *Config) { c.Issuer = "id.example.com" }, []string{"issuer"}},
		{"issuer http on a public host", func(c *Config) { c.Issuer = "http://id.example.com" }, []string{"issuer"}},
		{"issuer other scheme", func(c *Config) { c.Issuer = "ftp://id.example.com" }, []string{"issuer"}},
		{"issuer with query", func(c *Config) { c.Issuer = "https://id.example.com/?tenant=a" }, []string{"issuer"}},
		{"issuer with empty query", func(c *Config) { c.Issuer = "https://id.example.com/?" }, []string{"issuer"}},
		{"issuer with fragment", func(c *Config) { c.Issuer = "https://id.example.com/#a" }, []string{"issuer"}},
		{"issuer with user info", func(c *Config) { c.Issuer = "https://u:p@id.example.com" }, []string{"issuer"}},
		{"issuer http on localhost", func(c *Config) { c.Issuer = "http://localhost:8080" }, nil},
		{"issuer http on 127.0.0.1", func(c *Config) { c.Issuer = "http://127.0.0.1:8080" }, nil},
		{"issuer http on [::1]", func(c *Config) { c.Issuer = "http://[::1]:8080" }, nil},
		{"issuer with a path", func(c *Config) { c.Issuer = "https://example.com/id" }, nil},

		// trusted_proxies
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"} }, nil},
		{"trusted proxies bad", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy.local", "10.0.0.0/33"} }, []string{"trusted_proxies[1]", "trusted_proxies[2]"}},

		// listen
		{"listen without port", func(c *Config) { c.Listen = "8080" }, []string{"listen"}},
		{"listen named port", func(c *Config) { c.Listen = ":http" }, []string{"listen"}},
		{"listen port out of range", func(c *Config) { c.Listen = ":65536" }, []string{"listen"}},
		{"listen empty", func(c *Config) { c.Listen = "" }, []string{"listen"}},
		{"listen host:port", func(c *Config) { c.Listen = "127.0.0.1:8443" }, nil},
		{"listen any port", func(c *Config) { c.Listen = ":0" }, nil},

		// redis
		{"redis url scheme", func(c *Config) { c.Redis.URL = "http://r:6379" }, []string{"redis.url"}},
		{"redis url bad db", func(c *Config) { c.Redis.URL = "redis://r:6379/first" }, []string{"redis.url"}},
		{"redis url", func(c *Config) { c.Redis.URL = "redis://r:6379/1" }, nil},
		{"rediss url", func(c *Config) { c.Redis.URL = "rediss://u:p@r:6380" }, nil},
		{"redis url and addrs", func(c *Config) { c.Redis.URL = "redis://r:6379"; c.Redis.Addrs = []string{"r:6379"} }, []string{"redis.addrs"}},
		{"redis db contradicts url", func(c *Config) { c.Redis.URL = "redis://r:6379/1"; c.Redis.DB = 2 }, []string{"redis.db"}},
		{"redis master_name without addrs", func(c *Config) { c.Redis.MasterName = "mymaster" }, []string{"redis.master_name"}},
		{"redis sentinel", func(c *Config) {
			c.Redis.Addrs = []string{"s1:26379", "s2:26379"}
			c.Redis.MasterName = "mymaster"
			c.Redis.DB = 2
		}, nil},
		{"redis addr without port", func(c *Config) { c.Redis.Addrs = []string{"r:6379", "r2"} }, []string{"redis.addrs[1]"}},
		{"redis cluster db", func(c *Config) { c.Redis.Addrs = []string{"a:6379", "b:6379"}; c.Redis.DB = 1 }, []string{"redis.db"}},
		{"redis password without server", func(c *Config) { c.Redis.Password = "p" }, []string{"redis.password"}},
		{"redis negative db", func(c *Config) { c.Redis.Addrs = []string{"r:6379"}; c.Redis.DB = -1 }, []string{"redis.db"}},

		// keys
		{"keys algorithm", func(c *Config) { c.Keys.Algorithm = "HS256" }, []string{"keys.algorithm"}},
		{"keys ES256", func(c *Config) { c.Keys.Algorithm = "ES256" }, nil},
		{"keys EdDSA", func(c *Config) { c.Keys.Algorithm = "EdDSA" }, nil},
		{"keys file missing", func(c *Config) { c.Keys.File = keyFile + ".missing" }, []string{"keys.file"}},
		{"keys file a directory", func(c *Config) { c.Keys.File = filepath.Dir(keyFile) }, []string{"keys.file"}},
		{"keys file", func(c *Config) { c.Keys.File = keyFile }, nil},

		// session
		{"idle zero", func(c *Config) { c.Session.IdleTimeout = 0 }, []string{"session.idle_timeout"}},
		{"absolute negative", func(c *Config) { c.Session.AbsoluteTimeout = -1 }, []string{"session.absolute_timeout"}},
		{"idle above absolute", func(c *Config) { c.Session.IdleTimeout = minutes(13 * 60) }, []string{"session.idle_timeout"}},
		{"idle equals absolute", func(c *Config) { c.Session.IdleTimeout = c.Session.AbsoluteTimeout }, nil},

		// levels
		{"levels empty", func(c *Config) { c.Levels = []Level{} }, []string{"levels"}},
		{"level acr required", func(c *Config) { c.Levels[0].ACR = "" }, []string{"levels[0].acr"}},
		{"level acr duplicate", func(c *Config) { c.Levels[1].ACR = c.Levels[0].ACR }, []string{"levels[1].acr"}},
		{"level acr with space", func(c *Config) { c.Levels[0].ACR = "loa 1" }, []string{"levels[0].acr"}},
		{"level factors 0", func(c *Config) { c.Levels[0].Factors = 0 }, []string{"levels[0].factors"}},
		{"level factors 4", func(c *Config) { c.Levels[1].Factors = 4 }, []string{"levels[1].factors"}},
		{"level factors 3", func(c *Config) { c.Levels[1].Factors = 3 }, nil},
		{"level hardware without phr", func(c *Config) { c.Levels[1].Hardware = true }, []string{"levels[1].hardware"}},
		{"level max_age negative", func(c *Config) { c.Levels[1].MaxAge = -1 }, []string{"levels[1].max_age"}},
		{"level max_age zero", func(c *Config) { c.Levels[1].MaxAge = 0 }, nil},

		// mfa
		{"mfa login", func(c *Config) { c.MFA.Login = "sometimes" }, []string{"mfa.login"}},
		{"mfa login always", func(c *Config) { c.MFA.Login = "always" }, nil},
		{"mfa login always without a multi-factor level", func(c *Config) {
			c.MFA.Login = "always"
			c.Levels = c.Levels[:1]
		}, []string{"mfa.login"}},
		{"mfa unenrolled", func(c *Config) { c.MFA.Unenrolled = "skip" }, []string{"mfa.unenrolled"}},
		{"mfa unenrolled force_enroll", func(c *Config) { c.MFA.Unenrolled = "force_enroll" }, nil},
		{"mfa unenrolled email_fallback", func(c *Config) { c.MFA.Unenrolled = "email_fallback" }, nil},
		{"mfa email_fallback without email", func(c *Config) {
			c.MFA.Unenrolled = "email_fallback"
			c.MFA.Factors = []string{"totp", "webauthn"}
		}, []string{"mfa.unenrolled"}},
		{"mfa factor unknown", func(c *Config) { c.MFA.Factors = []string{"totp", "fido"} }, []string{"mfa.factors[1]"}},
		{"mfa factor duplicate", func(c *Config) { c.MFA.Factors = []string{"totp", "sms", "totp"} }, []string{"mfa.factors[2]"}},
		{"mfa factors subset", func(c *Config) { c.MFA.Factors = []string{"webauthn", "totp"} }, nil},
		{"mfa lockout max_failures", func(c *Config) { c.MFA.Lockout.MaxFailures = 0 }, []string{"mfa.lockout.max_failures"}},
		{"mfa lockout max_failures 1", func(c *Config) { c.MFA.Lockout.MaxFailures = 1 }, nil},
		{"mfa lockout window", func(c *Config) { c.MFA.Lockout.Window = 0 }, []string{"mfa.lockout.window"}},
		{"mfa lockout ip below user", func(c *Config) { c.MFA.Lockout.IPMaxFailures = 4 }, []string{"mfa.lockout.ip_max_failures"}},
		{"mfa lockout ip equal user", func(c *Config) { c.MFA.Lockout.IPMaxFailures = 5 }, nil},

		// webauthn
		{"webauthn rp_name", func(c *Config) { c.WebAuthn.RPName = "" }, []string{"webauthn.rp_name"}},
		{"webauthn user_verification", func(c *Config) { c.WebAuthn.UserVerification = "always" }, []string{"webauthn.user_verification"}},
		{"webauthn user_verification required", func(c *Config) { c.WebAuthn.UserVerification = "required" }, nil},
		{"webauthn sign_count", func(c *Config) { c.WebAuthn.SignCount = "ignore" }, []string{"webauthn.sign_count"}},
		{"webauthn sign_count warn", func(c *Config) { c.WebAuthn.SignCount = "warn" }, nil},
		{"webauthn attestation_roots missing", func(c *Config) { c.WebAuthn.AttestationRoots = "/nonexistent/roots.pem" }, []string{"webauthn.attestation_roots"}},
		{"webauthn user_verification discouraged", func(c *Config) { c.WebAuthn.UserVerification = "discouraged" }, nil},
		{"webauthn aaguid", func(c *Config) {
			c.WebAuthn.HardwareAAGUIDs = []string{"cb69481e-8ff7-4039-93ec-0a2729a154a8", "cb69481e8ff7403993ec0a2729a154a8"}
		}, []string{"webauthn.hardware_aaguids[1]"}},
		{"webauthn aaguids", func(c *Config) {
			c.WebAuthn.HardwareAAGUIDs = []string{"CB69481E-8FF7-4039-93EC-0A2729A154A8", "ee882879-721c-4913-9775-3dfcce97072a"}
		}, nil},

		// sms
		{"sms provider", func(c *Config) { c.SMS.Provider = "pigeon" }, []string{"sms.provider"}},
		{"sms smtp is email only", func(c *Config) { c.SMS.Provider = "smtp" }, []string{"sms.provider"}},
		{"sms webhook without url", func(c *Config) { c.SMS.Provider = "webhook" }, []string{"sms.url"}},
		{"sms webhook ftp url", func(c *Config) { c.SMS.Provider = "webhook"; c.SMS.URL = "ftp://x/sms" }, []string{"sms.url"}},
		{"sms webhook", func(c *Config) { c.SMS.Provider = "webhook"; c.SMS.URL = "http://sms-gateway:8000/send" }, nil},
		{"sms twilio missing", func(c *Config) { c.SMS.Provider = "twilio" },
			[]string{"sms.account_sid", "sms.auth_token", "sms.from", "sms.base_url"}},
		{"sms twilio bad base_url", func(c *Config) { twilio(c); c.SMS.BaseURL = "api.twilio.com" }, []string{"sms.base_url"}},
		{"sms twilio", twilio, nil},
		{"sms key of another provider", func(c *Config) { c.SMS.URL = "https://hooks.example.com" }, []string{"sms.url"}},

		// email
		{"email provider", func(c *Config) { c.Email.Provider = "twilio" }, []string{"email.provider"}},
		{"email smtp missing", func(c *Config) { c.Email.Provider = "smtp" }, []string{"email.addr", "email.from"}},
		{"email smtp bad addr and from", func(c *Config) {
			c.Email = Provider{Provider: "smtp", Addr: "smtp.example.com", From: "not an address"}
		}, []string{"email.addr", "email.from"}},
		{"email smtp password without username", func(c *Config) {
			c.Email = Provider{Provider: "smtp", Addr: "smtp.example.com:587", From: "id@example.com", Password: "p"}
		}, []string{"email.username"}},
		{"email smtp", func(c *Config) {
			c.Email = Provider{Provider: "smtp", Addr: "smtp.example.com:587", From: "Example ID <id@example.com>", Username: "u", Password: "p"}
		}, nil},
		{"email webhook without url", func(c *Config) { c.Email.Provider = "webhook" }, []string{"email.url"}},
		{"email webhook", func(c *Config) { c.Email = Provider{Provider: "webhook", URL: "https://hooks.example.com/mail"} }, nil},

		// clients
		{"no clients", func(c *Config) { c.Clients = nil }, nil},
		{"client id required", func(c *Config) { c.Clients[0].ID = "" }, []string{"clients[0].id"}},
		{"client id duplicate", func(c *Config) { c.Clients[1].ID = "spa" }, []string{"clients[1].id"}},
		{"client id_token alg HS256", func(c *Config) { c.Clients[1].IDTokenSignedResponseAlg = "HS256" }, []string{"clients[1].id_token_signed_response_alg"}},
		{"client id_token alg none", func(c *Config) { c.Clients[0].IDTokenSignedResponseAlg = "none" }, []string{"clients[0].id_token_signed_response_alg"}},
		{"client id_token alg ES256", func(c *Config) { c.Clients[1].IDTokenSignedResponseAlg = "ES256" }, nil},
		{"client id_token alg RS256", func(c *Config) { c.Clients[0].IDTokenSignedResponseAlg = "RS256" }, nil},
		{"public client with secret", func(c *Config) { c.Clients[0].Secret = "s" }, []string{"clients[0].secret"}},
		{"public client with secret_hash", func(c *Config) { c.Clients[0].SecretHash = testHash }, []string{"clients[0].secret_hash"}},
		{"confidential client without secret", func(c *Config) { c.Clients[1].SecretHash = "" }, []string{"clients[1].secret"}},
		{"confidential client with both", func(c *Config) { c.Clients[1].Secret = "s" }, []string{"clients[1].secret"}},
		{"confidential client with plain secret", func(c *Config) { c.Clients[1].SecretHash = ""; c.Clients[1].Secret = "s" }, nil},
		{"secret_hash not PHC", func(c *Config) { c.Clients[1].SecretHash = "$2a$10$abcdefghijklmnopqrstuv" }, []string{"clients[1].secret_hash"}},
		{"grant_types empty", func(c *Config) { c.Clients[1].GrantTypes = []string{} }, []string{"clients[1].grant_types"}},
		{"grant_type unknown", func(c *Config) { c.Clients[1].GrantTypes = []string{"authorization_code", "implicit"} }, []string{"clients[1].grant_types[1]"}},
		{"grant_type duplicate", func(c *Config) {
			c.Clients[1].GrantTypes = []string{"authorization_code", "authorization_code"}
		}, []string{"clients[1].grant_types[1]"}},
		{"public client_credentials", func(c *Config) {
			c.Clients[0].GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}
		}, []string{"clients[0].grant_types[2]"}},
		{"confidential client_credentials", func(c *Config) {
			c.Clients[1].GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}
		}, nil},
		{"client_credentials only, no redirect", func(c *Config) {
			c.Clients[1].GrantTypes = []string{"client_credentials"}
			c.Clients[1].RedirectURIs = nil
		}, nil},
		{"redirect_uris required", func(c *Config) { c.Clients[0].RedirectURIs = nil }, []string{"clients[0].redirect_uris"}},
		{"redirect_uris duplicate", func(c *Config) {
			c.Clients[1].RedirectURIs = []string{"https://b.example/cb", "https://b.example/cb"}
		}, []string{"clients[1].redirect_uris[1]"}},
		{"post_logout bad", func(c *Config) {
			c.Clients[0].PostLogoutRedirectURIs = []string{"http://localhost:5173/", "http://spa.example.com/"}
		}, []string{"clients[0].post_logout_redirect_uris[1]"}},
		{"scope empty", func(c *Config) { c.Clients[1].Scopes = []string{""} }, []string{"clients[1].scopes[0]"}},
		{"scope OIDC", func(c *Config) { c.Clients[1].Scopes = []string{"stepup:grants", "offline_access"} }, []string{"clients[1].scopes[1]"}},
		{"scope with space", func(c *Config) { c.Clients[1].Scopes = []string{"read write"} }, []string{"clients[1].scopes[0]"}},
		{"scope duplicate", func(c *Config) { c.Clients[1].Scopes = []string{"a", "a"} }, []string{"clients[1].scopes[1]"}},
		{"scopes", func(c *Config) { c.Clients[1].Scopes = []string{"stepup:grants", "stepup:admin"} }, nil},
		{"min_acr unknown", func(c *Config) { c.Clients[1].MinACR = "urn:example:loa:3" }, []string{"clients[1].min_acr"}},
		{"min_acr of the ladder", func(c *Config) { c.Clients[1].MinACR = "phr" }, nil},
		{"client unenrolled", func(c *Config) { c.Clients[1].Unenrolled = "ignore" }, []string{"clients[1].unenrolled"}},
		{"client unenrolled force_enroll", func(c *Config) { c.Clients[1].Unenrolled = "force_enroll" }, nil},
		{"client email_fallback without email", func(c *Config) {
			c.Clients[1].Unenrolled = "email_fallback"
			c.MFA.Factors = []string{"totp"}
		}, []string{"clients[1].unenrolled"}},

		// users
		{"no users", func(c *Config) { c.Users = nil }, nil},
		{"username required", func(c *Config) { c.Users[0].Username = "" }, []string{"users[0].username"}},
		{"username duplicate, case-insensitive", func(c *Config) {
			c.Users = append(c.Users, User{Username: "ALICE", Password: "p"})
		}, []string{"users[1].username"}},
		{"username with space", func(c *Config) { c.Users[0].Username = "alice smith" }, []string{"users[0].username"}},
		{"password and hash", func(c *Config) { c.Users[0].Password = "p" }, []string{"users[0].password"}},
		{"neither password nor hash", func(c *Config) { c.Users[0].PasswordHash = "" }, []string{"users[0].password"}},
		{"plain password", func(c *Config) { c.Users[0].PasswordHash = ""; c.Users[0].Password = "p" }, nil},
		{"password_hash not PHC", func(c *Config) {
			c.Users[0].PasswordHash = "$argon2i$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
		}, []string{"users[0].password_hash"}},
		{"email without domain", func(c *Config) { c.Users[0].Email = "alice" }, []string{"users[0].email"}},
		{"email with display name", func(c *Config) { c.Users[0].Email = "Alice <alice@example.com>" }, []string{"users[0].email"}},
		{"email unset", func(c *Config) { c.Users[0].Email = "" }, nil},
		{"phone without +", func(c *Config) { c.Users[0].Phone = "15555550100" }, []string{"users[0].phone"}},
		{"phone too short", func(c *Config) { c.Users[0].Phone = "+1555555" }, []string{"users[0].phone"}},
		{"phone too long", func(c *Config) { c.Users[0].Phone = "+1234567890123456" }, []string{"users[0].phone"}},
		{"phone with spaces", func(c *Config) { c.Users[0].Phone = "+1 555 555 0100" }, []string{"users[0].phone"}},
		{"phone 8 digits", func(c *Config) { c.Users[0].Phone = "+12345678" }, nil},
		{"phone 15 digits", func(c *Config) { c.Users[0].Phone = "+491511234567890" }, nil},
		{"totp too short", func(c *Config) { c.Users[0].TOTPSecret = "JBSWY3DPEHPK3PX" }, []string{"users[0].totp_secret"}},
		{"totp not base32", func(c *Config) { c.Users[0].TOTPSecret = "JBSWY3DPEHPK3PX1" }, []string{"users[0].totp_secret"}},
		{"totp lower case", func(c *Config) { c.Users[0].TOTPSecret = "jbswy3dpehpk3pxp" }, []string{"users[0].totp_secret"}},
		{"totp with spaces", func(c *Config) { c.Users[0].TOTPSecret = "JBSW Y3DP EHPK 3PXP" }, []string{"users[0].totp_secret"}},
		{"totp 32 chars", func(c *Config) { c.Users[0].TOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" }, nil},
		{"totp padded", func(c *Config) { c.Users[0].TOTPSecret = "JBSWY3DPEHPK3PXPJA======" }, nil},
		{"totp without totp factor", func(c *Config) { c.MFA.Factors = []string{"webauthn"} }, []string{"users[0].totp_secret"}},
		{"email_mfa without email", func(c *Config) { c.Users[0].Email = ""; c.Users[0].EmailMFA = true }, []string{"users[0].email_mfa"}},
		{"email_mfa without email factor", func(c *Config) {
			c.Users[0].EmailMFA = true
			c.MFA.Factors = []string{"totp"}
		}, []string{"users[0].email_mfa"}},
		{"email_mfa", func(c *Config) { c.Users[0].EmailMFA = true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			es := problems(t, err)
			if got := pathsOf(es); !slices.Equal(got, tt.want) {
				t.Errorf("error paths = %q, want %q:\n%v", got, tt.want, err)
			}
		})
	}
}

// TestRedirectURIRule is PRODUCT.md §4's rule. A private-use scheme must
// contain a dot: RFC 8252 §7.1 asks for a reverse domain name, and the dot
// is what keeps javascript:, data: and made-up one-word schemes out.
func TestRedirectURIRule(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"https://app.example.com:8443/cb?tenant=a", true},
		{"http://localhost:5173/cb", true},
		{"http://localhost/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:49152/cb", true},
		{"http://[::1]/cb", true},
		{"http://[::1]:8080/cb", true},
		{"com.example.app:/cb", true},
		{"com.example.app://cb", true},
		{"http://example.com/cb", false},
		{"http://127.0.0.2/cb", false},
		{"http://localhost.example.com/cb", false},
		{"myapp:/cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"ftp://x", false},
		{"/cb", false},
		{"app.example.com/cb", false},
		{"https://x/cb#frag", false},
		{"https://x/cb#", false},
		{"https:///cb", false},
		{"https://user:pw@x/cb", false},
		{"https://x/c b", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			for _, field := range []string{"redirect_uris", "post_logout_redirect_uris"} {
				c := validConfig()
				if field == "redirect_uris" {
					c.Clients[0].RedirectURIs = []string{tt.uri}
				} else {
					c.Clients[0].PostLogoutRedirectURIs = []string{tt.uri}
				}
				err := c.Validate()
				if tt.ok {
					if err != nil {
						t.Errorf("%s: want ok, got %v", field, err)
					}
					continue
				}
				es := problems(t, err)
				if want := "clients[0]." + field + "[0]"; len(es) != 1 || es[0].Path != want {
					t.Errorf("%s: want one error at %s, got:\n%v", field, want, err)
				}
			}
		})
	}
}

func TestRedirectURIMessages(t *testing.T) {
	tests := map[string]string{
		"ftp://x":               `"ftp://x" must be https, http on a loopback host, or a private-use scheme`,
		"https://x/cb#frag":     `"https://x/cb#frag" must not have a fragment (RFC 6749 §3.1.2)`,
		"http://example.com/cb": `"http://example.com/cb" must be https, http on a loopback host, or a private-use scheme: http is allowed only on localhost, 127.0.0.1 or [::1]`,
		"myapp:/cb":             `"myapp:/cb" must be https, http on a loopback host, or a private-use scheme; a private-use scheme is a reverse domain name with a dot, like com.example.app:/cb (RFC 8252 §7.1)`,
	}
	for uri, want := range tests {
		if got := redirectURIProblem(uri); got != want {
			t.Errorf("%s:\n got %s\nwant %s", uri, got, want)
		}
	}
}

func TestPHCProblem(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{testHash, true},
		{"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", true},
		{"", false},
		{"argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2i$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=16$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$t=1,m=65536,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=065536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=65536,t=0,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=65536,t=11,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=65536,t=1,p=0$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=15,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=2097152,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw==$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false},
		{"$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo", false}, // 4-byte salt
		{"$argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$aGFzaA", false},                      // 4-byte hash
		{"$argon2id$v=19$m=65536,t=1,p=2$CkYi6I6vztusGAZi307wEw$rH1wBAoo3PvZvAwJkx2GFfAZP0WQi45vXrSa/DZbiRo$", false},
	}
	for _, tt := range tests {
		msg := phcProblem(tt.in)
		if (msg == "") != tt.ok {
			t.Errorf("phcProblem(%q) = %q, want ok=%v", tt.in, msg, tt.ok)
		}
		if tt.in != "" && strings.Contains(msg, tt.in) {
			t.Errorf("message repeats the hash: %q", msg)
		}
	}
}

// Every problem is reported, not only the first.
func TestValidateReportsAll(t *testing.T) {
	c := validConfig()
	c.Issuer = ""
	c.Levels[0].Factors = 9
	c.Clients[0].RedirectURIs = []string{"https://ok.example/cb", "ftp://x"}
	c.Clients[1].RedirectURIs = []string{"ftp://x"}
	c.Users[0].Phone = "x"
	_, paths := validatePaths(t, c)
	want := []string{"issuer", "levels[0].factors", "clients[0].redirect_uris[1]", "clients[1].redirect_uris[0]", "users[0].phone"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
}

// PRODUCT.md §11: registration is off or open; passwords.min_length is
// at least NIST's 8. Each bad value is named by its path.
func TestValidateSelfService(t *testing.T) {
	for _, tc := range []struct {
		yaml, path string
	}{
		{"registration: maybe\n", "registration"},
		{"passwords:\n  min_length: 6\n", "passwords.min_length"},
		{"passwords:\n  min_length: 65\n", "passwords.min_length"},
		{"passwords:\n  concurrent_hashes: -1\n", "passwords.concurrent_hashes"},
		{"passwords:\n  concurrent_hashes: 257\n", "passwords.concurrent_hashes"},
	} {
		_, err := Parse([]byte("issuer: https://id.example.com\n"+tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.path+":") {
			t.Errorf("%q: got %v, want an error at %s", tc.yaml, err, tc.path)
		}
	}
	c, err := Parse([]byte("issuer: https://id.example.com\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Registration != "off" || c.Passwords.MinLength != 8 {
		t.Fatalf("defaults: registration %q, min_length %d; want off, 8", c.Registration, c.Passwords.MinLength)
	}
	if c.Passwords.ConcurrentHashes != 0 {
		t.Fatalf("default concurrent_hashes %d, want 0 (automatic)", c.Passwords.ConcurrentHashes)
	}
	if _, err := Parse([]byte("issuer: https://id.example.com\nregistration: open\npasswords:\n  min_length: 12\n  concurrent_hashes: 4\n"), nil); err != nil {
		t.Fatal(err)
	}
}
