import Foundation
import StranglerCore

/// Decides which comparisons keep their detail row as an example, once rollups carry the
/// evidence: enough of each kind of difference for a reviewer to see what differs, a bounded
/// number per route and hour whatever the traffic.
///
/// Per route and UTC hour, in this order:
/// 1. A match never keeps a row: the rollup counts it and there is nothing to show.
/// 2. A mismatch is kept when one of its differences is among the first
///    ``Configuration/firstPerPointer`` of its pointer and kind this hour, so every pointer that
///    differed has examples, the rare ones included.
/// 3. A mismatch whose status codes differ is kept while fewer than
///    ``Configuration/statusCap`` such mismatches were seen this hour: differing statuses are
///    what a reviewer looks at first.
/// 4. Anything else that is not a match (mismatches beyond those, uncomparable and skipped
///    comparisons) goes through a uniform reservoir of ``Configuration/reservoirSize`` slots
///    (Algorithm R): the n-th such comparison takes a slot with probability size/n, replacing
///    the example in it, so the hour's reservoir is a uniform sample of all of them.
public struct ExampleSampler<Random: RandomNumberGenerator & Sendable>: Sendable {
    /// The sampler's limits.
    public struct Configuration: Sendable, Equatable {
        /// Comparisons kept per route, pointer and kind each hour (K).
        public var firstPerPointer: Int
        /// Status mismatches kept per route each hour.
        public var statusCap: Int
        /// Reservoir slots per route each hour.
        public var reservoirSize: Int
        /// Distinct pointer and kind pairs counted per route each hour; beyond it a new pair
        /// keeps no row by rule 2, so arbitrary pointers (array indices, keys from data) cannot
        /// grow the state without bound. Such comparisons still reach the reservoir.
        public var trackedPointersCap: Int

        /// Limits; the defaults keep at most a few hundred rows per route and hour.
        public init(firstPerPointer: Int = 5, statusCap: Int = 100, reservoirSize: Int = 20, trackedPointersCap: Int = 10_000) {
            self.firstPerPointer = firstPerPointer
            self.statusCap = statusCap
            self.reservoirSize = reservoirSize
            self.trackedPointersCap = trackedPointersCap
        }
    }

    /// What the store does with a comparison's detail row.
    public enum Decision: Sendable, Equatable {
        /// Keep no row; the rollup still counts the comparison.
        case drop
        /// Keep the row for good (within retention).
        case keep(Reason)
        /// Keep the row in the reservoir slot of the comparison's route and hour, replacing
        /// whatever example held that slot.
        case keepInReservoir(slot: Int)
    }

    /// Why a row is kept outside the reservoir.
    public enum Reason: String, Sendable, Equatable {
        /// One of its differences is among the first of its pointer and kind this hour.
        case firstAtPointer
        /// A differing status, under the hour's cap.
        case statusMismatch
    }

    /// One route's counters for one hour.
    private struct HourState: Sendable {
        var hour: Date
        var seenPerPointer: [RouteMinuteRollup.PointerKind: Int] = [:]
        var statusMismatches = 0
        /// Comparisons offered to the reservoir this hour (n in Algorithm R).
        var reservoirSeen = 0
    }

    /// The limits in use.
    public let configuration: Configuration
    private var random: Random
    /// Per route, the hours still counted, newest last: the current hour and the one before it,
    /// for comparisons recorded just before the hour turned that arrive just after.
    private var hours: [String: [HourState]] = [:]

    /// A sampler drawing reservoir slots from `random` (a seeded generator in tests).
    public init(configuration: Configuration = Configuration(), random: Random) {
        self.configuration = configuration
        self.random = random
    }

    /// The start of the UTC hour of `date`: the span the limits apply to.
    public static func hour(of date: Date) -> Date {
        RouteMinuteRollup.floor(date, toMultipleOf: 3600)
    }

    /// Routes and hours whose counters are held; bounded by two hours per route.
    public var heldHours: Int { hours.values.reduce(0) { $0 + $1.count } }

    /// Decides whether `record` keeps its detail row, and counts it against its hour's limits.
    ///
    /// Memory: a route holds counters for its newest hour and the one before; when a comparison
    /// of a newer hour arrives, older hours are released. A comparison of an hour already
    /// released (more than an hour late) keeps no row. ``release(before:)`` frees the hours of
    /// routes that went quiet.
    public mutating func decide(_ record: ComparisonRecord) -> Decision {
        guard record.outcome != .match else { return .drop }
        let hour = Self.hour(of: record.recordedAt)
        var states = hours[record.routeID] ?? []
        let index: Int
        if let found = states.firstIndex(where: { $0.hour == hour }) {
            index = found
        } else if let newest = states.last?.hour, hour < newest {
            // Older than every hour held: either released already, or older than the hour
            // before the newest; its limits can no longer be told.
            guard states.count < 2, hour == newest.addingTimeInterval(-3600) else { return .drop }
            states.insert(HourState(hour: hour), at: 0)
            index = 0
        } else {
            states.append(HourState(hour: hour))
            states.removeAll { $0.hour < hour.addingTimeInterval(-3600) }
            index = states.count - 1
        }
        let decision = decide(record, in: &states[index])
        hours[record.routeID] = states
        return decision
    }

    private mutating func decide(_ record: ComparisonRecord, in state: inout HourState) -> Decision {
        var firstAtPointer = false
        if record.outcome == .mismatch {
            // Each pointer and kind counts once per comparison, however many differences it has
            // there.
            for key in Set(record.differences.map { RouteMinuteRollup.PointerKind(pointer: $0.pointer, kind: $0.kind) }) {
                if let seen = state.seenPerPointer[key] {
                    if seen < configuration.firstPerPointer { firstAtPointer = true }
                    state.seenPerPointer[key] = seen + 1
                } else if state.seenPerPointer.count < configuration.trackedPointersCap {
                    if configuration.firstPerPointer > 0 { firstAtPointer = true }
                    state.seenPerPointer[key] = 1
                }
            }
            if record.primaryStatus != record.candidateStatus {
                // Every status mismatch counts against the cap, kept by rule 2 or not, so the
                // first `statusCap` of the hour are all kept.
                state.statusMismatches += 1
                if !firstAtPointer && state.statusMismatches <= configuration.statusCap { return .keep(.statusMismatch) }
            }
        }
        if firstAtPointer { return .keep(.firstAtPointer) }
        guard configuration.reservoirSize > 0 else { return .drop }
        state.reservoirSeen += 1
        if state.reservoirSeen <= configuration.reservoirSize { return .keepInReservoir(slot: state.reservoirSeen - 1) }
        let slot = Int.random(in: 0..<state.reservoirSeen, using: &random)
        return slot < configuration.reservoirSize ? .keepInReservoir(slot: slot) : .drop
    }

    /// Releases every route's counters for hours that end at or before `before`'s hour starts:
    /// call it now and then (each minute's write) so routes that stopped receiving comparisons
    /// hold nothing.
    public mutating func release(before: Date) {
        let cutoff = Self.hour(of: before)
        for (route, states) in hours {
            let kept = states.filter { $0.hour >= cutoff }
            hours[route] = kept.isEmpty ? nil : kept
        }
    }
}

extension ExampleSampler where Random == SystemRandomNumberGenerator {
    /// A sampler drawing reservoir slots from the system's generator.
    public init(configuration: Configuration = Configuration()) {
        self.init(configuration: configuration, random: SystemRandomNumberGenerator())
    }
}
