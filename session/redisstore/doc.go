// Package redisstore implements session.Store on Redis, so that any number
// of stateless stepup instances serve one issuer. It works with a single
// Redis, Sentinel and Cluster through go-redis's UniversalClient, and with
// an embedded in-process server (miniredis) for development.
//
// Every key shape is defined once, in keys.go, with its TTL. Every key has
// a TTL except accounts, the username index and shared secrets. Keys that
// change together share a Cluster hash tag, and each multi-key or
// read-then-write change is one MULTI or one Lua script, so no operation is
// ever half applied and two instances racing on the same record (one
// authorization code, one refresh token, one TOTP step, one username) end
// with exactly one winner.
//
// Errors follow the session package's contract: a missing record is
// session.ErrNotFound, and anything that means Redis cannot answer now
// (network errors, timeouts, LOADING, failover in progress…) wraps
// session.ErrUnavailable.
package redisstore
