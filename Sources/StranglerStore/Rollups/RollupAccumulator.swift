import Foundation
import StranglerCore

/// The recorder's open rollups: every comparison, traffic count and drop is added to its route's
/// minute here, and finished minutes are taken to be written.
///
/// A value type with no lock: the recorder owns it on its one writing task. Memory is what the
/// open minutes hold; taking them after each write (``take(before:)``) keeps it to the last
/// minute or two of each active route.
public struct RollupAccumulator: Sendable {
    /// The instance the rollups are recorded for.
    public let instanceID: String
    private var open: [RouteMinuteRollup.Key: RouteMinuteRollup] = [:]

    /// An empty accumulator for one proxy instance.
    public init(instanceID: String) {
        self.instanceID = instanceID
    }

    /// Whether no minute is open.
    public var isEmpty: Bool { open.isEmpty }

    /// How many route-minutes are open.
    public var count: Int { open.count }

    /// The open rollups, oldest minute first, then by route.
    public var pending: [RouteMinuteRollup] { Self.ordered(Array(open.values)) }

    /// Counts a comparison in the minute of its `recordedAt`, whether or not its details are
    /// kept as an example.
    public mutating func add(_ record: ComparisonRecord) {
        let key = RouteMinuteRollup.Key(routeID: record.routeID, minute: record.recordedAt, instanceID: instanceID)
        open[key, default: RouteMinuteRollup(key: key)].add(record)
    }

    /// Counts requests a route served, by side, in the minute of `at`. Zero counts open no minute.
    public mutating func addTraffic(_ traffic: RouteTraffic, at: Date) {
        guard traffic.legacy != 0 || traffic.service != 0 || traffic.serviceErrors != 0 else { return }
        let key = RouteMinuteRollup.Key(routeID: traffic.routeID, minute: at, instanceID: instanceID)
        open[key, default: RouteMinuteRollup(key: key)].addTraffic(
            legacy: traffic.legacy,
            service: traffic.service,
            serviceErrors: traffic.serviceErrors
        )
    }

    /// Counts comparisons of a route the recorder dropped, in the minute of `at`.
    public mutating func addDropped(routeID: String, at: Date, count: Int) {
        guard count > 0 else { return }
        let key = RouteMinuteRollup.Key(routeID: routeID, minute: at, instanceID: instanceID)
        open[key, default: RouteMinuteRollup(key: key)].addDropped(count)
    }

    /// Takes the rollups of minutes that start before `before`'s minute, oldest first: the
    /// minutes no comparison can still arrive for, when `before` is now less the recorder's
    /// delay. Later minutes stay open.
    public mutating func take(before: Date) -> [RouteMinuteRollup] {
        let cutoff = RouteMinuteRollup.minute(of: before)
        var taken: [RouteMinuteRollup] = []
        for (key, rollup) in open where key.minute < cutoff {
            taken.append(rollup)
            open[key] = nil
        }
        return Self.ordered(taken)
    }

    /// Puts taken rollups back (their write failed), adding each to its minute if that minute
    /// has counted more since: nothing is lost and nothing counted twice.
    public mutating func restore(_ rollups: [RouteMinuteRollup]) {
        for rollup in rollups {
            precondition(rollup.key.instanceID == instanceID, "a rollup of another instance")
            if open[rollup.key] == nil {
                open[rollup.key] = rollup
            } else {
                open[rollup.key]!.merge(rollup)
            }
        }
    }

    /// Keeps at most `limit` route-minutes with comparisons in them: the oldest beyond it have
    /// their comparisons turned into drops (``RouteMinuteRollup/dropComparisons()``), so memory
    /// stays bounded while the store is away and those minutes read as gaps, not as quiet.
    /// Returns the comparisons turned into drops.
    public mutating func shed(keeping limit: Int) -> Int {
        let heavy = open.filter { $0.value.holdsComparisons }.map(\.key)
        guard heavy.count > limit else { return 0 }
        var dropped = 0
        for key in heavy.sorted(by: { $0.minute < $1.minute }).prefix(heavy.count - limit) {
            dropped += open[key]!.dropComparisons()
        }
        return dropped
    }

    /// Takes every open rollup, oldest first.
    public mutating func takeAll() -> [RouteMinuteRollup] {
        defer { open = [:] }
        return pending
    }

    /// Minute, then route: the order a writer inserts in, and a stable one for tests.
    private static func ordered(_ rollups: [RouteMinuteRollup]) -> [RouteMinuteRollup] {
        rollups.sorted {
            $0.key.minute != $1.key.minute ? $0.key.minute < $1.key.minute : $0.key.routeID.utf8.lexicographicallyPrecedes($1.key.routeID.utf8)
        }
    }
}
