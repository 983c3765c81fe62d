import Foundation
import Histogram

/// One side's latencies in a rollup: an HdrHistogram of 0.1 ms units and the exact sum, so
/// minutes merge without loss and windows read the same percentiles and means as the per-row
/// store.
///
/// Precision: values are counted in 0.1 ms units truncated as the per-row store truncates them
/// (`CAST(ms * 10 AS INTEGER)`), in an HdrHistogram of four significant digits. Every unit below
/// 32 768 (3 276.7 ms) has its own counter, so percentiles up to 3.27 s are exactly the per-row
/// ones. Above that, HdrHistogram shares a counter among 2^k neighbouring units (0.2 ms from
/// 3.28 s, 0.4 ms from 6.55 s...), a relative resolution finer than 1/16 384 (0.0062 %); a
/// percentile that falls there reads the lowest value of its shared range, at most that much
/// below the per-row figure.
///
/// HdrHistogram rather than a hand-made bucket map: its merge is an element-wise sum of counts
/// (exact), its layout bounds the number of distinct counters whatever the latencies, and its
/// precision above the exact range is a documented property rather than a choice made here.
/// The cost is memory while a side is live: four significant digits need 32 768 counters
/// (256 KiB) per histogram, which is why a side allocates its histogram on its first latency and
/// storage keeps only the non-zero counters (``serialized()``).
public struct LatencyDistribution: Sendable {
    /// Significant digits of the histogram: four is the least that gives every 0.1 ms unit up to
    /// 1 s (10 000 units) its own counter.
    static let significantDigits = SignificantDigits.four
    /// Values below this many 0.1 ms units are counted exactly.
    public static let exactLimitTenths: UInt64 = 32_768

    /// nil until a latency is recorded, so sides and minutes without latencies cost nothing.
    private var histogram: Histogram<UInt64>?
    /// The sum of the recorded latencies in nanoseconds: integers add exactly and in any order,
    /// where a sum of doubles would depend on the order minutes are merged in.
    public private(set) var totalNanoseconds: Int = 0

    /// An empty distribution.
    public init() {}

    /// How many latencies were recorded.
    public var count: Int { Int(histogram?.totalCount ?? 0) }

    /// Whether no latency was recorded.
    public var isEmpty: Bool { count == 0 }

    /// The mean latency in milliseconds; nil when none was recorded.
    public var meanMilliseconds: Double? {
        count > 0 ? Double(totalNanoseconds) / 1_000_000 / Double(count) : nil
    }

    /// The 0.1 ms unit the per-row store files a latency under: `CAST(ms * 10 AS INTEGER)`, which
    /// truncates toward zero. nil for a value the store would not count (not finite); negative
    /// durations, which no clock gives, count as zero.
    public static func tenths(ofMilliseconds milliseconds: Double) -> UInt64? {
        guard milliseconds.isFinite else { return nil }
        let scaled = milliseconds * 10
        guard scaled > 0 else { return 0 }
        return scaled >= Double(UInt64.max / 4) ? UInt64.max / 4 : UInt64(scaled)
    }

    /// Counts one latency in milliseconds; a non-finite one is not counted (SQLite stores NaN as
    /// NULL, which the per-row reading skips).
    public mutating func record(milliseconds: Double) {
        guard let tenths = Self.tenths(ofMilliseconds: milliseconds) else { return }
        let nanoseconds = (milliseconds * 1_000_000).rounded()
        let clamped = nanoseconds <= 0 ? 0 : (nanoseconds >= Double(Int.max / 4) ? Int.max / 4 : Int(nanoseconds))
        record(tenths: tenths, count: 1)
        totalNanoseconds &+= clamped
    }

    /// Counts `count` latencies of `tenths` 0.1 ms units without touching the sum (for decoding).
    private mutating func record(tenths: UInt64, count: UInt64) {
        guard count > 0 else { return }
        if histogram == nil {
            histogram = Histogram<UInt64>(numberOfSignificantValueDigits: Self.significantDigits)
        }
        histogram!.record(tenths, count: count)
    }

    /// Adds another distribution's latencies: counts and sums add, so merging is exact,
    /// commutative and associative.
    public mutating func merge(_ other: LatencyDistribution) {
        totalNanoseconds &+= other.totalNanoseconds
        guard let theirs = other.histogram, theirs.totalCount > 0 else { return }
        if histogram == nil {
            histogram = theirs
        } else {
            histogram!.add(theirs)
        }
    }

    /// The non-zero counters, lowest first: each counter's lowest value in 0.1 ms units (the value
    /// itself below ``exactLimitTenths``) and its count.
    public var buckets: [(tenths: UInt64, count: UInt64)] {
        guard let histogram, histogram.totalCount > 0 else { return [] }
        return histogram.recordedValues().map { (histogram.lowestEquivalentForValue($0.value), UInt64($0.count)) }
    }

    /// The smallest counted value at or below which `fraction` of the latencies fall, in ms: the
    /// per-row store's rule (rank = ceil(total × fraction), at least 1). nil without latencies.
    public func percentile(_ fraction: Double) -> Double? {
        let buckets = buckets
        let total = buckets.reduce(0) { $0 + $1.count }
        guard total > 0 else { return nil }
        let rank = max(1, UInt64((Double(total) * fraction).rounded(.up)))
        var seen: UInt64 = 0
        for bucket in buckets {
            seen += bucket.count
            if seen >= rank { return Double(bucket.tenths) / 10 }
        }
        return buckets.last.map { Double($0.tenths) / 10 }
    }
}

extension LatencyDistribution: Equatable {
    /// Equal when they hold the same counts and the same sum; how the histogram grew does not
    /// matter.
    public static func == (lhs: LatencyDistribution, rhs: LatencyDistribution) -> Bool {
        lhs.totalNanoseconds == rhs.totalNanoseconds && lhs.buckets.elementsEqual(rhs.buckets) { $0 == $1 }
    }
}

// MARK: Storage form

extension LatencyDistribution {
    /// Why a stored distribution could not be read.
    public enum DecodingError: Error, Equatable {
        /// The blob is not in a format this version writes.
        case unknownVersion(UInt8)
        /// The blob ends inside a number, or a number overflows.
        case truncated
        /// A counter's value is not above the previous one, or its count is zero: not a blob this
        /// type wrote.
        case notCanonical
    }

    /// The format byte of ``serialized()``.
    static let formatVersion: UInt8 = 1

    /// The distribution as a compact blob: a format byte, the nanosecond sum, then each non-zero
    /// counter as (gap from the previous counter's value, count), all LEB128 varints.
    ///
    /// Binary rather than JSON pairs: latencies cluster, so most gaps and counts take one byte
    /// and a counter costs two or three bytes where `[1234,5]` text costs eight or more; the
    /// rollups are written every minute for every route and kept for the whole retention. Only
    /// non-zero counters are written, so an idle side is three bytes whatever the histogram's
    /// width. The encoding is canonical (values strictly increasing, counts non-zero), so equal
    /// distributions give equal blobs.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = [Self.formatVersion]
        Self.putVarint(UInt64(bitPattern: Int64(totalNanoseconds)), into: &out)
        var previous: UInt64 = 0
        for (index, bucket) in buckets.enumerated() {
            // The first value is written as is; later ones as the gap from the previous, minus one
            // (gaps are never zero), so consecutive 0.1 ms units cost nothing extra.
            Self.putVarint(index == 0 ? bucket.tenths : bucket.tenths - previous - 1, into: &out)
            Self.putVarint(bucket.count, into: &out)
            previous = bucket.tenths
        }
        return out
    }

    /// A distribution from ``serialized()``'s blob; it equals the one serialized.
    public init(serialized bytes: some Collection<UInt8>) throws {
        var iterator = bytes.makeIterator()
        guard let version = iterator.next() else { throw DecodingError.truncated }
        guard version == Self.formatVersion else { throw DecodingError.unknownVersion(version) }
        guard let sum = try Self.getVarint(&iterator) else { throw DecodingError.truncated }
        self.init()
        totalNanoseconds = Int(Int64(bitPattern: sum))
        var previous: UInt64?
        while let gap = try Self.getVarint(&iterator) {
            guard let count = try Self.getVarint(&iterator) else { throw DecodingError.truncated }
            let (afterPrevious, overflow) = (previous.map { $0 + 1 } ?? 0).addingReportingOverflow(gap)
            guard !overflow, count > 0, afterPrevious <= UInt64.max / 4 else { throw DecodingError.notCanonical }
            record(tenths: afterPrevious, count: count)
            previous = afterPrevious
        }
    }

    private static func putVarint(_ value: UInt64, into out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    /// The next varint, nil at the end of the blob; throws when the blob ends inside one.
    private static func getVarint(_ iterator: inout some IteratorProtocol<UInt8>) throws -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var first = true
        while true {
            guard let byte = iterator.next() else {
                if first { return nil }
                throw DecodingError.truncated
            }
            first = false
            guard shift < 64, shift < 63 || byte & 0x7E == 0 else { throw DecodingError.truncated }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }
}
