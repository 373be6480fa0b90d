// Package sessiontest is the conformance suite every session.Store must
// pass (Run), and the Redis that tests of other packages run against
// (NewStore, NewBackend): a real one when STEPUP_TEST_REDIS_URL (or, for
// Cluster and Sentinel, STEPUP_TEST_REDIS_ADDRS) is set, an embedded
// miniredis otherwise — same test code either way. StartCluster and
// StartSentinel start real topologies from the redis-server,
// redis-sentinel and redis-cli binaries for a test (EnvTopologies gates
// them); NewBackendOn points a Backend at one.
package sessiontest
