import Foundation
import StranglerCore
import StranglerStore

/// Generated traffic for the rollup tests: records built from a seed, so property tests can
/// shrink seeds and the parity test is the same on every run.
enum RollupFixtures {
    /// An hour boundary (2026-11-18T19:00:00Z), so minutes, ten minutes and hours line up.
    static let hour = Date(timeIntervalSince1970: 1_795_460_400)
    static let route = "orders"
    static let service = "orders-svc"

    /// Body pointers: two learned as noise, two under the accepted pattern `/items/*/name`, one
    /// both noise and accepted, real ones, and ones with characters a separator would trip on.
    static let bodyPointers = [
        "/servedAt", "/traceId", "/items/0/name", "/items/1/name", "/total", "/discount", "/lines/2/qty", "/a,b", "/a", "/b",
        "/quote\"d\\", "",
    ]
    static let noisePointers = ["/servedAt", "/traceId", "/total"]
    static let acceptedPatterns = ["/items/*/name", "/total"]
    static let bodyKinds: [DifferenceKind] = [.changed, .missing, .added, .type, .text, .bytes]

    /// SplitMix64: small, seedable, and the same on every platform.
    struct SplitMix: RandomNumberGenerator, Sendable {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// How latencies are drawn.
    enum Latencies {
        /// Multiples of 1/8 ms up to 3 s: every sum of them is exact in a double, so means from
        /// rows and from rollups must be equal to the bit.
        case dyadic
        /// Tenths and hundredths of a millisecond, the way clocks give them: exercises the 0.1 ms
        /// truncation; sums may differ in the last bits.
        case decimal
    }

    /// One comparison from a seed, recorded within `minutes` minutes after `start`.
    static func record(
        seed: UInt64,
        start: Date = hour,
        minutes: Int = 1,
        latencies: Latencies = .dyadic,
        routeID: String = route
    ) -> ComparisonRecord {
        var random = SplitMix(seed: seed)
        let at = start.addingTimeInterval(Double(Int.random(in: 0..<(minutes * 60_000), using: &random)) / 1000)
        let roll = Int.random(in: 0..<100, using: &random)
        let outcome: ComparisonRecord.Outcome = roll < 35 ? .match : roll < 80 ? .mismatch : roll < 90 ? .skipped : .uncomparable
        let pairs = [("legacy", service), ("legacy", service), ("legacy", service), (service, "legacy"), ("legacy", "orders-v2")]
        let pair = pairs[Int.random(in: 0..<pairs.count, using: &random)]
        func latency() -> Double? {
            guard Int.random(in: 0..<10, using: &random) > 0 else { return nil }
            switch latencies {
            case .dyadic: return Double(Int.random(in: 0..<24_000, using: &random)) / 8
            case .decimal: return Double(Int.random(in: 0..<300_000, using: &random)) / 100
            }
        }
        var record = ComparisonRecord(
            routeID: routeID,
            requestID: "req-\(seed)",
            method: "GET",
            path: "/orders/\(seed % 97)",
            recordedAt: at,
            tableVersion: "v1",
            primaryUpstream: pair.0,
            candidateUpstream: pair.1,
            primaryStatus: 200,
            candidateStatus: 200,
            primaryMilliseconds: latency(),
            candidateMilliseconds: latency(),
            outcome: outcome
        )
        switch outcome {
        case .match:
            break
        case .skipped:
            record.reason = [nil, "candidate_timeout", "body_too_large"][Int.random(in: 0..<3, using: &random)]
        case .uncomparable:
            record.reason = [nil, "decode_failed"][Int.random(in: 0..<2, using: &random)]
        case .mismatch:
            let statuses: [(Int?, Int?)] = [(200, 200), (200, 200), (200, 200), (200, 500), (200, nil), (nil, nil), (nil, 404)]
            (record.primaryStatus, record.candidateStatus) = statuses[Int.random(in: 0..<statuses.count, using: &random)]
            // Zero to four differences; none at all is rare but stored mismatches can have none.
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                let pick = Int.random(in: 0..<20, using: &random)
                if pick == 0 {
                    record.differences.append(Difference(kind: .status, pointer: "", primary: "200", candidate: "500"))
                } else if pick < 3 {
                    let name = ["content-type", "cache-control"][pick - 1]
                    record.differences.append(Difference(kind: .header, pointer: name, primary: "a", candidate: "b"))
                } else {
                    let pointer = bodyPointers[Int.random(in: 0..<bodyPointers.count, using: &random)]
                    let kind = bodyKinds[Int.random(in: 0..<bodyKinds.count, using: &random)]
                    record.differences.append(Difference(kind: kind, pointer: pointer, primary: "1", candidate: "2"))
                }
            }
        }
        return record
    }

    /// Rollups of `records` as one instance's accumulator would make them.
    static func rollups(_ records: some Sequence<ComparisonRecord>, instanceID: String = "i-1") -> [RouteMinuteRollup] {
        var accumulator = RollupAccumulator(instanceID: instanceID)
        for record in records { accumulator.add(record) }
        return accumulator.takeAll()
    }

    /// The per-row percentile rule over raw latencies: 0.1 ms units truncated, rank =
    /// ceil(total × fraction) (at least 1), the unit's value.
    static func referencePercentile(_ milliseconds: [Double], _ fraction: Double) -> Double? {
        let tenths = milliseconds.map { Int($0 * 10) }.sorted()
        guard !tenths.isEmpty else { return nil }
        let rank = max(1, Int((Double(tenths.count) * fraction).rounded(.up)))
        return Double(tenths[min(rank, tenths.count) - 1]) / 10
    }
}
