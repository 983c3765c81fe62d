import Foundation
import GRDB
import Logging
import ServiceLifecycle
import StranglerCore
import Testing

@testable import StranglerStore

@Suite("Diff store and recorder")
struct DiffStoreTests {
    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").path

    static func store() throws -> SQLiteDiffStore {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("diffs-\(UUID().uuidString)/store.sqlite").path
        return try SQLiteDiffStore(path: path, migrations: try Migration.load(directory: migrations))
    }

    /// A mismatch at a pointer of its own, so the recorder's sampler keeps its row (the first
    /// at a pointer always is).
    static func kept(_ id: String) -> ComparisonRecord {
        record(id, differences: [Difference(kind: .changed, pointer: "/\(id)", primary: "1", candidate: "2")])
    }

    static func record(_ id: String, at date: Date = Date(), differences: [Difference] = []) -> ComparisonRecord {
        ComparisonRecord(
            routeID: "inventory-read",
            requestID: id,
            method: "GET",
            path: "/inventory/SKU-1001",
            recordedAt: date,
            tableVersion: "v1",
            primaryUpstream: "legacy",
            candidateUpstream: "inventory",
            primaryStatus: 200,
            candidateStatus: 200,
            primaryMilliseconds: 2.5,
            candidateMilliseconds: 3.1,
            outcome: differences.isEmpty ? .match : .mismatch,
            differences: differences
        )
    }

    static var logger: Logger {
        var logger = Logger(label: "test.recorder")
        logger.logLevel = .critical
        return logger
    }

    @Test("a batch is stored with its differences, and read back exactly")
    func insertAndRead() async throws {
        let store = try Self.store()
        let differences = [
            Difference(kind: .changed, pointer: "/totalOnHand", primary: "121", candidate: "39"),
            Difference(kind: .added, pointer: "/available", primary: nil, candidate: "31"),
        ]
        try await store.insertCounted([Self.record("r1", differences: differences), Self.record("r2")])
        #expect(try await store.comparisonCount() == 2)
        #expect(try await store.differences(requestID: "r1") == differences)
        #expect(try await store.differences(requestID: "r2").isEmpty)
    }

    @Test("retention deletes by age and by row count, with their differences")
    func retention() async throws {
        let store = try Self.store()
        let old = Date().addingTimeInterval(-10 * 86_400)
        let diff = [Difference(kind: .changed, pointer: "/a", primary: "1", candidate: "2")]
        try await store.insertCounted((0..<5).map { Self.record("old\($0)", at: old, differences: diff) })
        try await store.insertCounted((0..<20).map { Self.record("new\($0)", differences: diff) })
        #expect(try await store.prune(recordedBefore: Date().addingTimeInterval(-7 * 86_400), maxRows: nil) == 5)
        #expect(try await store.comparisonCount() == 20)
        #expect(try await store.prune(recordedBefore: nil, maxRows: 8) == 12)
        #expect(try await store.comparisonCount() == 8)
        let orphans = try await store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM differences WHERE comparison_id NOT IN (SELECT id FROM comparisons)")
        }
        #expect(orphans == 0)
        #expect(try await store.differences(requestID: "new19").count == 1)
        #expect(try await store.differences(requestID: "new0").isEmpty)
    }

    @Test("rollup retention deletes whole hours by age and remembers how far back evidence reaches; examples and rollups age apart")
    func rollupRetention() async throws {
        let store = try Self.store()
        let old = Date().addingTimeInterval(-500 * 86_400)
        let diff = [Difference(kind: .changed, pointer: "/a", primary: "1", candidate: "2")]
        try await store.insertCounted((0..<5).map { Self.record("old\($0)", at: old, differences: diff) })
        try await store.insertCounted((0..<20).map { Self.record("new\($0)", differences: diff) })
        #expect(try await store.rollupsRetainedFrom() == nil, "nothing pruned yet: no retention gap")
        let recorder = DiffRecorder(store: store, retention: .init(maxAgeDays: 14, rollupDays: 400), logger: Self.logger)
        await recorder.applyRetention()
        let everything = try await store.rollups(routeID: "inventory-read", from: old.addingTimeInterval(-86_400))
        #expect(everything.reduce(0) { $0 + $1.samples } == 20, "the minute 500 days ago is gone, today's stays")
        let pointers = try await store.pool.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM rollup_pointers WHERE minute < ?",
                arguments: [StoredTimestamp.format(Date().addingTimeInterval(-400 * 86_400))]
            )
        }
        #expect(pointers == 0, "every rollup table is pruned, not only the counts")
        let retainedFrom = try #require(try await store.rollupsRetainedFrom())
        // Rollups are kept by the hour: the cutoff is the start of the hour 400 days ago.
        #expect(RollupLevel.hour.start(of: retainedFrom) == retainedFrom)
        #expect(retainedFrom <= Date().addingTimeInterval(-400 * 86_400) && retainedFrom.timeIntervalSinceNow + 400 * 86_400 > -3720)
        #expect(try await store.comparisonsCounted() == 20, "the hour 500 days ago is gone from the hours too")
        #expect(try await store.firstCompared(routeID: "inventory-read")! < retainedFrom, "when the route was first compared outlives its minutes")
        #expect(try await store.comparisonCount() == 20, "examples older than 14 days went too")
    }

    @Test("the example row cap is a safety net: reaching it deletes the oldest rows and is counted")
    func rowCap() async throws {
        let store = try Self.store()
        try await store.insertCounted((0..<12).map { Self.kept("k\($0)") })
        let recorder = DiffRecorder(store: store, retention: .init(maxRows: 10), logger: Self.logger)
        await recorder.applyRetention()
        #expect(try await store.comparisonCount() == 10)
        #expect(recorder.statistics.rowCapDeletions == 2)
        #expect(try await store.comparisonsCounted() == 12, "the cap prunes examples, never the counts")
    }

    @Test("noise probes count per route; pointers count how often they differed")
    func noise() async throws {
        let store = try Self.store()
        var probe = Self.record("p1")
        probe.noisePointers = ["/servedAt", "/traceId"]
        var quiet = Self.record("p2")
        quiet.noisePointers = []
        var again = Self.record("p3")
        again.noisePointers = ["/servedAt"]
        try await store.insertCounted([probe, quiet, again, Self.record("no-probe")])
        #expect(try await store.noiseProbes(route: "inventory-read") == 3)
        #expect(try await store.noise(route: "inventory-read") == ["/servedAt": 2, "/traceId": 1])
        #expect(try await store.noiseByRoute() == ["inventory-read": ["/servedAt": 2, "/traceId": 1]], "every route's, probes left out")
        let observations = try await store.pool.read { db in
            try Int.fetchAll(db, sql: "SELECT DISTINCT observations FROM noise WHERE route_id = 'inventory-read'")
        }
        #expect(observations == [3])
    }

    @Test("everything queued is written on graceful shutdown")
    func flushOnShutdown() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, batchSize: 100, interval: .seconds(3600), logger: Self.logger)
        let group = ServiceGroup(services: [recorder], logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for index in 0..<1_000 { #expect(recorder.submit(Self.kept("q\(index)"))) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try await store.comparisonCount() == 1_000)
        #expect(recorder.statistics.recorded == 1_000)
        #expect(recorder.statistics.batches == 10)
        // The write-ahead log is emptied at the stop, so the files left are the store's size.
        let wal = store.path + "-wal"
        let walSize = try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int
        #expect(walSize == 0, "the WAL is checkpointed into the database at a graceful stop")
        let databaseSize = try FileManager.default.attributesOfItem(atPath: store.path)[.size] as? Int ?? 0
        #expect(databaseSize > 1_000 * 50, "the comparisons are in the database file itself")
    }

    @Test("one round of the recorder writes everything queued, a batch per transaction, not just one batch")
    func roundWritesAllQueued() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, batchSize: 100, interval: .seconds(3600), logger: Self.logger)
        for index in 0..<1050 { #expect(recorder.submit(Self.kept("q\(index)"))) }
        #expect(await recorder.drainQueued() == 1050)
        #expect(recorder.statistics.recorded == 1050)
        #expect(recorder.statistics.batches == 11)
        #expect(recorder.statistics.queued == 0)
        #expect(try await store.comparisonCount() == 1050)
    }

    @Test("a full queue drops and counts; submit never waits")
    func queueFull() async throws {
        let recorder = DiffRecorder(store: try Self.store(), capacity: 10, logger: Self.logger)
        let accepted = (0..<15).filter { recorder.submit(Self.kept("f\($0)")) }.count
        #expect(accepted == 10)
        #expect(recorder.statistics.droppedQueueFull == 5)
        #expect(recorder.statistics.queued == 10)
    }

    @Test("a batch submitted at once fills the queue's room and drops the rest, counted; all of it is written")
    func batchSubmit() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, capacity: 10, batchSize: 4, logger: Self.logger)
        #expect(recorder.submit(contentsOf: (0..<4).map { Self.kept("a\($0)") }) == 4)
        #expect(recorder.submit(contentsOf: (0..<9).map { Self.kept("b\($0)") }) == 6)
        #expect(recorder.statistics.droppedQueueFull == 3)
        #expect(recorder.statistics.queued == 10)
        #expect(await recorder.drainQueued() == 10)
        #expect(recorder.statistics.batches == 3)
        #expect(recorder.statistics.queued == 0)
        #expect(try await store.comparisonCount() == 10)
    }

    @Test("a failing store drops the batch, counts it, and recovers; stored diffs stay")
    func storeFailure() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, logger: Self.logger)
        recorder.submit(Self.kept("before"))
        await recorder.flush()
        // A real SQLite failure: the writer connection refuses writes.
        try await store.pool.write { db in try db.execute(sql: "PRAGMA query_only = 1") }
        recorder.submit(Self.kept("lost1"))
        recorder.submit(Self.kept("lost2"))
        await recorder.flush()
        #expect(recorder.statistics.droppedStoreError == 2)
        #expect(recorder.statistics.lastError?.lowercased().contains("readonly") == true)
        try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 0") }
        recorder.submit(Self.kept("after"))
        await recorder.flush()
        #expect(recorder.statistics.recorded == 2)
        #expect(try await store.comparisonCount() == 2)
        // The rollups that failed with the rows were kept and written once the store came back:
        // the lost rows' comparisons are still counted.
        #expect(recorder.statistics.rollupWriteFailures >= 1)
        let rollups = try await store.rollups(routeID: "inventory-read", from: Date().addingTimeInterval(-3600))
        #expect(rollups.reduce(0) { $0 + $1.samples + $1.uncomparable.values.reduce(0, +) + $1.skipped.values.reduce(0, +) } == 4)
    }

    @Test("a store away too long: the oldest unwritten minutes beyond the limit turn into drops, so memory stays bounded and coverage shows the gap")
    func unwrittenMinutesAreBounded() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, rollupInterval: .zero, maxUnwrittenMinutes: 2, logger: Self.logger)
        try await store.pool.write { db in try db.execute(sql: "PRAGMA query_only = 1") }
        let now = Date()
        // Four minutes of comparisons (two each) and one of traffic only, while writes fail.
        for minutesAgo in [40, 30, 20, 10] {
            let at = now.addingTimeInterval(-Double(minutesAgo) * 60)
            recorder.submit(Self.record("m\(minutesAgo)a", at: at))
            recorder.submit(Self.record("m\(minutesAgo)b", at: at))
            await recorder.flush()
        }
        #expect(recorder.statistics.droppedUnwritten == 4, "the two oldest minutes' comparisons")
        try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 0") }
        await recorder.flush()
        let rollups = try await store.rollups(routeID: "inventory-read", from: now.addingTimeInterval(-3600))
        #expect(rollups.map(\.samples) == [0, 0, 2, 2])
        #expect(rollups.map(\.dropped) == [2, 2, 0, 0])
        let coverage = try await store.coverage(routeID: "inventory-read", from: now.addingTimeInterval(-3600), to: now)
        #expect(coverage.gaps.map(\.reason) == [.dropped, .dropped])
        #expect(coverage.gaps.first?.from == RollupLevel.minute.start(of: now.addingTimeInterval(-2400)))
    }

    @Test("every comparison is counted in its minute's rollup, and a full queue's drops are counted there too")
    func rollupsCountEverything() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, capacity: 10, instanceID: "proxy-a", logger: Self.logger)
        let records = (0..<12).map { index in
            Self.record("c\(index)", differences: index % 3 == 0 ? [Difference(kind: .changed, pointer: "/total", primary: "1", candidate: "2")] : [])
        }
        #expect(recorder.submit(contentsOf: records) == 10)
        await recorder.flush()
        var expected = RollupAccumulator(instanceID: "proxy-a")
        for record in records.prefix(10) { expected.add(record) }
        let stored = try await store.rollups(routeID: "inventory-read", from: Date().addingTimeInterval(-3600))
        var total = RouteMinuteRollup(routeID: "inventory-read", minute: Date(), instanceID: "proxy-a")
        for rollup in stored { total.mergeCounts(rollup) }
        var counted = RouteMinuteRollup(routeID: "inventory-read", minute: Date(), instanceID: "proxy-a")
        for rollup in expected.takeAll() { counted.mergeCounts(rollup) }
        #expect(total.samples == 10)
        #expect(total.signatures == counted.signatures)
        #expect(total.dropped == 2, "the two records the full queue refused are counted as missing evidence")
        #expect(Set(stored.map(\.key.instanceID)) == ["proxy-a"])
        #expect(recorder.statistics.rollupWrites >= 1)
    }

    @Test("matches keep no row and mismatches keep sampled examples; the rollups count all of them, and the store stays small")
    func sampledExamples() async throws {
        let store = try Self.store()
        let recorder = DiffRecorder(store: store, capacity: 50_000, batchSize: 2_000, interval: .seconds(3600), instanceID: "p", logger: Self.logger)
        let group = ServiceGroup(services: [recorder], logger: Self.logger)
        let mismatch = [Difference(kind: .changed, pointer: "/total", primary: "1", candidate: "2")]
        // One time for all: the sampler's limits are per hour, and a test must not straddle one.
        let now = Date()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for round in 0..<10 {
                let records = (0..<2_000).map { index in
                    Self.record("r\(round)-\(index)", at: now, differences: index % 100 == 0 ? mismatch : [])
                }
                #expect(recorder.submit(contentsOf: records) == 2_000)
                await recorder.drainQueued()
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // 20,000 comparisons, 200 of them mismatches at one pointer: the first 5 of the hour are
        // kept for the pointer, and the reservoir holds 20 more.
        #expect(recorder.statistics.counted == 20_000)
        #expect(try await store.comparisonsCounted() == 20_000)
        let rows = try await store.comparisonCount()
        #expect(rows == 25, "5 first at the pointer and 20 in the reservoir; no match keeps a row")
        let reasons = try await store.pool.read { db in
            try String?.fetchAll(db, sql: "SELECT example_reason FROM comparisons ORDER BY example_reason")
        }
        #expect(Set(reasons.compactMap { $0 }) == ["firstAtPointer", "reservoir"])
        let evidence = try await store.evidence(routeID: "inventory-read", serviceUpstream: nil, since: now.addingTimeInterval(-3600))
        #expect(evidence.samples == 20_000 && evidence.mismatches == 200 && evidence.bodyMismatches == 200)
        // The files a graceful stop leaves: the database (WAL checkpointed) holds rollups and
        // 25 examples, not 20,000 rows.
        let bytes = [store.path, store.path + "-wal"].reduce(0) { total, path in
            total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
        #expect(bytes < 400_000, "\(bytes) bytes on disk")
    }

    @Test("an example names each side's value by side: when the service served the client, its value is the primary's")
    func exampleSides() async throws {
        let store = try Self.store()
        var shadowed = Self.record("shadowed", differences: [Difference(kind: .changed, pointer: "/total", primary: "\"leg\"", candidate: "\"svc\"")])
        shadowed.primaryUpstream = "legacy"
        shadowed.candidateUpstream = "orders"
        var canaryShare = Self.record(
            "canary",
            differences: [Difference(kind: .changed, pointer: "/total", primary: "\"svc\"", candidate: "\"leg\"")]
        )
        canaryShare.primaryUpstream = "orders"
        canaryShare.candidateUpstream = "legacy"
        try await store.insertCounted([shadowed, canaryShare])
        let examples = try await store.examples(
            routeID: "inventory-read",
            serviceUpstream: "orders",
            since: Date().addingTimeInterval(-60),
            pointer: "/total",
            limit: 5
        )
        #expect(examples.count == 2)
        #expect(
            examples.allSatisfy { $0.legacy == "\"leg\"" && $0.service == "\"svc\"" },
            "\(examples.map { ($0.requestID, $0.legacy, $0.service) })"
        )
    }
}
