import Foundation
import StranglerCore

/// One route's evidence for one UTC minute from one proxy instance: every comparison counted,
/// whether or not its details are kept as an example.
///
/// Rollups are the evidence; the per-comparison rows are only examples. Everything here adds
/// under ``merge(_:)`` (counts add, first and last sightings take the earlier and the later), so
/// merging is exact, commutative and associative, and a window's figures are the same however
/// its minutes and instances are combined.
public struct RouteMinuteRollup: Sendable, Equatable {
    /// Which route, minute and instance the counts are for.
    public struct Key: Sendable, Hashable {
        /// The route the comparisons took.
        public var routeID: String
        /// The start of the UTC minute.
        public var minute: Date
        /// The proxy instance that recorded them, so instances sharing a store never overwrite
        /// one another's minute.
        public var instanceID: String

        /// A key; `minute` is floored to its UTC minute.
        public init(routeID: String, minute: Date, instanceID: String) {
            self.routeID = routeID
            self.minute = RouteMinuteRollup.minute(of: minute)
            self.instanceID = instanceID
        }
    }

    /// A pointer and a difference kind, the unit per-pointer counts are kept in.
    public struct PointerKind: Sendable, Hashable {
        /// The pointer: RFC 6901 into the body, a header's name, or `""` for the status.
        public var pointer: String
        /// The difference's kind.
        public var kind: DifferenceKind

        /// A pointer and kind.
        public init(pointer: String, kind: DifferenceKind) {
            self.pointer = pointer
            self.kind = kind
        }
    }

    /// How often differences of one kind were at one pointer, and when.
    public struct PointerTally: Sendable, Equatable {
        /// Differences (not comparisons: a comparison with two differences there counts two, as
        /// the per-row store counts rows).
        public var count: Int
        /// When the earliest comparison with one was recorded.
        public var firstSeen: Date
        /// When the latest comparison with one was recorded.
        public var lastSeen: Date

        /// A tally from its parts.
        public init(count: Int, firstSeen: Date, lastSeen: Date) {
            self.count = count
            self.firstSeen = firstSeen
            self.lastSeen = lastSeen
        }

        /// Adds another tally of the same pointer and kind.
        public mutating func merge(_ other: PointerTally) {
            count &+= other.count
            firstSeen = min(firstSeen, other.firstSeen)
            lastSeen = max(lastSeen, other.lastSeen)
        }
    }

    /// The two upstreams of a comparison, the key latencies are kept under.
    ///
    /// Which side is the service is decided when the evidence is read (the route's service may
    /// change), as the per-row store decides it: the candidate's latency is the service's when
    /// the candidate is the service, otherwise the primary's is. Keeping the pair, not one name
    /// per latency, lets the reading make that choice per comparison exactly.
    public struct UpstreamPair: Sendable, Hashable {
        /// The upstream that served the client.
        public var primary: String
        /// The upstream that got the copy.
        public var candidate: String

        /// A pair of upstream names.
        public init(primary: String, candidate: String) {
            self.primary = primary
            self.candidate = candidate
        }
    }

    /// Both sides' latencies of the compared requests between one pair of upstreams.
    public struct PairLatency: Sendable, Equatable {
        /// The primary's latencies.
        public var primary = LatencyDistribution()
        /// The candidate's latencies.
        public var candidate = LatencyDistribution()

        /// Empty distributions.
        public init() {}

        /// Adds another pair's latencies.
        public mutating func merge(_ other: PairLatency) {
            primary.merge(other.primary)
            candidate.merge(other.candidate)
        }
    }

    /// The route, minute and instance.
    public var key: Key

    /// Comparisons that matched.
    public var matches = 0
    /// Comparisons stored as mismatches, before noise and accepted differences are excused
    /// (``signatures`` says how each is judged when read).
    public var mismatches = 0
    /// Comparisons that could not be made, by reason (`unknown` when none was given).
    public var uncomparable: [String: Int] = [:]
    /// Shadows that did not happen, by reason (`unknown` when none was given, as the per-row store
    /// reads a missing reason).
    public var skipped: [String: Int] = [:]

    /// Stored mismatches whose status codes differ.
    public var statusMismatches = 0
    /// Stored mismatches with a `header` difference.
    public var headerMismatches = 0
    /// Stored mismatches with a body difference, excused or not.
    public var bodyMismatches = 0

    /// Differences of stored mismatches by pointer and kind.
    public var pointers: [PointerKind: PointerTally] = [:]
    /// Stored mismatches by what they differed in: what lets noise and accepted differences
    /// learned later excuse them exactly.
    public var signatures: [MismatchSignature: Int] = [:]
    /// Latencies of the compared requests (matches and mismatches) by pair of upstreams.
    public var latency: [UpstreamPair: PairLatency] = [:]

    /// Requests legacy served, as primary or as a fallback.
    public var legacyServed = 0
    /// Requests the service served.
    public var serviceServed = 0
    /// Of those, answers that failed: 5xx, connect failure or timeout.
    public var serviceErrors = 0
    /// Comparisons the recorder dropped in the minute because its queue was full (a failed write
    /// keeps its counts and retries them): a window with drops is missing evidence, and says so.
    public var dropped = 0

    /// An empty rollup for a route, minute and instance.
    public init(key: Key) {
        self.key = key
    }

    /// An empty rollup for a route, the minute of `at`, and an instance.
    public init(routeID: String, minute at: Date, instanceID: String) {
        self.init(key: Key(routeID: routeID, minute: at, instanceID: instanceID))
    }

    /// Comparisons that compared: matches and stored mismatches.
    public var samples: Int { matches + mismatches }

    /// Whether nothing at all was counted.
    public var isEmpty: Bool {
        samples == 0 && uncomparable.isEmpty && skipped.isEmpty && legacyServed == 0 && serviceServed == 0 && serviceErrors == 0
            && dropped == 0
    }

    /// The start of the UTC minute of `date`. Floored from whole seconds as the store's
    /// timestamps are, so a comparison falls in the minute its stored `recorded_at` text names.
    public static func minute(of date: Date) -> Date {
        floor(date, toMultipleOf: 60)
    }

    /// The start of the UTC span of `seconds` (a divisor of a day) that holds `date`.
    static func floor(_ date: Date, toMultipleOf seconds: Int) -> Date {
        let whole = Int(date.timeIntervalSince1970.rounded(.down))
        let remainder = ((whole % seconds) + seconds) % seconds
        return Date(timeIntervalSince1970: Double(whole - remainder))
    }

    /// Counts one comparison. The caller makes sure it belongs here (route and minute); its
    /// differences count only on a mismatch, as the per-row reading joins them only there.
    public mutating func add(_ record: ComparisonRecord) {
        switch record.outcome {
        case .skipped:
            skipped[record.reason ?? "unknown", default: 0] += 1
            return
        case .uncomparable:
            uncomparable[record.reason ?? "unknown", default: 0] += 1
            return
        case .match:
            matches += 1
        case .mismatch:
            mismatches += 1
            let signature = MismatchSignature(record)
            signatures[signature, default: 0] += 1
            if signature.statusDiffers { statusMismatches += 1 }
            if signature.headerDiffers { headerMismatches += 1 }
            if !signature.bodyPointers.isEmpty { bodyMismatches += 1 }
            let seen = PointerTally(count: 1, firstSeen: record.recordedAt, lastSeen: record.recordedAt)
            for difference in record.differences {
                let key = PointerKind(pointer: difference.pointer, kind: difference.kind)
                if pointers[key] == nil {
                    pointers[key] = seen
                } else {
                    pointers[key]!.merge(seen)
                }
            }
        }
        let pair = UpstreamPair(primary: record.primaryUpstream, candidate: record.candidateUpstream)
        if let milliseconds = record.primaryMilliseconds {
            latency[pair, default: PairLatency()].primary.record(milliseconds: milliseconds)
        }
        if let milliseconds = record.candidateMilliseconds {
            latency[pair, default: PairLatency()].candidate.record(milliseconds: milliseconds)
        }
    }

    /// Adds requests served, by side.
    public mutating func addTraffic(legacy: Int, service: Int, serviceErrors: Int) {
        legacyServed &+= legacy
        serviceServed &+= service
        self.serviceErrors &+= serviceErrors
    }

    /// Adds comparisons the recorder dropped.
    public mutating func addDropped(_ count: Int) {
        dropped &+= count
    }

    /// Whether it counts any comparison (not only traffic or drops): what makes a rollup large.
    public var holdsComparisons: Bool {
        samples > 0 || !uncomparable.isEmpty || !skipped.isEmpty || !pointers.isEmpty || !signatures.isEmpty || !latency.isEmpty
    }

    /// Turns every comparison counted here into a drop, keeping only the traffic counts: what the
    /// recorder does to its oldest unwritten minutes when the store has been away so long that
    /// keeping them whole would take too much memory. The minute then reads as missing evidence
    /// (a coverage gap) rather than as fewer comparisons. Returns the comparisons turned into drops.
    @discardableResult
    public mutating func dropComparisons() -> Int {
        let count = samples + uncomparable.values.reduce(0, +) + skipped.values.reduce(0, +)
        var kept = RouteMinuteRollup(key: key)
        kept.addTraffic(legacy: legacyServed, service: serviceServed, serviceErrors: serviceErrors)
        kept.addDropped(dropped &+ count)
        self = kept
        return count
    }

    /// Adds another rollup of the same route, minute and instance (two flushes of one minute,
    /// say). Exact, commutative and associative.
    public mutating func merge(_ other: RouteMinuteRollup) {
        precondition(key == other.key, "rollups of different routes, minutes or instances do not merge; fold them with mergeCounts")
        mergeCounts(other)
    }

    /// Adds another rollup's counts whatever its key: how a reading folds minutes and instances
    /// into a bucket. The key stays this rollup's.
    public mutating func mergeCounts(_ other: RouteMinuteRollup) {
        matches &+= other.matches
        mismatches &+= other.mismatches
        uncomparable.merge(other.uncomparable, uniquingKeysWith: &+)
        skipped.merge(other.skipped, uniquingKeysWith: &+)
        statusMismatches &+= other.statusMismatches
        headerMismatches &+= other.headerMismatches
        bodyMismatches &+= other.bodyMismatches
        for (key, tally) in other.pointers {
            if pointers[key] == nil {
                pointers[key] = tally
            } else {
                pointers[key]!.merge(tally)
            }
        }
        signatures.merge(other.signatures, uniquingKeysWith: &+)
        for (pair, theirs) in other.latency {
            latency[pair, default: PairLatency()].merge(theirs)
        }
        legacyServed &+= other.legacyServed
        serviceServed &+= other.serviceServed
        serviceErrors &+= other.serviceErrors
        dropped &+= other.dropped
    }
}
