import Foundation
import Logging
import PostgresNIO
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerStore

/// The minute rollup tables' day partitions: the plan alone, then against a real database.
@Suite("Minute rollup partitions")
struct PostgresPartitionTests {
    typealias Partitions = MinuteRollupPartitions
    typealias Day = MinuteRollupPartitions.Day

    static let dayLength: TimeInterval = 86_400

    // MARK: Planning, without a database

    @Test("a day's partition is named and bounded by its UTC day; only names that are a table's day partition are read as one")
    func namesAndBounds() {
        let day = Day(of: StoredTimestamp.parse("2026-12-07T23:59:59.999Z")!)
        #expect(day == Day(of: StoredTimestamp.parse("2026-12-07T00:00:00.000Z")!))
        #expect(Partitions.name(of: "rollups", day: day) == "rollups_p20261207")
        #expect(day.bounds.from == "2026-12-07T00:00:00.000Z" && day.bounds.to == "2026-12-08T00:00:00.000Z")
        #expect(Partitions.day(fromName: "rollups_p20261207", in: "rollups") == day)
        #expect(Partitions.day(fromName: "rollup_reasons_p20261207", in: "rollup_reasons") == day)
        for name in ["rollups_default", "rollups_p2026120", "rollups_p202612070", "rollups_p20261340", "rollups_px0261207", "rollups_x"] {
            #expect(Partitions.day(fromName: name, in: "rollups") == nil, "\(name)")
        }
        #expect(Partitions.day(fromName: "rollup_reasons_p20261207", in: "rollups") == nil)
        let leap = Day(of: StoredTimestamp.parse("2028-02-29T12:00:00.000Z")!)
        #expect(Partitions.day(fromName: Partitions.name(of: "rollups", day: leap), in: "rollups") == leap)
    }

    @Test("upkeep wants today and the next two days in every partitioned table, and leaves a table that is not partitioned alone")
    func missingPartitions() {
        let now = StoredTimestamp.parse("2026-12-07T22:10:00.000Z")!
        let today = Day(of: now)
        let next = Day(number: today.number + 1)
        #expect(Partitions.wanted(now: now) == [today, next, Day(number: today.number + 2)])
        var children = Dictionary(uniqueKeysWithValues: Partitions.tables.map { ($0, [Partitions.defaultName(of: $0)]) })
        children["rollups"]! += [Partitions.name(of: "rollups", day: today), Partitions.name(of: "rollups", day: next)]
        children["rollup_latencies"] = nil
        let missing = Partitions(children: children).missing(now: now)
        #expect(missing.filter { $0.table == "rollups" }.map(\.day) == [Day(number: today.number + 2)])
        #expect(missing.filter { $0.table == "rollup_reasons" }.map(\.day) == Partitions.wanted(now: now))
        #expect(!missing.contains { $0.table == "rollup_latencies" })
        #expect(missing.count == 1 + 3 * 3)
        #expect(Partitions(children: [:]).missing(now: now).isEmpty, "a database before 0004 has nothing partitioned")
        let all = Dictionary(
            uniqueKeysWithValues: Partitions.tables.map { table in (table, Partitions.wanted(now: now).map { Partitions.name(of: table, day: $0) }) }
        )
        #expect(Partitions(children: all).missing(now: now).isEmpty)
    }

    @Test("retention drops the days that end at or before the cutoff, in any table; the boundary day stays")
    func droppableDays() {
        let first = Day(of: StoredTimestamp.parse("2026-12-01T00:00:00.000Z")!)
        let days = (0..<5).map { Day(number: first.number + $0) }
        var children = ["rollups": days.map { Partitions.name(of: "rollups", day: $0) }]
        children["rollup_reasons"] = [Partitions.name(of: "rollup_reasons", day: Day(number: first.number - 1))]
        let partitions = Partitions(children: children)
        #expect(partitions.droppable(before: first.start).map(\.number) == [first.number - 1])
        #expect(partitions.droppable(before: days[2].start) == [Day(number: first.number - 1), days[0], days[1]])
        #expect(
            partitions.droppable(before: days[2].start.addingTimeInterval(3 * 3600)).last == days[1],
            "the cutoff's own day is deleted from, not dropped"
        )
        #expect(partitions.droppable(before: days[2].end).last == days[2])
        #expect(Partitions(children: [:]).droppable(before: days[4].end).isEmpty)
    }

    // MARK: Against PostgreSQL

    static var logger: Logger { StoreKind.logger }

    static func open(url: String, upTo version: Int? = nil) async throws -> PostgresDiffStore {
        let migrations = try PostgresMigrationRunner.load(directory: DiffStoreTests.migrations)
        return try await PostgresDiffStore.open(
            url: try PostgresStoreURL(url),
            migrations: migrations.filter { version == nil || $0.version <= version! },
            logger: logger,
            operationTimeout: PostgresCluster.operationTimeout
        )
    }

    static func query<each Column: PostgresDecodable, Value: Sendable>(
        _ store: PostgresDiffStore,
        _ query: PostgresQuery,
        as types: (repeat each Column).Type,
        _ row: @escaping @Sendable (repeat each Column) throws -> Value
    ) async throws -> [Value] {
        try await store.read(query, as: types, row)
    }

    /// Every minute table's partitions with how many rows each holds, by partition name.
    static func rowsByPartition(_ store: PostgresDiffStore) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for table in Partitions.tables {
            for (name, count) in try await query(
                store,
                "SELECT tableoid::regclass::TEXT, COUNT(*) FROM \(unescaped: table) GROUP BY 1",
                as: (String, Int).self,
                { ($0, $1) }
            ) {
                counts[name] = count
            }
        }
        return counts
    }

    /// Whether a table of that name exists.
    static func exists(_ store: PostgresDiffStore, _ name: String) async throws -> Bool {
        try await query(store, "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = \(name))", as: (Bool.self)) { $0 }.first ?? false
    }

    /// The partitions the catalog lists for `table`.
    static func partitions(_ store: PostgresDiffStore, of table: String) async throws -> Set<String> {
        Set(
            try await query(
                store,
                "SELECT inhrelid::regclass::TEXT FROM pg_inherits WHERE inhparent = \(table)::regclass",
                as: (String.self)
            ) { $0 }
        )
    }

    /// Each minute table's rows, as a count and a digest of their text, in one order.
    static func contents(_ store: PostgresDiffStore) async throws -> [String: String] {
        var contents: [String: String] = [:]
        for table in Partitions.tables {
            contents[table] =
                try await query(
                    store,
                    "SELECT COUNT(*)::TEXT || ' ' || COALESCE(md5(string_agg(t::TEXT, '|' ORDER BY t::TEXT)), '') FROM \(unescaped: table) t",
                    as: (String.self)
                ) { $0 }.first
        }
        return contents
    }

    /// Comparisons over `days` days from `start`, some of each day's ten hours, written by two
    /// instances: every minute table gets rows on each day.
    static func fill(_ store: PostgresDiffStore, from start: Date, days: Int, perDay: Int = 120) async throws -> [ComparisonRecord] {
        var all: [ComparisonRecord] = []
        for day in 0..<days {
            let records = (0..<perDay).map {
                RollupFixtures.record(
                    seed: UInt64(day * perDay + $0) &* 2_654_435_761,
                    start: start.addingTimeInterval(Double(day) * dayLength + 8 * 3600),
                    minutes: 600
                )
            }
            try await store.insertCounted(Array(records.prefix(perDay / 2)), instanceID: "a")
            try await store.insertCounted(Array(records.dropFirst(perDay / 2)), instanceID: "b")
            all += records
        }
        return all
    }

    @Test(
        "rows land in their day's partitions; retention drops the days before the cutoff whole, counts their rows exactly, and the kept window reads the same"
    )
    func partitionsAndRetention() async throws {
        let store = try await Self.open(url: try PostgresCluster.shared().makeDatabase().absoluteString)
        let today = Day(of: Date())
        for table in Partitions.tables {
            for day in Partitions.wanted(now: Date()) {
                #expect(try await Self.exists(store, Partitions.name(of: table, day: day)), "made at open")
            }
        }
        // Partitions for three past days; the fourth day has none, and its rows go to DEFAULT.
        let first = Day(number: today.number - 6)
        let created = try await PostgresDiffStore.createMinutePartitions(store.client, now: first.start, logger: Self.logger)
        #expect(created.count == 3 * Partitions.tables.count)
        _ = try await Self.fill(store, from: first.start, days: 4)

        let rows = try await Self.rowsByPartition(store)
        for table in Partitions.tables {
            #expect(try await Self.partitions(store, of: table).contains(Partitions.defaultName(of: table)))
            for offset in 0..<3 {
                #expect(rows[Partitions.name(of: table, day: Day(number: first.number + offset))] ?? 0 > 0, "\(table), day \(offset)")
            }
            #expect(rows[Partitions.defaultName(of: table)] ?? 0 > 0, "\(table): the day without a partition")
            // Each row is in the partition of its own day.
            let misplaced = try await Self.query(
                store,
                """
                SELECT COUNT(*) FROM \(unescaped: table)
                WHERE tableoid::regclass::TEXT <> \(table) || '_p' || replace(substr(minute, 1, 10), '-', '')
                    AND tableoid::regclass::TEXT <> \(Partitions.defaultName(of: table))
                """,
                as: (Int.self)
            ) { $0 }.first
            #expect(misplaced == 0)
        }

        // The cutoff falls in the third day: two days go whole, the third keeps its later hours.
        let cutoff = Day(number: first.number + 2).start.addingTimeInterval(12 * 3600)
        let kept = RollupLevel.hour.start(of: cutoff)
        let routes = [RollupFixtures.route]
        let before = try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: kept)
        let minutesBefore = try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: kept)
        let breakdownBefore = try await store.breakdown(routeID: RollupFixtures.route, serviceUpstream: nil, since: kept, bucketSeconds: 600)
        let countedBefore = try await store.comparisonsCounted()
        let toGo =
            try await Self.query(store, "SELECT COUNT(*) FROM rollups WHERE minute < \(StoredTimestamp.format(kept))", as: (Int.self)) { $0 }.first
        #expect(toGo ?? 0 > 0)

        #expect(try await store.pruneMinuteRollups(before: cutoff) == toGo)

        for table in Partitions.tables {
            for offset in 0..<2 {
                #expect(try await !Self.exists(store, Partitions.name(of: table, day: Day(number: first.number + offset))), "dropped")
            }
            #expect(try await Self.exists(store, Partitions.name(of: table, day: Day(number: first.number + 2))), "the boundary day stays")
            let left = try await Self.query(
                store,
                "SELECT COUNT(*) FROM \(unescaped: table) WHERE minute < \(StoredTimestamp.format(kept))",
                as: (Int.self)
            ) { $0 }.first
            #expect(left == 0, "\(table)")
        }
        #expect(try await store.minuteRollupsRetainedFrom() == kept)
        #expect(try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: kept) == before)
        #expect(try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: kept) == minutesBefore)
        let breakdownAfter = try await store.breakdown(routeID: RollupFixtures.route, serviceUpstream: nil, since: kept, bucketSeconds: 600)
        #expect(breakdownAfter.pointers == breakdownBefore.pointers)
        #expect(breakdownAfter.buckets.map { "\($0)" } == breakdownBefore.buckets.map { "\($0)" })
        #expect(try await store.comparisonsCounted() == countedBefore, "hours keep every count")
        #expect(try await store.routeIDs(since: kept) == routes)
        // Nothing left to drop: a second run deletes nothing.
        #expect(try await store.pruneMinuteRollups(before: cutoff) == 0)
        await store.close()
    }

    @Test("a day's partition made while the DEFAULT partition holds rows of that day takes them over, and every reading stays the same")
    func defaultPartitionRowsMove() async throws {
        let store = try await Self.open(url: try PostgresCluster.shared().makeDatabase().absoluteString)
        let ahead = Day(number: Day(of: Date()).number + 10)
        _ = try await Self.fill(store, from: ahead.start, days: 2)
        let defaultRows = try await Self.rowsByPartition(store)
        for table in Partitions.tables { #expect(defaultRows[Partitions.defaultName(of: table)] ?? 0 > 0) }
        let contents = try await Self.contents(store)
        let minutes = try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: ahead.start)
        let evidence = try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: ahead.start)

        let created = try await PostgresDiffStore.createMinutePartitions(store.client, now: ahead.start, logger: Self.logger)
        #expect(created.count == 3 * Partitions.tables.count)

        let rows = try await Self.rowsByPartition(store)
        for table in Partitions.tables {
            #expect(rows[Partitions.defaultName(of: table)] == nil, "\(table): the DEFAULT partition gave up its rows")
            #expect(rows[Partitions.name(of: table, day: ahead)] ?? 0 > 0)
            #expect(rows[Partitions.name(of: table, day: Day(number: ahead.number + 1))] ?? 0 > 0)
        }
        #expect(try await Self.contents(store) == contents)
        #expect(try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: ahead.start) == minutes)
        #expect(try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: ahead.start) == evidence)
        // Writes to those days now land in their partitions.
        _ = try await Self.fill(store, from: ahead.start, days: 1, perDay: 10)
        #expect(try await Self.rowsByPartition(store)[Partitions.defaultName(of: "rollups")] == nil)
        await store.close()
    }

    @Test("two instances making the same partitions at once both succeed, and each partition is made once")
    func concurrentUpkeep() async throws {
        let url = try PostgresCluster.shared().makeDatabase().absoluteString
        let one = try await Self.open(url: url)
        let other = try await Self.open(url: url)
        let ahead = Day(number: Day(of: Date()).number + 20).start
        async let first = PostgresDiffStore.createMinutePartitions(one.client, now: ahead, logger: Self.logger)
        async let second = PostgresDiffStore.createMinutePartitions(other.client, now: ahead, logger: Self.logger)
        let created = try await first + second
        #expect(created.count == 3 * Partitions.tables.count)
        #expect(Set(created).count == created.count)
        for table in Partitions.tables {
            #expect(try await Self.partitions(one, of: table).count == 1 + 3 + 3, "DEFAULT, the three days from open, the three ahead")
        }
        await one.close()
        await other.close()
    }

    @Test("migration 0004 moves every row of a 0003 database into day partitions; readers answer the same")
    func migrationKeepsRows() async throws {
        let url = try PostgresCluster.shared().makeDatabase().absoluteString
        let old = try await Self.open(url: url, upTo: 3)
        let start = Day(number: Day(of: Date()).number - 3).start
        let records = try await Self.fill(old, from: start, days: 3)
        #expect(try await Self.partitions(old, of: "rollups").isEmpty)
        let contents = try await Self.contents(old)
        let minutes = try await old.rollups(routeID: RollupFixtures.route, level: .minute, from: start)
        let evidence = try await old.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: start)
        // Retention on a database before 0004 still deletes, and upkeep leaves its tables alone.
        #expect(try await old.pruneMinuteRollups(before: start) == 0)
        await old.close()

        let store = try await Self.open(url: url)
        #expect(try await Self.contents(store) == contents)
        #expect(try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: start) == minutes)
        #expect(try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: start) == evidence)
        #expect(try await store.comparisonsCounted() == records.count)
        let rows = try await Self.rowsByPartition(store)
        for table in Partitions.tables {
            #expect(rows[Partitions.defaultName(of: table)] == nil, "\(table): every migrated day has its partition")
            for offset in 0..<3 {
                #expect(rows[Partitions.name(of: table, day: Day(number: Day(of: start).number + offset))] ?? 0 > 0)
            }
            #expect(try await !Self.exists(store, "\(table)_unpartitioned"))
        }
        await store.close()
    }
}
