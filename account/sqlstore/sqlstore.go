package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/authn"
	"github.com/stepup-dev/stepup/secrets"
	"github.com/stepup-dev/stepup/session"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is an account.Store on a SQL database.
type Store struct {
	db   *sql.DB
	d    dialect
	keys *secrets.Keyring
	now  func() time.Time
	// stmts holds SQLite's prepared statements by query (see query).
	stmts sync.Map
}

var _ account.Store = (*Store)(nil)

// Options configure Open.
type Options struct {
	// Keys seal TOTP secrets; required.
	Keys *secrets.Keyring
	// Now replaces the clock of created/updated times (tests).
	Now func() time.Time
}

// Open connects to the database of url (see CheckURL for the forms),
// applies the migrations it lacks and returns the store.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	if o.Keys == nil {
		return nil, errors.New("sqlstore: no encryption keys")
	}
	db, d, err := openDB(url)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: database url: %w", err)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, d: d, keys: o.Keys, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Migrate applies the migrations the database of url lacks, alone
// (`stepupd migrate`), and reports the versions it applied.
func Migrate(ctx context.Context, url string) ([]int64, error) {
	db, d, err := openDB(url)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: database url: %w", err)
	}
	defer db.Close()
	return migrateVersions(ctx, db, d)
}

func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	_, err := migrateVersions(ctx, db, d)
	return err
}

func migrateVersions(ctx context.Context, db *sql.DB, d dialect) ([]int64, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if d.goose == goose.DialectPostgres {
		// One lock per schema: instances migrating one database wait for
		// each other; databases in other schemas need not.
		var schema string
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return nil, fmt.Errorf("sqlstore: migrations: %w: %w", session.ErrUnavailable, err)
		}
		h := fnv.New64a()
		h.Write([]byte("stepup migrations\x00" + schema))
		l, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d.goose, db, mustSub(migrations, "migrations"), opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	// SQLite has no lock for goose to take: of processes migrating one file
	// at once, those that lose the race fail on what the winner created
	// (each migration is one transaction, so nothing is half done). They
	// look again; what is left to do is then nothing.
	for try := 0; err != nil && d.goose == goose.DialectSQLite3 && try < 5 && ctx.Err() == nil; try++ {
		time.Sleep(time.Duration(50*(try+1)) * time.Millisecond)
		res, err = p.Up(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrating the %s database: %w", d.name, err)
	}
	var applied []int64
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.fail("ping", s.db.PingContext(ctx)) }

// Close closes the database (an in-memory one is gone).
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// Dialect names the database: "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.d.name }

// DB is the database, for tests that look at the raw rows.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, err := s.stmt(ctx, q); err != nil || st != nil {
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, s.d.rebind(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st, err := s.stmt(ctx, q); err != nil || st != nil {
		if err != nil {
			return nil, err
		}
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, s.d.rebind(q), args...)
}

// stmt is the prepared form of q on SQLite (nil on PostgreSQL), prepared
// once and kept: SQLite parses and plans a query every time it is not
// (a third of the CPU a sign-in spent in the database, measured with
// bench/run.sh), where pgx already keeps each connection's statements.
// Every q is a constant of this package, so the set is small.
func (s *Store) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if !s.d.prepare {
		return nil, nil
	}
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, s.d.rebind(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// fail turns a driver error into the store's: no rows is
// session.ErrNotFound, a unique violation account.ErrTaken, the rest
// session.ErrUnavailable.
func (s *Store) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, session.ErrNotFound), errors.Is(err, account.ErrConflict), errors.Is(err, account.ErrTaken), errors.Is(err, ErrStepDone):
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, session.ErrNotFound)
	case s.d.unique(err):
		return fmt.Errorf("sqlstore: %s: %w", op, account.ErrTaken)
	}
	return fmt.Errorf("sqlstore: %s: %w: %w", op, session.ErrUnavailable, err)
}

func key(s string) string { return strings.ToLower(s) }

// emailKey is NULL for no email: many accounts may have none.
func emailKey(email string) any {
	if email == "" {
		return nil
	}
	return key(email)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// totpAD binds a sealed TOTP secret to its account.
func totpAD(subject string) []byte { return []byte("totp\x00" + subject) }

func (s *Store) sealTOTP(subject, secret string) string {
	if secret == "" {
		return ""
	}
	return s.keys.Seal([]byte(secret), totpAD(subject))
}

func (s *Store) openTOTP(subject, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	b, err := s.keys.Open(sealed, totpAD(subject))
	if err != nil {
		return "", fmt.Errorf("TOTP secret of %s: %w", subject, err)
	}
	return string(b), nil
}

// columns are the account columns, in the order scanRecord reads them.
const columns = `a.subject, a.username, a.email, a.phone, a.name, a.password_hash, a.totp_secret,
	a.email_mfa, a.last_factor, a.locked, a.active, a.external_id, a.created_at, a.updated_at, a.version,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.subject = a.subject)`

// selectRecord reads accounts with their recovery-code count and their
// passkeys in one round trip: one row per passkey (or one without), the
// rows of one account next to each other.
const selectRecord = `SELECT ` + columns + `, p.id, p.data
	FROM accounts a LEFT JOIN passkeys p ON p.subject = a.subject
	WHERE %s ORDER BY a.subject, p.id`

// The reads of one account by a unique column (every sign-in and flow
// step). They have no ORDER BY: one account's rows need no grouping, and
// scanRecords sorts the passkeys; PostgreSQL's plan had a Sort node for
// it, a tenth of the backend's CPU per read (docs/benchmarks.md, issue
// 14).
const selectOne = `SELECT ` + columns + `, p.id, p.data
	FROM accounts a LEFT JOIN passkeys p ON p.subject = a.subject
	WHERE `

const (
	getBySubject  = selectOne + `a.subject = $1`
	getByUsername = selectOne + `a.username_key = $1`
	getByEmail    = selectOne + `a.email_key = $1`
)

func (s *Store) getRecord(ctx context.Context, op, q string, arg any) (*account.Record, error) {
	if v, ok := arg.(string); ok && !account.Storable(v) {
		// No row holds it (PostgreSQL's text refuses a NUL byte and
		// invalid UTF-8, and the store writes neither): not found, as on
		// SQLite, not an error of the store that anyone could cause from
		// the login form (503, EventStoreDown).
		return nil, s.fail(op, sql.ErrNoRows)
	}
	if s.d.native {
		return s.getRecordPgx(ctx, op, q, arg)
	}
	rows, err := s.query(ctx, q, arg)
	if err != nil {
		return nil, s.fail(op, err)
	}
	recs, err := s.scanRecords(op, rows)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, s.fail(op, sql.ErrNoRows)
	}
	return recs[0], nil
}

// getRecordPgx is getRecord on PostgreSQL through pgx itself, on a
// connection of the same pool: the row is scanned from pgx's binary
// format straight into the record, without database/sql's conversion of
// every column to a driver.Value and back. The statement is prepared
// once per connection (pgx's statement cache, as through database/sql).
// A connection found broken before anything was sent is discarded and
// the read tried on another, as database/sql does.
func (s *Store) getRecordPgx(ctx context.Context, op, q string, arg any) (*account.Record, error) {
	var (
		recs []*account.Record
		err  error
	)
	for try := 0; try < 3; try++ {
		recs, err = s.rawRecords(ctx, op, q, arg)
		if !errors.Is(err, driver.ErrBadConn) {
			break
		}
	}
	if errors.Is(err, driver.ErrBadConn) {
		return nil, s.fail(op, err)
	} else if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, s.fail(op, sql.ErrNoRows)
	}
	return recs[0], nil
}

// rawRecords runs q on one connection; its errors are the store's
// (fail), but for driver.ErrBadConn: try again.
func (s *Store) rawRecords(ctx context.Context, op, q string, arg any) ([]*account.Record, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer c.Close()
	var recs []*account.Record
	err = c.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		rows, err := pc.Conn().Query(ctx, q, arg)
		if err == nil {
			recs, err = s.scanRows(op, rows, true)
			rows.Close()
		} else {
			err = s.fail(op, err)
		}
		if err != nil && pgconn.SafeToRetry(err) {
			// Nothing reached the server: database/sql drops the
			// connection on ErrBadConn, the caller tries another.
			return driver.ErrBadConn
		}
		return err
	})
	return recs, err
}

// rowScanner is what scanRows needs of *sql.Rows and pgx.Rows.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanRecords reads the rows of selectRecord or selectOne, those of one
// account next to each other, and closes them.
func (s *Store) scanRecords(op string, rows *sql.Rows) ([]*account.Record, error) {
	defer rows.Close()
	return s.scanRows(op, rows, false)
}

// scanRows is scanRecords on rows of database/sql, or of pgx itself
// (native: NULL scans into a nil *string there). Each account's passkeys
// are sorted by id (byte order, whatever the database's collation).
func (s *Store) scanRows(op string, rows rowScanner, native bool) ([]*account.Record, error) {
	var (
		out []*account.Record
		r   *account.Record
	)
	for rows.Next() {
		var (
			rec                account.Record
			sealed, lastFactor string
			created, updated   int64
			recovery           int64
			pkNull             sql.NullString
			pkPtr              *string
			pkData             []byte
		)
		pkDest := any(&pkNull)
		if native {
			pkDest = &pkPtr
		}
		if err := rows.Scan(&rec.Subject, &rec.Username, &rec.Email, &rec.Phone, &rec.Name, &rec.PasswordHash, &sealed,
			&rec.EmailMFA, &lastFactor, &rec.Locked, &rec.Active, &rec.ExternalID, &created, &updated, &rec.Version,
			&recovery, pkDest, &pkData); err != nil {
			return nil, s.fail(op, err)
		}
		if r == nil || r.Subject != rec.Subject {
			var err error
			if rec.TOTPSecret, err = s.openTOTP(rec.Subject, sealed); err != nil {
				return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
			}
			rec.LastFactor = authn.Factor(lastFactor)
			rec.CreatedAt, rec.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
			rec.RecoveryCodes = int(recovery)
			rec.Disabled = !rec.Active
			r = &rec
			out = append(out, r)
		}
		switch {
		case pkPtr != nil:
			// pgx copies a bytea into a new slice.
			r.Passkeys = append(r.Passkeys, session.StoredPasskey{ID: *pkPtr, Data: pkData})
		case pkNull.Valid:
			r.Passkeys = append(r.Passkeys, session.StoredPasskey{ID: pkNull.String, Data: slices.Clone(pkData)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	for _, r := range out {
		if len(r.Passkeys) > 1 {
			slices.SortFunc(r.Passkeys, func(a, b session.StoredPasskey) int { return strings.Compare(a.ID, b.ID) })
		}
	}
	return out, nil
}

// Get implements account.Store.
func (s *Store) Get(ctx context.Context, subject string) (*account.Record, error) {
	return s.getRecord(ctx, "get account", getBySubject, subject)
}

// GetAccount implements session.AccountStore: one query.
func (s *Store) GetAccount(ctx context.Context, subject string) (*session.Account, error) {
	r, err := s.Get(ctx, subject)
	if err != nil {
		return nil, err
	}
	return &r.Account, nil
}

// AccountByUsername implements session.AccountStore, ignoring case.
func (s *Store) AccountByUsername(ctx context.Context, username string) (*session.Account, error) {
	r, err := s.getRecord(ctx, "account by username", getByUsername, key(username))
	if err != nil {
		return nil, err
	}
	return &r.Account, nil
}

// AccountByEmail implements session.EmailFinder, ignoring case (the
// email_key index). An empty email names no account.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*session.Account, error) {
	if email == "" {
		return nil, fmt.Errorf("sqlstore: account by email: %w", session.ErrNotFound)
	}
	r, err := s.getRecord(ctx, "account by email", getByEmail, key(email))
	if err != nil {
		return nil, err
	}
	return &r.Account, nil
}

const insertAccount = `INSERT INTO accounts (subject, username, username_key, email, email_key, phone, name,
	password_hash, totp_secret, email_mfa, active, external_id, created_at, updated_at, version)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, 1)`

func (s *Store) insertArgs(r *account.Record, now time.Time) []any {
	return []any{r.Subject, r.Username, key(r.Username), r.Email, emailKey(r.Email), r.Phone, r.Name,
		r.PasswordHash, s.sealTOTP(r.Subject, r.TOTPSecret), r.EmailMFA, r.Active, r.ExternalID, micros(now)}
}

// SeedAccount implements account.Store: an existing account (same
// username, ignoring case) is returned as it is; the configuration never
// overwrites what changed at runtime. Instances seeding at once agree on
// the first subject (the insert that conflicts does nothing).
func (s *Store) SeedAccount(ctx context.Context, a *session.Account) (*session.Account, error) {
	const op = "seed account"
	if a.Username == "" || a.Subject == "" {
		return nil, fmt.Errorf("sqlstore: %s: empty username or subject", op)
	}
	if got, err := s.AccountByUsername(ctx, a.Username); err == nil || !errors.Is(err, session.ErrNotFound) {
		return got, err
	}
	r := &account.Record{Account: *a, Active: true}
	q := insertAccount + ` ON CONFLICT (username_key) DO NOTHING`
	if _, err := s.exec(ctx, q, s.insertArgs(r, s.now())...); err != nil {
		return nil, s.fail(op, fmt.Errorf("%s: %w", a.Username, err))
	}
	got, err := s.AccountByUsername(ctx, a.Username)
	if errors.Is(err, session.ErrNotFound) {
		// The insert did nothing, and not for the username: a deleted
		// account cannot explain it, a taken email can.
		return nil, fmt.Errorf("sqlstore: %s %s: email %s: %w", op, a.Username, a.Email, account.ErrTaken)
	}
	return got, err
}

// Create implements account.Store.
func (s *Store) Create(ctx context.Context, r *account.Record) (*account.Record, error) {
	const op = "create account"
	if r.Username == "" || r.Subject == "" {
		return nil, fmt.Errorf("sqlstore: %s: empty username or subject", op)
	}
	if _, err := s.exec(ctx, insertAccount, s.insertArgs(r, s.now())...); err != nil {
		return nil, s.fail(op, err)
	}
	return s.Get(ctx, r.Subject)
}

// Update implements account.Store. The TOTP secret is sealed again under
// the first key whatever key sealed it before.
func (s *Store) Update(ctx context.Context, r *account.Record) (*account.Record, error) {
	const op = "update account"
	if r.Username == "" {
		return nil, fmt.Errorf("sqlstore: %s: empty username", op)
	}
	res, err := s.exec(ctx, `UPDATE accounts SET username = $1, username_key = $2, email = $3, email_key = $4,
		phone = $5, name = $6, password_hash = $7, totp_secret = $8, email_mfa = $9, active = $10,
		external_id = $11, updated_at = $12, version = version + 1
		WHERE subject = $13 AND version = $14`,
		r.Username, key(r.Username), r.Email, emailKey(r.Email), r.Phone, r.Name, r.PasswordHash,
		s.sealTOTP(r.Subject, r.TOTPSecret), r.EmailMFA, r.Active, r.ExternalID, micros(s.now()), r.Subject, r.Version)
	if err != nil {
		return nil, s.fail(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, s.fail(op, err)
	} else if n == 0 {
		if _, err := s.Get(ctx, r.Subject); err != nil {
			return nil, err
		}
		return nil, s.fail(op, fmt.Errorf("%s at version %d: %w", r.Subject, r.Version, account.ErrConflict))
	}
	return s.Get(ctx, r.Subject)
}

// Delete implements account.Store; the factors go with the account (ON
// DELETE CASCADE).
func (s *Store) Delete(ctx context.Context, subject string) error {
	return s.updateOne(ctx, "delete account", `DELETE FROM accounts WHERE subject = $1`, subject)
}

// updateOne runs a statement that changes one row and maps "no row" to
// session.ErrNotFound.
func (s *Store) updateOne(ctx context.Context, op, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return s.fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.fail(op, err)
	}
	if n == 0 {
		return s.fail(op, sql.ErrNoRows)
	}
	return nil
}

// setField writes one column of an account and counts a change of it.
func (s *Store) setField(ctx context.Context, op, column, subject string, value any) error {
	return s.updateOne(ctx, op, `UPDATE accounts SET `+column+` = $1, updated_at = $2, version = version + 1 WHERE subject = $3`,
		value, micros(s.now()), subject)
}

// ReplacePasswordHash implements session.PasswordStore.
func (s *Store) ReplacePasswordHash(ctx context.Context, subject, oldHash, newHash string) (bool, error) {
	err := s.updateOne(ctx, "replace password hash", `UPDATE accounts SET password_hash = $1, updated_at = $2, version = version + 1
		WHERE subject = $3 AND password_hash = $4`, newHash, micros(s.now()), subject, oldHash)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// SetTOTPSecret implements session.AccountStore; the secret is sealed.
func (s *Store) SetTOTPSecret(ctx context.Context, subject, secret string) error {
	return s.setField(ctx, "set totp secret", "totp_secret", subject, s.sealTOTP(subject, secret))
}

// SetEmailMFA implements session.AccountStore.
func (s *Store) SetEmailMFA(ctx context.Context, subject string, on bool) error {
	return s.setField(ctx, "set email mfa", "email_mfa", subject, on)
}

// SetPhone implements session.PhoneStore.
func (s *Store) SetPhone(ctx context.Context, subject, phone string) error {
	return s.setField(ctx, "set phone", "phone", subject, phone)
}

// SetLocked implements account.Store.
func (s *Store) SetLocked(ctx context.Context, subject string, locked bool) error {
	return s.setField(ctx, "set locked", "locked", subject, locked)
}

// SetLastFactor implements session.AccountStore. It is bookkeeping of
// every multi-factor sign-in, not a change an administrator makes, so it
// moves neither the version nor updated_at: a sign-in never makes an
// administrator's pending update fail.
func (s *Store) SetLastFactor(ctx context.Context, subject string, f authn.Factor) error {
	return s.updateOne(ctx, "set last factor", `UPDATE accounts SET last_factor = $1 WHERE subject = $2`, string(f), subject)
}

// SetRecoveryCodes implements session.RecoveryStore in one transaction.
func (s *Store) SetRecoveryCodes(ctx context.Context, subject string, hashes []string) error {
	const op = "set recovery codes"
	for _, h := range hashes {
		if h == "" {
			return fmt.Errorf("sqlstore: %s: empty hash", op)
		}
	}
	return s.tx(ctx, op, func(tx *sql.Tx) error {
		// Locks the account row (PostgreSQL) or the database (SQLite,
		// BEGIN IMMEDIATE) and says whether it exists.
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE accounts SET updated_at = $1 WHERE subject = $2`), micros(s.now()), subject)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sql.ErrNoRows
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM recovery_codes WHERE subject = $1`), subject); err != nil {
			return err
		}
		for _, h := range slices.Compact(slices.Sorted(slices.Values(hashes))) {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO recovery_codes (subject, hash) VALUES ($1, $2)`), subject, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// UseRecoveryCode implements session.RecoveryStore with one DELETE: of
// concurrent uses exactly one removes the row.
func (s *Store) UseRecoveryCode(ctx context.Context, subject, hash string) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM recovery_codes WHERE subject = $1 AND hash = $2`, subject, hash)
	if err != nil {
		return false, s.fail("use recovery code", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.fail("use recovery code", err)
	}
	return n == 1, nil
}

// CountRecoveryCodes implements session.RecoveryStore.
func (s *Store) CountRecoveryCodes(ctx context.Context, subject string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM recovery_codes WHERE subject = $1`), subject).Scan(&n)
	return n, s.fail("count recovery codes", err)
}

// PutPasskey implements session.PasskeyStore: the insert selects the
// account, so a removed account gets no orphan credential.
func (s *Store) PutPasskey(ctx context.Context, subject string, p session.StoredPasskey) error {
	const op = "put passkey"
	if p.ID == "" || len(p.Data) == 0 {
		return fmt.Errorf("sqlstore: %s: empty id or record", op)
	}
	return s.updateOne(ctx, op, `INSERT INTO passkeys (subject, id, data)
		SELECT subject, $2, $3 FROM accounts WHERE subject = $1
		ON CONFLICT (subject, id) DO UPDATE SET data = excluded.data`, subject, p.ID, p.Data)
}

// UpdatePasskey implements session.PasskeyStore.
func (s *Store) UpdatePasskey(ctx context.Context, subject string, p session.StoredPasskey) error {
	const op = "update passkey"
	if p.ID == "" || len(p.Data) == 0 {
		return fmt.Errorf("sqlstore: %s: empty id or record", op)
	}
	return s.updateOne(ctx, op, `UPDATE passkeys SET data = $1 WHERE subject = $2 AND id = $3`, p.Data, subject, p.ID)
}

// DeletePasskey implements session.PasskeyStore.
func (s *Store) DeletePasskey(ctx context.Context, subject, id string) error {
	return s.updateOne(ctx, "delete passkey", `DELETE FROM passkeys WHERE subject = $1 AND id = $2`, subject, id)
}

// sealedRow is a row whose value (sealed) another key than the sealing
// key sealed: id is the subject or the secret's name.
type sealedRow struct{ id, sealed string }

// sealedByOtherKeys runs query, whose only parameter ($1) is the LIKE
// pattern of values the sealing key sealed, and returns its (id, sealed)
// rows.
func (s *Store) sealedByOtherKeys(ctx context.Context, query string) ([]sealedRow, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(query), "v1."+s.keys.SealingKeyID()+".%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.id, &r.sealed); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Reseal seals again, under the first key, every TOTP secret and shared
// secret sealed under another, and returns how many it changed. Each row is replaced only if
// it still holds what was read, so a concurrent write is never undone;
// the plaintext is the same, so neither version nor updated_at moves.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	const op = "reseal totp secrets"
	old, err := s.sealedByOtherKeys(ctx, `SELECT subject, totp_secret FROM accounts
		WHERE totp_secret <> '' AND totp_secret NOT LIKE $1`)
	if err != nil {
		return 0, s.fail(op, err)
	}
	n := 0
	for _, r := range old {
		plain, err := s.openTOTP(r.id, r.sealed)
		if err != nil {
			return n, fmt.Errorf("sqlstore: %s: %w", op, err)
		}
		res, err := s.exec(ctx, `UPDATE accounts SET totp_secret = $1 WHERE subject = $2 AND totp_secret = $3`,
			s.sealTOTP(r.id, plain), r.id, r.sealed)
		if err != nil {
			return n, s.fail(op, err)
		}
		if c, _ := res.RowsAffected(); c == 1 {
			n++
		}
	}
	m, err := s.resealSecrets(ctx)
	return n + m, err
}

func (s *Store) tx(ctx context.Context, op string, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return s.fail(op, err)
	}
	return s.fail(op, tx.Commit())
}
