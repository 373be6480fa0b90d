// Package fromredis moves the accounts of a deployment from before the
// account database (when accounts and factors lived in Redis) into it,
// once: at the first start of the new version, before the configuration
// seeds its users, so every user keeps their subject, password, TOTP
// secret, phone, passkeys, recovery codes, switches and lock.
//
// It is idempotent and safe with several instances starting at once: each
// account is imported in one transaction that does nothing when the
// account is already there, or when the move is recorded done
// (sqlstore.ImportUnlessDone). The record of the move is in the database
// (sqlstore.MarkStepDone), written after a pass without failures and
// checked before any move, so no copy of Redis (a restored backup, a
// replica promoted with old data) can bring back an account deleted
// since.
//
// Once the move is recorded, the Redis copies are deleted: account data
// (password hashes, plaintext TOTP secrets, phones, passkeys, recovery
// codes, the username index) and the shared secrets (the signing key in
// plaintext PEM, the cookie keys), each secret after the database holds
// it. Only an operator's lock mark stays, which the abuse budgets read
// in Redis. Every start repeats the purge (a cheap SCAN), so copies
// written back by an old instance or a restored backup go too.
package fromredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// Marker names the one-time step, in the database (and, for deployments
// that moved with an earlier version of this package, in Redis:
// redisstore.MigrationDone).
const Marker = "accounts-to-sql"

// Report counts what a run did.
type Report struct {
	// Skipped: the move was recorded done before; nothing was moved.
	Skipped bool
	// Imported accounts were written to the database by this run.
	Imported int
	// Present accounts were there already (an earlier or concurrent run).
	Present int
	// Conflicts are accounts whose username or email is another
	// subject's in the database; they are left out and logged.
	Conflicts []string
	// Purged counts the accounts, PurgedSecrets the shared secrets,
	// whose Redis copies this run deleted.
	Purged, PurgedSecrets int
}

// Run moves every account of src into dst unless the move is recorded
// done, then deletes the Redis copies once it is. It records the move
// only after a pass with no conflict, so an operator who resolves one
// (by renaming or deleting the other account) gets it moved at the next
// start; until then Redis keeps every copy.
func Run(ctx context.Context, src *redisstore.Store, dst *sqlstore.Store, log *slog.Logger) (Report, error) {
	var rep Report
	if log == nil {
		log = slog.Default()
	}
	done, err := dst.StepDone(ctx, Marker)
	if err != nil {
		return rep, err
	}
	if !done {
		// A move finished by an earlier version of this package left its
		// marker in Redis only: it counts, and goes to the database.
		if done, err = src.MigrationDone(ctx, Marker); err != nil {
			return rep, err
		}
		if done {
			if err := dst.MarkStepDone(ctx, Marker); err != nil {
				return rep, err
			}
		}
	}
	rep.Skipped = done
	if !done {
		if err := move(ctx, src, dst, log, &rep); err != nil {
			return rep, err
		}
		if len(rep.Conflicts) > 0 {
			return rep, nil
		}
		if err := dst.MarkStepDone(ctx, Marker); err != nil {
			return rep, err
		}
	}
	if err := purge(ctx, src, dst, &rep); err != nil {
		return rep, fmt.Errorf("deleting the Redis copies of moved accounts: %w", err)
	}
	if rep.Purged > 0 || rep.PurgedSecrets > 0 {
		log.Info("deleted the Redis copies of accounts and secrets now in the database", "accounts", rep.Purged, "secrets", rep.PurgedSecrets)
	}
	return rep, nil
}

func move(ctx context.Context, src *redisstore.Store, dst *sqlstore.Store, log *slog.Logger, rep *Report) error {
	err := src.LegacyAccounts(ctx, func(a redisstore.LegacyAccount) error {
		ok, err := dst.ImportUnlessDone(ctx, Marker, &a.Account, a.RecoveryHashes)
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
	if errors.Is(err, sqlstore.ErrStepDone) {
		// Another instance finished the move meanwhile: what it did not
		// import is not to be imported (it may have been deleted since).
		return nil
	}
	if err != nil {
		return fmt.Errorf("moving accounts from Redis to the database: %w", err)
	}
	if rep.Imported > 0 || len(rep.Conflicts) > 0 {
		log.Info("moved accounts from Redis to the database", "imported", rep.Imported, "present", rep.Present, "conflicts", len(rep.Conflicts))
	}
	return nil
}

// purge deletes the Redis copies. A shared secret is first stored in the
// database when it has none under that name (as account.Overlay's
// InitSecret would at the server's start), so deleting it loses nothing.
func purge(ctx context.Context, src *redisstore.Store, dst *sqlstore.Store, rep *Report) error {
	n, err := src.PurgeLegacyAccounts(ctx)
	rep.Purged = n
	if err != nil {
		return err
	}
	return src.LegacySecrets(ctx, func(name string, value []byte) error {
		if len(value) > 0 {
			if _, err := dst.InitSecret(ctx, name, value); err != nil {
				return err
			}
		}
		if err := src.DeleteLegacySecret(ctx, name, value); err != nil {
			return err
		}
		rep.PurgedSecrets++
		return nil
	})
}
