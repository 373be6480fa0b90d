// Package sqlstore is the account store on SQL (account.Store): PostgreSQL
// through pgx for production, SQLite through modernc.org/sqlite (pure Go)
// for one node, the demo and tests. It is the only package that imports a
// SQL driver.
//
// One schema serves both (migrations/, embedded and applied by Open with
// goose; on PostgreSQL under an advisory lock, so instances starting at
// once migrate once). Usernames and emails are unique ignoring case.
// Every change of an account row increments its version, and Update
// writes only over the version the caller read (optimistic concurrency).
// TOTP secrets and the secrets instances share (signing keys, cookie and
// CSRF keys) are sealed with AES-256-GCM (package secrets), bound to their
// subject or name; a copy of the database without the keys holds none.
package sqlstore
