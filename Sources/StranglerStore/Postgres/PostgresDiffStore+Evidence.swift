import Foundation
import PostgresNIO
import StranglerCore

/// What gates, reports and the canary monitor read, from PostgreSQL: the same rollups, plans and
/// rules as the SQLite store (``RollupReadPlan``, ``RollupEvidence``, ``EvidenceCoverage``), so
/// both stores give the same figures for the same traffic.
extension PostgresDiffStore {
    public func evidence(routeID: String, serviceUpstream: String?, since: Date) async throws -> RouteEvidence {
        try await breakdown(routeID: routeID, serviceUpstream: serviceUpstream, since: since, bucketSeconds: nil).evidence
    }

    public func breakdown(routeID: String, serviceUpstream: String?, since: Date, bucketSeconds: Int?) async throws -> RouteBreakdown {
        try await rollupBreakdown(routeID: routeID, serviceUpstream: serviceUpstream, since: since, bucketSeconds: bucketSeconds)
    }

    /// A route's learned noise: pointer → probes in which legacy differed from itself there.
    public func noise(route: String) async throws -> [String: Int] {
        var result: [String: Int] = [:]
        for (pointer, noisy) in try await read(
            "SELECT pointer, noisy FROM noise WHERE route_id = \(route) AND pointer <> \(SQLiteDiffStore.probesPointer)",
            as: (String, Int).self,
            { ($0, $1) }
        ) {
            result[pointer] = noisy
        }
        return result
    }

    public func noiseByRoute() async throws -> [String: [String: Int]] {
        var result: [String: [String: Int]] = [:]
        for (route, pointer, noisy) in try await read(
            "SELECT route_id, pointer, noisy FROM noise WHERE pointer <> \(SQLiteDiffStore.probesPointer)",
            as: (String, String, Int).self,
            { ($0, $1, $2) }
        ) {
            result[route, default: [:]][pointer] = noisy
        }
        return result
    }

    /// Noise probes recorded for a route.
    public func noiseProbes(route: String) async throws -> Int {
        try await read(
            "SELECT observations FROM noise WHERE route_id = \(route) AND pointer = \(SQLiteDiffStore.probesPointer)",
            as: (Int.self)
        ) { $0 }.first ?? 0
    }

    public func firstComparison(routeID: String, since: Date) async throws -> Date? {
        func first(_ level: RollupLevel, from: String, to: String) async throws -> Date? {
            let p = level.tablePrefix
            return try await read(
                """
                SELECT MIN(first) FROM (
                    SELECT MIN(minute) AS first FROM \(unescaped: p)rollups
                        WHERE route_id = \(routeID) AND minute >= \(from) AND minute < \(to) AND matches + mismatches > 0
                    UNION ALL SELECT MIN(minute) FROM \(unescaped: p)rollup_reasons
                        WHERE route_id = \(routeID) AND minute >= \(from) AND minute < \(to)) AS firsts
                """,
                as: (String?.self)
            ) { $0 }.first.flatMap { $0 }.flatMap(StoredTimestamp.parse)
        }
        // Parts are oldest first; an hour is narrowed to its minute where minutes are kept.
        for part in try await plan(since: since, bucketSeconds: nil).parts {
            let (from, to) = Self.bounds(part)
            guard var found = try await first(part.level, from: from, to: to) else { continue }
            if part.level == .hour {
                let end = StoredTimestamp.format(found.addingTimeInterval(Double(RollupLevel.hour.seconds)))
                found = try await first(.minute, from: StoredTimestamp.format(found), to: end) ?? found
            }
            return max(found, since)
        }
        return nil
    }

    public func routeIDs(since: Date) async throws -> [String] {
        var ids = Set<String>()
        for part in try await plan(since: since, bucketSeconds: nil).parts {
            let (from, to) = Self.bounds(part)
            let p = part.level.tablePrefix
            ids.formUnion(
                try await read(
                    """
                    SELECT r.route_id FROM route_first_compared r
                    WHERE EXISTS (SELECT 1 FROM \(unescaped: p)rollups u
                            WHERE u.route_id = r.route_id AND u.minute >= \(from) AND u.minute < \(to) AND u.matches + u.mismatches > 0)
                        OR EXISTS (SELECT 1 FROM \(unescaped: p)rollup_reasons u WHERE u.route_id = r.route_id AND u.minute >= \(from) AND u.minute < \(to))
                    """,
                    as: (String.self)
                ) { $0 }
            )
        }
        return ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    public func examples(routeID: String, serviceUpstream: String?, since: Date, pointer: String, limit: Int) async throws -> [DifferenceExample] {
        try await read(
            """
            SELECT c.request_id, c.method, c.path, c.recorded_at, d.primary_value, d.candidate_value, c.candidate_upstream, c.primary_upstream
            FROM comparisons c JOIN differences d ON d.comparison_id = c.id AND d.pointer = \(pointer)
            WHERE c.route_id = \(routeID) AND c.outcome = 'mismatch' AND c.recorded_at >= \(StoredTimestamp.format(since))
            ORDER BY c.recorded_at DESC, d.id DESC LIMIT \(limit)
            """,
            as: (String, String, String, String, String?, String?, String, String).self
        ) { requestID, method, path, recordedAt, primary, candidate, candidateUpstream, primaryUpstream in
            let serviceServed = serviceUpstream != nil && primaryUpstream == serviceUpstream && candidateUpstream != serviceUpstream
            return DifferenceExample(
                requestID: requestID,
                method: method,
                path: path,
                recordedAt: StoredTimestamp.parse(recordedAt) ?? since,
                legacy: serviceServed ? candidate : primary,
                service: serviceServed ? primary : candidate
            )
        }
    }

    public func coveredCount(routeID: String, since: Date, pattern: String) async throws -> Int {
        let pattern = PointerPattern(pattern)
        var total = 0
        for part in try await plan(since: since, bucketSeconds: nil).parts {
            let (from, to) = Self.bounds(part)
            for (pointer, count) in try await read(
                """
                SELECT pointer, SUM(count)::BIGINT FROM \(unescaped: part.level.tablePrefix)rollup_pointers
                WHERE route_id = \(routeID) AND minute >= \(from) AND minute < \(to) GROUP BY pointer
                """,
                as: (String, Int).self,
                { ($0, $1) }
            ) where pattern.covers(pointer: pointer) {
                total += count
            }
        }
        return total
    }

    /// The stored differences of one request's comparison, in insertion order.
    public func differences(requestID: String) async throws -> [Difference] {
        try await read(
            """
            SELECT d.pointer, d.kind, d.primary_value, d.candidate_value FROM differences d
            JOIN comparisons c ON c.id = d.comparison_id WHERE c.request_id = \(requestID) AND c.difference_count > 0 ORDER BY d.id
            """,
            as: (String, String, String?, String?).self
        ) { pointer, kind, primary, candidate in
            Difference(kind: DifferenceKind(rawValue: kind) ?? .changed, pointer: pointer, primary: primary, candidate: candidate)
        }
    }
}

extension PostgresDiffStore: RollupEvidenceSource {}
