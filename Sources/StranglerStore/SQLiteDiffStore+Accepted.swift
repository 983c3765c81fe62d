import Foundation
import GRDB

extension SQLiteDiffStore {
    /// Records an accepted difference.
    /// - Returns: its id.
    @discardableResult
    public func accept(routeID: String, pointer: String, reason: String, owner: String, until: Date?) async throws -> Int64 {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO accepted_differences (route_id, pointer, reason, owner, accepted_at, until) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [routeID, pointer, reason, owner, Self.format(Date()), until.map(Self.format)]
            )
            return db.lastInsertedRowID
        }
    }

    /// Revokes an accepted difference.
    /// - Returns: whether an active one with that id existed.
    @discardableResult
    public func revokeAccepted(id: Int64, by owner: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE accepted_differences SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [Self.format(Date()), owner, id]
            )
            return db.changesCount > 0
        }
    }

    /// Accepted differences, for one route or all, oldest first; lapsed and revoked ones too
    /// when `includeInactive`.
    public func acceptedDifferences(routeID: String? = nil, includeInactive: Bool = false) async throws -> [AcceptedDifference] {
        let now = Self.format(Date())
        return try await pool.read { db in
            var sql = "SELECT * FROM accepted_differences WHERE 1 = 1"
            var arguments: StatementArguments = []
            if let routeID {
                sql += " AND route_id = ?"
                arguments += [routeID]
            }
            if !includeInactive {
                sql += " AND revoked_at IS NULL AND (until IS NULL OR until > ?)"
                arguments += [now]
            }
            return try Row.fetchAll(db, sql: sql + " ORDER BY id", arguments: arguments).map { row in
                AcceptedDifference(
                    id: row["id"],
                    routeID: row["route_id"],
                    pointer: row["pointer"],
                    reason: row["reason"],
                    owner: row["owner"],
                    acceptedAt: Self.parse(row["accepted_at"]) ?? Date(timeIntervalSince1970: 0),
                    until: Self.parse(row["until"]),
                    revokedAt: Self.parse(row["revoked_at"]),
                    revokedBy: row["revoked_by"]
                )
            }
        }
    }
}
