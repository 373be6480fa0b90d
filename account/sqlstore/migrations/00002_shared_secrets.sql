-- +goose Up
-- Secrets every instance shares (the signing keys, cookie and CSRF keys),
-- sealed like TOTP secrets, bound to their name. The first value stored
-- under a name is the one every instance uses.
CREATE TABLE shared_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE shared_secrets;
