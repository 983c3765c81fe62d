import Foundation
import StranglerCore
import Testing

@testable import StranglerStore

/// Rollups written to SQLite and read back: every table of a rollup round-trips, and writing the
/// same open minute twice (as the recorder does every few seconds) adds up exactly.
@Suite("SQLite rollup storage")
struct SQLiteRollupStorageTests {
    static let base = Date(timeIntervalSince1970: 1_796_000_000)

    /// A varied comparison: outcome, statuses, differences and latencies all depend on `index`.
    static func record(_ index: Int, route: String = "orders-read") -> ComparisonRecord {
        let outcomes: [ComparisonRecord.Outcome] = [.match, .match, .mismatch, .mismatch, .uncomparable, .skipped]
        let outcome = outcomes[index % outcomes.count]
        var differences: [Difference] = []
        if outcome == .mismatch {
            differences.append(Difference(kind: .changed, pointer: "/total", primary: "1", candidate: "2"))
            if index % 4 == 2 { differences.append(Difference(kind: .header, pointer: "x-cache", primary: "a", candidate: "b")) }
            if index % 8 == 3 { differences.append(Difference(kind: .missing, pointer: "/items/\"0\",1", primary: "1", candidate: nil)) }
        }
        return ComparisonRecord(
            routeID: route,
            requestID: "r\(index)",
            method: "GET",
            path: "/orders/\(index)",
            recordedAt: base.addingTimeInterval(Double(index) * 7.5),
            tableVersion: "v1",
            primaryUpstream: "legacy",
            candidateUpstream: index % 10 == 0 ? "orders-v2" : "orders",
            primaryStatus: 200,
            candidateStatus: outcome == .mismatch && index % 5 == 0 ? 500 : 200,
            primaryMilliseconds: Double(index % 37) * 1.3 + 0.2,
            candidateMilliseconds: index % 9 == 0 ? nil : Double(index % 53) * 0.7 + 0.1,
            outcome: outcome,
            reason: outcome == .skipped ? "unsafe_method" : (outcome == .uncomparable ? "candidate_timeout" : nil),
            differences: differences
        )
    }

    @Test("rollups round-trip through the five tables, and a minute written in two parts adds up to the whole")
    func roundTripAndAdd() async throws {
        let store = try DiffStoreTests.store()
        var whole = RollupAccumulator(instanceID: "proxy-a")
        var first = RollupAccumulator(instanceID: "proxy-a")
        var second = RollupAccumulator(instanceID: "proxy-a")
        for index in 0..<200 {
            let record = Self.record(index)
            whole.add(record)
            if index % 3 == 0 { first.add(record) } else { second.add(record) }
        }
        whole.addTraffic(RouteTraffic(routeID: "orders-read", legacy: 5, service: 7, serviceErrors: 1), at: Self.base)
        second.addTraffic(RouteTraffic(routeID: "orders-read", legacy: 5, service: 7, serviceErrors: 1), at: Self.base)
        whole.addDropped(routeID: "orders-read", at: Self.base.addingTimeInterval(120), count: 3)
        first.addDropped(routeID: "orders-read", at: Self.base.addingTimeInterval(120), count: 3)

        try await store.addRollups(first.takeAll())
        try await store.addRollups(second.takeAll())
        let stored = try await store.rollups(routeID: "orders-read", from: Self.base.addingTimeInterval(-3600))
        let expected = whole.takeAll()
        #expect(stored.count == expected.count)
        #expect(stored == expected, "what was written in two parts reads back as the whole")
        #expect(stored.contains { !$0.latency.isEmpty && !$0.pointers.isEmpty && !$0.signatures.isEmpty && !$0.skipped.isEmpty })
        #expect(try await store.firstCompared(routeID: "orders-read") == RouteMinuteRollup.minute(of: Self.base))
    }

    @Test("a window selects whole minutes: from the start's minute up to the end")
    func window() async throws {
        let store = try DiffStoreTests.store()
        var accumulator = RollupAccumulator(instanceID: "proxy-a")
        for index in 0..<80 { accumulator.add(Self.record(index)) }
        try await store.addRollups(accumulator.takeAll())
        let all = try await store.rollups(routeID: "orders-read", from: Self.base)
        let minutes = all.map(\.key.minute)
        #expect(minutes == minutes.sorted())
        let middle = minutes[minutes.count / 2]
        let later = try await store.rollups(routeID: "orders-read", from: middle.addingTimeInterval(30))
        #expect(later.first?.key.minute == middle, "a start inside a minute includes that minute")
        let bounded = try await store.rollups(routeID: "orders-read", from: Self.base, to: middle)
        #expect(bounded.count == minutes.firstIndex(of: middle))
        #expect(try await store.rollups(routeID: "another-route", from: Self.base).isEmpty)
    }

    @Test("instances keep their own rows of a minute, and a reading returns each")
    func instances() async throws {
        let store = try DiffStoreTests.store()
        var one = RollupAccumulator(instanceID: "proxy-a")
        var two = RollupAccumulator(instanceID: "proxy-b")
        one.add(Self.record(0))
        two.add(Self.record(0))
        two.add(Self.record(2))
        try await store.addRollups(one.takeAll() + two.takeAll())
        let stored = try await store.rollups(routeID: "orders-read", from: Self.base)
        #expect(stored.map(\.key.instanceID) == ["proxy-a", "proxy-b"])
        #expect(stored.map(\.samples) == [1, 2])
    }
}
