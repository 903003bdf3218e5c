-- 0001_init: teams, virtual keys, their credentials, and the usage ledger.
--
-- Conventions (SQLite backend; PostgreSQL keeps its own migrations):
--   * Money is INTEGER nanos of a US dollar (meter.Nanos), never REAL.
--   * Durations are INTEGER nanoseconds (time.Duration).
--   * Tenant timestamps are TEXT in one fixed-width UTC layout,
--     2006-01-02T15:04:05.000000000Z, so they compare correctly as strings,
--     read well in the sqlite3 shell and hold any time.Time, the zero one
--     included. Ledger time is INTEGER unix nanoseconds UTC: it is the only
--     column ranged over and sorted on in bulk.
--   * JSON columns are TEXT; NULL means a nil map or slice, '[]' an empty one.
--   * Budget columns are all NULL when there is no budget.
--   * Booleans are INTEGER 0 or 1.

CREATE TABLE teams (
    id                        TEXT    NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL UNIQUE,
    metadata                  TEXT,
    created_at                TEXT    NOT NULL,
    max_key_age_ns            INTEGER NOT NULL DEFAULT 0,
    rotation_warning_ns       INTEGER NOT NULL DEFAULT 0,
    rpm                       INTEGER NOT NULL DEFAULT 0,
    tpm                       INTEGER NOT NULL DEFAULT 0,
    budget_limit_nanos        INTEGER,
    budget_period             TEXT,
    budget_soft_percent       INTEGER,
    budget_downgrade_percent  INTEGER,
    provider_keys             TEXT,
    CHECK ((budget_limit_nanos IS NULL) = (budget_period IS NULL))
);

CREATE TABLE keys (
    id                        TEXT    NOT NULL PRIMARY KEY,
    team_id                   TEXT    NOT NULL REFERENCES teams (id),
    name                      TEXT    NOT NULL,
    allowed_models            TEXT,
    allowed_tiers             TEXT,
    default_criticality       TEXT    NOT NULL DEFAULT '',
    expires_at                TEXT,
    revoked_at                TEXT,
    created_at                TEXT    NOT NULL,
    rotated_at                TEXT    NOT NULL,
    rpm                       INTEGER NOT NULL DEFAULT 0,
    tpm                       INTEGER NOT NULL DEFAULT 0,
    budget_limit_nanos        INTEGER,
    budget_period             TEXT,
    budget_soft_percent       INTEGER,
    budget_downgrade_percent  INTEGER,
    CHECK ((budget_limit_nanos IS NULL) = (budget_period IS NULL))
);

CREATE INDEX keys_team_created ON keys (team_id, created_at);

CREATE TABLE credentials (
    hash       BLOB NOT NULL PRIMARY KEY CHECK (length(hash) = 32), -- SHA-256 of the secret
    key_id     TEXT NOT NULL REFERENCES keys (id),
    prefix     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    not_after  TEXT
);

CREATE INDEX credentials_key ON credentials (key_id, created_at);

-- The ledger has no foreign keys on purpose: master-key records have no team,
-- and a record must never be refused because of the state of another table.
CREATE TABLE usage (
    request_id        TEXT    NOT NULL PRIMARY KEY, -- idempotency of AppendUsage
    time              INTEGER NOT NULL,             -- unix nanoseconds, UTC
    team_id           TEXT    NOT NULL DEFAULT '',
    key_id            TEXT    NOT NULL DEFAULT '',
    endpoint          TEXT    NOT NULL DEFAULT '',
    tier              TEXT    NOT NULL DEFAULT '',
    criticality       TEXT    NOT NULL DEFAULT '',
    downgraded        INTEGER NOT NULL DEFAULT 0,
    requested_model   TEXT    NOT NULL DEFAULT '',
    served_model      TEXT    NOT NULL DEFAULT '',
    provider          TEXT    NOT NULL DEFAULT '',
    deployment        TEXT    NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    fallback          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_nanos        INTEGER NOT NULL DEFAULT 0,
    latency_ns        INTEGER NOT NULL DEFAULT 0,
    ttfb_ns           INTEGER NOT NULL DEFAULT 0,
    status            INTEGER NOT NULL DEFAULT 0,
    error_code        TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX usage_team_time ON usage (team_id, time);
CREATE INDEX usage_key_time ON usage (key_id, time);
CREATE INDEX usage_time ON usage (time);
