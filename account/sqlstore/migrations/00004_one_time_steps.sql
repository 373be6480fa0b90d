-- +goose Up
-- One-time steps done on this database (the move of accounts out of
-- Redis): recorded here, beside the accounts, so that no copy of Redis
-- (a restored backup, a replica) can make a step run again.
CREATE TABLE one_time_steps (
    name    TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE one_time_steps;
