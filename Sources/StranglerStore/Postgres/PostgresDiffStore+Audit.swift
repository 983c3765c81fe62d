import Foundation
import PostgresNIO
import StranglerCore

/// Accepted differences, the audit trail with the tables it led to, and traffic, in
/// PostgreSQL: one trail for every instance that shares the store.
extension PostgresDiffStore {
    // MARK: Accepted differences

    @discardableResult
    public func accept(routeID: String, pointer: String, reason: String, owner: String, until: Date?) async throws -> Int64 {
        try await read(
            """
            INSERT INTO accepted_differences (route_id, pointer, reason, owner, accepted_at, until)
            VALUES (\(routeID), \(pointer), \(reason), \(owner), \(StoredTimestamp.format(Date())), \(until.map(StoredTimestamp.format)))
            RETURNING id
            """,
            as: (Int64.self)
        ) { $0 }.first ?? 0
    }

    @discardableResult
    public func revokeAccepted(id: Int64, by owner: String) async throws -> Bool {
        try await !read(
            """
            UPDATE accepted_differences SET revoked_at = \(StoredTimestamp.format(Date())), revoked_by = \(owner)
            WHERE id = \(id) AND revoked_at IS NULL RETURNING id
            """,
            as: (Int64.self)
        ) { $0 }.isEmpty
    }

    public func acceptedDifferences(routeID: String? = nil, includeInactive: Bool = false) async throws -> [AcceptedDifference] {
        let now = StoredTimestamp.format(Date())
        // NULL stands for "any route" and for "inactive ones too", so one query serves all four
        // combinations.
        return try await read(
            """
            SELECT id, route_id, pointer, reason, owner, accepted_at, until, revoked_at, revoked_by FROM accepted_differences
            WHERE (\(routeID)::TEXT IS NULL OR route_id = \(routeID))
                AND (\(includeInactive) OR (revoked_at IS NULL AND (until IS NULL OR until > \(now))))
            ORDER BY id
            """,
            as: (Int64, String, String, String, String, String, String?, String?, String?).self
        ) { id, route, pointer, reason, owner, acceptedAt, until, revokedAt, revokedBy in
            AcceptedDifference(
                id: id,
                routeID: route,
                pointer: pointer,
                reason: reason,
                owner: owner,
                acceptedAt: StoredTimestamp.parse(acceptedAt) ?? Date(timeIntervalSince1970: 0),
                until: until.flatMap(StoredTimestamp.parse),
                revokedAt: revokedAt.flatMap(StoredTimestamp.parse),
                revokedBy: revokedBy
            )
        }
    }

    // MARK: The audit trail

    @discardableResult
    public func recordChanges(_ changes: [RouteChange], tableContent: Data?) async throws -> [Int64] {
        try await transaction { connection in
            if let tableContent, let version = changes.last?.tableVersionAfter {
                try await Self.saveTable(connection, version: version, content: tableContent, self.logger)
            }
            return try await Self.insertChanges(changes, connection, self.logger)
        }
    }

    /// Inserts audit rows on `connection`, in one statement; returns their ids in order.
    static func insertChanges(_ changes: [RouteChange], _ connection: PostgresConnection, _ logger: Logger) async throws -> [Int64] {
        guard !changes.isEmpty else { return [] }
        // WITH ORDINALITY and ORDER BY keep the ids in the changes' order.
        let rows = try await connection.query(
            """
            INSERT INTO route_changes (changed_at, actor, source, route_id, reason, before_json, after_json, table_version_before,
                table_version_after)
            SELECT changed_at, actor, source, NULLIF(route_id, ''), CASE WHEN has_reason THEN reason END,
                CASE WHEN has_before THEN before_json END, CASE WHEN has_after THEN after_json END,
                CASE WHEN has_version_before THEN table_version_before END, table_version_after
            FROM UNNEST(\(changes.map { StoredTimestamp.format($0.changedAt) }), \(changes.map(\.actor)), \(changes.map(\.source.rawValue)),
                \(changes.map { $0.routeID ?? "" }), \(changes.map { $0.reason ?? "" }), \(changes.map { $0.reason != nil }),
                \(changes.map { $0.before ?? "" }), \(changes.map { $0.before != nil }), \(changes.map { $0.after ?? "" }),
                \(changes.map { $0.after != nil }), \(changes.map { $0.tableVersionBefore ?? "" }), \(changes.map { $0.tableVersionBefore != nil }),
                \(changes.map(\.tableVersionAfter)))
                WITH ORDINALITY AS r(changed_at, actor, source, route_id, reason, has_reason, before_json, has_before, after_json, has_after,
                    table_version_before, has_version_before, table_version_after, n)
            ORDER BY n
            RETURNING id
            """,
            logger: logger
        )
        var ids: [Int64] = []
        for try await id in rows.decode(Int64.self) { ids.append(id) }
        return ids.sorted()
    }

    public func deleteChanges(ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await execute("DELETE FROM route_changes WHERE id = ANY(\(ids))")
    }

    public func saveTable(version: String, content: Data) async throws {
        try await transaction { connection in try await Self.saveTable(connection, version: version, content: content, self.logger) }
    }

    static func saveTable(_ connection: PostgresConnection, version: String, content: Data, _ logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO route_tables (version, content, first_seen)
            VALUES (\(version), \(String(decoding: content, as: UTF8.self)), \(StoredTimestamp.format(Date())))
            ON CONFLICT (version) DO NOTHING
            """,
            logger: logger
        )
    }

    public func tableContent(version: String) async throws -> Data? {
        try await read("SELECT content FROM route_tables WHERE version = \(version)", as: (String.self)) { Data($0.utf8) }.first
    }

    public func tableVersions(matching prefix: String) async throws -> [String] {
        try await read(
            "SELECT version FROM route_tables WHERE starts_with(version, \(prefix)) ORDER BY first_seen, seq",
            as: (String.self)
        ) { $0 }
    }

    /// Whether some recorded change led to this table version.
    public func hasChanges(toVersion version: String) async throws -> Bool {
        try await !read("SELECT 1 FROM route_changes WHERE table_version_after = \(version) LIMIT 1", as: (Int.self)) { $0 }.isEmpty
    }

    public func latestTableVersion() async throws -> String? {
        if let version = try await read(
            "SELECT table_version_after FROM route_changes ORDER BY id DESC LIMIT 1",
            as: (String.self),
            { $0 }
        ).first {
            return version
        }
        return try await read("SELECT version FROM route_tables ORDER BY first_seen DESC, seq DESC LIMIT 1", as: (String.self)) { $0 }.first
    }

    public func changes(routeID: String? = nil, limit: Int = 50) async throws -> [RouteChange] {
        try await read(
            """
            SELECT id, changed_at, actor, source, route_id, reason, before_json, after_json, table_version_before, table_version_after
            FROM route_changes WHERE (\(routeID)::TEXT IS NULL OR route_id = \(routeID)) ORDER BY id DESC LIMIT \(limit)
            """,
            as: (Int64, String, String, String, String?, String?, String?, String?, String?, String).self
        ) { id, changedAt, actor, source, route, reason, before, after, versionBefore, versionAfter in
            RouteChange(
                id: id,
                changedAt: StoredTimestamp.parse(changedAt) ?? Date(timeIntervalSince1970: 0),
                actor: actor,
                source: RouteChange.Source(rawValue: source) ?? .file,
                routeID: route,
                reason: reason,
                before: before,
                after: after,
                tableVersionBefore: versionBefore,
                tableVersionAfter: versionAfter
            )
        }
    }

    // MARK: Traffic

    public func lastLegacyTraffic(routeID: String) async throws -> Date? {
        guard
            let hour = try await read(
                "SELECT MAX(minute) FROM hour_rollups WHERE route_id = \(routeID) AND legacy_served > 0",
                as: (String?.self)
            ) { $0 }.first.flatMap({ $0 })
        else { return nil }
        if let minute = try await read(
            "SELECT MAX(minute) FROM rollups WHERE route_id = \(routeID) AND minute >= \(hour) AND legacy_served > 0",
            as: (String?.self),
            { $0 }
        ).first.flatMap({ $0 }) {
            return StoredTimestamp.parse(minute)
        }
        return StoredTimestamp.parse(hour).map { $0.addingTimeInterval(Double(RollupLevel.hour.seconds - RollupLevel.minute.seconds)) }
    }

    public func traffic(routeID: String, since: Date) async throws -> RouteTraffic {
        var traffic = RouteTraffic(routeID: routeID)
        for part in try await plan(since: since, bucketSeconds: nil).parts {
            let (from, to) = Self.bounds(part)
            for (legacy, service, errors) in try await read(
                """
                SELECT COALESCE(SUM(legacy_served), 0)::BIGINT, COALESCE(SUM(service_served), 0)::BIGINT, COALESCE(SUM(service_errors), 0)::BIGINT
                FROM \(unescaped: part.level.tablePrefix)rollups WHERE route_id = \(routeID) AND minute >= \(from) AND minute < \(to)
                """,
                as: (Int, Int, Int).self,
                { ($0, $1, $2) }
            ) {
                traffic.add(legacy: legacy, service: service, serviceErrors: errors)
            }
        }
        return traffic
    }
}
