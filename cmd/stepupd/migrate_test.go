package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
	"github.com/stepup-dev/stepup/server"
)

func writeConfig(t *testing.T, db string) string {
	t.Helper()
	return writeConfigRedis(t, db, "redis://127.0.0.1:6379/0")
}

func writeConfigRedis(t *testing.T, db, redisURL string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stepup.yaml")
	cfg := "issuer: http://localhost:8080\nredis: {url: \"" + redisURL + "\"}\n"
	if db != "" {
		cfg += "database: {url: \"" + db + "\"}\n"
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMigrateCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "stepup.db")
	cfg := writeConfig(t, "sqlite:"+db)
	var out, errs bytes.Buffer
	if code := migrate([]string{"-config", cfg}, &out, &errs); code != 0 || !strings.Contains(out.String(), "applied migrations [1") {
		t.Fatalf("first migrate: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	out.Reset()
	if code := migrate([]string{"-config", cfg}, &out, &errs); code != 0 || !strings.Contains(out.String(), "up to date") {
		t.Fatalf("second migrate: exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
	if code := migrate(nil, &out, &errs); code != 2 {
		t.Fatalf("migrate without -config: exit %d", code)
	}
	errs.Reset()
	if code := migrate([]string{"-config", writeConfig(t, "mysql://x")}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "database.url") {
		t.Fatalf("migrate with a bad url: exit %d, stderr %q", code, errs.String())
	}
}

// A restart keeps what changed at runtime: the second start's seed of the
// same users: finds the accounts and changes nothing.
func TestOpenAccountsSeedsOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "stepup.db")
	cfg, err := config.Load(writeConfig(t, "sqlite:"+db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []config.User{{Username: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", TOTPSecret: "JBSWY3DPEHPK3PXP"}}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	s1, err := openAccounts(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	first, err := server.Seed(ctx, s1, cfg.Users)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.SetTOTPSecret(ctx, first[0].Subject, "KRUGS4ZANFZSAYJA"); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	if _, err := os.Stat(db + ".key"); err != nil {
		t.Fatalf("no key file beside the database: %v", err)
	}
	s2, err := openAccounts(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	again, err := server.Seed(ctx, s2, cfg.Users)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Subject != first[0].Subject || again[0].TOTPSecret != "KRUGS4ZANFZSAYJA" {
		t.Fatalf("after a restart: %+v; want subject %s and the TOTP secret enrolled at runtime", again[0], first[0].Subject)
	}
}
