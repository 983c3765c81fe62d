-- Rollups are the evidence: per route, per UTC minute, per proxy instance, every comparison is
-- counted here whether or not its details are kept. The comparisons and differences tables keep
-- only sampled examples from now on. Counts add when a minute is written again (the recorder
-- writes the open minute every few seconds), so every column merges by addition, and the
-- latency histograms (HdrHistogram, sparse varint blobs) merge bucket by bucket.
--
-- Times are the store's fixed-width UTC text (2026-12-07T01:23:00.000Z), minute starts.
CREATE TABLE rollups (
    route_id          TEXT    NOT NULL,
    minute            TEXT    NOT NULL,
    instance_id       TEXT    NOT NULL,
    matches           INTEGER NOT NULL DEFAULT 0,
    mismatches        INTEGER NOT NULL DEFAULT 0,
    status_mismatches INTEGER NOT NULL DEFAULT 0,
    header_mismatches INTEGER NOT NULL DEFAULT 0,
    body_mismatches   INTEGER NOT NULL DEFAULT 0,
    legacy_served     INTEGER NOT NULL DEFAULT 0,
    service_served    INTEGER NOT NULL DEFAULT 0,
    service_errors    INTEGER NOT NULL DEFAULT 0,
    dropped           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (route_id, minute, instance_id)
) WITHOUT ROWID;

-- Uncomparable and skipped comparisons by reason.
CREATE TABLE rollup_reasons (
    route_id    TEXT    NOT NULL,
    minute      TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('uncomparable', 'skipped')),
    reason      TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, outcome, reason)
) WITHOUT ROWID;

-- Differences by pointer and kind, with the first and last time each was seen.
CREATE TABLE rollup_pointers (
    route_id    TEXT    NOT NULL,
    minute      TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    pointer     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    first_seen  TEXT    NOT NULL,
    last_seen   TEXT    NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, pointer, kind)
) WITHOUT ROWID;

-- Mismatches by what they differed in (flags and the sorted body pointers, as canonical JSON
-- text), so that noise learned and differences accepted later still excuse them exactly.
CREATE TABLE rollup_signatures (
    route_id    TEXT    NOT NULL,
    minute      TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    signature   TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, signature)
) WITHOUT ROWID;

-- Latencies of compared requests by pair of upstreams; which side is the service is decided
-- when read, as the route's service may change.
CREATE TABLE rollup_latencies (
    route_id            TEXT NOT NULL,
    minute              TEXT NOT NULL,
    instance_id         TEXT NOT NULL,
    primary_upstream    TEXT NOT NULL,
    candidate_upstream  TEXT NOT NULL,
    primary_histogram   BLOB NOT NULL,
    candidate_histogram BLOB NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, primary_upstream, candidate_upstream)
) WITHOUT ROWID;

-- When each route was first compared; kept when retention removes its early minutes, so a
-- window's coverage starts at the later of the window's start and this.
CREATE TABLE route_first_compared (
    route_id       TEXT PRIMARY KEY,
    first_compared TEXT NOT NULL
) WITHOUT ROWID;

-- The store's own facts, such as the oldest minute retention keeps ('rollups_retained_from')
-- and whether the comparisons recorded before rollups were folded in ('rollups_folded').
CREATE TABLE store_facts (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Examples: a stored comparison now says why it was kept (NULL for rows recorded before
-- rollups), and a reservoir example its slot, which a later example of the same route and
-- hour replaces.
ALTER TABLE comparisons ADD COLUMN example_reason TEXT;
ALTER TABLE comparisons ADD COLUMN reservoir_slot INTEGER;
CREATE INDEX comparisons_by_reservoir_slot ON comparisons (route_id, reservoir_slot, recorded_at) WHERE reservoir_slot IS NOT NULL;
