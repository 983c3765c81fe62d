import Foundation
import StranglerCore
import StranglerStore
import Testing

/// The rollups against the store they replace: the same traffic goes into a real SQLite store
/// (one row per comparison) and into minute rollups from two instances, and every figure of the
/// per-row breakdown must come out of the rollups unchanged.
@Suite("Rollups read the same evidence as the per-row store")
struct RollupParityTests {
    static let minutes = 95

    /// Traffic over 95 minutes from half an hour before `hour`, so windows cross ten-minute and
    /// hour boundaries; a few noise probes teach noise, as the recorder does.
    static func traffic(latencies: RollupFixtures.Latencies) -> [ComparisonRecord] {
        let start = RollupFixtures.hour.addingTimeInterval(-1800)
        var records = (0..<600).map { RollupFixtures.record(seed: UInt64($0) &* 2_654_435_761, start: start, minutes: minutes, latencies: latencies) }
        for index in stride(from: 0, to: records.count, by: 40) {
            records[index].noisePointers = Array(RollupFixtures.noisePointers.prefix(index % 3 + 1))
        }
        return records
    }

    static func stores(_ records: [ComparisonRecord]) async throws -> (SQLiteDiffStore, [RouteMinuteRollup]) {
        let store = try DiffStoreTests.store()
        for batch in stride(from: 0, to: records.count, by: 100) {
            try await store.insert(records[batch..<min(batch + 100, records.count)])
        }
        for pattern in RollupFixtures.acceptedPatterns {
            _ = try await store.accept(routeID: RollupFixtures.route, pointer: pattern, reason: "reviewed", owner: "rita", until: nil)
        }
        // Two instances share the traffic: the reading folds both.
        let rollups =
            RollupFixtures.rollups(records.enumerated().filter { $0.offset % 3 == 0 }.map(\.element), instanceID: "a")
            + RollupFixtures.rollups(records.enumerated().filter { $0.offset % 3 != 0 }.map(\.element), instanceID: "b")
        // The same rollups through the store's tables, for the store's own reading.
        try await store.addRollups(rollups)
        return (store, rollups)
    }

    static func compare(_ rows: RouteBreakdown, _ rollups: RouteBreakdown, meansExact: Bool, _ label: String) {
        #expect(rows.pointers == rollups.pointers, "pointers, \(label)")
        #expect(rows.skipped == rollups.skipped, "skipped, \(label)")
        #expect(rows.uncomparable == rollups.uncomparable, "uncomparable, \(label)")
        #expect(rows.evidence == rollups.evidence, "evidence, \(label)")
        #expect(rows.buckets.count == rollups.buckets.count, "bucket count, \(label)")
        for (row, rolled) in zip(rows.buckets, rollups.buckets) {
            let label = "\(label), bucket \(row.start)"
            #expect(row.start == rolled.start, "start, \(label)")
            let counts: [Int] = [row.samples, row.mismatches, row.noiseOnly, row.acceptedOnly, row.status, row.header, row.body]
            let rolledCounts: [Int] = [
                rolled.samples, rolled.mismatches, rolled.noiseOnly, rolled.acceptedOnly, rolled.status, rolled.header, rolled.body,
            ]
            #expect(counts == rolledCounts, "counts, \(label)")
            for (mean, rolledMean) in [(row.legacyMeanMs, rolled.legacyMeanMs), (row.serviceMeanMs, rolled.serviceMeanMs)] {
                if meansExact {
                    #expect(mean == rolledMean, "mean, \(label)")
                } else {
                    #expect((mean == nil) == (rolledMean == nil), "mean, \(label)")
                    if let mean, let rolledMean { #expect(abs(mean - rolledMean) <= 1e-9 * max(1, abs(mean)), "mean, \(label)") }
                }
            }
        }
    }

    static func check(latencies: RollupFixtures.Latencies) async throws {
        let records = traffic(latencies: latencies)
        let (store, rollups) = try await stores(records)
        let noise = try await store.noise(route: RollupFixtures.route)
        let probes = try await store.noiseProbes(route: RollupFixtures.route)
        let accepted = try await store.acceptedDifferences(routeID: RollupFixtures.route)
        #expect(!noise.isEmpty && accepted.count == 2, "the excuses are in play")
        let windows = [RollupFixtures.hour.addingTimeInterval(-1800), RollupFixtures.hour.addingTimeInterval(-600), RollupFixtures.hour]
        var compared = 0
        for since in windows {
            for width in [nil, 60, 300, 600, 3600, 86_400] as [Int?] {
                for service in [RollupFixtures.service, "legacy", nil] as [String?] {
                    let rows = try await store.rowBreakdown(
                        routeID: RollupFixtures.route,
                        serviceUpstream: service,
                        since: since,
                        bucketSeconds: width
                    )
                    // The window's minutes, as the store's reader picks them.
                    let fromRollups = RouteBreakdown(
                        rollups: rollups.filter { $0.key.minute.addingTimeInterval(60) > since },
                        noise: noise,
                        noiseProbes: probes,
                        accepted: accepted,
                        serviceUpstream: service,
                        since: since,
                        bucketSeconds: width
                    )
                    // The store's reading: rollups written to and read back from its tables.
                    let stored = try await store.breakdown(
                        routeID: RollupFixtures.route,
                        serviceUpstream: service,
                        since: since,
                        bucketSeconds: width
                    )
                    compare(
                        rows,
                        stored,
                        meansExact: latencies == .dyadic,
                        "stored rollups, since \(since), width \(width.map(String.init) ?? "none")"
                    )
                    compare(
                        rows,
                        fromRollups,
                        meansExact: latencies == .dyadic,
                        "since \(since), width \(width.map(String.init) ?? "none"), service \(service ?? "none")"
                    )
                    compared += rows.evidence.samples
                }
            }
        }
        // The traffic is what the test says it is: every outcome and excuse occurs.
        let all = try await store.rowBreakdown(
            routeID: RollupFixtures.route,
            serviceUpstream: RollupFixtures.service,
            since: windows[0],
            bucketSeconds: nil
        ).evidence
        #expect(all.samples > 300 && all.mismatches > 0 && all.noiseOnly > 0 && all.acceptedOnly > 0)
        #expect(all.statusMismatches > 0 && all.headerMismatches > 0 && all.bodyMismatches > 0 && all.uncomparable > 0)
        #expect(all.skipped.count == 3)
        #expect(compared > 0)
    }

    @Test("every figure, bucketed or not, from both instances' rollups equals the per-row figure")
    func parity() async throws {
        try await Self.check(latencies: .dyadic)
    }

    @Test("with latencies as clocks give them, percentiles stay exact and means agree to rounding")
    func parityDecimalLatencies() async throws {
        try await Self.check(latencies: .decimal)
    }
}

/// A store recorded before rollups existed: its rows are folded into rollups once, at start,
/// and every figure stays what the rows gave.
@Suite("Folding recorded rows into rollups")
struct RollupFoldTests {
    @Test("the fold counts every pre-rollup row once, with progress, and the store's figures do not change")
    func foldKeepsFigures() async throws {
        let records = RollupParityTests.traffic(latencies: .dyadic)
        let store = try DiffStoreTests.store()
        // Rows as the recorder wrote them before rollups: no example reason, no rollups.
        for batch in stride(from: 0, to: records.count, by: 100) {
            try await store.insert(records[batch..<min(batch + 100, records.count)])
        }
        #expect(try await store.comparisonsCounted() == 0)
        var reports: [SQLiteDiffStore.FoldProgress] = []
        let folded = try store.foldRowsIntoRollups(instanceID: "upgraded") { reports.append($0) }
        #expect(folded == records.count)
        #expect(reports.last?.folded == records.count && reports.last?.total == records.count)
        #expect(try await store.comparisonsCounted() == records.count)
        let since = RollupFixtures.hour.addingTimeInterval(-1800)
        for width in [nil, 60, 3600] as [Int?] {
            let rows = try await store.rowBreakdown(
                routeID: RollupFixtures.route,
                serviceUpstream: RollupFixtures.service,
                since: since,
                bucketSeconds: width
            )
            let rolled = try await store.breakdown(
                routeID: RollupFixtures.route,
                serviceUpstream: RollupFixtures.service,
                since: since,
                bucketSeconds: width
            )
            RollupParityTests.compare(rows, rolled, meansExact: true, "folded, width \(width.map(String.init) ?? "none")")
        }
        #expect(try store.foldRowsIntoRollups(instanceID: "upgraded") == 0, "a second start folds nothing")
        #expect(try await store.comparisonsCounted() == records.count)
        #expect(try await store.comparisonCount() == records.count, "the rows stay, as examples")
    }

    @Test("rows recorded after rollups are never folded: a new store marks its fold done, and imported rows say so")
    func newRowsNotFolded() async throws {
        let store = try DiffStoreTests.store()
        #expect(try store.foldRowsIntoRollups(instanceID: "fresh") == 0)
        try await store.insertCounted([DiffStoreTests.kept("a"), DiffStoreTests.kept("b")])
        #expect(try store.foldRowsIntoRollups(instanceID: "fresh") == 0)
        #expect(try await store.comparisonsCounted() == 2)
    }
}
