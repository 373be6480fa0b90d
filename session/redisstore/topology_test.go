package redisstore_test

import (
	"log/slog"
	"testing"

	"github.com/stepup-dev/stepup/session"
	"github.com/stepup-dev/stepup/session/redisstore"
	"github.com/stepup-dev/stepup/session/sessiontest"
)

// The conformance suite on a real 3-primary Redis Cluster and on a
// Sentinel-managed primary with a replica, each started by the test
// (sessiontest.EnvTopologies gates them; CI sets it). On the Cluster,
// every script or MULTI whose keys span two slots fails with CROSSSLOT,
// so the suite passing there is the check that each atomic operation
// stays on one slot (PRODUCT.md §6).
func TestConformanceTopologies(t *testing.T) {
	redisstore.LogTo(slog.New(slog.DiscardHandler)) // go-redis narrates every Sentinel lookup
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := sessiontest.StartCluster(t)
		// After the (parallel) subtests: the suite's keys must have been
		// read on every primary, or the Cluster proved nothing about slots.
		t.Cleanup(func() {
			for i, n := range c.Nodes {
				if st := n.Info("stats"); st["keyspace_hits"] == "0" {
					t.Errorf("node %d (%s) never served a key", i, n.Addr())
				}
			}
		})
		sessiontest.Run(t, func(t *testing.T) session.Store {
			return sessiontest.NewBackendOn(t, c.Redis()).Store(t)
		})
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		s := sessiontest.StartSentinel(t)
		sessiontest.Run(t, func(t *testing.T) session.Store {
			return sessiontest.NewBackendOn(t, s.Redis()).Store(t)
		})
	})
}
