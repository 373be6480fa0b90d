package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is everything that differs between PostgreSQL and SQLite; the
// queries are written once, with $n placeholders.
type dialect struct {
	name   string // for messages
	driver string
	goose  goose.Dialect
	// rebind turns $n placeholders into the dialect's.
	rebind func(string) string
	// unique reports whether err is a unique-constraint violation.
	unique func(error) bool
	// memory: one connection holds the whole database (sqlite::memory:).
	memory bool
	// prepare: keep prepared statements (Store.stmt).
	prepare bool
	// native: read accounts through pgx itself (Store.getRecordPgx).
	native bool
}

// maxIdleConns is how many connections a Store keeps open while idle.
const maxIdleConns = 32

var placeholder = regexp.MustCompile(`\$(\d+)`)

var postgres = dialect{
	name:   "postgres",
	driver: "pgx",
	goose:  goose.DialectPostgres,
	native: true,
	rebind: func(q string) string { return q },
	unique: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
}

var sqliteDialect = dialect{
	name:    "sqlite",
	driver:  "sqlite",
	goose:   goose.DialectSQLite3,
	prepare: true,
	// SQLite's numbered parameters are ?NNN.
	rebind: func(q string) string { return placeholder.ReplaceAllString(q, "?$1") },
	unique: func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// parseURL picks the dialect of a database URL and the data source name
// its driver takes:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (or postgresql://)
//	sqlite:/var/lib/stepup/stepup.db                     (a file)
//	sqlite::memory:                                      (gone at Close)
//
// A SQLite file runs in WAL mode with a busy timeout, and takes its write
// lock when a transaction begins, so several processes (or connections)
// writing at once wait for each other instead of failing with SQLITE_BUSY.
func parseURL(raw string) (dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return dialect{}, "", errors.New("not a valid postgres:// URL")
		}
		return postgres, raw, nil
	case raw == "sqlite::memory:":
		d := sqliteDialect
		d.memory = true
		return d, "file::memory:?_pragma=foreign_keys(1)", nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return dialect{}, "", fmt.Errorf("sqlite: wants a file path (sqlite:/var/lib/stepup/stepup.db) or :memory:, not %q", path)
		}
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		return sqliteDialect, dsn, nil
	}
	return dialect{}, "", errors.New("want postgres://…, sqlite:FILE or sqlite::memory:")
}

// SQLiteFile returns the file of a sqlite:FILE URL, "" for any other.
func SQLiteFile(raw string) string {
	if raw == "sqlite::memory:" || !strings.HasPrefix(raw, "sqlite:") {
		return ""
	}
	return strings.TrimPrefix(raw, "sqlite:")
}

// CheckURL reports what is wrong with a database URL, nil if nothing.
func CheckURL(raw string) error {
	_, _, err := parseURL(raw)
	return err
}

func openDB(raw string) (*sql.DB, dialect, error) {
	d, dsn, err := parseURL(raw)
	if err != nil {
		return nil, d, err
	}
	if f := SQLiteFile(raw); f != "" {
		// The database holds password hashes: readable by its owner only
		// (SQLite gives its -wal and -shm files the same mode).
		fh, err := os.OpenFile(f, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, d, err
		}
		fh.Close()
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, d, err
	}
	if d.memory {
		// Every connection to :memory: is a database of its own.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		return db, d, nil
	}
	// database/sql keeps 2 idle connections by default: under load every
	// other query opened a connection (a PostgreSQL backend forked, a
	// SQLite file opened with its pragmas) and closed it again, which cost
	// more than the queries (bench/run.sh, issue 14). Keep as many as a
	// busy instance uses; idle ones close after a while.
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, d, nil
}
