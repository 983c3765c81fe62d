import Foundation
import StranglerStore
import Testing

@Suite("Evidence coverage")
struct EvidenceCoverageTests {
    static let from = RollupFixtures.hour
    static let to = from.addingTimeInterval(86_400)

    static func minute(_ index: Int) -> Date { from.addingTimeInterval(Double(index) * 60) }

    @Test("nothing missing: complete, covering the whole window")
    func complete() {
        let coverage = EvidenceCoverage(
            from: Self.from,
            to: Self.to,
            firstCompared: Self.from.addingTimeInterval(-600),
            retainedFrom: nil,
            droppedMinutes: []
        )
        #expect(coverage.complete)
        #expect(coverage.gaps.isEmpty)
        #expect(coverage.coveredSeconds == 86_400)
        #expect(coverage.windowSeconds == 86_400)
        #expect(coverage.summary == "evidence covers 24h of 24h")
    }

    @Test("only time since the first comparison has to be covered")
    func firstComparison() {
        let coverage = EvidenceCoverage(
            from: Self.from,
            to: Self.to,
            firstCompared: Self.to.addingTimeInterval(-7200),
            retainedFrom: nil,
            droppedMinutes: []
        )
        #expect(coverage.complete)
        #expect(coverage.coveredSeconds == 7200)
        #expect(coverage.summary == "evidence covers 2h of 24h")
        let never = EvidenceCoverage(from: Self.from, to: Self.to, firstCompared: nil, retainedFrom: nil, droppedMinutes: [Self.minute(3)])
        #expect(never.complete && never.coveredSeconds == 0, "a route never compared has nothing to cover")
    }

    @Test("retention and dropped minutes are gaps; adjacent dropped minutes join, and drops inside the retention gap are not counted twice")
    func gaps() throws {
        let retained = Self.minute(30)
        let dropped = [Self.minute(10), Self.minute(100), Self.minute(101), Self.minute(101).addingTimeInterval(20), Self.minute(200)]
        let coverage = EvidenceCoverage(
            from: Self.from,
            to: Self.to,
            firstCompared: Self.from,
            retainedFrom: retained,
            droppedMinutes: dropped.reversed()
        )
        #expect(!coverage.complete)
        #expect(
            coverage.gaps == [
                .init(from: Self.from, to: retained, reason: .retention),
                .init(from: Self.minute(100), to: Self.minute(102), reason: .dropped),
                .init(from: Self.minute(200), to: Self.minute(201), reason: .dropped),
            ]
        )
        #expect(coverage.coveredSeconds == 86_400 - 33 * 60)
        #expect(coverage.summary == "evidence covers 23h27m of 24h (30m before retention, 3m dropped)")
        let decoded = try JSONDecoder().decode(EvidenceCoverage.self, from: JSONEncoder().encode(coverage))
        #expect(decoded == coverage)
    }

    @Test("the phrase for a day with 48 minutes dropped")
    func phrase() {
        let dropped = (0..<48).map { Self.minute(600 + $0) }
        let coverage = EvidenceCoverage(from: Self.from, to: Self.to, firstCompared: Self.from, retainedFrom: Self.from, droppedMinutes: dropped)
        #expect(coverage.gaps.count == 1)
        #expect(coverage.summary == "evidence covers 23h12m of 24h (48m dropped)")
    }
}
