package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/scimuser"
	"github.com/stepup-dev/stepup/account/sqlstore"
	"github.com/stepup-dev/stepup/authn/password"
	"github.com/stepup-dev/stepup/server/op"
	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
)

// The outcomes of one imported line.
const (
	imported  = "created"
	updated   = "updated"
	unchanged = "skipped"
)

// importUsers is `stepupd import -config FILE USERS.jsonl`: each line a
// SCIM User (package scimuser) created, or updated when an account has
// its id or userName; a line that changes nothing is skipped, so running
// it twice changes nothing. It reports the counts and the line of every
// failure, and exits 1 when a line failed.
func importUsers(args []string, stdout, stderr io.Writer) int {
	cfg, rest, code := commandConfig("import", " USERS.jsonl", 1, "nothing would be kept", args, stderr)
	if cfg == nil {
		return code
	}
	f, err := os.Open(rest[0])
	if err != nil {
		fmt.Fprintln(stderr, "stepupd import:", err)
		return 1
	}
	defer f.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	store, err := openAccounts(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "stepupd import:", err)
		return 1
	}
	defer store.Close()
	params := op.PasswordParams(cfg.Passwords.Argon2id)
	// The sessions and grants of a disabled account end at once; they are
	// in Redis (none to end with the embedded store of a development
	// configuration).
	var short session.Store
	if !cfg.Redis.Embedded() {
		rs, err := redisstore.Open(cfg.Redis, redisstore.Options{})
		if err != nil {
			fmt.Fprintln(stderr, "stepupd import: redis:", err)
			return 1
		}
		defer rs.Close()
		short = rs
	}

	counts := map[string]int{}
	var failures []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(trimSpace(sc.Bytes())) == 0 {
			continue
		}
		outcome, r, err := importLine(ctx, store, params, sc.Bytes())
		if err == nil && !r.Active && short != nil {
			// After the database: if this fails, the account is disabled
			// (nothing more can start) and the line is reported; running
			// the import again ends what is left, as every run does for
			// every inactive account it reads.
			if err = endEverything(ctx, short, r.Subject); err != nil {
				err = fmt.Errorf("%s disabled, but its sessions and grants in Redis are not ended yet (run the import again): %w", r.Username, err)
			}
		}
		if err != nil {
			counts["failed"]++
			failures = append(failures, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		counts[outcome]++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(stderr, "stepupd import:", err)
		return 1
	}
	fmt.Fprintf(stdout, "created %d, updated %d, skipped %d, failed %d\n", counts[imported], counts[updated], counts[unchanged], counts["failed"])
	for _, f := range failures {
		fmt.Fprintln(stdout, f)
	}
	if len(failures) > 0 {
		return 1
	}
	return 0
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// endEverything ends every grant (refresh and access tokens) and every
// session of sub, as the admin API's DELETE …/sessions does.
func endEverything(ctx context.Context, short session.Store, sub string) error {
	if err := short.EndUserGrants(ctx, sub); err != nil {
		return err
	}
	all, err := short.ListSessions(ctx, sub)
	if err != nil {
		return err
	}
	for _, s := range all {
		if err := short.EndSession(ctx, s.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
			return err
		}
	}
	return nil
}

// importLine creates or updates the account of one SCIM User and returns
// it as stored.
func importLine(ctx context.Context, store *sqlstore.Store, params password.Params, line []byte) (string, *account.Record, error) {
	u, err := scimuser.Parse(line)
	if err != nil {
		return "", nil, err
	}
	existing, err := findAccount(ctx, store, u)
	if err != nil {
		return "", nil, err
	}
	if existing == nil {
		r := &account.Record{Active: true}
		r.Subject = u.ID
		if r.Subject == "" {
			r.Subject = randomSubject()
		}
		if err := u.Apply(r); err != nil {
			return "", nil, err
		}
		if u.Password != "" {
			if r.PasswordHash, err = password.HashWith(params, u.Password); err != nil {
				return "", nil, err
			}
		}
		if _, err := store.Create(ctx, r); err != nil {
			return "", nil, describe(err)
		}
		return imported, r, nil
	}
	r := *existing
	if err := u.Apply(&r); err != nil {
		return "", nil, err
	}
	// A plain password the account already has is no change.
	if u.Password != "" {
		if ok, _ := password.Verify(existing.PasswordHash, u.Password); !ok {
			if r.PasswordHash, err = password.HashWith(params, u.Password); err != nil {
				return "", nil, err
			}
		}
	}
	if scimuser.Same(&r, existing) {
		return unchanged, existing, nil
	}
	if _, err := store.Update(ctx, &r); err != nil {
		return "", nil, describe(err)
	}
	return updated, &r, nil
}

// findAccount is the account of the User's id, else of its userName
// (ignoring case); nil for none.
func findAccount(ctx context.Context, store *sqlstore.Store, u *scimuser.User) (*account.Record, error) {
	if u.ID != "" {
		r, err := store.Get(ctx, u.ID)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, session.ErrNotFound) {
			return nil, err
		}
	}
	a, err := store.AccountByUsername(ctx, u.UserName)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if u.ID != "" && a.Subject != u.ID {
		return nil, fmt.Errorf("userName %q belongs to another account than id %q", u.UserName, u.ID)
	}
	return store.Get(ctx, a.Subject)
}

func describe(err error) error {
	if errors.Is(err, account.ErrTaken) {
		return errors.New("userName or email already belongs to another account")
	}
	return err
}

func randomSubject() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
