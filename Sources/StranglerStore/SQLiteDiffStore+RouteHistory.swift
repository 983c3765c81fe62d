import Foundation
import GRDB

extension SQLiteDiffStore {
    /// Records changes and the table content they led to, in one transaction.
    /// - Returns: the ids of the stored rows, in order.
    @discardableResult
    public func recordChanges(_ changes: [RouteChange], tableContent: Data?) async throws -> [Int64] {
        try await pool.write { db in
            if let tableContent, let version = changes.last?.tableVersionAfter {
                try Self.saveTable(db, version: version, content: tableContent)
            }
            // One prepared statement for every row: a hand edit of a large table records a row
            // per route that changed.
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO route_changes (changed_at, actor, source, route_id, reason, before_json, after_json,
                        table_version_before, table_version_after)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            var ids: [Int64] = []
            ids.reserveCapacity(changes.count)
            for change in changes {
                try insert.execute(
                    arguments: [
                        Self.format(change.changedAt), change.actor, change.source.rawValue, change.routeID, change.reason,
                        change.before, change.after, change.tableVersionBefore, change.tableVersionAfter,
                    ]
                )
                ids.append(db.lastInsertedRowID)
            }
            return ids
        }
    }

    /// Removes rows written by ``recordChanges(_:tableContent:)`` for an edit that then failed to
    /// reach the file, so the trail never shows a change that did not happen.
    public func deleteChanges(ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM route_changes WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ",")))",
                arguments: StatementArguments(ids)
            )
        }
    }

    /// Keeps a table's content by version (once; the first sighting wins).
    public func saveTable(version: String, content: Data) async throws {
        try await pool.write { db in try Self.saveTable(db, version: version, content: content) }
    }

    private static func saveTable(_ db: Database, version: String, content: Data) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO route_tables (version, content, first_seen) VALUES (?, ?, ?)",
            arguments: [version, String(decoding: content, as: UTF8.self), format(Date())]
        )
    }

    /// The content of a table version seen before, if kept.
    public func tableContent(version: String) async throws -> Data? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT content FROM route_tables WHERE version = ?", arguments: [version]).map { Data($0.utf8) }
        }
    }

    /// Versions of kept tables that start with `prefix` (people type short versions).
    public func tableVersions(matching prefix: String) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT version FROM route_tables WHERE substr(version, 1, ?) = ? ORDER BY first_seen",
                arguments: [prefix.count, prefix]
            )
        }
    }

    /// Whether some recorded change led to this table version (so a reload of it is not a
    /// hand edit to record again).
    public func hasChanges(toVersion version: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM route_changes WHERE table_version_after = ?)", arguments: [version]) ?? false
        }
    }

    /// The table version the audit trail last led to, else the last table kept.
    public func latestTableVersion() async throws -> String? {
        try await pool.read { db in
            if let version = try String.fetchOne(db, sql: "SELECT table_version_after FROM route_changes ORDER BY id DESC LIMIT 1") {
                return version
            }
            return try String.fetchOne(db, sql: "SELECT version FROM route_tables ORDER BY first_seen DESC, rowid DESC LIMIT 1")
        }
    }

    /// The audit trail, newest first, for one route or all.
    public func changes(routeID: String? = nil, limit: Int = 50) async throws -> [RouteChange] {
        try await pool.read { db in
            let rows: [Row]
            if let routeID {
                rows = try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM route_changes WHERE route_id = ? ORDER BY id DESC LIMIT ?",
                    arguments: [routeID, limit]
                )
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM route_changes ORDER BY id DESC LIMIT ?", arguments: [limit])
            }
            return rows.map { row in
                RouteChange(
                    id: row["id"],
                    changedAt: Self.parse(row["changed_at"]) ?? Date(timeIntervalSince1970: 0),
                    actor: row["actor"],
                    source: RouteChange.Source(rawValue: row["source"]) ?? .file,
                    routeID: row["route_id"],
                    reason: row["reason"],
                    before: row["before_json"],
                    after: row["after_json"],
                    tableVersionBefore: row["table_version_before"],
                    tableVersionAfter: row["table_version_after"]
                )
            }
        }
    }
}
