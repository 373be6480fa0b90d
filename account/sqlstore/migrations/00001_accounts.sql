-- +goose Up
-- Accounts and their enrolled factors. One schema for PostgreSQL and
-- SQLite; the one difference is how SQLite reads the types: BOOLEAN and
-- BYTEA get numeric affinity there, which keeps 0/1 and blobs unchanged.
-- Times are unix microseconds (BIGINT) so both compare them alike.
CREATE TABLE accounts (
    subject       TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    -- lowercase of username/email, written by the store: unique ignoring
    -- case with the same folding on both databases (NULL: no email).
    username_key  TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL DEFAULT '',
    email_key     TEXT UNIQUE,
    phone         TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    -- sealed with AES-256-GCM (package secrets), '' when not enrolled
    totp_secret   TEXT NOT NULL DEFAULT '',
    email_mfa     BOOLEAN NOT NULL DEFAULT FALSE,
    last_factor   TEXT NOT NULL DEFAULT '',
    locked        BOOLEAN NOT NULL DEFAULT FALSE,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    external_id   TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX accounts_external_id ON accounts (external_id);

CREATE TABLE recovery_codes (
    subject TEXT NOT NULL REFERENCES accounts (subject) ON DELETE CASCADE,
    hash    TEXT NOT NULL,
    PRIMARY KEY (subject, hash)
);

CREATE TABLE passkeys (
    subject TEXT NOT NULL REFERENCES accounts (subject) ON DELETE CASCADE,
    id      TEXT NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (subject, id)
);

-- +goose Down
DROP TABLE passkeys;
DROP TABLE recovery_codes;
DROP TABLE accounts;
