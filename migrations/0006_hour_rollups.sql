-- Hour rollups: the same evidence as the minute rollups, summed per UTC hour. Every rollup the
-- store takes is added to its minute and to its hour in one transaction, so the two levels
-- always agree. Readers take whole hours from here and only a window's ragged first hour from
-- the minutes: a 30-day report reads about 720 rows per route instead of 43,200. Minutes are
-- kept for a shorter time than hours (`--minute-rollup-retention-days`).
--
-- The `minute` column holds the hour's first minute, so both levels share one row shape.
CREATE TABLE hour_rollups (
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

CREATE TABLE hour_rollup_reasons (
    route_id    TEXT    NOT NULL,
    minute      TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('uncomparable', 'skipped')),
    reason      TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, outcome, reason)
) WITHOUT ROWID;

CREATE TABLE hour_rollup_pointers (
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

CREATE TABLE hour_rollup_signatures (
    route_id    TEXT    NOT NULL,
    minute      TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    signature   TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, signature)
) WITHOUT ROWID;

CREATE TABLE hour_rollup_latencies (
    route_id            TEXT NOT NULL,
    minute              TEXT NOT NULL,
    instance_id         TEXT NOT NULL,
    primary_upstream    TEXT NOT NULL,
    candidate_upstream  TEXT NOT NULL,
    primary_histogram   BLOB NOT NULL,
    candidate_histogram BLOB NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, primary_upstream, candidate_upstream)
) WITHOUT ROWID;

-- Requests served by each side move into the rollups (legacy_served, service_served,
-- service_errors), where `promote` to `retired` and reports read them; the rows of the old
-- table count under the instance name rows recorded before rollups have.
INSERT INTO rollups (route_id, minute, instance_id, legacy_served, service_served, service_errors)
SELECT route_id, minute || ':00.000Z', 'before-rollups', legacy, service, service_errors FROM route_traffic WHERE true
ON CONFLICT (route_id, minute, instance_id) DO UPDATE SET
    legacy_served = legacy_served + excluded.legacy_served, service_served = service_served + excluded.service_served,
    service_errors = service_errors + excluded.service_errors;
DROP TABLE route_traffic;

-- The hours of what the minutes already hold. `merge_latencies` is the store's own aggregate
-- (registered on every connection it opens): it merges HdrHistogram blobs bucket by bucket.
INSERT INTO hour_rollups (route_id, minute, instance_id, matches, mismatches, status_mismatches, header_mismatches,
    body_mismatches, legacy_served, service_served, service_errors, dropped)
SELECT route_id, substr(minute, 1, 13) || ':00:00.000Z', instance_id, SUM(matches), SUM(mismatches), SUM(status_mismatches),
    SUM(header_mismatches), SUM(body_mismatches), SUM(legacy_served), SUM(service_served), SUM(service_errors), SUM(dropped)
FROM rollups GROUP BY 1, 2, 3;

INSERT INTO hour_rollup_reasons (route_id, minute, instance_id, outcome, reason, count)
SELECT route_id, substr(minute, 1, 13) || ':00:00.000Z', instance_id, outcome, reason, SUM(count)
FROM rollup_reasons GROUP BY 1, 2, 3, 4, 5;

INSERT INTO hour_rollup_pointers (route_id, minute, instance_id, pointer, kind, count, first_seen, last_seen)
SELECT route_id, substr(minute, 1, 13) || ':00:00.000Z', instance_id, pointer, kind, SUM(count), MIN(first_seen), MAX(last_seen)
FROM rollup_pointers GROUP BY 1, 2, 3, 4, 5;

INSERT INTO hour_rollup_signatures (route_id, minute, instance_id, signature, count)
SELECT route_id, substr(minute, 1, 13) || ':00:00.000Z', instance_id, signature, SUM(count)
FROM rollup_signatures GROUP BY 1, 2, 3, 4;

INSERT INTO hour_rollup_latencies (route_id, minute, instance_id, primary_upstream, candidate_upstream, primary_histogram,
    candidate_histogram)
SELECT route_id, substr(minute, 1, 13) || ':00:00.000Z', instance_id, primary_upstream, candidate_upstream,
    merge_latencies(primary_histogram), merge_latencies(candidate_histogram)
FROM rollup_latencies GROUP BY 1, 2, 3, 4, 5;
