import Foundation
import GRDB
import StranglerCore

/// Everything the gates and the reports need about one route's comparisons in a window, from a
/// handful of indexed aggregate queries (no rows are loaded one by one).
public struct RouteBreakdown: Sendable {
    /// Every pointer that differed, most first.
    public var pointers: [PointerCount]
    /// Learned noise: pointer → probes in which legacy differed from itself there.
    public var noise: [String: Int]
    /// Noise probes recorded for the route since its noise was first learned, not only in the
    /// window.
    public var noiseProbes: Int
    /// Active accepted differences of the route.
    public var accepted: [AcceptedDifference]
    /// Comparisons per time bucket, oldest first.
    public var buckets: [Bucket]
    /// Skipped comparisons by reason, and uncomparable ones.
    public var skipped: [String: Int]
    /// Comparisons in the window that could not be made.
    public var uncomparable: Int
    var legacyLatency: LatencyHistogram
    var serviceLatency: LatencyHistogram

    /// One time bucket's counts. A mismatch counts only with a difference that is neither noise
    /// nor accepted, or a differing status.
    public struct Bucket: Sendable {
        /// The bucket's start; the window's start when there is one bucket.
        public var start: Date
        /// Comparisons that compared: matched or mismatched.
        public var samples = 0
        /// Of those, mismatches once noise and accepted differences are excused.
        public var mismatches = 0
        /// Comparisons whose only differences were learned noise; counted as matches.
        public var noiseOnly = 0
        /// Comparisons whose differences were all excused, at least one by an accepted difference;
        /// counted as matches.
        public var acceptedOnly = 0
        /// Mismatches with a differing status code.
        public var status = 0
        /// Mismatches with a differing compared header.
        public var header = 0
        /// Mismatches with a body difference that is neither noise nor accepted.
        public var body = 0
        /// Legacy's mean latency over the bucket's samples, in milliseconds; nil without latencies.
        public var legacyMeanMs: Double?
        /// The service's mean latency over the bucket's samples, in milliseconds; nil without
        /// latencies.
        public var serviceMeanMs: Double?
    }

    /// The route's noise and accepted differences as the one rule that excuses differences.
    public var excuses: DifferenceExcuses {
        DifferenceExcuses(noiseCounts: noise, acceptedPatterns: accepted.map(\.pointer))
    }

    /// The gate's evidence: the buckets summed, with each side's percentiles.
    public var evidence: RouteEvidence {
        RouteEvidence(
            buckets: buckets,
            skipped: skipped,
            uncomparable: uncomparable,
            legacy: legacyLatency.percentile,
            service: serviceLatency.percentile
        )
    }
}

extension RouteEvidence {
    /// The gate's evidence from a breakdown's parts (per-row or from rollups): the buckets
    /// summed, with each side's p50 and p99 from its percentile function.
    init(
        buckets: [RouteBreakdown.Bucket],
        skipped: [String: Int],
        uncomparable: Int,
        legacy: (Double) -> Double?,
        service: (Double) -> Double?
    ) {
        self.init(skipped: skipped)
        self.uncomparable = uncomparable
        for bucket in buckets {
            samples += bucket.samples
            mismatches += bucket.mismatches
            noiseOnly += bucket.noiseOnly
            acceptedOnly += bucket.acceptedOnly
            statusMismatches += bucket.status
            headerMismatches += bucket.header
            bodyMismatches += bucket.body
        }
        legacyP50 = legacy(0.5)
        legacyP99 = legacy(0.99)
        serviceP50 = service(0.5)
        serviceP99 = service(0.99)
    }
}

extension SQLiteDiffStore {
    /// A route's evidence since `since`: what its gate is judged on.
    ///
    /// A mismatch whose every difference is at a learned noise pointer or under an accepted
    /// difference counts as a match (`noiseOnly`, `acceptedOnly`), so known differences can't
    /// block a promotion; a differing status code always counts.
    /// - Parameter serviceUpstream: the route's service, to tell the two sides' latencies apart
    ///   whichever side served the client.
    public func evidence(routeID: String, serviceUpstream: String?, since: Date) async throws -> RouteEvidence {
        try await breakdown(routeID: routeID, serviceUpstream: serviceUpstream, since: since, bucketSeconds: nil).evidence
    }

    /// A route's comparisons since `since`, from its rollups
    /// (``RollupEvidenceSource/rollupBreakdown(routeID:serviceUpstream:since:bucketSeconds:)``).
    public func breakdown(routeID: String, serviceUpstream: String?, since: Date, bucketSeconds: Int?) async throws -> RouteBreakdown {
        try await rollupBreakdown(routeID: routeID, serviceUpstream: serviceUpstream, since: since, bucketSeconds: bucketSeconds)
    }

    /// The same breakdown computed from the stored comparison rows, as it was before rollups:
    /// kept to check the rollups against (the parity tests) and to fold rows recorded before
    /// rollups existed. On a store whose rows are sampled examples it undercounts.
    package func rowBreakdown(routeID: String, serviceUpstream: String?, since: Date, bucketSeconds: Int?) async throws -> RouteBreakdown {
        let from = Self.format(since)
        let service = serviceUpstream ?? ""
        let noise = try await self.noise(route: routeID)
        let probes = try await noiseProbes(route: routeID)
        let accepted = try await acceptedDifferences(routeID: routeID)
        return try await pool.read { db in
            let pointers = try Self.pointerCounts(db, routeID: routeID, from: from, since: since)
            var breakdown = RouteBreakdown(
                pointers: pointers,
                noise: noise,
                noiseProbes: probes,
                accepted: accepted,
                buckets: [],
                skipped: [:],
                uncomparable: 0,
                legacyLatency: try Self.latencyHistogram(db, routeID: routeID, from: from, serviceUpstream: service, serviceSide: false),
                serviceLatency: try Self.latencyHistogram(db, routeID: routeID, from: from, serviceUpstream: service, serviceSide: true)
            )
            // Status and header differences are never excused (``DifferenceExcuses``); the query
            // looks these lists up for body differences only.
            let excuses = breakdown.excuses
            let excusedPointers = pointers.map(\.pointer).filter { excuses.excuses(pointer: $0) }
            let acceptedPointers = pointers.map(\.pointer).filter { excuses.isAccepted($0) }
            // Buckets are prefixes of the fixed-width timestamp text, so grouping parses no dates.
            let prefix = bucketSeconds.flatMap { TimelineWidth(seconds: $0) }?.prefixLength ?? 0
            // One grouped pass: each compared request gets a bit set (mismatch, status, header, real
            // body difference, accepted difference) from one lookup of its differences, and is
            // counted by bucket and bit set. SQLite computes a grouping key once per row, where a
            // column used in several sums would be computed once per use.
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT substr(c.recorded_at, 1, ?5) AS bucket,
                        (c.outcome = 'mismatch') | ((c.primary_status IS NOT c.candidate_status) << 1)
                        | (CASE WHEN c.outcome = 'mismatch' THEN (
                            SELECT (MAX(d.kind = 'header') << 2)
                                | (MAX(d.kind NOT IN ('status', 'header') AND d.pointer NOT IN (SELECT value FROM json_each(?3))) << 3)
                                | (MAX(d.kind NOT IN ('status', 'header') AND d.pointer IN (SELECT value FROM json_each(?4))) << 4)
                            FROM differences d WHERE d.comparison_id = c.id) ELSE 0 END) AS flags,
                        COUNT(*) AS n,
                        SUM(CASE WHEN c.candidate_upstream = ?6 THEN c.primary_ms ELSE c.candidate_ms END) AS legacy_sum,
                        COUNT(CASE WHEN c.candidate_upstream = ?6 THEN c.primary_ms ELSE c.candidate_ms END) AS legacy_n,
                        SUM(CASE WHEN c.candidate_upstream = ?6 THEN c.candidate_ms ELSE c.primary_ms END) AS service_sum,
                        COUNT(CASE WHEN c.candidate_upstream = ?6 THEN c.candidate_ms ELSE c.primary_ms END) AS service_n
                    FROM comparisons c
                    WHERE c.route_id = ?1 AND c.recorded_at >= ?2 AND c.outcome IN ('match', 'mismatch')
                    GROUP BY bucket, flags ORDER BY bucket
                    """,
                arguments: [routeID, from, Self.jsonList(excusedPointers), Self.jsonList(acceptedPointers), prefix, service]
            )
            var buckets: [(key: String, bucket: RouteBreakdown.Bucket, legacy: (Double, Int), service: (Double, Int))] = []
            for row in rows {
                let key: String = row["bucket"] ?? ""
                if buckets.last?.key != key {
                    let start = prefix == 0 ? since : (Self.parse(TimelineWidth.complete(key)) ?? since)
                    buckets.append((key, RouteBreakdown.Bucket(start: start), (0, 0), (0, 0)))
                }
                let flags: Int = row["flags"] ?? 0
                let count: Int = row["n"]
                let mismatch = flags & 1 != 0
                let status = flags & 2 != 0
                let header = flags & 4 != 0
                let body = flags & 8 != 0
                let accepted = flags & 16 != 0
                let last = buckets.count - 1
                buckets[last].bucket.samples += count
                if mismatch {
                    if status || header || body {
                        buckets[last].bucket.mismatches += count
                    } else if accepted {
                        buckets[last].bucket.acceptedOnly += count
                    } else {
                        buckets[last].bucket.noiseOnly += count
                    }
                    if status { buckets[last].bucket.status += count }
                    if header { buckets[last].bucket.header += count }
                    if body { buckets[last].bucket.body += count }
                }
                buckets[last].legacy.0 += row["legacy_sum"] ?? 0
                buckets[last].legacy.1 += row["legacy_n"] as Int
                buckets[last].service.0 += row["service_sum"] ?? 0
                buckets[last].service.1 += row["service_n"] as Int
            }
            breakdown.buckets = buckets.map { item in
                var bucket = item.bucket
                bucket.legacyMeanMs = item.legacy.1 > 0 ? item.legacy.0 / Double(item.legacy.1) : nil
                bucket.serviceMeanMs = item.service.1 > 0 ? item.service.0 / Double(item.service.1) : nil
                return bucket
            }
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT outcome, skip_reason, COUNT(*) AS n FROM comparisons
                    WHERE route_id = ? AND outcome IN ('skipped', 'uncomparable') AND recorded_at >= ? GROUP BY outcome, skip_reason
                    """,
                arguments: [routeID, from]
            ) {
                if row["outcome"] == "uncomparable" {
                    breakdown.uncomparable += row["n"] as Int
                } else {
                    breakdown.skipped[row["skip_reason"] ?? "unknown", default: 0] += row["n"] as Int
                }
            }
            return breakdown
        }
    }

    static func jsonList(_ values: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(values)) ?? Data("[]".utf8), as: UTF8.self)
    }

    /// Every pointer that differed on a route since `from`, most first.
    static func pointerCounts(_ db: Database, routeID: String, from: String, since: Date) throws -> [PointerCount] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT d.pointer, GROUP_CONCAT(DISTINCT d.kind) AS kinds, COUNT(*) AS n,
                    MIN(c.recorded_at) AS first_seen, MAX(c.recorded_at) AS last_seen
                FROM comparisons c JOIN differences d ON d.comparison_id = c.id
                WHERE c.route_id = ? AND c.outcome = 'mismatch' AND c.recorded_at >= ?
                GROUP BY d.pointer ORDER BY n DESC, d.pointer
                """,
            arguments: [routeID, from]
        ).map { row in
            PointerCount(
                pointer: row["pointer"],
                kinds: ((row["kinds"] as String?) ?? "").split(separator: ",").map(String.init).sorted(),
                count: row["n"],
                firstSeen: parse(row["first_seen"]) ?? since,
                lastSeen: parse(row["last_seen"]) ?? since
            )
        }
    }
}

/// Latencies counted in 0.1 ms buckets: percentiles in one indexed pass, without sorting rows.
struct LatencyHistogram: Sendable {
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
    static func latencyHistogram(
        _ db: Database,
        routeID: String,
        from: String,
        serviceUpstream: String,
        serviceSide: Bool
    ) throws
        -> LatencyHistogram
    {
        let column =
            serviceSide
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

extension SQLiteDiffStore: RollupEvidenceSource {}
