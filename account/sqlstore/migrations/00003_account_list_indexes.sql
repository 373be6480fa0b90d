-- +goose Up
-- A SCIM list pages through the matching accounts in creation order
-- (search.go). Without these, a page without a filter, or with
-- `active eq` alone, read and sorted the whole table: at 100k accounts
-- every row per request (docs/benchmarks.md, issue 14). userName and
-- email are unique, so their lookups need no more; externalId is not,
-- and its index now also gives the order.
CREATE INDEX accounts_created ON accounts (created_at, subject);
CREATE INDEX accounts_active ON accounts (active, created_at, subject);
CREATE INDEX accounts_external_id_created ON accounts (external_id, created_at, subject);
DROP INDEX accounts_external_id;

-- +goose Down
CREATE INDEX accounts_external_id ON accounts (external_id);
DROP INDEX accounts_external_id_created;
DROP INDEX accounts_active;
DROP INDEX accounts_created;
