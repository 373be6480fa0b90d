package config

import (
	"slices"
	"strings"
	"testing"
)

const testEncKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

// PRODUCT.md §9: database.url and secrets.encryption_keys, each problem
// named by its path.
func TestDatabaseRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // paths; nil: valid
	}{
		{"absent", func(c *Config) {}, nil},
		{"sqlite file", func(c *Config) { c.Database.URL = "sqlite:/var/lib/stepup/stepup.db" }, nil},
		{"sqlite memory", func(c *Config) { c.Database.URL = "sqlite::memory:" }, nil},
		{"postgres with a key", func(c *Config) {
			c.Database.URL = "postgres://stepup:pw@db:5432/stepup"
			c.Secrets.EncryptionKeys = []string{testEncKey}
		}, nil},
		{"postgres without keys refuses to start", func(c *Config) { c.Database.URL = "postgresql://db/stepup" }, []string{"secrets.encryption_keys"}},
		{"mysql", func(c *Config) { c.Database.URL = "mysql://db/stepup" }, []string{"database.url"}},
		{"sqlite without a path", func(c *Config) { c.Database.URL = "sqlite:" }, []string{"database.url"}},
		{"sqlite with a query", func(c *Config) { c.Database.URL = "sqlite:x.db?mode=ro" }, []string{"database.url"}},
		{"postgres without a host", func(c *Config) {
			c.Database.URL = "postgres:///stepup"
			c.Secrets.EncryptionKeys = []string{testEncKey}
		}, []string{"database.url"}},
		{"bad keys", func(c *Config) {
			c.Secrets.EncryptionKeys = []string{testEncKey, "not base64!", "AAAA", testEncKey}
		}, []string{"secrets.encryption_keys[1]", "secrets.encryption_keys[2]", "secrets.encryption_keys[3]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			_, paths := validatePaths(t, c)
			if !slices.Equal(paths, tt.want) {
				t.Fatalf("paths = %v, want %v\n%v", paths, tt.want, err)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("a message quotes the database password: %v", err)
			}
		})
	}
}

// The default database: in memory only where nothing persists anyway
// (embedded Redis); a file beside a real Redis.
func TestDatabaseURL(t *testing.T) {
	c := validConfig()
	if got := c.DatabaseURL(); got != MemoryDatabaseURL {
		t.Errorf("no database, embedded Redis: %q", got)
	}
	c.Redis.URL = "redis://localhost:6379/0"
	if got := c.DatabaseURL(); got != DefaultDatabaseURL {
		t.Errorf("no database, real Redis: %q", got)
	}
	c.Database.URL = "postgres://db/x"
	if got := c.DatabaseURL(); got != "postgres://db/x" || !c.DatabaseIsPostgres() {
		t.Errorf("given: %q", got)
	}
	if Demo().DatabaseURL() != MemoryDatabaseURL {
		t.Error("the demo does not run in memory")
	}
}

// The line of a bad database setting is reported like any other.
func TestDatabaseErrorsHaveLines(t *testing.T) {
	_, err := Parse([]byte(`issuer: https://id.example.com
database:
  url: postgres://stepup@db/stepup
secrets:
  encryption_keys: []
`), nil)
	es := problems(t, err)
	if len(es) != 1 || es[0].Path != "secrets.encryption_keys" || !strings.Contains(es[0].Msg, "PostgreSQL") {
		t.Fatalf("errors = %v", err)
	}
	if got := es[0].Error(); !strings.Contains(got, "secrets.encryption_keys") {
		t.Fatalf("message %q does not name the key", got)
	}
}

func TestEncryptionKeysArePlainSecrets(t *testing.T) {
	c, err := Parse([]byte(`issuer: https://id.example.com
database:
  url: postgres://stepup:${DB_PASSWORD}@db/stepup
secrets:
  encryption_keys: ["${ENC_KEY}", `+testEncKey+`]
`), func(k string) (string, bool) {
		return map[string]string{"DB_PASSWORD": "pw", "ENC_KEY": testEncKey[:42] + "E="}[k], true
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PlainSecrets(); !slices.Equal(got, []string{"secrets.encryption_keys[1]"}) {
		t.Fatalf("PlainSecrets = %v", got)
	}
}

// passwords.argon2id: OWASP's minimums are the floor (PRODUCT.md §9).
func TestPasswordParams(t *testing.T) {
	tests := []struct {
		name string
		a    Argon2id
		want []string
	}{
		{"default", Argon2id{Memory: "64MiB", Time: 1, Threads: 2}, nil},
		{"owasp t=1", Argon2id{Memory: "46MiB", Time: 1, Threads: 1}, nil},
		{"owasp t=2", Argon2id{Memory: "19MiB", Time: 2, Threads: 1}, nil},
		{"owasp t=5 in KiB", Argon2id{Memory: "7168KiB", Time: 5, Threads: 1}, nil},
		{"below at t=1", Argon2id{Memory: "45MiB", Time: 1, Threads: 1}, []string{"passwords.argon2id.memory"}},
		{"below at t=3", Argon2id{Memory: "11MiB", Time: 3, Threads: 1}, []string{"passwords.argon2id.memory"}},
		{"below at t=8", Argon2id{Memory: "6MiB", Time: 8, Threads: 1}, []string{"passwords.argon2id.memory"}},
		{"not a size", Argon2id{Memory: "64MB", Time: 1, Threads: 1}, []string{"passwords.argon2id.memory"}},
		{"zero passes", Argon2id{Memory: "64MiB", Time: 0, Threads: 0}, []string{"passwords.argon2id.time", "passwords.argon2id.threads"}},
		{"too much memory", Argon2id{Memory: "2GiB", Time: 1, Threads: 1}, []string{"passwords.argon2id.memory"}},
		{"too much work", Argon2id{Memory: "512MiB", Time: 3, Threads: 1}, []string{"passwords.argon2id.time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Passwords.Argon2id = tt.a
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, paths := validatePaths(t, c); !slices.Equal(paths, tt.want) {
				t.Fatalf("paths = %v, want %v\n%v", paths, tt.want, err)
			}
		})
	}
	if kib, ok := validConfig().Passwords.Argon2id.MemoryKiB(); !ok || kib != 64<<10 {
		t.Fatalf("default memory = %d KiB, %v", kib, ok)
	}
}
