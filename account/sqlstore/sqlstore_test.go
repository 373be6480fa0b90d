package sqlstore_test

import (
	"testing"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/accounttest"
)

// TestConformance runs the account suite on SQLite, and on PostgreSQL too
// when STEPUP_TEST_POSTGRES_URL is set.
func TestConformance(t *testing.T) {
	if accounttest.RealPostgres() {
		t.Log("on the PostgreSQL of " + accounttest.EnvPostgresURL)
	}
	accounttest.Run(t, func(t *testing.T) account.Store { return accounttest.NewStore(t) })
}
