-- What the route controls need beside the audit rows of 0001 (DESIGN.md §5).

-- Every route table content that went live, by version, so `routes rollback --to VERSION` can
-- restore it byte for byte.
CREATE TABLE route_tables (
    version    TEXT PRIMARY KEY,
    content    TEXT NOT NULL,
    first_seen TEXT NOT NULL
);

-- Requests per route and minute by who served them: the evidence that legacy still gets traffic
-- before a route is retired, and of a canary's service errors.
CREATE TABLE route_traffic (
    route_id       TEXT    NOT NULL,
    minute         TEXT    NOT NULL,
    legacy         INTEGER NOT NULL DEFAULT 0,
    service        INTEGER NOT NULL DEFAULT 0,
    service_errors INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (route_id, minute)
);

CREATE INDEX route_changes_by_version ON route_changes (table_version_after);
CREATE INDEX differences_by_comparison_pointer ON differences (comparison_id, pointer);
