import Foundation
import GRDB

/// How often a pointer differed on a route.
public struct PointerCount: Sendable, Hashable {
    public var pointer: String
    /// Kinds seen at the pointer (`changed`, `missing`...), sorted.
    public var kinds: [String]
    /// Comparisons with a difference at the pointer.
    public var count: Int
    public var firstSeen: Date
    public var lastSeen: Date
}

/// One stored difference with the request it came from (values already redacted).
public struct DifferenceExample: Sendable, Hashable, Codable {
    public var requestID: String
    public var method: String
    public var path: String
    public var recordedAt: Date
    public var legacy: String?
    public var service: String?
}

/// A route's comparisons in one stretch of time.
public struct TimelineBucket: Sendable, Hashable, Codable {
    public var start: Date
    /// Comparisons that compared.
    public var samples: Int
    /// Of those, mismatches once noise and accepted differences are excused.
    public var mismatches: Int
    /// Mean latency of each side, in ms.
    public var legacyMeanMs: Double?
    public var serviceMeanMs: Double?
}

extension SQLiteDiffStore {
    /// Route ids with comparisons since `since`.
    public func routeIDs(since: Date) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT DISTINCT route_id FROM comparisons WHERE recorded_at >= ? ORDER BY route_id", arguments: [Self.format(since)])
        }
    }

    /// The pointers that differed most often on a route since `since`, most first.
    public func pointerCounts(routeID: String, since: Date, limit: Int) async throws -> [PointerCount] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.pointer, GROUP_CONCAT(DISTINCT d.kind) AS kinds, COUNT(*) AS n,
                        MIN(c.recorded_at) AS first_seen, MAX(c.recorded_at) AS last_seen
                    FROM comparisons c JOIN differences d ON d.comparison_id = c.id
                    WHERE c.route_id = ? AND c.outcome = 'mismatch' AND c.recorded_at >= ?
                    GROUP BY d.pointer ORDER BY n DESC, d.pointer LIMIT ?
                    """,
                arguments: [routeID, Self.format(since), limit]
            ).map { row in
                PointerCount(
                    pointer: row["pointer"], kinds: ((row["kinds"] as String?) ?? "").split(separator: ",").map(String.init).sorted(),
                    count: row["n"], firstSeen: Self.parse(row["first_seen"]) ?? since, lastSeen: Self.parse(row["last_seen"]) ?? since
                )
            }
        }
    }

    /// The newest stored differences at `pointer` on a route, with their requests.
    public func examples(routeID: String, since: Date, pointer: String, limit: Int) async throws -> [DifferenceExample] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT c.request_id, c.method, c.path, c.recorded_at, d.primary_value, d.candidate_value, c.candidate_upstream,
                        c.primary_upstream
                    FROM comparisons c JOIN differences d ON d.comparison_id = c.id AND d.pointer = ?
                    WHERE c.route_id = ? AND c.outcome = 'mismatch' AND c.recorded_at >= ?
                    ORDER BY c.recorded_at DESC LIMIT ?
                    """,
                arguments: [pointer, routeID, Self.format(since), limit]
            ).map { row in
                DifferenceExample(
                    requestID: row["request_id"], method: row["method"], path: row["path"],
                    recordedAt: Self.parse(row["recorded_at"]) ?? since, legacy: row["primary_value"], service: row["candidate_value"]
                )
            }
        }
    }

    /// When the route's first comparison since `since` was recorded, if any.
    public func firstComparison(routeID: String, since: Date) async throws -> Date? {
        try await pool.read { db in
            try String.fetchOne(
                db, sql: "SELECT MIN(recorded_at) FROM comparisons WHERE route_id = ? AND recorded_at >= ?",
                arguments: [routeID, Self.format(since)]
            ).flatMap(Self.parse)
        }
    }

    /// Differences covered by an accepted-difference pattern on a route since `since`.
    public func coveredCount(routeID: String, since: Date, pattern: String) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM comparisons c JOIN differences d ON d.comparison_id = c.id
                    WHERE c.route_id = ? AND c.outcome = 'mismatch' AND c.recorded_at >= ? AND pointer_covers(?, d.pointer)
                    """,
                arguments: [routeID, Self.format(since), pattern]
            ) ?? 0
        }
    }

    /// A route's comparisons since `since` in buckets of `bucketSeconds`, oldest first. A
    /// mismatch counts only when a difference is not noise, not accepted, or the status differs.
    public func timeline(routeID: String, since: Date, bucketSeconds: Int, serviceUpstream: String?) async throws -> [TimelineBucket] {
        let from = Self.format(since)
        let accepted = String(format: Self.acceptedCovers, "d.pointer").replacingOccurrences(of: "a.route_id = ?", with: "a.route_id = ?1")
            .replacingOccurrences(of: "a.until > ?", with: "a.until > ?3")
        return try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    WITH recent AS (
                        SELECT id, outcome, primary_status, candidate_status,
                            CAST((julianday(recorded_at) - julianday(?2)) * 86400 / ?4 AS INTEGER) AS bucket,
                            CASE WHEN candidate_upstream = ?5 THEN candidate_ms ELSE primary_ms END AS service_ms,
                            CASE WHEN candidate_upstream = ?5 THEN primary_ms ELSE candidate_ms END AS legacy_ms
                        FROM comparisons WHERE route_id = ?1 AND recorded_at >= ?2 AND outcome IN ('match', 'mismatch')
                    )
                    SELECT bucket, COUNT(*) AS samples, AVG(legacy_ms) AS legacy_ms, AVG(service_ms) AS service_ms,
                        SUM(outcome = 'mismatch' AND (primary_status IS NOT candidate_status OR EXISTS (
                            SELECT 1 FROM differences d WHERE d.comparison_id = recent.id AND d.kind <> 'status'
                                AND d.pointer NOT IN (SELECT pointer FROM noise WHERE route_id = ?1 AND noisy > 0)
                                AND NOT \(accepted)))) AS mismatches
                    FROM recent GROUP BY bucket ORDER BY bucket
                    """,
                arguments: [routeID, from, Self.format(Date()), bucketSeconds, serviceUpstream ?? ""]
            ).map { row in
                TimelineBucket(
                    start: since.addingTimeInterval(Double((row["bucket"] as Int) * bucketSeconds)), samples: row["samples"],
                    mismatches: row["mismatches"] ?? 0, legacyMeanMs: row["legacy_ms"], serviceMeanMs: row["service_ms"]
                )
            }
        }
    }
}
