// Package fromredis moves the accounts of a deployment from before the
// account database (when accounts and factors lived in Redis) into it,
// once: at the first start of the new version, before the configuration
// seeds its users, so every user keeps their subject, password, TOTP
// secret, phone, passkeys, recovery codes, switches and lock.
//
// It is idempotent and safe with several instances starting at once: each
// account is imported in one transaction that does nothing when the
// account is already there (sqlstore.Import), and a marker in Redis,
// written after a pass without failures, spares later starts the scan.
// The Redis copies are left in place (a rollback to the previous version
// finds them); they are no longer read.
package fromredis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// Marker names the one-time step in Redis (redisstore.MigrationDone).
const Marker = "accounts-to-sql"

// Report counts what a run did.
type Report struct {
	// Skipped: a marker said an earlier run finished; nothing was read.
	Skipped bool
	// Imported accounts were written to the database by this run.
	Imported int
	// Present accounts were there already (an earlier or concurrent run).
	Present int
	// Conflicts are accounts whose username or email is another
	// subject's in the database; they are left out and logged.
	Conflicts []string
}

// Run imports every account of src into dst unless the marker says it
// was done. It records the marker only after a pass with no conflict, so
// an operator who resolves one (by renaming or deleting the other
// account) gets it imported at the next start.
func Run(ctx context.Context, src *redisstore.Store, dst *sqlstore.Store, log *slog.Logger) (Report, error) {
	var rep Report
	if log == nil {
		log = slog.Default()
	}
	done, err := src.MigrationDone(ctx, Marker)
	if err != nil {
		return rep, err
	}
	if done {
		rep.Skipped = true
		return rep, nil
	}
	err = src.LegacyAccounts(ctx, func(a redisstore.LegacyAccount) error {
		ok, err := dst.Import(ctx, &a.Account, a.RecoveryHashes)
		if err != nil {
			return fmt.Errorf("account %s (%s): %w", a.Subject, a.Username, err)
		}
		if ok {
			rep.Imported++
			return nil
		}
		if _, err := dst.GetAccount(ctx, a.Subject); err == nil {
			rep.Present++
			return nil
		}
		rep.Conflicts = append(rep.Conflicts, a.Subject)
		log.Error("account in Redis not moved to the database: its username or email belongs to another account there",
			"subject", a.Subject, "username", a.Username)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("moving accounts from Redis to the database: %w", err)
	}
	if len(rep.Conflicts) == 0 {
		if err := src.SetMigrationDone(ctx, Marker, time.Now()); err != nil {
			return rep, err
		}
	}
	if rep.Imported > 0 || len(rep.Conflicts) > 0 {
		log.Info("moved accounts from Redis to the database", "imported", rep.Imported, "present", rep.Present, "conflicts", len(rep.Conflicts))
	}
	return rep, nil
}
