import Foundation
import PropertyBased
import StranglerStore
import Testing

@Suite("Latency distributions")
struct LatencyDistributionTests {
    static func distribution(_ milliseconds: [Double]) -> LatencyDistribution {
        var distribution = LatencyDistribution()
        for value in milliseconds { distribution.record(milliseconds: value) }
        return distribution
    }

    /// Latencies from generated integers: hundredths of a millisecond up to 3.2 s, where every
    /// 0.1 ms unit has its own counter.
    static let exactRange = Gen.int(in: 0...320_000).map { Double($0) / 100 }

    @Test("an empty distribution has no percentiles, no mean and a two-byte blob")
    func empty() throws {
        let empty = LatencyDistribution()
        #expect(empty.percentile(0.5) == nil)
        #expect(empty.meanMilliseconds == nil)
        #expect(empty.serialized() == [1, 0])
        #expect(try LatencyDistribution(serialized: empty.serialized()) == empty)
    }

    @Test("latencies count in 0.1 ms units truncated as the store's CAST truncates; the mean is exact")
    func truncation() {
        let values = [12.3, 0.05, 7.99, 1000.0, 0.0]
        let distribution = Self.distribution(values)
        #expect(distribution.count == 5)
        #expect(distribution.buckets.map(\.tenths) == [0, 79, 123, 10_000], "0.05 and 0.0 share the zero unit")
        #expect(distribution.buckets.map(\.count) == [2, 1, 1, 1])
        #expect(LatencyDistribution.tenths(ofMilliseconds: 12.3) == UInt64(12.3 * 10))
        #expect(distribution.percentile(0) == 0)
        #expect(distribution.percentile(1) == 1000)
        #expect(Self.distribution([1.5, 2.5, 3.25]).meanMilliseconds == 7.25 / 3)
        #expect(LatencyDistribution.tenths(ofMilliseconds: .nan) == nil)
        #expect(LatencyDistribution.tenths(ofMilliseconds: -3) == 0)
        #expect(Self.distribution([.nan, .infinity]).count == 0, "not-finite latencies are not counted, as SQLite stores NaN as NULL")
    }

    @Test("above 3.27 s a percentile reads the lowest value of its shared counter: below the true one by under 1/16384")
    func aboveExactRange() {
        for value in [3276.7, 3276.8, 4000.05, 12_345.6, 600_000.0] {
            let reported = Self.distribution([value]).percentile(0.5)!
            let truth = Double(Int(value * 10)) / 10
            #expect(reported <= truth)
            #expect((truth - reported) / truth < 1.0 / 16_384, "\(value) read as \(reported)")
        }
        #expect(Self.distribution([3276.7]).percentile(0.5) == 3276.7, "the last exact unit")
    }

    @Test("counters: each unit below the exact limit is its own; above, a counter's range is under 1/16384 of its value")
    func counters() async {
        #expect(LatencyDistribution.counter(ofTenths: 32_767) == 32_767)
        #expect(LatencyDistribution.counter(ofTenths: 32_769) == 32_768)
        await propertyCheck(input: Gen.uint64(in: 0...(UInt64.max / 4))) { tenths in
            let counter = LatencyDistribution.counter(ofTenths: tenths)
            #expect(counter <= tenths)
            #expect(LatencyDistribution.counter(ofTenths: counter) == counter)
            if tenths < LatencyDistribution.exactLimitTenths {
                #expect(counter == tenths)
            } else {
                #expect(Double(tenths - counter) / Double(tenths) < 1.0 / 16_384)
            }
        }
    }

    @Test("malformed blobs are refused")
    func malformed() throws {
        #expect(throws: LatencyDistribution.DecodingError.truncated) { try LatencyDistribution(serialized: [UInt8]()) }
        #expect(throws: LatencyDistribution.DecodingError.unknownVersion(9)) { try LatencyDistribution(serialized: [9, 0]) }
        #expect(throws: LatencyDistribution.DecodingError.truncated) { try LatencyDistribution(serialized: [1, 0, 5]) }
        #expect(throws: LatencyDistribution.DecodingError.truncated) { try LatencyDistribution(serialized: [1, 0x80]) }
        #expect(throws: LatencyDistribution.DecodingError.notCanonical) { try LatencyDistribution(serialized: [1, 0, 5, 0]) }
        #expect(throws: LatencyDistribution.DecodingError.notCanonical, "32 769 shares the counter of 32 768") {
            try LatencyDistribution(serialized: [1, 0, 0x81, 0x80, 0x02, 1])
        }
        #expect(try LatencyDistribution(serialized: [1, 0, 0x80, 0x80, 0x02, 1]).buckets.map(\.tenths) == [32_768])
        let decoded = try LatencyDistribution(serialized: [1, 0, 5, 2, 0, 1])
        #expect(decoded.buckets.map(\.tenths) == [5, 6])
        #expect(decoded.buckets.map(\.count) == [2, 1])
    }

    @Test("a blob round-trips exactly, and equal distributions give equal blobs")
    func roundTrip() async {
        let anyLatency = Gen.int(in: 0...3_000_000).map { Double($0) / 100 }
        await propertyCheck(input: anyLatency.array(of: 0...200)) { values in
            let distribution = Self.distribution(values)
            let blob = distribution.serialized()
            let decoded = try? LatencyDistribution(serialized: blob)
            #expect(decoded == distribution)
            #expect(decoded?.serialized() == blob)
            #expect(Self.distribution(values.reversed()).serialized() == blob, "the blob does not depend on recording order")
        }
    }

    @Test("merging is exact, commutative and associative")
    func mergeLaws() async {
        let values = Self.exactRange.array(of: 0...60)
        await propertyCheck(input: values, values, values) { a, b, c in
            var ab = Self.distribution(a)
            ab.merge(Self.distribution(b))
            var ba = Self.distribution(b)
            ba.merge(Self.distribution(a))
            #expect(ab == ba)
            var abc = ab
            abc.merge(Self.distribution(c))
            var bc = Self.distribution(b)
            bc.merge(Self.distribution(c))
            var aBC = Self.distribution(a)
            aBC.merge(bc)
            #expect(abc == aBC)
            #expect(abc == Self.distribution(a + b + c), "merged minutes equal one distribution of every sample")
        }
    }

    @Test("percentiles over merged minutes equal the per-row percentiles over all samples")
    func percentilesOverMergedMinutes() async {
        await propertyCheck(input: Self.exactRange.array(of: 0...40).array(of: 1...12)) { minutes in
            var merged = LatencyDistribution()
            for minute in minutes { merged.merge(Self.distribution(minute)) }
            let all = minutes.flatMap { $0 }
            for fraction in [0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1] {
                #expect(merged.percentile(fraction) == RollupFixtures.referencePercentile(all, fraction), "p\(fraction * 100)")
            }
        }
    }
}
