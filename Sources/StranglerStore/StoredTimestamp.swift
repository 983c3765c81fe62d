import Foundation

/// The store's timestamps: fixed-width ISO 8601 UTC with milliseconds
/// (`2026-11-22T15:54:33.120Z`), so text order is time order and range queries on
/// `recorded_at` use the indexes.
///
/// Formatting is done by hand: `Date.ISO8601FormatStyle` goes through `Calendar` and costs
/// about a microsecond, once per stored comparison. Parsing is rare (reports) and uses it.
enum StoredTimestamp {
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// Bytes of every timestamp.
    static let length = 24

    static func format(_ date: Date) -> String {
        var fits = true
        let text = String(unsafeUninitializedCapacity: length) { out in
            fits = write(date, to: UnsafeMutableRawBufferPointer(out))
            return fits ? length : 0
        }
        return fits ? text : style.format(date)
    }

    /// Writes the timestamp's ``length`` bytes to `out`; false (nothing written) for a year
    /// outside 0...9999, which has no fixed-width form.
    static func write(_ date: Date, to out: UnsafeMutableRawBufferPointer) -> Bool {
        // Whole seconds, then the fraction truncated to milliseconds, as Foundation does.
        let interval = date.timeIntervalSince1970
        let whole = interval.rounded(.down)
        let secondsSinceEpoch = Int(whole)
        var days = secondsSinceEpoch / 86_400
        var second = secondsSinceEpoch % 86_400
        if second < 0 {
            second += 86_400
            days -= 1
        }
        let milliseconds = second * 1000 + min(999, Int(((interval - whole) * 1000).rounded(.down)))
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year), out.count >= length else { return false }

        func put(_ value: Int, _ digits: Int, at offset: Int) {
            var value = value
            for position in stride(from: offset + digits - 1, through: offset, by: -1) {
                out[position] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(year, 4, at: 0)
        out[4] = UInt8(ascii: "-")
        put(month, 2, at: 5)
        out[7] = UInt8(ascii: "-")
        put(day, 2, at: 8)
        out[10] = UInt8(ascii: "T")
        put(milliseconds / 3_600_000, 2, at: 11)
        out[13] = UInt8(ascii: ":")
        put(milliseconds / 60_000 % 60, 2, at: 14)
        out[16] = UInt8(ascii: ":")
        put(milliseconds / 1000 % 60, 2, at: 17)
        out[19] = UInt8(ascii: ".")
        put(milliseconds % 1000, 3, at: 20)
        out[23] = UInt8(ascii: "Z")
        return true
    }

    static func parse(_ text: String) -> Date? {
        guard let parsed = try? style.parse(text) else { return nil }
        // A parsed time can land a hair below its millisecond (a double can't hold .120
        // exactly), and formatting truncates, so it would write back as the millisecond
        // before. Nudged up a unit in the last place at a time (the larger of the seconds since
        // 2001 that `Date` holds and the seconds since 1970 that formatting reads, so each step
        // moves both), a stored time formats back to its own text, and reading then writing it
        // again (as rollups do) changes nothing.
        var date = parsed
        var nudges = 0
        while nudges < 64, format(date) < text {
            let step = max(date.timeIntervalSinceReferenceDate.ulp, date.timeIntervalSince1970.ulp)
            date = Date(timeIntervalSinceReferenceDate: date.timeIntervalSinceReferenceDate + step)
            nudges += 1
        }
        return date
    }
}
