-- The shared store's schema for PostgreSQL, as the SQLite store's migrations 0001-0006 leave
-- theirs: the same tables and columns, so both stores answer every question alike. Times are
-- the same fixed-width UTC text (2026-12-07T01:23:00.000Z), whose text order is time order.
-- A PostgreSQL database starts here; the SQLite history before it is not replayed.

-- Sampled example comparisons and their differences.
CREATE TABLE comparisons (
    id                 BIGSERIAL PRIMARY KEY,
    route_id           TEXT    NOT NULL,
    request_id         TEXT    NOT NULL,
    method             TEXT    NOT NULL,
    path               TEXT    NOT NULL,
    recorded_at        TEXT    NOT NULL,
    table_version      TEXT    NOT NULL,
    primary_upstream   TEXT    NOT NULL,
    candidate_upstream TEXT    NOT NULL,
    primary_status     INTEGER,
    candidate_status   INTEGER,
    primary_ms         DOUBLE PRECISION,
    candidate_ms       DOUBLE PRECISION,
    outcome            TEXT    NOT NULL CHECK (outcome IN ('match', 'mismatch', 'uncomparable', 'skipped')),
    skip_reason        TEXT,
    difference_count   INTEGER NOT NULL DEFAULT 0,
    example_reason     TEXT,
    reservoir_slot     INTEGER
);
CREATE INDEX comparisons_by_route_time ON comparisons (route_id, recorded_at);
CREATE INDEX comparisons_with_differences_by_request ON comparisons (request_id) WHERE difference_count > 0;
CREATE INDEX comparisons_by_reservoir_slot ON comparisons (route_id, reservoir_slot, recorded_at) WHERE reservoir_slot IS NOT NULL;
CREATE INDEX comparisons_by_recorded_at ON comparisons (recorded_at);

CREATE TABLE differences (
    id              BIGSERIAL PRIMARY KEY,
    comparison_id   BIGINT  NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    pointer         TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('status', 'header', 'changed', 'missing', 'added', 'type', 'text', 'bytes')),
    primary_value   TEXT,
    candidate_value TEXT
);
CREATE INDEX differences_by_comparison_pointer ON differences (comparison_id, pointer);

-- Learned noise: per route and pointer, how often two legacy answers differed there; the row
-- with pointer '#probes' counts the route's probes.
CREATE TABLE noise (
    route_id     TEXT    NOT NULL,
    pointer      TEXT    NOT NULL,
    observations INTEGER NOT NULL,
    noisy        INTEGER NOT NULL,
    first_seen   TEXT    NOT NULL,
    last_seen    TEXT    NOT NULL,
    PRIMARY KEY (route_id, pointer)
);

-- The audit trail and the tables it led to.
CREATE TABLE route_changes (
    id                   BIGSERIAL PRIMARY KEY,
    changed_at           TEXT NOT NULL,
    actor                TEXT NOT NULL,
    source               TEXT NOT NULL CHECK (source IN ('cli', 'admin', 'file', 'auto')),
    route_id             TEXT,
    reason               TEXT,
    before_json          TEXT,
    after_json           TEXT,
    table_version_before TEXT,
    table_version_after  TEXT NOT NULL
);
CREATE INDEX route_changes_by_route ON route_changes (route_id, changed_at);
CREATE INDEX route_changes_by_version ON route_changes (table_version_after);

CREATE TABLE route_tables (
    version    TEXT PRIMARY KEY,
    content    TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    seq        BIGSERIAL
);

CREATE TABLE accepted_differences (
    id          BIGSERIAL PRIMARY KEY,
    route_id    TEXT NOT NULL,
    pointer     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    owner       TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    until       TEXT,
    revoked_at  TEXT,
    revoked_by  TEXT
);
CREATE INDEX accepted_differences_by_route ON accepted_differences (route_id);

-- Rollups at two levels, minute and hour (the hour level's `minute` is the hour's first minute),
-- per route, period and instance: every column adds when a period is written again. See the
-- SQLite migrations 0005 and 0006 for what each table counts.
CREATE TABLE rollups (
    route_id          TEXT   NOT NULL,
    minute            TEXT   NOT NULL,
    instance_id       TEXT   NOT NULL,
    matches           BIGINT NOT NULL DEFAULT 0,
    mismatches        BIGINT NOT NULL DEFAULT 0,
    status_mismatches BIGINT NOT NULL DEFAULT 0,
    header_mismatches BIGINT NOT NULL DEFAULT 0,
    body_mismatches   BIGINT NOT NULL DEFAULT 0,
    legacy_served     BIGINT NOT NULL DEFAULT 0,
    service_served    BIGINT NOT NULL DEFAULT 0,
    service_errors    BIGINT NOT NULL DEFAULT 0,
    dropped           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route_id, minute, instance_id)
);
CREATE TABLE hour_rollups (LIKE rollups INCLUDING ALL);

CREATE TABLE rollup_reasons (
    route_id    TEXT   NOT NULL,
    minute      TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    outcome     TEXT   NOT NULL CHECK (outcome IN ('uncomparable', 'skipped')),
    reason      TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, outcome, reason)
);
CREATE TABLE hour_rollup_reasons (LIKE rollup_reasons INCLUDING ALL);

CREATE TABLE rollup_pointers (
    route_id    TEXT   NOT NULL,
    minute      TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    pointer     TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    first_seen  TEXT   NOT NULL,
    last_seen   TEXT   NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, pointer, kind)
);
CREATE TABLE hour_rollup_pointers (LIKE rollup_pointers INCLUDING ALL);

CREATE TABLE rollup_signatures (
    route_id    TEXT   NOT NULL,
    minute      TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    signature   TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, signature)
);
CREATE TABLE hour_rollup_signatures (LIKE rollup_signatures INCLUDING ALL);

CREATE TABLE rollup_latencies (
    route_id            TEXT  NOT NULL,
    minute              TEXT  NOT NULL,
    instance_id         TEXT  NOT NULL,
    primary_upstream    TEXT  NOT NULL,
    candidate_upstream  TEXT  NOT NULL,
    primary_histogram   BYTEA NOT NULL,
    candidate_histogram BYTEA NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, primary_upstream, candidate_upstream)
);
CREATE TABLE hour_rollup_latencies (LIKE rollup_latencies INCLUDING ALL);

CREATE TABLE route_first_compared (
    route_id       TEXT PRIMARY KEY,
    first_compared TEXT NOT NULL
);

CREATE TABLE store_facts (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
