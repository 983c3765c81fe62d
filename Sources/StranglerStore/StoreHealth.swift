import Foundation
import Logging
import NIOConcurrencyHelpers

/// Whether the store answers, apart from whether the proxy serves: a proxy keeps forwarding
/// through a database outage (recording drops rows and keeps its counts), so an operator needs
/// the store's state said separately from the proxy's own health.
public struct StoreHealth: Sendable, Equatable, Codable, CustomStringConvertible {
    /// What the store's latest operations found.
    public enum State: String, Sendable, Equatable, Codable {
        /// The store answered its latest operation.
        case ok
        /// The store was reached before, and its latest operation found no answer (a refused or
        /// dropped connection, or a timeout).
        case unreachable
        /// The store was opened while its database was away and has not been reached (and
        /// migrated) since: nothing is read or written until it is.
        case notYetReached
    }

    /// What the store's latest operations found.
    public var state: State
    /// When the store entered ``state``.
    public var since: Date
    /// Why the store is not ``State/ok``, in the database's or the network's words (without
    /// passwords); nil when it is ok.
    public var lastError: String?

    public init(state: State, since: Date, lastError: String? = nil) {
        self.state = state
        self.since = since
        self.lastError = lastError
    }

    /// Whether the store answered its latest operation.
    public var isOK: Bool { state == .ok }

    public var description: String {
        let since = ISO8601DateFormatter().string(from: since)
        return "\(state.rawValue) since \(since)" + (lastError.map { ": \($0)" } ?? "")
    }
}

/// A store that can say whether it answers: the admin API shows it beside the proxy's health.
///
/// A store without outages to report (an embedded file) takes the default, always
/// ``StoreHealth/State/ok``.
public protocol StoreHealthReporting: Sendable {
    /// The store's state now; reading it costs a lock, never a query.
    var health: StoreHealth { get }
}

extension StoreHealthReporting {
    /// Always ok, since this process first asked: a store in a local file has no network to lose.
    /// A file that can't be written fails its operations, which report that themselves.
    public var health: StoreHealth { StoreHealth(state: .ok, since: alwaysHealthySince) }
}

/// When an embedded store's health was first asked for: the `since` of an always-ok answer, the
/// same at every asking.
private let alwaysHealthySince = Date()

extension SQLiteDiffStore: StoreHealthReporting {}

/// The state behind a store's ``StoreHealth``: every bounded operation says how it ended, and a
/// change of state is logged once, never per attempt (an hour's outage fails thousands of writes,
/// and the proxy keeps serving through it).
///
/// An outcome counts only when its operation began after the latest change: an operation that was
/// already under way when the store went down (or came back) knows nothing newer than the one
/// that changed the state, and letting it count would make the state, and the log, flap.
final class StoreHealthTracker: Sendable {
    private struct Tracked: Sendable {
        var health: StoreHealth
        /// When `health.state` began, on a clock that doesn't jump: for ordering and durations.
        var changed: ContinuousClock.Instant
    }

    private let tracked: NIOLockedValueBox<Tracked>
    private let location: String
    private let logger: Logger

    /// A store reached at open: ok from now.
    init(location: String, logger: Logger) {
        tracked = NIOLockedValueBox(Tracked(health: StoreHealth(state: .ok, since: Date()), changed: .now))
        self.location = location
        self.logger = logger
    }

    var health: StoreHealth { tracked.withLockedValue { $0.health } }

    /// The store was opened without reaching its database, for `reason`.
    func notReachedAtOpen(_ reason: String) {
        tracked.withLockedValue { $0 = Tracked(health: StoreHealth(state: .notYetReached, since: Date(), lastError: reason), changed: .now) }
        logger.error(
            "diff store unreachable at start (\(reason)); serving continues, and the store migrates when the database answers",
            metadata: ["store": "\(location)"]
        )
    }

    /// An operation that began at `started` got the database's answer.
    func answered(startedAt started: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let ended: (state: StoreHealth.State, lasted: Duration)? = tracked.withLockedValue { tracked in
            guard tracked.health.state != .ok, started >= tracked.changed else { return nil }
            let previous = (tracked.health.state, tracked.changed.duration(to: now))
            tracked = Tracked(health: StoreHealth(state: .ok, since: Date()), changed: now)
            return previous
        }
        switch ended?.state {
        case .unreachable?:
            logger.notice("diff store reachable again after \(Self.spoken(ended!.lasted))", metadata: ["store": "\(location)"])
        case .notYetReached?:
            logger.notice(
                "diff store reached \(Self.spoken(ended!.lasted)) after start; migrations applied",
                metadata: ["store": "\(location)"]
            )
        case .ok?, nil:
            break
        }
    }

    /// An operation that began at `started` failed for `reason`: the database was not reached
    /// (`outage`), or it refused. A refusal changes nothing, except the reason a store that has
    /// not been ready since it opened gives (a wrong password found once the server is back).
    func failed(_ reason: String, outage: Bool, startedAt started: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let lost: Bool = tracked.withLockedValue { tracked in
            guard started >= tracked.changed else { return false }
            switch tracked.health.state {
            case .ok:
                guard outage else { return false }
                tracked = Tracked(health: StoreHealth(state: .unreachable, since: Date(), lastError: reason), changed: now)
                return true
            case .unreachable:
                if outage { tracked.health.lastError = reason }
                return false
            case .notYetReached:
                tracked.health.lastError = reason
                return false
            }
        }
        if lost {
            logger.error("diff store unreachable (\(reason)); serving continues", metadata: ["store": "\(location)"])
        }
    }

    /// `duration` for a log line: "4.2 s", "3 min 12 s", "2 h 5 min".
    static func spoken(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }
}
