package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

// ErrStepDone is returned by ImportUnlessDone once the step is recorded.
var ErrStepDone = errors.New("sqlstore: the one-time step is done")

// StepDone reports whether the one-time step name was recorded done.
func (s *Store) StepDone(ctx context.Context, name string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT 1 FROM one_time_steps WHERE name = $1`), name).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, s.fail("step done", err)
	}
	return true, nil
}

// MarkStepDone records the one-time step name done (again is a no-op).
func (s *Store) MarkStepDone(ctx context.Context, name string) error {
	_, err := s.exec(ctx, `INSERT INTO one_time_steps (name, done_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, micros(s.now()))
	return s.fail("mark step done", err)
}
