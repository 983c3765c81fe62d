import Foundation
import StranglerCore

/// A route's figures over a window, read from its rollups: the same numbers
/// ``SQLiteDiffStore/breakdown(routeID:serviceUpstream:since:bucketSeconds:)`` computes from
/// the per-comparison rows.
public struct RollupBreakdown: Sendable {
    /// Every pointer that differed, most first, then by pointer in byte order.
    public var pointers: [PointerCount]
    /// Comparisons per time bucket, oldest first; only buckets with compared requests.
    public var buckets: [RouteBreakdown.Bucket]
    /// Skipped comparisons by reason.
    public var skipped: [String: Int]
    /// Comparisons that could not be made.
    public var uncomparable: Int
    /// Legacy's latencies over the window.
    public var legacyLatency: LatencyDistribution
    /// The service's latencies over the window.
    public var serviceLatency: LatencyDistribution

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

/// Evidence from rollups.
public enum RollupEvidence {
    /// A route's figures since `since`, from its window's rollups (any levels, instances and
    /// order).
    ///
    /// The per-row semantics, kept here exactly:
    /// - A sample is a match or a stored mismatch. A mismatch counts as `mismatches` when its
    ///   status codes differ, it has a `header` difference, or one of its body differences (any
    ///   kind but `status` and `header`) is at a pointer that is neither learned noise nor
    ///   accepted. Otherwise it is `acceptedOnly` when one of its body pointers is accepted
    ///   (even if noise excuses another), and `noiseOnly` when not. A mismatch stored with no
    ///   difference at all counts as a sample only (the per-row flags are NULL for it).
    /// - `status`, `header` and `body` count mismatches with each, so a mismatch may count in
    ///   several; `body` only for an unexcused body pointer.
    /// - Latencies: per comparison, the candidate's is the service's when the candidate is
    ///   `serviceUpstream`, otherwise the primary's is; the other is legacy's. Bucket means are
    ///   over the bucket's samples that have one.
    /// - Buckets: `bucketSeconds` of a ``TimelineWidth`` gives buckets aligned on UTC like the
    ///   stored timestamps' prefixes (a minute at the finest, as rollups are); any other value or
    ///   nil gives one bucket that starts at `since`. Buckets without samples are left out.
    /// - Skipped and uncomparable counts cover the whole window, samples or not.
    ///
    /// Every rollup given counts: the reader picks the window's (``RollupReadPlan``), so a window
    /// that starts inside a minute counts that whole minute, where the per-row store counts only
    /// its part from `since`.
    public static func breakdown(
        of rollups: some Sequence<RouteMinuteRollup>,
        excuses: DifferenceExcuses,
        serviceUpstream: String?,
        since: Date,
        bucketSeconds: Int?
    ) -> RollupBreakdown {
        let width = bucketSeconds.flatMap { TimelineWidth(seconds: $0) }
        let service = Array((serviceUpstream ?? "").utf8)
        var result = RollupBreakdown(
            pointers: [],
            buckets: [],
            skipped: [:],
            uncomparable: 0,
            legacyLatency: LatencyDistribution(),
            serviceLatency: LatencyDistribution()
        )
        var buckets: [Date: (bucket: RouteBreakdown.Bucket, legacy: LatencyDistribution, service: LatencyDistribution)] = [:]
        var pointers: [String: (kinds: Set<String>, tally: RouteMinuteRollup.PointerTally)] = [:]
        // Each signature is judged once, however many minutes it occurs in.
        var judged: [MismatchSignature: Judgement] = [:]
        for rollup in rollups {
            result.skipped.merge(rollup.skipped, uniquingKeysWith: +)
            result.uncomparable += rollup.uncomparable.values.reduce(0, +)
            for (key, tally) in rollup.pointers {
                if var known = pointers[key.pointer] {
                    known.kinds.insert(key.kind.rawValue)
                    known.tally.merge(tally)
                    pointers[key.pointer] = known
                } else {
                    pointers[key.pointer] = ([key.kind.rawValue], tally)
                }
            }
            guard rollup.samples > 0 else { continue }
            let start = width.map { RouteMinuteRollup.floor(rollup.key.minute, toMultipleOf: $0.rawValue) } ?? since
            var entry = buckets[start] ?? (RouteBreakdown.Bucket(start: start), LatencyDistribution(), LatencyDistribution())
            entry.bucket.samples += rollup.samples
            for (signature, count) in rollup.signatures {
                let judgement = judged[signature] ?? Judgement(signature, excuses: excuses)
                judged[signature] = judgement
                judgement.count(count, in: &entry.bucket)
            }
            for (pair, latency) in rollup.latency {
                if pair.candidate.utf8.elementsEqual(service) {
                    entry.service.merge(latency.candidate)
                    entry.legacy.merge(latency.primary)
                } else {
                    entry.service.merge(latency.primary)
                    entry.legacy.merge(latency.candidate)
                }
            }
            buckets[start] = entry
        }
        result.buckets = buckets.sorted { $0.key < $1.key }.map { _, entry in
            var bucket = entry.bucket
            bucket.legacyMeanMs = entry.legacy.meanMilliseconds
            bucket.serviceMeanMs = entry.service.meanMilliseconds
            result.legacyLatency.merge(entry.legacy)
            result.serviceLatency.merge(entry.service)
            return bucket
        }
        result.pointers = pointers.map { pointer, item in
            PointerCount(
                pointer: pointer,
                kinds: item.kinds.sorted(),
                count: item.tally.count,
                firstSeen: storedPrecision(item.tally.firstSeen),
                lastSeen: storedPrecision(item.tally.lastSeen)
            )
        }
        .sorted { $0.count != $1.count ? $0.count > $1.count : $0.pointer.utf8.lexicographicallyPrecedes($1.pointer.utf8) }
        return result
    }

    /// A time as the store keeps it: truncated to the millisecond by its text form.
    private static func storedPrecision(_ date: Date) -> Date {
        StoredTimestamp.parse(StoredTimestamp.format(date)) ?? date
    }

    /// How a signature's mismatches count under the route's excuses.
    private struct Judgement {
        var counted: Bool
        var status: Bool
        var header: Bool
        var body: Bool
        var accepted: Bool

        init(_ signature: MismatchSignature, excuses: DifferenceExcuses) {
            counted = signature.hasDifferences
            status = signature.statusDiffers
            header = signature.headerDiffers
            body = signature.bodyPointers.contains { !excuses.excuses(pointer: $0) }
            accepted = signature.bodyPointers.contains { excuses.isAccepted($0) }
        }

        func count(_ count: Int, in bucket: inout RouteBreakdown.Bucket) {
            guard counted else { return }
            if status || header || body {
                bucket.mismatches += count
            } else if accepted {
                bucket.acceptedOnly += count
            } else {
                bucket.noiseOnly += count
            }
            if status { bucket.status += count }
            if header { bucket.header += count }
            if body { bucket.body += count }
        }
    }
}

extension RouteBreakdown {
    /// A route's breakdown read from its rollups, with the route's noise and accepted
    /// differences: the rollup counterpart of
    /// ``SQLiteDiffStore/breakdown(routeID:serviceUpstream:since:bucketSeconds:)``, with the same
    /// figures (see ``RollupEvidence/breakdown(of:excuses:serviceUpstream:since:bucketSeconds:)``).
    public init(
        rollups: some Sequence<RouteMinuteRollup>,
        noise: [String: Int],
        noiseProbes: Int,
        accepted: [AcceptedDifference],
        serviceUpstream: String?,
        since: Date,
        bucketSeconds: Int?
    ) {
        let excuses = DifferenceExcuses(noiseCounts: noise, acceptedPatterns: accepted.map(\.pointer))
        let read = RollupEvidence.breakdown(
            of: rollups,
            excuses: excuses,
            serviceUpstream: serviceUpstream,
            since: since,
            bucketSeconds: bucketSeconds
        )
        self.init(
            pointers: read.pointers,
            noise: noise,
            noiseProbes: noiseProbes,
            accepted: accepted,
            buckets: read.buckets,
            skipped: read.skipped,
            uncomparable: read.uncomparable,
            legacyLatency: LatencyHistogram(read.legacyLatency),
            serviceLatency: LatencyHistogram(read.serviceLatency)
        )
    }
}

extension LatencyHistogram {
    /// The per-row reading's histogram over a distribution's counters, so a breakdown from
    /// rollups computes its percentiles with the same code.
    init(_ distribution: LatencyDistribution) {
        let buckets = distribution.buckets.map { (tenths: Int($0.tenths), count: Int($0.count)) }
        self.init(buckets: buckets, total: buckets.reduce(0) { $0 + $1.count })
    }
}
