import Foundation
import Histogram

/// One side's latencies in a rollup: counts per HdrHistogram counter of 0.1 ms units, and the
/// exact sum, so minutes merge without loss and windows read the same percentiles and means as
/// the per-row store.
///
/// Precision: values are counted in 0.1 ms units truncated as the per-row store truncates them
/// (`CAST(ms * 10 AS INTEGER)`), on the counters of an HdrHistogram of four significant digits.
/// Every unit below 32 768 (3 276.7 ms) has its own counter, so percentiles up to 3.27 s are
/// exactly the per-row ones. Above that HdrHistogram shares a counter among 2^k neighbouring
/// units (0.2 ms from 3.28 s, 0.4 ms from 6.55 s...), a relative resolution finer than 1/16 384
/// (0.0062 %); a percentile that falls there reads the lowest value of its shared range, at most
/// that much below the per-row figure.
///
/// HdrHistogram decides which values share a counter: its layout bounds the number of counters
/// whatever the latencies (about 16 384 per doubling of the value), and the precision above the
/// exact range is its documented property rather than a choice made here. The counts themselves
/// are kept sparse, only the counters in use, rather than in HdrHistogram's dense array: four
/// significant digits need 32 768 counters (256 KiB of `UInt64`) per histogram, and a rollup
/// holds two per pair of upstreams for every route and minute, where a minute's latencies
/// typically touch a few hundred counters. Merging stays exact (counts add per counter).
public struct LatencyDistribution: Sendable {
    /// The histogram whose layout gives the counters. Only its value-to-counter arithmetic is
    /// used, never its counts: its array stays at the minimum (32 KiB of `UInt8`, once).
    private static let layout = Histogram<UInt8>(numberOfSignificantValueDigits: .four)
    /// Values below this many 0.1 ms units are counted exactly.
    public static let exactLimitTenths: UInt64 = 32_768

    /// Count per counter, keyed by the counter's lowest value in 0.1 ms units.
    private var counts: [UInt64: UInt64] = [:]
    /// The sum of the recorded latencies in nanoseconds: integers add exactly and in any order,
    /// where a sum of doubles would depend on the order minutes are merged in.
    public private(set) var totalNanoseconds: Int = 0
    /// How many latencies were recorded.
    public private(set) var count: Int = 0

    /// An empty distribution.
    public init() {}

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

    /// The lowest value of the counter `tenths` is counted under: `tenths` itself below
    /// ``exactLimitTenths``.
    public static func counter(ofTenths tenths: UInt64) -> UInt64 {
        tenths < exactLimitTenths ? tenths : layout.lowestEquivalentForValue(tenths)
    }

    /// Counts one latency in milliseconds; a non-finite one is not counted (SQLite stores NaN as
    /// NULL, which the per-row reading skips).
    public mutating func record(milliseconds: Double) {
        guard let tenths = Self.tenths(ofMilliseconds: milliseconds) else { return }
        let nanoseconds = (milliseconds * 1_000_000).rounded()
        let clamped = nanoseconds <= 0 ? 0 : (nanoseconds >= Double(Int.max / 4) ? Int.max / 4 : Int(nanoseconds))
        record(counter: Self.counter(ofTenths: tenths), count: 1)
        totalNanoseconds &+= clamped
    }

    /// Counts `count` latencies at a counter without touching the sum (for decoding).
    private mutating func record(counter: UInt64, count: UInt64) {
        guard count > 0 else { return }
        counts[counter, default: 0] &+= count
        self.count &+= Int(truncatingIfNeeded: count)
    }

    /// Adds another distribution's latencies: counts and sums add, so merging is exact,
    /// commutative and associative.
    public mutating func merge(_ other: LatencyDistribution) {
        totalNanoseconds &+= other.totalNanoseconds
        count &+= other.count
        counts.merge(other.counts, uniquingKeysWith: &+)
    }

    /// The counters in use, lowest first: each counter's lowest value in 0.1 ms units (the value
    /// itself below ``exactLimitTenths``) and its count.
    public var buckets: [(tenths: UInt64, count: UInt64)] {
        counts.sorted { $0.key < $1.key }.map { (tenths: $0.key, count: $0.value) }
    }

    /// The smallest counted value at or below which `fraction` of the latencies fall, in ms: the
    /// per-row store's rule (rank = ceil(total × fraction), at least 1). nil without latencies.
    public func percentile(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        let buckets = buckets
        let rank = max(1, UInt64((Double(count) * fraction).rounded(.up)))
        var seen: UInt64 = 0
        for bucket in buckets {
            seen += bucket.count
            if seen >= rank { return Double(bucket.tenths) / 10 }
        }
        return buckets.last.map { Double($0.tenths) / 10 }
    }
}

extension LatencyDistribution: Equatable {
    /// Equal when they hold the same counts and the same sum.
    public static func == (lhs: LatencyDistribution, rhs: LatencyDistribution) -> Bool {
        lhs.totalNanoseconds == rhs.totalNanoseconds && lhs.count == rhs.count && lhs.counts == rhs.counts
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
        /// A counter's value is not above the previous one or not a counter's lowest value, or its
        /// count is zero: not a blob this type wrote.
        case notCanonical
    }

    /// The format byte of ``serialized()``.
    static let formatVersion: UInt8 = 1

    /// The distribution as a compact blob: a format byte, the nanosecond sum, then each non-zero
    /// counter as (gap from the previous counter's value, count), all LEB128 varints.
    ///
    /// Binary rather than JSON pairs: latencies cluster, so most gaps and counts take one byte
    /// and a counter costs two or three bytes where `[1234,5]` text costs eight or more; the
    /// rollups are written every minute for every route and kept for the whole retention. Only the
    /// counters in use are written, so an empty side is two bytes and a quiet one a few. The
    /// encoding is canonical (values strictly increasing, counts non-zero), so equal
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
            guard !overflow, count > 0, afterPrevious <= UInt64.max / 4, Self.counter(ofTenths: afterPrevious) == afterPrevious else {
                throw DecodingError.notCanonical
            }
            record(counter: afterPrevious, count: count)
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
