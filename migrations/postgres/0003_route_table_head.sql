-- The route table every instance sharing this store serves. Its content is a row of
-- route_tables (kept by version, the content's hash); this one row says which version is live.
-- A change moves the row from the version it was made against to the new one, in the same
-- transaction as its audit rows, and only if the row still holds the version the change was
-- made against (compare-and-set): of two concurrent changes one commits, the other is refused
-- with the version that won. revision counts changes, so a poll compares one number; every
-- change also sends NOTIFY strangler_route_table with the revision, the fast path to the
-- instances. file_version is the content hash of the last routes file an instance pushed
-- (serve --routes FILE with this store), so a restart does not push the same file again over
-- changes made since through the API.
CREATE TABLE route_table_head (
    singleton    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    revision     BIGINT NOT NULL,
    version      TEXT   NOT NULL REFERENCES route_tables (version),
    changed_at   TEXT   NOT NULL,
    file_version TEXT
);
