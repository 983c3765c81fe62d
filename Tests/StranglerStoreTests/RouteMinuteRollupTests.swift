import Foundation
import PropertyBased
import StranglerCore
import StranglerStore
import Testing

@Suite("Minute rollups and their accumulator")
struct RouteMinuteRollupTests {
    static let start = RollupFixtures.hour

    static func rollup(_ seeds: [UInt64]) -> RouteMinuteRollup {
        var rollup = RouteMinuteRollup(routeID: RollupFixtures.route, minute: start, instanceID: "i-1")
        for seed in seeds { rollup.add(RollupFixtures.record(seed: seed)) }
        return rollup
    }

    @Test("a signature's text keeps any pointer apart: commas, quotes, backslashes, control characters")
    func signatureText() {
        let tricky = MismatchSignature(
            statusDiffers: true,
            headerDiffers: false,
            hasDifferences: true,
            bodyPointers: ["/a,b", "/q\"\\", "/\u{1}", "/é"]
        )
        #expect(MismatchSignature(canonicalText: tricky.canonicalText) == tricky)
        let split = MismatchSignature(statusDiffers: true, headerDiffers: false, hasDifferences: true, bodyPointers: ["/a", "b"])
        let joined = MismatchSignature(statusDiffers: true, headerDiffers: false, hasDifferences: true, bodyPointers: ["/a,b"])
        #expect(split.canonicalText != joined.canonicalText)
        #expect(joined.canonicalText == #"[1,"/a,b"]"#)
        let shuffled = MismatchSignature(statusDiffers: false, headerDiffers: true, hasDifferences: true, bodyPointers: ["/z", "/a", "/z"])
        #expect(shuffled.bodyPointers == ["/a", "/z"], "sorted, each once")
        #expect(shuffled.canonicalText == #"[2,"/a","/z"]"#)
        let none = MismatchSignature(statusDiffers: false, headerDiffers: false, hasDifferences: false, bodyPointers: [])
        #expect(none.canonicalText == "[4]")
        #expect(MismatchSignature(canonicalText: "[4]") == none)
        for bad in ["", "[]", "[8]", #"["/a"]"#, #"[0,"/b","/a"]"#, "[0,1]", "{}"] {
            #expect(MismatchSignature(canonicalText: bad) == nil, "\(bad)")
        }
    }

    @Test("a comparison counts by outcome; only a mismatch's differences and signature count")
    func adding() {
        var rollup = RouteMinuteRollup(routeID: "r", minute: Self.start.addingTimeInterval(59.9), instanceID: "i")
        #expect(rollup.key.minute == Self.start)
        func record(
            _ outcome: ComparisonRecord.Outcome,
            reason: String? = nil,
            statuses: (Int?, Int?) = (200, 200),
            _ differences: [Difference] = []
        )
            -> ComparisonRecord
        {
            ComparisonRecord(
                routeID: "r",
                requestID: "x",
                method: "GET",
                path: "/",
                recordedAt: Self.start.addingTimeInterval(Double(differences.count)),
                tableVersion: "v",
                primaryUpstream: "legacy",
                candidateUpstream: "svc",
                primaryStatus: statuses.0,
                candidateStatus: statuses.1,
                primaryMilliseconds: 2,
                candidateMilliseconds: 3,
                outcome: outcome,
                reason: reason,
                differences: differences
            )
        }
        let body = Difference(kind: .changed, pointer: "/a", primary: "1", candidate: "2")
        let header = Difference(kind: .header, pointer: "etag", primary: "1", candidate: "2")
        rollup.add(record(.match, [body]))
        rollup.add(record(.mismatch, [body, body, header]))
        rollup.add(record(.mismatch, statuses: (200, nil), [body]))
        rollup.add(record(.skipped))
        rollup.add(record(.skipped, reason: "candidate_timeout"))
        rollup.add(record(.uncomparable, reason: "decode_failed"))
        #expect(rollup.matches == 1)
        #expect(rollup.mismatches == 2)
        #expect(rollup.skipped == ["unknown": 1, "candidate_timeout": 1])
        #expect(rollup.uncomparable == ["decode_failed": 1])
        #expect((rollup.statusMismatches, rollup.headerMismatches, rollup.bodyMismatches) == (1, 1, 2))
        let atA = rollup.pointers[.init(pointer: "/a", kind: .changed)]
        #expect(atA?.count == 3, "difference rows, the match's left out")
        #expect(atA?.firstSeen == Self.start.addingTimeInterval(1))
        #expect(atA?.lastSeen == Self.start.addingTimeInterval(3))
        #expect(rollup.signatures.values.sorted() == [1, 1])
        let pair = rollup.latency[.init(primary: "legacy", candidate: "svc")]
        #expect(pair?.primary.count == 3, "latencies of matches and mismatches only")
        #expect(pair?.candidate.meanMilliseconds == 3)
    }

    @Test("merging rollups is exact, commutative and associative")
    func mergeLaws() async {
        let seeds = Gen.uint64(in: 0...UInt64.max).array(of: 0...30)
        await propertyCheck(input: seeds, seeds, seeds) { a, b, c in
            var ab = Self.rollup(a)
            ab.merge(Self.rollup(b))
            var ba = Self.rollup(b)
            ba.merge(Self.rollup(a))
            #expect(ab == ba)
            var abThenC = ab
            abThenC.merge(Self.rollup(c))
            var bc = Self.rollup(b)
            bc.merge(Self.rollup(c))
            var aThenBC = Self.rollup(a)
            aThenBC.merge(bc)
            #expect(abThenC == aThenBC)
            #expect(abThenC == Self.rollup(a + b + c), "merged rollups equal the rollup of every comparison")
            #expect(abThenC.samples + abThenC.skipped.values.reduce(0, +) + abThenC.uncomparable.values.reduce(0, +) == a.count + b.count + c.count)
        }
    }

    @Test("the accumulator files comparisons, traffic and drops by minute, and hands over finished minutes")
    func accumulator() {
        var accumulator = RollupAccumulator(instanceID: "i-7")
        let records = (0..<40).map { RollupFixtures.record(seed: UInt64($0), minutes: 4) }
        for record in records { accumulator.add(record) }
        accumulator.addTraffic(
            RouteTraffic(routeID: RollupFixtures.route, legacy: 5, service: 3, serviceErrors: 1),
            at: Self.start.addingTimeInterval(30)
        )
        accumulator.addTraffic(RouteTraffic(routeID: "quiet"), at: Self.start)
        accumulator.addDropped(routeID: "other", at: Self.start.addingTimeInterval(200), count: 4)
        #expect(accumulator.pending.allSatisfy { $0.key.instanceID == "i-7" })
        #expect(!accumulator.pending.contains { $0.key.routeID == "quiet" }, "zero traffic opens no minute")

        let firstTwo = accumulator.take(before: Self.start.addingTimeInterval(150))
        #expect(firstTwo.map(\.key.minute) == [Self.start, Self.start.addingTimeInterval(60)])
        #expect(firstTwo[0].legacyServed == 5 && firstTwo[0].serviceServed == 3 && firstTwo[0].serviceErrors == 1)
        let rest = accumulator.takeAll()
        #expect(accumulator.isEmpty)
        #expect(rest.allSatisfy { $0.key.minute >= Self.start.addingTimeInterval(120) })
        #expect(rest.first { $0.key.routeID == "other" }?.dropped == 4)

        var total = RouteMinuteRollup(routeID: RollupFixtures.route, minute: Self.start, instanceID: "i-7")
        for rollup in firstTwo + rest where rollup.key.routeID == RollupFixtures.route { total.mergeCounts(rollup) }
        var expected = RouteMinuteRollup(routeID: RollupFixtures.route, minute: Self.start, instanceID: "i-7")
        for record in records { expected.add(record) }
        expected.addTraffic(legacy: 5, service: 3, serviceErrors: 1)
        #expect(total == expected, "every comparison counted once, in some minute")
        for rollup in firstTwo + rest where rollup.key.routeID == RollupFixtures.route {
            let inMinute = records.filter { RouteMinuteRollup.minute(of: $0.recordedAt) == rollup.key.minute }
            #expect(rollup.samples + rollup.skipped.values.reduce(0, +) + rollup.uncomparable.values.reduce(0, +) == inMinute.count)
        }
    }

    @Test("shedding turns the oldest minutes with comparisons into drops, keeps their traffic, and leaves the newest whole")
    func shedding() {
        var accumulator = RollupAccumulator(instanceID: "i-7")
        let records = (0..<60).map { RollupFixtures.record(seed: UInt64($0), minutes: 3) }
        for record in records { accumulator.add(record) }
        accumulator.addTraffic(RouteTraffic(routeID: RollupFixtures.route, legacy: 5), at: Self.start)
        accumulator.addTraffic(RouteTraffic(routeID: "traffic-only", legacy: 9), at: Self.start)
        let before = accumulator.pending
        #expect(accumulator.shed(keeping: 3) == 0, "three minutes with comparisons fit")
        #expect(accumulator.pending == before)

        let shed = accumulator.shed(keeping: 1)
        let after = accumulator.pending.filter { $0.key.routeID == RollupFixtures.route }
        let firstTwo = records.filter { $0.recordedAt < Self.start.addingTimeInterval(120) }.count
        #expect(shed == firstTwo, "every comparison of the two oldest minutes")
        #expect(after.map(\.holdsComparisons) == [false, false, true])
        #expect(
            after.map(\.dropped) == [
                before[0].samples + before[0].skipped.values.reduce(0, +) + before[0].uncomparable.values.reduce(0, +), shed - after[0].dropped, 0,
            ]
        )
        #expect(after[0].legacyServed == 5, "traffic counts are kept")
        #expect(after[2] == before.filter { $0.key.routeID == RollupFixtures.route }[2])
        #expect(accumulator.pending.first { $0.key.routeID == "traffic-only" }?.legacyServed == 9)
    }
}
