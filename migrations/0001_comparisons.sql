-- The diff store (DESIGN.md §5). Times are ISO 8601 UTC text; bodies are never stored raw.

-- One row per shadow comparison (or per skipped one, with the reason).
CREATE TABLE comparisons (
    id                 INTEGER PRIMARY KEY,
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
    primary_ms         REAL,
    candidate_ms       REAL,
    outcome            TEXT    NOT NULL CHECK (outcome IN ('match', 'mismatch', 'uncomparable', 'skipped')),
    skip_reason        TEXT,
    difference_count   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX comparisons_by_route_time ON comparisons (route_id, recorded_at);
CREATE INDEX comparisons_by_request ON comparisons (request_id);

-- One row per difference found in a comparison: an RFC 6901 pointer, a kind, both values
-- (truncated and redacted before they get here).
CREATE TABLE differences (
    id              INTEGER PRIMARY KEY,
    comparison_id   INTEGER NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    pointer         TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('status', 'header', 'changed', 'missing', 'added', 'type', 'text', 'bytes')),
    primary_value   TEXT,
    candidate_value TEXT
);
CREATE INDEX differences_by_comparison ON differences (comparison_id);
CREATE INDEX differences_by_pointer ON differences (pointer);

-- Pointers learned to differ between two calls to the same legacy upstream.
CREATE TABLE noise (
    route_id     TEXT    NOT NULL,
    pointer      TEXT    NOT NULL,
    observations INTEGER NOT NULL,
    noisy        INTEGER NOT NULL,
    first_seen   TEXT    NOT NULL,
    last_seen    TEXT    NOT NULL,
    PRIMARY KEY (route_id, pointer)
);

-- The audit trail of route table changes.
CREATE TABLE route_changes (
    id                   INTEGER PRIMARY KEY,
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
