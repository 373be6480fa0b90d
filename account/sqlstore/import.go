package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/session"
)

// Import stores an account with everything it had elsewhere (its subject,
// TOTP secret, phone, switches, lock, passkeys and recovery-code hashes)
// in one transaction, unless an account of that subject, username or
// email exists: then it writes nothing and returns false. So importing
// the same accounts twice, or from several instances at once, stores each
// once and whole.
func (s *Store) Import(ctx context.Context, a *session.Account, recoveryHashes []string) (bool, error) {
	return s.ImportUnlessDone(ctx, "", a, recoveryHashes)
}

// ImportUnlessDone is Import, refused with ErrStepDone in the same
// transaction once the one-time step is recorded done (MarkStepDone): a
// move that another instance finished, and whose accounts an
// administrator may have deleted since, cannot bring one back. An empty
// step is Import.
func (s *Store) ImportUnlessDone(ctx context.Context, step string, a *session.Account, recoveryHashes []string) (bool, error) {
	const op = "import account"
	if a.Username == "" || a.Subject == "" {
		return false, fmt.Errorf("sqlstore: %s: empty username or subject", op)
	}
	r := &account.Record{Account: *a, Active: true}
	imported := false
	err := s.tx(ctx, op, func(tx *sql.Tx) error {
		if step != "" {
			var one int
			err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT 1 FROM one_time_steps WHERE name = $1`), step).Scan(&one)
			if err == nil {
				return ErrStepDone
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(insertAccount+` ON CONFLICT DO NOTHING`), s.insertArgs(r, s.now())...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		imported = true
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE accounts SET last_factor = $1, locked = $2 WHERE subject = $3`),
			string(a.LastFactor), a.Locked, a.Subject); err != nil {
			return err
		}
		for _, h := range recoveryHashes {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO recovery_codes (subject, hash) VALUES ($1, $2) ON CONFLICT DO NOTHING`), a.Subject, h); err != nil {
				return err
			}
		}
		for _, p := range a.Passkeys {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO passkeys (subject, id, data) VALUES ($1, $2, $3)`), a.Subject, p.ID, p.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return imported, nil
}
