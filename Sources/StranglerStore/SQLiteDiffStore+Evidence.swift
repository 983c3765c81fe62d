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
            // Noise pointers of the route: any that ever differed legacy-to-legacy.
            let counts = try Row.fetchOne(
                db,
                sql: """
                    WITH recent AS (
                        SELECT id, outcome, primary_status, candidate_status FROM comparisons
                        WHERE route_id = ? AND recorded_at >= ?
                    ), flagged AS (
                        SELECT r.*,
                            EXISTS (SELECT 1 FROM differences d WHERE d.comparison_id = r.id AND d.kind = 'header') AS header_diff,
                            EXISTS (SELECT 1 FROM differences d WHERE d.comparison_id = r.id AND d.kind NOT IN ('status', 'header')
                                AND d.pointer NOT IN (SELECT pointer FROM noise WHERE route_id = ? AND noisy > 0)) AS body_diff
                        FROM recent r WHERE r.outcome = 'mismatch'
                    )
                    SELECT
                        (SELECT COUNT(*) FROM recent WHERE outcome IN ('match', 'mismatch')) AS samples,
                        (SELECT COUNT(*) FROM recent WHERE outcome = 'uncomparable') AS uncomparable,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS NOT candidate_status OR header_diff OR body_diff) AS mismatches,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS candidate_status AND NOT header_diff AND NOT body_diff) AS noise_only,
                        (SELECT COUNT(*) FROM flagged WHERE primary_status IS NOT candidate_status) AS status_mismatches,
                        (SELECT COUNT(*) FROM flagged WHERE header_diff) AS header_mismatches,
                        (SELECT COUNT(*) FROM flagged WHERE body_diff) AS body_mismatches
                    """,
                arguments: [routeID, from, routeID]
            )
            if let counts {
                evidence.samples = counts["samples"]
                evidence.uncomparable = counts["uncomparable"]
                evidence.mismatches = counts["mismatches"]
                evidence.noiseOnly = counts["noise_only"]
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
            let side = { (serviceSide: Bool) -> String in
                // The service's latency is on whichever side its upstream was.
                let column = serviceSide
                    ? "CASE WHEN candidate_upstream = ? THEN candidate_ms ELSE primary_ms END"
                    : "CASE WHEN candidate_upstream = ? THEN primary_ms ELSE candidate_ms END"
                return """
                    SELECT ms FROM (SELECT \(column) AS ms FROM comparisons
                        WHERE route_id = ? AND recorded_at >= ? AND outcome IN ('match', 'mismatch'))
                    WHERE ms IS NOT NULL ORDER BY ms LIMIT 1 OFFSET ?
                    """
            }
            func percentile(_ fraction: Double, serviceSide: Bool) throws -> Double? {
                guard evidence.samples > 0 else { return nil }
                let offset = min(evidence.samples - 1, Int((Double(evidence.samples) * fraction).rounded(.up)) - 1)
                return try Double.fetchOne(db, sql: side(serviceSide), arguments: [service, routeID, from, max(0, offset)])
            }
            evidence.legacyP50 = try percentile(0.5, serviceSide: false)
            evidence.legacyP99 = try percentile(0.99, serviceSide: false)
            evidence.serviceP50 = try percentile(0.5, serviceSide: true)
            evidence.serviceP99 = try percentile(0.99, serviceSide: true)
            return evidence
        }
    }
}
