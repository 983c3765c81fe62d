-- The minute rollup tables become partitioned by range on `minute`, one partition per UTC day,
-- so that retention drops a day's partitions whole instead of deleting its rows one by one
-- (see MinuteRollupPartitions in Sources/StranglerStore/Postgres/PostgresPartitions.swift).
-- `minute` is fixed-width UTC text (2026-12-07T01:23:00.000Z) whose text order is time order:
-- the day 2026-12-07 is FROM ('2026-12-07T00:00:00.000Z') TO ('2026-12-08T00:00:00.000Z'),
-- and its partition is <table>_p20261207. Each table also gets a DEFAULT partition,
-- <table>_default, so a write for a day with no partition yet never fails; the store makes
-- today's and the next two days' partitions at open and at every retention run, moving any rows
-- the DEFAULT partition holds for them. The primary keys already lead with route_id and include
-- minute, the partition key, as a partitioned table's unique keys must.
-- The hour tables stay as they are: 60 times fewer rows, and their retention stays a DELETE.
--
-- Existing rows move: the old tables are renamed, the partitioned ones are made with the same
-- columns and keys, a partition for every day the old rows hold, the rows copied, and the old
-- tables dropped, all in this migration's one transaction.

ALTER TABLE rollups RENAME TO rollups_unpartitioned;
ALTER TABLE rollups_unpartitioned RENAME CONSTRAINT rollups_pkey TO rollups_unpartitioned_pkey;
ALTER TABLE rollup_reasons RENAME TO rollup_reasons_unpartitioned;
ALTER TABLE rollup_reasons_unpartitioned RENAME CONSTRAINT rollup_reasons_pkey TO rollup_reasons_unpartitioned_pkey;
ALTER TABLE rollup_pointers RENAME TO rollup_pointers_unpartitioned;
ALTER TABLE rollup_pointers_unpartitioned RENAME CONSTRAINT rollup_pointers_pkey TO rollup_pointers_unpartitioned_pkey;
ALTER TABLE rollup_signatures RENAME TO rollup_signatures_unpartitioned;
ALTER TABLE rollup_signatures_unpartitioned RENAME CONSTRAINT rollup_signatures_pkey TO rollup_signatures_unpartitioned_pkey;
ALTER TABLE rollup_latencies RENAME TO rollup_latencies_unpartitioned;
ALTER TABLE rollup_latencies_unpartitioned RENAME CONSTRAINT rollup_latencies_pkey TO rollup_latencies_unpartitioned_pkey;

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
) PARTITION BY RANGE (minute);

CREATE TABLE rollup_reasons (
    route_id    TEXT   NOT NULL,
    minute      TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    outcome     TEXT   NOT NULL CHECK (outcome IN ('uncomparable', 'skipped')),
    reason      TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, outcome, reason)
) PARTITION BY RANGE (minute);

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
) PARTITION BY RANGE (minute);

CREATE TABLE rollup_signatures (
    route_id    TEXT   NOT NULL,
    minute      TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    signature   TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, signature)
) PARTITION BY RANGE (minute);

CREATE TABLE rollup_latencies (
    route_id            TEXT  NOT NULL,
    minute              TEXT  NOT NULL,
    instance_id         TEXT  NOT NULL,
    primary_upstream    TEXT  NOT NULL,
    candidate_upstream  TEXT  NOT NULL,
    primary_histogram   BYTEA NOT NULL,
    candidate_histogram BYTEA NOT NULL,
    PRIMARY KEY (route_id, minute, instance_id, primary_upstream, candidate_upstream)
) PARTITION BY RANGE (minute);

CREATE TABLE rollups_default PARTITION OF rollups DEFAULT;
CREATE TABLE rollup_reasons_default PARTITION OF rollup_reasons DEFAULT;
CREATE TABLE rollup_pointers_default PARTITION OF rollup_pointers DEFAULT;
CREATE TABLE rollup_signatures_default PARTITION OF rollup_signatures DEFAULT;
CREATE TABLE rollup_latencies_default PARTITION OF rollup_latencies DEFAULT;

-- A partition in every table for every day any of the old tables holds (a minute that is not
-- stored text of the usual form goes to the DEFAULT partition), then the rows.
DO $$
DECLARE
    d DATE;
    t TEXT;
BEGIN
    FOR d IN
        SELECT DISTINCT substr(minute, 1, 10)::DATE FROM (
            SELECT minute FROM rollups_unpartitioned
            UNION SELECT minute FROM rollup_reasons_unpartitioned
            UNION SELECT minute FROM rollup_pointers_unpartitioned
            UNION SELECT minute FROM rollup_signatures_unpartitioned
            UNION SELECT minute FROM rollup_latencies_unpartitioned
        ) AS minutes
        WHERE minute ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'
    LOOP
        FOREACH t IN ARRAY ARRAY['rollups', 'rollup_reasons', 'rollup_pointers', 'rollup_signatures', 'rollup_latencies'] LOOP
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                t || '_p' || to_char(d, 'YYYYMMDD'), t,
                to_char(d, 'YYYY-MM-DD') || 'T00:00:00.000Z', to_char(d + 1, 'YYYY-MM-DD') || 'T00:00:00.000Z');
        END LOOP;
    END LOOP;
END
$$;

INSERT INTO rollups SELECT * FROM rollups_unpartitioned;
INSERT INTO rollup_reasons SELECT * FROM rollup_reasons_unpartitioned;
INSERT INTO rollup_pointers SELECT * FROM rollup_pointers_unpartitioned;
INSERT INTO rollup_signatures SELECT * FROM rollup_signatures_unpartitioned;
INSERT INTO rollup_latencies SELECT * FROM rollup_latencies_unpartitioned;

DROP TABLE rollups_unpartitioned;
DROP TABLE rollup_reasons_unpartitioned;
DROP TABLE rollup_pointers_unpartitioned;
DROP TABLE rollup_signatures_unpartitioned;
DROP TABLE rollup_latencies_unpartitioned;
