import Foundation
import GRDB
import StranglerCore

/// How often a pointer differed on a route.
public struct PointerCount: Sendable, Hashable {
    /// The pointer: RFC 6901 into the body, a header's name, or `""` for the status.
    public var pointer: String
    /// Kinds seen at the pointer (`changed`, `missing`...), sorted.
    public var kinds: [String]
    /// Comparisons with a difference at the pointer.
    public var count: Int
    /// When a comparison in the window first differed there.
    public var firstSeen: Date
    /// When a comparison in the window last differed there.
    public var lastSeen: Date
}

/// One stored difference with the request it came from (values already redacted).
public struct DifferenceExample: Sendable, Hashable, Codable {
    /// The request's `X-Request-Id`.
    public var requestID: String
    /// The request method.
    public var method: String
    /// The request target as the client sent it.
    public var path: String
    /// When the comparison was recorded.
    public var recordedAt: Date
    /// The primary's value, from the side that served the client (legacy, in `shadow` mode), as
    /// stored: truncated and redacted; nil when absent there.
    public var legacy: String?
    /// The candidate's value, from the side that got the copy, as stored; nil when absent there.
    public var service: String?
}

/// A route's comparisons in one stretch of time.
public struct TimelineBucket: Sendable, Hashable, Codable {
    /// The bucket's start.
    public var start: Date
    /// Comparisons that compared.
    public var samples: Int
    /// Of those, mismatches once noise and accepted differences are excused.
    public var mismatches: Int
    /// Legacy's mean latency, in ms; nil without latencies.
    public var legacyMeanMs: Double?
    /// The service's mean latency, in ms; nil without latencies.
    public var serviceMeanMs: Double?

    /// A bucket from its figures.
    public init(start: Date, samples: Int, mismatches: Int, legacyMeanMs: Double?, serviceMeanMs: Double?) {
        self.start = start
        self.samples = samples
        self.mismatches = mismatches
        self.legacyMeanMs = legacyMeanMs
        self.serviceMeanMs = serviceMeanMs
    }
}

extension SQLiteDiffStore {
    /// Route ids with comparisons since `since`, from the rollups of the window
    /// (``RollupReadPlan``): one index seek per route the store has ever compared and level read.
    public func routeIDs(since: Date) async throws -> [String] {
        try await pool.read { db in
            var ids = Set<String>()
            for part in try Self.plan(db, since: since, bucketSeconds: nil).parts {
                let (from, to) = Self.bounds(part)
                let p = part.level.tablePrefix
                ids.formUnion(
                    try String.fetchAll(
                        db,
                        sql: """
                            SELECT r.route_id FROM route_first_compared r
                            WHERE EXISTS (SELECT 1 FROM \(p)rollups u
                                    WHERE u.route_id = r.route_id AND u.minute >= ?1 AND u.minute < ?2 AND u.matches + u.mismatches > 0)
                                OR EXISTS (SELECT 1 FROM \(p)rollup_reasons u WHERE u.route_id = r.route_id AND u.minute >= ?1 AND u.minute < ?2)
                            """,
                        arguments: [from, to]
                    )
                )
            }
            return ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
    }

    /// The newest stored differences at `pointer` on a route, with their requests.
    ///
    /// The sides are told apart by `serviceUpstream`: when the service served the client (a
    /// canary's share, or a route in service mode shadowing legacy) its value is the primary's.
    public func examples(routeID: String, serviceUpstream: String?, since: Date, pointer: String, limit: Int) async throws -> [DifferenceExample] {
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
                let serviceServed =
                    serviceUpstream != nil && (row["primary_upstream"] as String) == serviceUpstream
                    && (row["candidate_upstream"] as String) != serviceUpstream
                let primary: String? = row["primary_value"]
                let candidate: String? = row["candidate_value"]
                return DifferenceExample(
                    requestID: row["request_id"],
                    method: row["method"],
                    path: row["path"],
                    recordedAt: Self.parse(row["recorded_at"]) ?? since,
                    legacy: serviceServed ? candidate : primary,
                    service: serviceServed ? primary : candidate
                )
            }
        }
    }

    /// When the route's first comparison since `since` was recorded, if any, to the period its
    /// rollup knows: the start of its minute (or of its hour, before the minutes still kept), or
    /// `since` if that is later.
    public func firstComparison(routeID: String, since: Date) async throws -> Date? {
        let first = try await pool.read { db -> Date? in
            func first(_ level: RollupLevel, from: String, to: String) throws -> Date? {
                let p = level.tablePrefix
                return try String.fetchOne(
                    db,
                    sql: """
                        SELECT MIN(first) FROM (
                            SELECT MIN(minute) AS first FROM \(p)rollups
                                WHERE route_id = ?1 AND minute >= ?2 AND minute < ?3 AND matches + mismatches > 0
                            UNION ALL SELECT MIN(minute) FROM \(p)rollup_reasons WHERE route_id = ?1 AND minute >= ?2 AND minute < ?3)
                        """,
                    arguments: [routeID, from, to]
                ).flatMap { Self.parse($0) }
            }
            // Parts are oldest first: the first with a comparison has the earliest. An hour is
            // narrowed to its minute where minutes are still kept.
            for part in try Self.plan(db, since: since, bucketSeconds: nil).parts {
                let (from, to) = Self.bounds(part)
                guard let found = try first(part.level, from: from, to: to) else { continue }
                guard part.level == .hour else { return found }
                let end = Self.format(found.addingTimeInterval(Double(RollupLevel.hour.seconds)))
                return try first(.minute, from: Self.format(found), to: end) ?? found
            }
            return nil
        }
        return first.map { max($0, since) }
    }

    /// Differences covered by an accepted-difference pattern on a route since `since`: the
    /// route's pointers counted from the rollups in SQL, matched against the pattern in Swift
    /// (as reports do).
    public func coveredCount(routeID: String, since: Date, pattern: String) async throws -> Int {
        let pattern = PointerPattern(pattern)
        let counts = try await pool.read { db in
            try Self.plan(db, since: since, bucketSeconds: nil).parts.flatMap { part in
                let (from, to) = Self.bounds(part)
                return try Row.fetchAll(
                    db,
                    sql: """
                        SELECT pointer, SUM(count) AS n FROM \(part.level.tablePrefix)rollup_pointers
                        WHERE route_id = ? AND minute >= ? AND minute < ? GROUP BY pointer
                        """,
                    arguments: [routeID, from, to]
                )
            }
        }
        return counts.filter { pattern.covers(pointer: $0["pointer"]) }.reduce(0) { $0 + ($1["n"] as Int) }
    }
}
