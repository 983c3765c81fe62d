import Foundation

/// The two levels rollups are kept at. Every rollup is added to both, in one transaction, so
/// they always agree; hours are kept longer and read faster, minutes give a window its exact
/// start and a timeline its fine buckets.
public enum RollupLevel: Sendable, CaseIterable {
    /// Per UTC minute, kept `--minute-rollup-retention-days`.
    case minute
    /// Per UTC hour, kept `--rollup-retention-days`.
    case hour

    /// The level's tables are the minute tables' names with this in front.
    var tablePrefix: String {
        switch self {
        case .minute: ""
        case .hour: "hour_"
        }
    }

    /// A period's length.
    public var seconds: Int {
        switch self {
        case .minute: 60
        case .hour: 3600
        }
    }

    /// The start of the period `date` falls in.
    public func start(of date: Date) -> Date {
        RouteMinuteRollup.floor(date, toMultipleOf: seconds)
    }
}

/// Which rollups a window that runs from `since` to now is read from: whole hours wherever
/// they do, and minutes only where the figures need them. A 30-day report then reads about
/// 720 rows per route and instance, not 43,200.
///
/// - One bucket, or buckets of an hour or more: the minutes of the window's first, ragged hour,
///   then whole hours. If those minutes are no longer kept, the first hour is read whole: the
///   window starts at that hour, as a window that starts inside a minute counts the whole minute.
/// - Buckets finer than an hour: minutes wherever they are kept, hours before that.
public struct RollupReadPlan: Sendable, Equatable {
    /// One stretch read from one level.
    public struct Part: Sendable, Equatable {
        /// The level the stretch is read from.
        public var level: RollupLevel
        /// Its first period's start.
        public var from: Date
        /// Where it ends (exclusive); nil for no end.
        public var to: Date?
    }

    /// The stretches, oldest first; they never overlap.
    public var parts: [Part]

    /// The plan for a window from `since` to now.
    /// - Parameters:
    ///   - minutesKeptFrom: the oldest minute retention still keeps minute rollups for (an
    ///     hour's start); nil when no minute was ever pruned.
    ///   - bucketSeconds: the finest buckets the reader needs; nil for one bucket.
    public init(since: Date, minutesKeptFrom: Date?, bucketSeconds: Int?) {
        let start = RollupLevel.minute.start(of: since)
        let minutesFrom = max(start, minutesKeptFrom ?? start)
        if let bucketSeconds, bucketSeconds < RollupLevel.hour.seconds {
            parts = []
            if start < minutesFrom { parts.append(Part(level: .hour, from: RollupLevel.hour.start(of: start), to: minutesFrom)) }
            parts.append(Part(level: .minute, from: minutesFrom, to: nil))
        } else if start < minutesFrom {
            parts = [Part(level: .hour, from: RollupLevel.hour.start(of: start), to: nil)]
        } else {
            let hour = RollupLevel.hour.start(of: start)
            if hour == start {
                parts = [Part(level: .hour, from: start, to: nil)]
            } else {
                let next = hour.addingTimeInterval(Double(RollupLevel.hour.seconds))
                parts = [Part(level: .minute, from: start, to: next), Part(level: .hour, from: next, to: nil)]
            }
        }
    }
}
