package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// secretAD binds a sealed shared secret to its name.
func secretAD(name string) []byte { return []byte("shared\x00" + name) }

// InitSecret implements session.SecretStore in the database: value is
// stored, sealed, under name unless a value is there, and the value in
// effect is returned, so every instance uses the same one.
func (s *Store) InitSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	const op = "init secret"
	if name == "" || len(value) == 0 {
		return nil, fmt.Errorf("sqlstore: %s: empty name or value", op)
	}
	if _, err := s.exec(ctx, `INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, s.keys.Seal(value, secretAD(name)), micros(s.now())); err != nil {
		return nil, s.fail(op, err)
	}
	return s.LookupSecret(ctx, name)
}

// SwapSecret implements session.SecretStore: value replaces the secret
// of name if it still is old. The UPDATE names the sealed text it read,
// so of two swaps at once only one matches.
func (s *Store) SwapSecret(ctx context.Context, name string, old, value []byte) (bool, error) {
	const op = "swap secret"
	if name == "" || len(value) == 0 {
		return false, fmt.Errorf("sqlstore: %s: empty name or value", op)
	}
	var sealed string
	if err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT value FROM shared_secrets WHERE name = $1`), name).Scan(&sealed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, s.fail(op, err)
	}
	v, err := s.keys.Open(sealed, secretAD(name))
	if err != nil {
		return false, fmt.Errorf("sqlstore: %s %s: %w", op, name, err)
	}
	if !bytes.Equal(v, old) {
		return false, nil
	}
	res, err := s.exec(ctx, `UPDATE shared_secrets SET value = $1 WHERE name = $2 AND value = $3`, s.keys.Seal(value, secretAD(name)), name, sealed)
	if err != nil {
		return false, s.fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.fail(op, err)
	}
	return n == 1, nil
}

// LookupSecret returns the shared secret of name (session.ErrNotFound
// without one).
func (s *Store) LookupSecret(ctx context.Context, name string) ([]byte, error) {
	const op = "lookup secret"
	var sealed string
	if err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT value FROM shared_secrets WHERE name = $1`), name).Scan(&sealed); err != nil {
		return nil, s.fail(op, err)
	}
	v, err := s.keys.Open(sealed, secretAD(name))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s %s: %w", op, name, err)
	}
	return v, nil
}

// resealSecrets seals again under the first key the shared secrets that
// another key sealed (see Reseal).
func (s *Store) resealSecrets(ctx context.Context) (int, error) {
	const op = "reseal shared secrets"
	old, err := s.sealedByOtherKeys(ctx, `SELECT name, value FROM shared_secrets WHERE value NOT LIKE $1`)
	if err != nil {
		return 0, s.fail(op, err)
	}
	n := 0
	for _, r := range old {
		v, err := s.keys.Open(r.sealed, secretAD(r.id))
		if err != nil {
			return n, fmt.Errorf("sqlstore: %s %s: %w", op, r.id, err)
		}
		res, err := s.exec(ctx, `UPDATE shared_secrets SET value = $1 WHERE name = $2 AND value = $3`, s.keys.Seal(v, secretAD(r.id)), r.id, r.sealed)
		if err != nil {
			return n, s.fail(op, err)
		}
		if c, _ := res.RowsAffected(); c == 1 {
			n++
		}
	}
	return n, nil
}
