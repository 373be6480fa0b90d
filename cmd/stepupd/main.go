// Command stepupd is the stepup OpenID provider.
//
//	stepupd                       demo: embedded store, demo client and user
//	stepupd -config FILE          run with a configuration file
//	stepupd check-config FILE     validate a configuration file and exit
//	stepupd migrate -config FILE  apply the database migrations and exit
//	stepupd keys rotate -config FILE [-alg ALG]  add a signing key to each key set (or ALG's); the current ones retire
//	stepupd keys revoke -config FILE KID  drop a leaked signing key at once
//	stepupd import -config FILE USERS.jsonl   create or update accounts from SCIM Users
//	stepupd hash-password         read a password on stdin, print its argon2id hash
//	stepupd healthcheck URL       exit 0 when URL answers 200 (container probes)
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/fromredis"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
	"github.com/stepup-dev/stepup/server/demo"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session/redisstore"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "check-config":
			os.Exit(checkConfig(os.Args[2:], os.Stdout, os.Stderr))
		case "hash-password":
			os.Exit(hashPassword(os.Stdin, os.Stdout, os.Stderr))
		case "healthcheck":
			os.Exit(healthcheck(os.Args[2:], os.Stderr))
		case "migrate":
			os.Exit(migrate(os.Args[2:], os.Stdout, os.Stderr))
		case "keys":
			os.Exit(keys(os.Args[2:], os.Stdout, os.Stderr))
		case "import":
			os.Exit(importUsers(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	fs := flag.NewFlagSet("stepupd", flag.ExitOnError)
	cfgPath := fs.String("config", "", "configuration file (YAML); without it stepupd runs the demo")
	logLevel := fs.String("log-level", "info", "debug | info | warn | error")
	_ = fs.Parse(os.Args[1:])

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "stepupd: -log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if setGCDefaults(os.Getenv) {
		log.Info("garbage collector", "gc_percent", defaultGCPercent, "memory_limit_bytes", defaultMemoryLimit, "override", "GOGC or GOMEMLIMIT")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *cfgPath, log); err != nil {
		fmt.Fprintln(os.Stderr, "stepupd:", err)
		os.Exit(1)
	}
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: stepupd check-config FILE")
		return 2
	}
	if _, err := config.Load(args[0]); err != nil {
		fmt.Fprintf(stderr, "%s:\n%v\n", args[0], err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[0])
	return 0
}

// healthcheck lets a container without a shell probe the server:
// `stepupd healthcheck URL` exits 0 when URL answers 200.
func healthcheck(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: stepupd healthcheck URL")
		return 2
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, resp.Status)
		return 1
	}
	return 0
}

func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "stepupd hash-password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "stepupd hash-password: empty password on stdin")
		return 1
	}
	h, err := password.Hash(pw)
	if err != nil {
		fmt.Fprintln(stderr, "stepupd hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}

func run(ctx context.Context, cfgPath string, log *slog.Logger) error {
	demoMode := cfgPath == ""
	var cfg *config.Config
	if demoMode {
		cfg = config.Demo()
	} else {
		var err error
		if cfg, err = config.Load(cfgPath); err != nil {
			return fmt.Errorf("%s:\n%w", cfgPath, err)
		}
	}
	for _, path := range cfg.PlainSecrets() {
		if demoMode {
			break // the demo password is printed on purpose
		}
		log.Warn("plain-text secret in the configuration; use a hash or ${ENV}", "path", path)
	}
	if cfg.Redis.Embedded() {
		log.Warn("using the embedded in-process store: sessions are lost on exit and not shared; configure redis.url for production")
	}
	redisstore.LogTo(log)
	metrics := obs.NewMetrics()
	short, err := redisstore.Open(cfg.Redis, redisstore.Options{OnRoundTrip: metrics.StoreRoundTrip})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	durable, err := openAccounts(ctx, cfg, log)
	if err != nil {
		short.Close()
		return err
	}
	store := account.Overlay(short, durable)
	defer store.Close()
	// Before the seed: a user whose account lived in Redis keeps their
	// subject and whatever they enrolled.
	if _, err := fromredis.Run(ctx, short, durable, log); err != nil {
		return err
	}
	accounts, err := server.SeedWith(ctx, store, cfg.Users, op.PasswordParams(cfg.Passwords.Argon2id))
	if err != nil {
		return err
	}
	opts := server.Options{Log: log, Metrics: metrics}
	if demoMode {
		opts.Mount = demo.Mount(cfg.Issuer, cfg.Clients[0].ID, cfg.Clients[0].RedirectURIs[0])
	}
	srv, err := server.New(ctx, cfg, store, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("stepupd listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer)
	if demoMode {
		printDemo(os.Stdout, cfg, accounts[0].Subject)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// openAccounts opens the account database (migrating it) with the keys
// that seal its secrets, and seals again under the first key whatever an
// earlier key sealed.
func openAccounts(ctx context.Context, cfg *config.Config, log *slog.Logger) (*sqlstore.Store, error) {
	url := cfg.DatabaseURL()
	switch {
	case cfg.Database.URL != "":
	case url == config.MemoryDatabaseURL:
		log.Warn("using an in-memory SQLite for accounts: runtime changes are lost on exit; configure database.url for production")
	default:
		log.Info("no database.url: accounts in a SQLite file in the working directory", "url", url)
	}
	keys, err := sqlstore.Keyring(url, cfg.Secrets.EncryptionKeys, log)
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.Open(ctx, url, sqlstore.Options{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	n, err := s.Reseal(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	if n > 0 {
		log.Info("sealed TOTP secrets again under the first encryption key", "count", n)
	}
	return s, nil
}

// commandConfig parses the flags of a database subcommand (`stepupd NAME
// -config FILE ARGS…`, nargs positional arguments after the flags) and
// loads its configuration, refusing an in-memory database, where the
// command would change nothing that lasts (why says what). A nil config
// comes with the exit code: 2 for usage, 1 for a bad configuration.
func commandConfig(name, usage string, nargs int, why string, args []string, stderr io.Writer) (*config.Config, []string, int) {
	fs := flag.NewFlagSet("stepupd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return nil, nil, 2
	}
	if *cfgPath == "" || fs.NArg() != nargs {
		fmt.Fprintln(stderr, "usage: stepupd "+name+" -config FILE"+usage)
		return nil, nil, 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s:\n%v\n", *cfgPath, err)
		return nil, nil, 1
	}
	if cfg.DatabaseURL() == config.MemoryDatabaseURL {
		fmt.Fprintf(stderr, "stepupd %s: the database is in memory (no database.url): %s\n", name, why)
		return nil, nil, 1
	}
	return cfg, fs.Args(), 0
}

// migrate applies the database migrations alone: `stepupd migrate
// -config FILE` (Open applies them at every start too).
func migrate(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := commandConfig("migrate", "", 0, "nothing to migrate", args, stderr)
	if cfg == nil {
		return code
	}
	url := cfg.DatabaseURL()
	applied, err := sqlstore.Migrate(context.Background(), url)
	if err != nil {
		fmt.Fprintln(stderr, "stepupd migrate:", err)
		return 1
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database schema up to date")
		return 0
	}
	fmt.Fprintf(stdout, "applied migrations %v\n", applied)
	return 0
}

// keys is `stepupd keys rotate -config FILE [-alg ALG]`: a new signing
// key in each key set of the database (RS256 and ES256, and EdDSA when
// configured; only ALG's with -alg), published now, signing once every
// client can know it; the keys it replaces stay published until their
// last token has expired.
// `stepupd keys revoke -config FILE KID` is the emergency for a key that
// may have leaked: it leaves the set at once and another key signs.
func keys(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: stepupd keys rotate -config FILE [-alg RS256|ES256|EdDSA]\n       stepupd keys revoke -config FILE KID"
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "revoke") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	name, nargs, argUsage, flags := "keys "+args[0], 0, " [-alg ALG]", args[1:]
	alg := ""
	if args[0] == "rotate" {
		var ok bool
		if alg, flags, ok = algFlag(flags); !ok {
			fmt.Fprintln(stderr, usage)
			return 2
		}
	}
	if args[0] == "revoke" {
		nargs, argUsage = 1, " KID"
		flags = kidLast(flags)
	}
	cfg, rest, code := commandConfig(name, argUsage, nargs, "no key set to change", flags, stderr)
	if cfg == nil {
		return code
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	short, err := redisstore.Open(cfg.Redis, redisstore.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "stepupd %s: store: %v\n", name, err)
		return 1
	}
	durable, err := openAccounts(ctx, cfg, log)
	if err != nil {
		short.Close()
		fmt.Fprintf(stderr, "stepupd %s: %v\n", name, err)
		return 1
	}
	store := account.Overlay(short, durable)
	defer store.Close()
	if args[0] == "revoke" {
		res, err := server.RevokeSigningKey(ctx, cfg, store, rest[0], time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "stepupd %s: %v\n", name, err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s: removed from the %s key set; every instance drops it within 30 seconds\n", res.Revoked, res.Alg)
		if res.New {
			fmt.Fprintf(stdout, "new signing key %s: signs now\n", res.Signer)
		} else {
			fmt.Fprintf(stdout, "%s signs now\n", res.Signer)
		}
		return 0
	}
	sets, err := server.RotateSigningKeys(ctx, cfg, store, alg, time.Now())
	for _, res := range sets {
		fmt.Fprintf(stdout, "new %s signing key %s: published now, signs from %s\n", res.Alg, res.New, res.SignsFrom.UTC().Format(time.RFC3339))
		if len(res.Retiring) > 0 {
			fmt.Fprintf(stdout, "retiring %s: published until %s\n", strings.Join(res.Retiring, ", "), res.RetireAt.UTC().Format(time.RFC3339))
		}
		if len(res.Pruned) > 0 {
			fmt.Fprintf(stdout, "removed %s (every token they signed has expired)\n", strings.Join(res.Pruned, ", "))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "stepupd %s: %v\n", name, err)
		return 1
	}
	return 0
}

// algFlag takes -alg ALG (or -alg=ALG) out of args; ok is false when
// -alg has no value.
func algFlag(args []string) (alg string, rest []string, ok bool) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-alg" || a == "--alg":
			if i+1 >= len(args) {
				return "", nil, false
			}
			alg = args[i+1]
			i++
		case strings.HasPrefix(a, "-alg=") || strings.HasPrefix(a, "--alg="):
			alg = a[strings.Index(a, "=")+1:]
		default:
			rest = append(rest, a)
		}
	}
	return alg, rest, true
}

// kidLast puts the arguments of `keys revoke` that are not -config and
// its value after "--", so that the kid may come before or after
// -config, and may begin with "-" as a base64url kid can.
func kidLast(args []string) []string {
	var cfg, rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--":
			rest = append(rest, args[i+1:]...)
			i = len(args)
		case a == "-config" || a == "--config":
			cfg = append(cfg, a)
			if i+1 < len(args) {
				cfg = append(cfg, args[i+1])
				i++
			}
		case strings.HasPrefix(a, "-config=") || strings.HasPrefix(a, "--config="):
			cfg = append(cfg, a)
		default:
			rest = append(rest, a)
		}
	}
	return append(append(cfg, "--"), rest...)
}

func printDemo(w io.Writer, cfg *config.Config, sub string) {
	u := cfg.Users[0]
	fmt.Fprintf(w, `
stepup demo — embedded store and in-memory database, nothing persists
  issuer        %s
  client        %s (public, PKCE)
  user          %s / %s   (sub %s)
  TOTP secret   %s   (add it to an authenticator app, or: oathtool --totp -b %s)

  Sign in (1fa):           %s/demo/login
  Step up (multi-factor):  %s/demo/login?acr=mfa

  Demo bank with "approve on your phone" (OpenID CIBA), in another terminal:
    go run ./cmd/stepup-demo -client-id %s -client-secret %s
  then http://localhost:9000: the approval link is printed below (notify.log).

`, cfg.Issuer, cfg.Clients[0].ID, u.Username, u.Password, sub, u.TOTPSecret, u.TOTPSecret, cfg.Issuer, cfg.Issuer, config.DemoBankClientID, config.DemoBankSecret)
}
