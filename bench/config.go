package main

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/authn/password"
)

// benchRedirectURI is registered for the bench client and never
// contacted: the virtual browsers stop at it and read the code.
const benchRedirectURI = "http://127.0.0.1:9/cb"

// writeConfig writes DIR/stepup.yaml (PRODUCT.md §4) for a stepupd
// listening on the issuer's 127.0.0.1 port, and DIR/bench-secrets.json
// with the plain secrets the bench signs in with.
//
// databaseURL is database.url: "" for a SQLite file beside the
// configuration, "none" for no database section at all (a stepupd from
// before issue 14, which keeps accounts in Redis and knows no such key).
// A postgres:// URL also gets a fresh secrets.encryption_keys, which
// stepupd requires with PostgreSQL.
//
// alg is keys.algorithm, unless idTokenAlg is set: then the config has
// no keys section (RS256, the default, for clients that register none)
// and the client registers idTokenAlg unless it is RS256.
//
// sessionIdle and sessionAbsolute, when not zero, are session.idle_timeout
// and session.absolute_timeout (12h when only the idle one is given),
// validated as stepupd validates them: positive, idle not above absolute.
// An online grant lives until the absolute timeout. The soak uses a short one to show Redis
// memory levelling off once sessions expire as fast as logins create them.
func writeConfig(dir, issuer, redisURL, redisAddrs, databaseURL, alg, idTokenAlg string, n int, sessionIdle, sessionAbsolute time.Duration) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("-issuer %q: want http://127.0.0.1:PORT", issuer)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-issuer %q: the bench config listens on loopback only; use http://127.0.0.1:PORT", issuer)
	}
	issuer = "http://" + u.Host
	switch alg {
	case "RS256", "ES256", "EdDSA":
	default:
		return fmt.Errorf("-alg %q: want RS256, ES256 or EdDSA", alg)
	}
	switch idTokenAlg {
	case "", "RS256", "ES256", "EdDSA":
	default:
		return fmt.Errorf("-id-token-alg %q: want RS256, ES256 or EdDSA", idTokenAlg)
	}
	absoluteTimeout := 12 * time.Hour // stepupd's default session.absolute_timeout
	if sessionAbsolute < 0 || (sessionAbsolute > 0 && sessionIdle == 0) {
		return fmt.Errorf("-session-absolute %v: must be positive, and given with -session-idle", sessionAbsolute)
	}
	if sessionAbsolute > 0 {
		absoluteTimeout = sessionAbsolute
	}
	if sessionIdle < 0 || sessionIdle > absoluteTimeout {
		return fmt.Errorf("-session-idle %v: must be positive and not above session.absolute_timeout (%v)", sessionIdle, absoluteTimeout)
	}
	keysSection, clientAlg, what := "keys:\n  algorithm: "+alg+"\n", "", "keys.algorithm "+alg
	if idTokenAlg != "" {
		keysSection, what = "", "ID tokens "+idTokenAlg+", access tokens ES256"
		if idTokenAlg != "RS256" {
			clientAlg = "    id_token_signed_response_alg: " + idTokenAlg + "\n"
		}
	}
	s := secretsFile{
		Issuer:       issuer,
		ClientID:     "bench",
		ClientSecret: random(24),
		RedirectURI:  benchRedirectURI,
		Password:     random(15),
	}
	// One argon2id hash (64 MiB, tens of ms) for every user: N distinct
	// hashes would cost the writer N× that and change nothing the server
	// does, since it verifies each login against the stored hash anyway.
	pwHash, err := password.Hash(s.Password)
	if err != nil {
		return err
	}
	// A hashed client secret is what production runs; stepupd caches a
	// verified secret, so only the first token request pays argon2id.
	secretHash, err := password.Hash(s.ClientSecret)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by: go run ./bench -write-config %s -issuer %s -alg %s -id-token-alg %q -users %d
# Load-test configuration: one confidential client and %d users sharing one
# password (see bench-secrets.json), each with its own TOTP secret.
issuer: %s
listen: %q
`, dir, issuer, alg, idTokenAlg, n, n, issuer, u.Host)
	switch {
	case redisAddrs != "":
		fmt.Fprintf(&b, "redis:\n  addrs:\n")
		for _, a := range strings.Split(redisAddrs, ",") {
			fmt.Fprintf(&b, "    - %q\n", a)
		}
	case redisURL != "":
		fmt.Fprintf(&b, "redis:\n  url: %q\n", redisURL)
	}
	// Accounts in a SQLite file beside the configuration (instances of
	// scale.sh share it, as processes of one node may), never a file in
	// the working directory.
	switch {
	case databaseURL == "none":
	case databaseURL == "":
		abs, err := filepath.Abs(filepath.Join(dir, "stepup.db"))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "database:\n  url: %q\n", "sqlite:"+abs)
	default:
		fmt.Fprintf(&b, "database:\n  url: %q\n", databaseURL)
		if strings.HasPrefix(databaseURL, "postgres") {
			k := make([]byte, 32)
			_, _ = rand.Read(k)
			fmt.Fprintf(&b, "secrets:\n  encryption_keys: [%q]\n", base64.StdEncoding.EncodeToString(k))
		}
	}
	if sessionIdle > 0 {
		fmt.Fprintf(&b, "session:\n  idle_timeout: %s\n  absolute_timeout: %s\n", sessionIdle, absoluteTimeout)
		what += ", session.idle_timeout " + sessionIdle.String() + ", absolute_timeout " + absoluteTimeout.String()
	}
	fmt.Fprintf(&b, `%sclients:
  - id: %s
    name: bench
    secret_hash: %q
    redirect_uris: [%q]
    grant_types: [authorization_code, refresh_token, client_credentials]
%s`, keysSection, s.ClientID, secretHash, s.RedirectURI, clientAlg)
	if databaseURL != "none" {
		// The SCIM modes provision users with this client's tokens.
		b.WriteString("    scopes: [\"stepup:scim\"]\n")
	}
	b.WriteString("users:\n")
	for i := range n {
		usr := user{Username: fmt.Sprintf("user%d", i), TOTPSecret: totpSecret()}
		s.Users = append(s.Users, usr)
		fmt.Fprintf(&b, "  - username: %s\n    password_hash: %q\n    totp_secret: %s\n", usr.Username, pwHash, usr.TOTPSecret)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "stepup.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	secPath := filepath.Join(dir, "bench-secrets.json")
	if err := os.WriteFile(secPath, append(js, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s (%d users, %s)\n", cfgPath, secPath, n, what)
	return nil
}

// totpSecret is a random 160-bit secret in base32 without padding, the
// form authenticator apps and stepup's config take.
func totpSecret() string {
	buf := make([]byte, 20)
	_, _ = rand.Read(buf)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(buf)
}
