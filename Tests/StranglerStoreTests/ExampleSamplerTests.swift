import Foundation
import StranglerCore
import StranglerStore
import Testing

@Suite("Example sampling")
struct ExampleSamplerTests {
    typealias Sampler = ExampleSampler<RollupFixtures.SplitMix>
    static let hour = RollupFixtures.hour

    static func sampler(k: Int = 5, statusCap: Int = 100, reservoir: Int = 20, seed: UInt64 = 1) -> Sampler {
        Sampler(
            configuration: .init(firstPerPointer: k, statusCap: statusCap, reservoirSize: reservoir),
            random: RollupFixtures.SplitMix(seed: seed)
        )
    }

    static func record(
        _ outcome: ComparisonRecord.Outcome,
        route: String = "r",
        at offset: TimeInterval = 0,
        statuses: (Int?, Int?) = (200, 200),
        pointers: [String] = []
    ) -> ComparisonRecord {
        ComparisonRecord(
            routeID: route,
            requestID: UUID().uuidString,
            method: "GET",
            path: "/",
            recordedAt: hour.addingTimeInterval(offset),
            tableVersion: "v",
            primaryUpstream: "legacy",
            candidateUpstream: "svc",
            primaryStatus: statuses.0,
            candidateStatus: statuses.1,
            outcome: outcome,
            differences: pointers.map { Difference(kind: .changed, pointer: $0, primary: "1", candidate: "2") }
        )
    }

    @Test("a match never keeps a row")
    func matches() {
        var sampler = Self.sampler()
        for _ in 0..<50 { #expect(sampler.decide(Self.record(.match)) == .drop) }
    }

    @Test("the first K comparisons of each pointer and kind are kept each hour; a comparison is kept if any of its pointers is")
    func firstPerPointer() {
        var sampler = Self.sampler(k: 3, reservoir: 0)
        let atA = (0..<5).map { _ in sampler.decide(Self.record(.mismatch, pointers: ["/a", "/a"])) }
        #expect(atA == [.keep(.firstAtPointer), .keep(.firstAtPointer), .keep(.firstAtPointer), .drop, .drop], "two differences at /a count once")
        #expect(sampler.decide(Self.record(.mismatch, pointers: ["/a", "/b"])) == .keep(.firstAtPointer), "/b is new")
        #expect(sampler.decide(Self.record(.mismatch, at: 3600, pointers: ["/a"])) == .keep(.firstAtPointer), "a new hour starts over")
        var changedKind = Self.record(.mismatch, pointers: [])
        changedKind.differences = [Difference(kind: .missing, pointer: "/a", primary: "1", candidate: nil)]
        #expect(sampler.decide(changedKind) == .keep(.firstAtPointer), "another kind at the same pointer is its own count")
        #expect(sampler.decide(Self.record(.mismatch, route: "other", pointers: ["/a"])) == .keep(.firstAtPointer), "per route")
    }

    @Test("status mismatches are kept up to the hour's cap")
    func statusCap() {
        var sampler = Self.sampler(k: 1, statusCap: 3, reservoir: 0)
        let decisions = (0..<6).map { _ in sampler.decide(Self.record(.mismatch, statuses: (200, 500), pointers: ["/a"])) }
        #expect(decisions == [.keep(.firstAtPointer), .keep(.statusMismatch), .keep(.statusMismatch), .drop, .drop, .drop])
        #expect(sampler.decide(Self.record(.mismatch, at: 3600, statuses: (200, nil))) == .keep(.statusMismatch), "next hour")
    }

    @Test("the rest fill the reservoir's slots in order, then replace a random slot or drop")
    func reservoirFills() {
        var sampler = Self.sampler(k: 0, statusCap: 0, reservoir: 4)
        let first = (0..<4).map { _ in sampler.decide(Self.record(.skipped)) }
        #expect(first == (0..<4).map { .keepInReservoir(slot: $0) })
        var later: [Sampler.Decision] = []
        for _ in 0..<200 { later.append(sampler.decide(Self.record(.uncomparable))) }
        let slots = later.compactMap { decision -> Int? in
            if case .keepInReservoir(let slot) = decision { return slot }
            return nil
        }
        #expect(slots.allSatisfy { (0..<4).contains($0) })
        #expect(later.contains(.drop))
        // The n-th offer replaces with probability 4/n: over offers 5...204 about 4 × ln(204/4) ≈ 16.
        #expect((5...40).contains(slots.count), "\(slots.count) replacements")
    }

    @Test("the reservoir is a uniform sample: every offer ends up kept about equally often")
    func reservoirUniform() {
        let offers = 60
        let size = 20
        var kept = [Int](repeating: 0, count: offers)
        let trials = 1500
        for trial in 0..<trials {
            var sampler = Self.sampler(k: 0, statusCap: 0, reservoir: size, seed: UInt64(trial) &* 7919 &+ 13)
            var slots = [Int](repeating: -1, count: size)
            for offer in 0..<offers {
                if case .keepInReservoir(let slot) = sampler.decide(Self.record(.skipped)) { slots[slot] = offer }
            }
            #expect(!slots.contains(-1))
            for offer in slots { kept[offer] += 1 }
        }
        // Each offer is kept with probability 1/3: 500 of 1500, standard deviation about 18.
        for (offer, count) in kept.enumerated() {
            #expect((410...590).contains(count), "offer \(offer) kept \(count) times")
        }
    }

    @Test("old hours are released: a route holds at most two, late comparisons of a released hour keep nothing")
    func memory() {
        var sampler = Self.sampler(k: 1, reservoir: 0)
        for hour in 0..<10 { _ = sampler.decide(Self.record(.mismatch, at: Double(hour) * 3600, pointers: ["/a"])) }
        #expect(sampler.heldHours == 2)
        #expect(sampler.decide(Self.record(.mismatch, at: 8 * 3600 + 10, pointers: ["/b"])) == .keep(.firstAtPointer), "the hour before is held")
        #expect(sampler.decide(Self.record(.mismatch, at: 2 * 3600, pointers: ["/c"])) == .drop, "hour 2 was released")
        _ = sampler.decide(Self.record(.mismatch, route: "other", at: 9 * 3600, pointers: ["/a"]))
        #expect(sampler.heldHours == 3)
        sampler.release(before: Self.hour.addingTimeInterval(10 * 3600))
        #expect(sampler.heldHours == 0)
    }
}
