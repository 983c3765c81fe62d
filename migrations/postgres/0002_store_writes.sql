-- One row per write transaction of the store, keyed by a token the writer makes: when a write's
-- outcome is unknown to the writer (its COMMIT was sent, but the answer never came, or came after
-- the writer stopped waiting), the writer claims the token. The claim waits for the first
-- transaction to end; if it finds the token, that transaction committed and its counts must
-- not be added again. Tokens older than a day are deleted with the example rows' retention.
CREATE TABLE store_writes (
    token      TEXT PRIMARY KEY,
    written_at TEXT NOT NULL
);
