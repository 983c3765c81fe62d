import Foundation

/// Timeline widths that are prefixes of `2026-11-22T17:56:03.120Z`. A minute is the finest:
/// the evidence is kept per minute.
public enum TimelineWidth: Int, CaseIterable, Sendable {
    /// A minute, 10 minutes, an hour, a day: the raw value is the width in seconds.
    case minute = 60
    case tenMinutes = 600
    case hour = 3600
    case day = 86400

    init?(seconds: Int) {
        self.init(rawValue: seconds)
    }

    var prefixLength: Int {
        switch self {
        case .minute: 16
        case .tenMinutes: 15
        case .hour: 13
        case .day: 10
        }
    }

    /// The smallest width that draws `span` in at most `points` buckets.
    public static func fitting(_ span: TimeInterval, points: Int = 200) -> TimelineWidth {
        allCases.first { span / Double($0.rawValue) <= Double(points) } ?? .day
    }

    /// A bucket's prefix completed to a full timestamp.
    static func complete(_ prefix: String) -> String {
        let full = "0000-01-01T00:00:00.000Z"
        return prefix + full.dropFirst(prefix.count)
    }
}
