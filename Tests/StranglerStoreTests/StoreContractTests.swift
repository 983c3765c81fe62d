import Foundation
import Logging
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerStore

/// What a store answers beyond ``DiffStore``, that these tests look at: both stores have it.
protocol InspectableStore: DiffStore {
    func comparisonCount(route: String?) async throws -> Int
    func comparisonsCounted(route: String?) async throws -> Int
    func differences(requestID: String) async throws -> [Difference]
    func rollups(routeID: String, level: RollupLevel, from: Date, to: Date?) async throws -> [RouteMinuteRollup]
    func noise(route: String) async throws -> [String: Int]
    func noiseProbes(route: String) async throws -> Int
    func minuteRollupsRetainedFrom() async throws -> Date?
}

extension SQLiteDiffStore: InspectableStore {}
extension PostgresDiffStore: InspectableStore {}

/// The two stores, for tests that run against each.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static var logger: Logger {
        var logger = Logger(label: "test.store")
        logger.logLevel = .critical
        return logger
    }

    /// A fresh, empty store of this kind: a new SQLite file, or a new database in the test
    /// PostgreSQL cluster.
    func make() async throws -> any InspectableStore {
        switch self {
        case .sqlite:
            return try DiffStoreTests.store()
        case .postgres:
            let url = try PostgresCluster.shared().makeDatabase().absoluteString
            return try await PostgresDiffStore.open(
                url: try PostgresStoreURL(url),
                migrations: try PostgresMigrationRunner.load(directory: DiffStoreTests.migrations),
                logger: Self.logger,
                operationTimeout: PostgresCluster.operationTimeout
            )
        }
    }
}

/// The store protocol's promises, kept by the embedded SQLite store and the shared PostgreSQL
/// one alike: every test runs against both, with the same data and the same expectations.
@Suite("Both stores keep the store's promises")
struct StoreContractTests {
    static func close(_ store: any InspectableStore) async {
        if let store = store as? PostgresDiffStore { await store.close() }
    }

    @Test("rows and rollups are written together and read back exactly: every figure, for windows crossing hours", arguments: StoreKind.allCases)
    func evidenceRoundTrip(kind: StoreKind) async throws {
        let store = try await kind.make()
        let reference = try DiffStoreTests.store()
        let start = RollupFixtures.hour.addingTimeInterval(-1800)
        var records = (0..<400).map {
            RollupFixtures.record(seed: UInt64($0) &* 2_654_435_761, start: start, minutes: 95, latencies: .decimal)
        }
        for index in stride(from: 0, to: records.count, by: 25) { records[index].noisePointers = ["/servedAt"] }
        for chunk in stride(from: 0, to: records.count, by: 100) {
            let slice = Array(records[chunk..<min(chunk + 100, records.count)])
            try await store.insertCounted(slice, instanceID: chunk % 200 == 0 ? "a" : "b")
            try await reference.insertCounted(slice, instanceID: chunk % 200 == 0 ? "a" : "b")
        }
        _ = try await store.accept(routeID: RollupFixtures.route, pointer: "/total", reason: "rounding", owner: "rita", until: nil)
        _ = try await reference.accept(routeID: RollupFixtures.route, pointer: "/total", reason: "rounding", owner: "rita", until: nil)
        #expect(try await store.comparisonCount(route: nil) == records.count)
        #expect(try await store.comparisonsCounted(route: nil) == records.count)
        #expect(try await store.noiseProbes(route: RollupFixtures.route) == 16)
        #expect(try await store.noise(route: RollupFixtures.route) == reference.noise(route: RollupFixtures.route))
        for since in [start, RollupFixtures.hour.addingTimeInterval(-600), RollupFixtures.hour.addingTimeInterval(1234)] {
            for width in [nil, 60, 600, 3600, 86_400] as [Int?] {
                let got = try await store.breakdown(
                    routeID: RollupFixtures.route,
                    serviceUpstream: RollupFixtures.service,
                    since: since,
                    bucketSeconds: width
                )
                let want = try await reference.rowBreakdown(
                    routeID: RollupFixtures.route,
                    serviceUpstream: RollupFixtures.service,
                    since: RollupLevel.minute.start(of: since),
                    bucketSeconds: width
                )
                let label = "since \(since), width \(width.map(String.init) ?? "none")"
                #expect(got.evidence.samples == want.evidence.samples, "\(label)")
                #expect(got.evidence.mismatches == want.evidence.mismatches && got.evidence.acceptedOnly == want.evidence.acceptedOnly, "\(label)")
                #expect(got.evidence.legacyP99 == want.evidence.legacyP99 && got.evidence.serviceP50 == want.evidence.serviceP50, "\(label)")
                #expect(got.pointers == want.pointers, "\(label)")
                #expect(got.skipped == want.skipped && got.uncomparable == want.uncomparable, "\(label)")
                #expect(got.buckets.map(\.samples) == want.buckets.map(\.samples), "\(label)")
            }
        }
        #expect(try await store.routeIDs(since: start) == [RollupFixtures.route])
        #expect(try await store.routeIDs(since: RollupFixtures.hour.addingTimeInterval(7200)) == [])
        let first = RollupLevel.minute.start(of: records.map(\.recordedAt).min()!)
        #expect(try await store.firstComparison(routeID: RollupFixtures.route, since: start.addingTimeInterval(-3600)) == first)
        #expect(
            try await store.coveredCount(routeID: RollupFixtures.route, since: start, pattern: "/items/*")
                == reference.coveredCount(routeID: RollupFixtures.route, since: start, pattern: "/items/*")
        )
        let mismatch = try #require(records.first { $0.outcome == .mismatch && $0.differences.contains { $0.primary != nil } })
        #expect(try await store.differences(requestID: mismatch.requestID) == mismatch.differences)
        let pointer = mismatch.differences[0].pointer
        let examples = try await store.examples(
            routeID: RollupFixtures.route,
            serviceUpstream: RollupFixtures.service,
            since: start,
            pointer: pointer,
            limit: 500
        )
        let expected = try await reference.examples(
            routeID: RollupFixtures.route,
            serviceUpstream: RollupFixtures.service,
            since: start,
            pointer: pointer,
            limit: 500
        )
        #expect(Set(examples.map(\.requestID)) == Set(expected.map(\.requestID)) && examples.count == expected.count && !examples.isEmpty)
        await Self.close(store)
    }

    @Test(
        "a reservoir example replaces the one in its slot and hour, also within one batch; a not-kept comparison writes no row",
        arguments: StoreKind.allCases
    )
    func reservoirSlots(kind: StoreKind) async throws {
        let store = try await kind.make()
        let at = RollupFixtures.hour.addingTimeInterval(120)
        func example(_ id: String, slot: Int?) -> ComparisonRecord {
            var record = DiffStoreTests.record(id, at: at, differences: [Difference(kind: .changed, pointer: "/a", primary: "1", candidate: "2")])
            record.row = slot.map { .reservoir(slot: $0) } ?? .notKept
            return record
        }
        try await store.insert([example("first", slot: 3), example("other", slot: 4)])
        try await store.insert([example("second", slot: 3), example("third", slot: 3), example("dropped", slot: nil)])
        #expect(try await store.comparisonCount(route: nil) == 2)
        #expect(try await store.differences(requestID: "third").count == 1)
        #expect(try await store.differences(requestID: "first").isEmpty)
        #expect(try await store.differences(requestID: "second").isEmpty)
        #expect(try await store.differences(requestID: "dropped").isEmpty)
        await Self.close(store)
    }

    @Test(
        "retention: examples by age and by the row cap, rollups by the hour, minutes before hours; coverage states the gaps",
        arguments: StoreKind.allCases
    )
    func retentionAndCoverage(kind: StoreKind) async throws {
        let store = try await kind.make()
        let now = Date()
        let diff = [Difference(kind: .changed, pointer: "/a", primary: "1", candidate: "2")]
        try await store.insertCounted((0..<5).map { DiffStoreTests.record("old\($0)", at: now.addingTimeInterval(-20 * 86_400), differences: diff) })
        try await store.insertCounted((0..<6).map { DiffStoreTests.record("new\($0)", at: now.addingTimeInterval(-600), differences: diff) })
        var dropped = RollupAccumulator(instanceID: "x")
        dropped.addDropped(routeID: "inventory-read", at: now.addingTimeInterval(-300), count: 2)
        try await store.addRollups(dropped.takeAll())
        #expect(try await store.prune(recordedBefore: now.addingTimeInterval(-14 * 86_400), maxRows: nil) == 5)
        #expect(try await store.prune(recordedBefore: nil, maxRows: 4) == 2)
        #expect(try await store.comparisonCount(route: nil) == 4)
        #expect(try await store.pruneMinuteRollups(before: now.addingTimeInterval(-8 * 86_400)) == 1)
        #expect(try await store.minuteRollupsRetainedFrom() == RollupLevel.hour.start(of: now.addingTimeInterval(-8 * 86_400)))
        #expect(try await store.comparisonsCounted(route: nil) == 11, "hours keep the counts of pruned minutes")
        #expect(try await store.pruneRollups(before: now.addingTimeInterval(-10 * 86_400)) == 1)
        #expect(try await store.comparisonsCounted(route: nil) == 6)
        let coverage = try await store.coverage(routeID: "inventory-read", from: now.addingTimeInterval(-30 * 86_400), to: now)
        #expect(coverage.gaps.map(\.reason) == [.retention, .dropped])
        #expect(coverage.gaps.first?.to == RollupLevel.hour.start(of: now.addingTimeInterval(-10 * 86_400)))
        #expect(coverage.gaps.last?.from == RollupLevel.minute.start(of: now.addingTimeInterval(-300)))
        await Self.close(store)
    }

    @Test("accepted differences, the audit trail with its tables, and traffic by instance read back alike", arguments: StoreKind.allCases)
    func auditAndTraffic(kind: StoreKind) async throws {
        let store = try await kind.make()
        let kept = try await store.accept(routeID: "inv", pointer: "/items/*/name", reason: "renamed", owner: "rita", until: nil)
        let lapsed = try await store.accept(routeID: "inv", pointer: "/x", reason: "old", owner: "rita", until: Date().addingTimeInterval(-60))
        let revoked = try await store.accept(routeID: "ord", pointer: "/y", reason: "wrong", owner: "sam", until: nil)
        #expect(try await store.revokeAccepted(id: revoked, by: "sam"))
        #expect(try await !store.revokeAccepted(id: revoked, by: "sam"), "revoking twice finds nothing active")
        #expect(try await store.acceptedDifferences(routeID: nil, includeInactive: false).map(\.id) == [kept])
        #expect(try await store.acceptedDifferences(routeID: "inv", includeInactive: true).map(\.id) == [kept, lapsed])
        #expect(try await store.acceptedDifferences(routeID: nil, includeInactive: true).last?.revokedBy == "sam")

        let change = { (route: String?, reason: String?, after: String) in
            RouteChange(
                actor: "alice",
                source: .cli,
                routeID: route,
                reason: reason,
                before: nil,
                after: #"{"mode":"shadow"}"#,
                tableVersionBefore: nil,
                tableVersionAfter: after
            )
        }
        let ids = try await store.recordChanges([change("inv", "start", "v1"), change(nil, nil, "v1")], tableContent: Data("table one".utf8))
        #expect(ids.count == 2 && ids[0] < ids[1])
        let later = try await store.recordChanges([change("inv", "flip", "v2")], tableContent: Data("table two".utf8))
        #expect(try await store.changes(routeID: nil, limit: 10).map(\.id) == [later[0], ids[1], ids[0]])
        #expect(try await store.changes(routeID: "inv", limit: 10).map(\.reason) == ["flip", "start"])
        #expect(try await store.changes(routeID: nil, limit: 10)[1].routeID == nil)
        try await store.deleteChanges(ids: later)
        #expect(try await store.changes(routeID: "inv", limit: 10).map(\.reason) == ["start"])
        #expect(try await store.tableContent(version: "v2") == Data("table two".utf8))
        try await store.saveTable(version: "v2", content: Data("another".utf8))
        #expect(try await store.tableContent(version: "v2") == Data("table two".utf8), "the first sighting wins")
        #expect(try await store.tableVersions(matching: "v") == ["v1", "v2"])
        #expect(try await store.latestTableVersion() == "v1", "the trail's last change led to v1 once v2's was taken back")

        let now = Date()
        try await store.recordTraffic([RouteTraffic(routeID: "inv", legacy: 3, service: 1)], at: now.addingTimeInterval(-7200), instanceID: "a")
        try await store.recordTraffic([RouteTraffic(routeID: "inv", service: 5, serviceErrors: 2)], at: now, instanceID: "a")
        try await store.recordTraffic([RouteTraffic(routeID: "inv", service: 5)], at: now, instanceID: "b")
        #expect(try await store.lastLegacyTraffic(routeID: "inv") == RollupLevel.minute.start(of: now.addingTimeInterval(-7200)))
        #expect(
            try await store.traffic(routeID: "inv", since: now.addingTimeInterval(-600))
                == RouteTraffic(routeID: "inv", service: 10, serviceErrors: 2)
        )
        #expect(try await store.lastLegacyTraffic(routeID: "none") == nil)
        await Self.close(store)
    }
}

/// The PostgreSQL migrations: the same rules as SQLite's, and safe when instances start together.
@Suite("PostgreSQL migrations")
struct PostgresMigrationTests {
    static func migrations() throws -> [Migration] {
        try PostgresMigrationRunner.load(directory: DiffStoreTests.migrations)
    }

    @Test("instances starting together against an empty database migrate it once; a restart applies nothing")
    func concurrentStart() async throws {
        let url = try PostgresStoreURL(try PostgresCluster.shared().makeDatabase().absoluteString)
        let migrations = try Self.migrations()
        let stores = try await withThrowingTaskGroup(of: PostgresDiffStore.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await PostgresDiffStore.open(url: url, migrations: migrations, logger: StoreKind.logger, operationTimeout: PostgresCluster.operationTimeout)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let applied = try await stores[0].read("SELECT COUNT(*) FROM schema_migrations", as: (Int.self)) { $0 }
        #expect(applied == [migrations.count])
        let again = try await PostgresMigrationRunner(migrations: migrations).migrate(
            stores[0].client,
            location: url.description,
            logger: StoreKind.logger
        )
        #expect(again.applied.isEmpty && again.alreadyApplied == migrations.count)
        for store in stores { await store.close() }
    }

    @Test("an applied file that was edited is refused, naming it; a new numbered file is applied")
    func editedAndNew() async throws {
        let url = try PostgresStoreURL(try PostgresCluster.shared().makeDatabase().absoluteString)
        var migrations = try Self.migrations()
        let store = try await PostgresDiffStore.open(url: url, migrations: migrations, logger: StoreKind.logger, operationTimeout: PostgresCluster.operationTimeout)
        let added = Migration(version: 9000, name: "9000_extra.sql", sql: "CREATE TABLE extra (id INT); INSERT INTO extra VALUES (1); -- done;")
        let outcome = try await PostgresMigrationRunner(migrations: migrations + [added]).migrate(
            store.client,
            location: url.description,
            logger: StoreKind.logger
        )
        #expect(outcome.applied.map { $0.name } == ["9000_extra.sql"])
        #expect(try await store.read("SELECT id FROM extra", as: (Int.self)) { $0 } == [1])
        migrations[0] = Migration(version: migrations[0].version, name: migrations[0].name, sql: migrations[0].sql + "\n-- edited")
        do {
            _ = try await PostgresMigrationRunner(migrations: migrations + [added]).migrate(
                store.client,
                location: url.description,
                logger: StoreKind.logger
            )
            Issue.record("an edited applied migration was accepted")
        } catch {
            #expect("\(error)".contains("\(migrations[0].name) was edited after it was applied"))
        }
        await store.close()
    }

    @Test("a database that doesn't exist, a user the server refuses, and a port nobody listens on are each refused at open in plain words")
    func refusedAtOpen() async throws {
        let cluster = try PostgresCluster.shared()
        let migrations = try Self.migrations()
        func refusal(_ url: String) async -> String {
            do {
                let store = try await PostgresDiffStore.open(
                    url: try PostgresStoreURL(url),
                    migrations: migrations,
                    logger: StoreKind.logger,
                    operationTimeout: PostgresCluster.operationTimeout
                )
                await store.close()
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        let missing = await refusal("postgres://\(cluster.superuser)@127.0.0.1:\(cluster.port)/no_such_database")
        #expect(missing.contains("database \"no_such_database\" does not exist") && missing.contains("check the URL's"), "\(missing)")
        let stranger = await refusal("postgres://nobody_here@127.0.0.1:\(cluster.port)/postgres")
        #expect(stranger.contains("nobody_here"), "the server's refusal names the role: \(stranger)")
        // A port that was free a moment ago: nothing listens there.
        let closed = await refusal("postgres://\(cluster.superuser)@127.0.0.1:\(try LoopbackPorts.reserve())/strangler")
        #expect(closed.lowercased().contains("refused") || closed.contains("no answer within"), "\(closed)")
        #expect(closed.contains("127.0.0.1") && !closed.contains("opened"))
    }

    @Test("store URLs: both schemes, defaults, a password kept out of messages, and errors naming the missing part")
    func urls() throws {
        let url = try PostgresStoreURL("postgresql://ops:s%40cret@db.example.com/strangler?sslmode=require")
        #expect(url.host == "db.example.com" && url.port == 5432 && url.username == "ops" && url.password == "s@cret" && url.tls == .require)
        #expect(url.description == "postgres://ops@db.example.com:5432/strangler")
        #expect(try PostgresStoreURL("postgres://me@127.0.0.1:6000/d").tls == .disable, "loopback needs no TLS")
        #expect(try PostgresStoreURL("postgres://me@10.0.0.5/d").tls == .prefer)
        #expect(throws: PostgresStoreURLError.missing(part: "database", url: "postgres://me:***@h")) { try PostgresStoreURL("postgres://me:pw@h") }
        #expect(throws: PostgresStoreURLError.missing(part: "user", url: "postgres://h/d")) { try PostgresStoreURL("postgres://h/d") }
        #expect(throws: PostgresStoreURLError.badSSLMode("always")) { try PostgresStoreURL("postgres://u@h/d?sslmode=always") }
    }

    @Test("migration files are cut into statements at semicolons outside quotes, dollar quotes and comments")
    func statements() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x TEXT DEFAULT 'semi;colon');
            /* block; comment */ INSERT INTO a VALUES ('it''s; fine');
            CREATE FUNCTION f() RETURNS INT AS $body$ SELECT 1; $body$ LANGUAGE sql;;
            SELECT 1/*x*/FROM t
            """
        #expect(
            SQLScript.statements(script) == [
                "CREATE TABLE a (x TEXT DEFAULT 'semi;colon')",
                "INSERT INTO a VALUES ('it''s; fine')",
                "CREATE FUNCTION f() RETURNS INT AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "SELECT 1 FROM t",
            ]
        )
    }
}

/// The database goes away while the proxy records: nothing waits long, nothing is counted twice,
/// and recording resumes on its own.
@Suite("PostgreSQL outages")
struct PostgresOutageTests {
    @Test(
        "writes fail within the store's timeout while the database is down; the recorder drops rows, keeps its counts, and writes them once it is back"
    )
    func recorderRidesOutAnOutage() async throws {
        // Its own cluster: stopping the shared one would fail other tests.
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let url = try PostgresStoreURL(try cluster.makeDatabase().absoluteString)
        let store = try await PostgresDiffStore.open(
            url: url,
            migrations: try PostgresMigrationRunner.load(directory: DiffStoreTests.migrations),
            logger: StoreKind.logger,
            operationTimeout: .seconds(3)
        )
        let recorder = DiffRecorder(store: store, rollupInterval: .zero, logger: StoreKind.logger)
        // Up: a write goes through (retried if a starved machine makes one slower than the timeout).
        var before = 0
        while recorder.statistics.recorded == 0, before < 5 {
            recorder.submit(DiffStoreTests.kept("before\(before)"))
            await recorder.flush()
            before += 1
        }
        #expect(recorder.statistics.recorded == 1)
        let droppedBefore = recorder.statistics.droppedStoreError

        try cluster.stop()
        recorder.submit(DiffStoreTests.kept("lost"))
        recorder.submit(DiffStoreTests.record("counted"))
        await recorder.flush()
        #expect(recorder.statistics.droppedStoreError == droppedBefore + 1, "the example row is dropped and counted (a match keeps no row)")
        #expect(recorder.statistics.rollupWriteFailures >= 1)
        do {
            _ = try await store.comparisonCount()
            Issue.record("a read answered while the database was down")
        } catch let error as PostgresStoreError {
            #expect(error.description.contains(url.description) && !error.description.contains("password"), "\(error)")
        }

        try cluster.start()
        // The pool reconnects on demand; its first use may still meet a connection the stop cut.
        var after = 0
        while recorder.statistics.recorded < 2, after < 10 {
            recorder.submit(DiffStoreTests.kept("after\(after)"))
            await recorder.flush()
            after += 1
        }
        #expect(recorder.statistics.recorded == 2, "recording resumed")
        #expect(try await store.comparisonsCounted() == before + 2 + after, "every comparison counted once, those of the outage included")
        #expect(try await store.differences(requestID: "before\(before - 1)").count == 1)
        await store.close()
    }
}
