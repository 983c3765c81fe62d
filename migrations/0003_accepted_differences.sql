-- Differences a reviewer accepted (DESIGN.md §4-§6): they leave the mismatch rate and the gates
-- but stay visible in reports, with the reason and the owner. A pointer covers itself and
-- everything under it; `*` stands for any one segment.
CREATE TABLE accepted_differences (
    id          INTEGER PRIMARY KEY,
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

-- Reports and gates read a route's comparisons by outcome over time; the index carries what
-- they aggregate (statuses, latencies, which side was the service), so they never touch rows.
CREATE INDEX comparisons_by_route_outcome_time
    ON comparisons (route_id, outcome, recorded_at, candidate_upstream, primary_ms, candidate_ms, primary_status, candidate_status);
