package sqlstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/stepup-dev/stepup/secrets"
)

// Keyring returns the keys that seal secrets in the database of url
// (PRODUCT.md §9). Configured keys (secrets.encryption_keys, base64) win.
// Without them: a SQLite file gets a key file beside it, FILE.key, mode
// 0600, created at the first start with a warning and used from then on;
// an in-memory database gets a key of its own, gone with it; PostgreSQL is
// an error that names secrets.encryption_keys, since a key kept beside a
// shared database would protect nothing.
func Keyring(url string, configured []string, log *slog.Logger) (*secrets.Keyring, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(configured) > 0 {
		keys := make([][]byte, len(configured))
		for i, s := range configured {
			k, err := secrets.ParseKey(s)
			if err != nil {
				return nil, fmt.Errorf("secrets.encryption_keys[%d]: %w", i, err)
			}
			keys[i] = k
		}
		return secrets.NewKeyring(keys...)
	}
	d, _, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	switch {
	case d.goose != sqliteDialect.goose:
		return nil, errors.New("secrets.encryption_keys: required with a PostgreSQL database (base64 of 32 random bytes: openssl rand -base64 32)")
	case d.memory:
		return secrets.NewKeyring(secrets.NewKey())
	}
	path := SQLiteFile(url) + ".key"
	key, created, err := keyFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: key file %s: %w", path, err)
	}
	if created {
		log.Warn("no secrets.encryption_keys: created a key file beside the database; back it up apart from the database, or move it into secrets.encryption_keys", "file", path)
	} else {
		log.Info("secrets sealed with the key file beside the database (no secrets.encryption_keys)", "file", path)
	}
	return secrets.NewKeyring(key)
}

// keyFile reads the key of path, creating it if it does not exist. The
// key is written to a temporary file first and linked into place, so a
// process that starts at the same moment reads a whole key or creates
// none: the link of only one of them succeeds.
func keyFile(path string) (key []byte, created bool, err error) {
	if b, err := os.ReadFile(path); err == nil {
		k, err := secrets.ParseKey(string(b))
		return k, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key = secrets.NewKey()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".stepup-key-*")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if _, err := tmp.WriteString(encodeKey(key) + "\n"); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return keyFile(path)
	} else if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func encodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
