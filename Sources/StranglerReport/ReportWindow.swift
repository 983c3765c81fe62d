import Foundation
import StranglerCore

/// The start of a report's window as people write it: a duration back from now (`30m`, `24h`,
/// `7d`) or an ISO 8601 time or date.
public enum ReportWindow {
    /// The start of the window `text` describes, or nil when it is neither a duration nor an
    /// ISO 8601 time or date.
    /// - Parameter now: the time a duration counts back from.
    public static func since(_ text: String, now: Date = Date()) -> Date? {
        if let seconds = DurationText.seconds(text) { return now.addingTimeInterval(-seconds) }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().year().month().day().parse(text) { return date }
        return nil
    }
}
