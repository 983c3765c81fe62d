import Foundation
import GRDB
import StranglerCore

extension SQLiteDiffStore {
    /// A route's evidence since `since`: what its gate is judged on.
    ///
    /// A mismatch whose every difference is at a learned noise pointer counts as a match
    /// (`noiseOnly`), so noise can't block a promotion; a differing status code always counts.
    /// - Parameter serviceUpstream: the route's service, to tell the two sides' latencies apart
    ///   whichever side served the client.
    public func evidence(routeID: String, serviceUpstream: String?, since: Date) async throws -> RouteEvidence {
        let from = Self.format(since)
        let service = serviceUpstream ?? ""
        return try await pool.read { db in
            var evidence = RouteEvidence()
            // A difference at a learned noise pointer, or under an active accepted difference, is
            // excused: a mismatch with only excused differences counts as a match.
            let accepted = String(format: Self.acceptedCovers, "d.pointer").replacingOccurrences(of: "a.route_id = ?", with: "a.route_id = ?1")
                .replacingOccurrences(of: "a.until > ?", with: "a.until > ?3")
            let counts = try Row.fetchOne(
                db,
                sql: """
                    WITH recent AS (
                        SELECT id, outcome, primary_status, candidate_status FROM comparisons
                        WHERE route_id = ?1 AND recorded_at >= ?2
                    ), noisy AS (
                        SELECT pointer FROM noise WHERE route_id = ?1 AND noisy > 0
                    ), flagged AS (
                        SELECT r.*,
                            EXISTS (SELECT 1 FROM differences d WHERE d.comparison_id = r.id AND d.kind = 'header') AS header_diff,
                            EXISTS (SELECT 1 FROM differences d WHERE d.comparison_id = r.id AND d.kind NOT IN ('status', 'header')
                                AND d.pointer NOT IN (SELECT pointer FROM noisy) AND NOT \(accepted)) AS body_diff,
                            EXISTS (SELECT 1 FROM differences d WHERE d.comparison_id = r.id AND d.kind NOT IN ('status', 'header')
                                AND \(accepted)) AS accepted_diff
                        FROM recent r WHERE r.outcome = 'mismatch'
                    )
                    SELECT
                        (SELECT COUNT(*) FROM recent WHERE outcome IN ('match', 'mismatch')) AS samples,
                        (SELECT COUNT(*) FROM recent WHERE outcome = 'uncomparable') AS uncomparable,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS NOT candidate_status OR header_diff OR body_diff) AS mismatches,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS candidate_status AND NOT header_diff AND NOT body_diff
                            AND NOT accepted_diff) AS noise_only,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS candidate_status AND NOT header_diff AND NOT body_diff
                            AND accepted_diff) AS accepted_only,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS NOT candidate_status) AS status_mismatches,
                        (SELECT COUNT(*) FROM flagged WHERE header_diff) AS header_mismatches,
                        (SELECT COUNT(*) FROM flagged WHERE body_diff) AS body_mismatches
                    """,
                arguments: [routeID, from, Self.format(Date())]
            )
            if let counts {
                evidence.samples = counts["samples"]
                evidence.uncomparable = counts["uncomparable"]
                evidence.mismatches = counts["mismatches"]
                evidence.noiseOnly = counts["noise_only"]
                evidence.acceptedOnly = counts["accepted_only"]
                evidence.statusMismatches = counts["status_mismatches"]
                evidence.headerMismatches = counts["header_mismatches"]
                evidence.bodyMismatches = counts["body_mismatches"]
            }
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT skip_reason, COUNT(*) AS n FROM comparisons
                    WHERE route_id = ? AND recorded_at >= ? AND outcome = 'skipped' GROUP BY skip_reason
                    """,
                arguments: [routeID, from])
            {
                evidence.skipped[row["skip_reason"] ?? "unknown"] = row["n"]
            }
            let legacy = try Self.latencyHistogram(db, routeID: routeID, from: from, serviceUpstream: service, serviceSide: false)
            let serviceSide = try Self.latencyHistogram(db, routeID: routeID, from: from, serviceUpstream: service, serviceSide: true)
            evidence.legacyP50 = legacy.percentile(0.5)
            evidence.legacyP99 = legacy.percentile(0.99)
            evidence.serviceP50 = serviceSide.percentile(0.5)
            evidence.serviceP99 = serviceSide.percentile(0.99)
            return evidence
        }
    }
}

/// Latencies counted in 0.1 ms buckets: percentiles in one indexed pass, without sorting rows.
struct LatencyHistogram {
    var buckets: [(tenths: Int, count: Int)]
    var total: Int

    /// The smallest bucket value at or below which `fraction` of the samples fall, in ms.
    func percentile(_ fraction: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = max(1, Int((Double(total) * fraction).rounded(.up)))
        var seen = 0
        for bucket in buckets {
            seen += bucket.count
            if seen >= rank { return Double(bucket.tenths) / 10 }
        }
        return buckets.last.map { Double($0.tenths) / 10 }
    }
}

extension SQLiteDiffStore {
    /// One side's latencies of a route's compared requests since `from`. The service's side is
    /// whichever upstream column holds `serviceUpstream`.
    static func latencyHistogram(_ db: Database, routeID: String, from: String, serviceUpstream: String, serviceSide: Bool) throws
        -> LatencyHistogram
    {
        let column = serviceSide
            ? "CASE WHEN candidate_upstream = ? THEN candidate_ms ELSE primary_ms END"
            : "CASE WHEN candidate_upstream = ? THEN primary_ms ELSE candidate_ms END"
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT CAST(ms * 10 AS INTEGER) AS tenths, COUNT(*) AS n FROM (
                    SELECT \(column) AS ms FROM comparisons
                    WHERE route_id = ? AND outcome IN ('match', 'mismatch') AND recorded_at >= ?)
                WHERE ms IS NOT NULL GROUP BY tenths ORDER BY tenths
                """,
            arguments: [serviceUpstream, routeID, from]
        )
        let buckets = rows.map { (tenths: $0["tenths"] as Int, count: $0["n"] as Int) }
        return LatencyHistogram(buckets: buckets, total: buckets.reduce(0) { $0 + $1.count })
    }
}
