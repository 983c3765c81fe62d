import Foundation

/// How much of a window the evidence covers, and where it does not: a gate judged on a window
/// with holes says so rather than reading the holes as quiet.
///
/// Only time since the route's first comparison has to be covered: a route compared for two
/// hours of a 24-hour window is complete if nothing is missing from those two hours. Within that
/// span, minutes older than what retention still keeps are a `retention` gap, and minutes in
/// which the recorder dropped comparisons are `dropped` gaps (a minute with drops has partial
/// counts, so the whole minute is the gap; where only hours are kept, the whole hour).
public struct EvidenceCoverage: Codable, Sendable, Equatable {
    /// Why part of the window has no evidence.
    public enum GapReason: String, Codable, Sendable, Equatable {
        /// Retention deleted the rollups.
        case retention
        /// The recorder dropped comparisons (its queue was full), so they are not counted.
        case dropped
    }

    /// One stretch without full evidence.
    public struct Gap: Codable, Sendable, Equatable {
        /// Where it starts.
        public var from: Date
        /// Where it ends.
        public var to: Date
        /// Why the evidence is missing.
        public var reason: GapReason

        /// A gap from its parts.
        public init(from: Date, to: Date, reason: GapReason) {
            self.from = from
            self.to = to
            self.reason = reason
        }

        /// Its length in seconds.
        public var seconds: TimeInterval { to.timeIntervalSince(from) }
    }

    /// The window's start.
    public var from: Date
    /// The window's end.
    public var to: Date
    /// The window's length.
    public var windowSeconds: TimeInterval
    /// Seconds of the window with full evidence: from the later of the window's start and the
    /// route's first comparison to the end, less the gaps.
    public var coveredSeconds: TimeInterval
    /// Whether nothing is missing since the later of the window's start and the first comparison.
    public var complete: Bool
    /// The stretches without full evidence, oldest first.
    public var gaps: [Gap]

    /// Coverage of the window `from`..`to`.
    /// - Parameters:
    ///   - firstCompared: when the route was first compared; nil when never, so nothing has to be
    ///     covered.
    ///   - retainedFrom: the oldest minute retention still keeps; nil when nothing was deleted.
    ///   - droppedMinutes: starts of the minutes in which the recorder dropped comparisons of the
    ///     route, in any order.
    ///   - droppedHours: starts of the hours with drops, where only hour rollups are kept (the
    ///     whole hour is then the gap), in any order.
    public init(
        from: Date,
        to: Date,
        firstCompared: Date?,
        retainedFrom: Date?,
        droppedMinutes: some Sequence<Date>,
        droppedHours: some Sequence<Date> = [Date]()
    ) {
        let to = max(from, to)
        self.from = from
        self.to = to
        windowSeconds = to.timeIntervalSince(from)
        let required = min(to, max(from, firstCompared ?? to))
        var gaps: [Gap] = []
        var coveredFrom = required
        if let retainedFrom, retainedFrom > required {
            coveredFrom = min(retainedFrom, to)
            gaps.append(Gap(from: required, to: coveredFrom, reason: .retention))
        }
        let spans =
            Set(droppedMinutes.map { RollupLevel.minute.start(of: $0) }).map { ($0, RollupLevel.minute) }
            + Set(droppedHours.map { RollupLevel.hour.start(of: $0) }).map { ($0, RollupLevel.hour) }
        for (period, level) in spans.sorted(by: { $0.0 < $1.0 }) {
            let start = max(period, coveredFrom)
            let end = min(period.addingTimeInterval(Double(level.seconds)), to)
            guard start < end else { continue }
            if let last = gaps.last, last.reason == .dropped, last.to >= start {
                gaps[gaps.count - 1].to = max(last.to, end)
            } else {
                gaps.append(Gap(from: start, to: end, reason: .dropped))
            }
        }
        self.gaps = gaps
        coveredSeconds = to.timeIntervalSince(required) - gaps.reduce(0) { $0 + $1.seconds }
        complete = gaps.isEmpty
    }

    /// A phrase for reports and the CLI: "evidence covers 23h12m of 24h", with what is missing
    /// ("48m dropped", "2h before retention") when something is.
    public var summary: String {
        var text = "evidence covers \(Self.duration(coveredSeconds)) of \(Self.duration(windowSeconds))"
        var missing: [String] = []
        let retained = gaps.filter { $0.reason == .retention }.reduce(0) { $0 + $1.seconds }
        let dropped = gaps.filter { $0.reason == .dropped }.reduce(0) { $0 + $1.seconds }
        if retained > 0 { missing.append("\(Self.duration(retained)) before retention") }
        if dropped > 0 { missing.append("\(Self.duration(dropped)) dropped") }
        if !missing.isEmpty { text += " (" + missing.joined(separator: ", ") + ")" }
        return text
    }

    /// A length as hours and minutes, seconds only under a minute; rounded down, so coverage is
    /// never overstated: 83 520 s is "23h12m", 86 400 s "24h", 45 s "45s".
    static func duration(_ seconds: TimeInterval) -> String {
        let whole = max(0, Int(seconds.rounded(.down)))
        guard whole >= 60 else { return "\(whole)s" }
        let hours = whole / 3600
        let minutes = whole % 3600 / 60
        switch (hours, minutes) {
        case (0, _): return "\(minutes)m"
        case (_, 0): return "\(hours)h"
        default: return "\(hours)h\(minutes)m"
        }
    }
}
