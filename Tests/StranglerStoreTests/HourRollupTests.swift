import Foundation
import GRDB
import StranglerCore
import Testing

@testable import StranglerStore

/// The hour level: every rollup is added to its minute and its hour, readers take whole hours
/// and only a window's ragged first hour from minutes, and minutes age out before hours.
@Suite("Hour rollups")
struct HourRollupTests {
    static let hour = RollupFixtures.hour
    static let minute = 60.0

    // MARK: The plan, without a store.

    @Test("one bucket: the ragged first hour from minutes, then whole hours; an hour-aligned start reads hours only")
    func planOneBucket() {
        let since = Self.hour.addingTimeInterval(-1530)  // 25.5 minutes before the hour
        let plan = RollupReadPlan(since: since, minutesKeptFrom: nil, bucketSeconds: nil)
        #expect(
            plan.parts == [
                .init(level: .minute, from: Self.hour.addingTimeInterval(-1560), to: Self.hour),
                .init(level: .hour, from: Self.hour, to: nil),
            ]
        )
        #expect(RollupReadPlan(since: Self.hour, minutesKeptFrom: nil, bucketSeconds: 3600).parts == [.init(level: .hour, from: Self.hour, to: nil)])
        #expect(
            RollupReadPlan(since: Self.hour.addingTimeInterval(30), minutesKeptFrom: nil, bucketSeconds: 86_400).parts.map(\.level) == [.hour],
            "30 s into the hour is inside its first minute, which counts whole"
        )
        #expect(
            RollupReadPlan(since: Self.hour.addingTimeInterval(90), minutesKeptFrom: nil, bucketSeconds: 86_400).parts.map(\.level) == [
                .minute, .hour,
            ]
        )
    }

    @Test("where minutes are no longer kept, the first hour is read whole; fine buckets read hours there and minutes after")
    func planPastMinuteRetention() {
        let kept = Self.hour.addingTimeInterval(7200)
        let since = Self.hour.addingTimeInterval(600)
        #expect(RollupReadPlan(since: since, minutesKeptFrom: kept, bucketSeconds: nil).parts == [.init(level: .hour, from: Self.hour, to: nil)])
        #expect(
            RollupReadPlan(since: since, minutesKeptFrom: kept, bucketSeconds: 600).parts == [
                .init(level: .hour, from: Self.hour, to: kept), .init(level: .minute, from: kept, to: nil),
            ]
        )
        #expect(
            RollupReadPlan(since: kept.addingTimeInterval(90), minutesKeptFrom: kept, bucketSeconds: 60).parts == [
                .init(level: .minute, from: kept.addingTimeInterval(60), to: nil)
            ],
            "inside the kept minutes, fine buckets read minutes only"
        )
    }

    // MARK: The store.

    /// Traffic over three hours and ten minutes from two instances, written as the recorder
    /// writes it: the same open minute several times.
    static func filled() async throws -> (SQLiteDiffStore, [ComparisonRecord]) {
        let store = try DiffStoreTests.store()
        let start = Self.hour.addingTimeInterval(-600)
        let records = (0..<900).map { RollupFixtures.record(seed: UInt64($0) &* 7_046_029_254_386_353_131, start: start, minutes: 190) }
        for (index, chunk) in stride(from: 0, to: records.count, by: 50).enumerated() {
            let slice = records[chunk..<min(chunk + 50, records.count)]
            try await store.addRollups(RollupFixtures.rollups(slice, instanceID: index % 2 == 0 ? "a" : "b"))
        }
        return (store, records)
    }

    @Test("each hour holds exactly the sum of its minutes, latencies merged bucket by bucket, across instances and rewrites")
    func hoursAreSumsOfMinutes() async throws {
        let (store, _) = try await Self.filled()
        let from = Self.hour.addingTimeInterval(-3600)
        let minutes = try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: from)
        let hours = try await store.rollups(routeID: RollupFixtures.route, level: .hour, from: from)
        var summed: [RouteMinuteRollup.Key: RouteMinuteRollup] = [:]
        for rollup in minutes {
            var key = rollup.key
            key.minute = RollupLevel.hour.start(of: key.minute)
            var moved = rollup
            moved.key = key
            if summed[key] == nil { summed[key] = moved } else { summed[key]!.merge(moved) }
        }
        #expect(hours.count == summed.count && hours.count == 8, "four hours, two instances")
        for hour in hours {
            #expect(summed[hour.key] == hour, "hour \(hour.key.minute) of \(hour.key.instanceID)")
        }
    }

    @Test("every figure read from hours and a ragged first hour equals the per-minute reading, for every window and width")
    func mixedReadingEqualsMinutes() async throws {
        let (store, _) = try await Self.filled()
        let minutes = try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: Self.hour.addingTimeInterval(-7200))
        for since in [Self.hour.addingTimeInterval(-590), Self.hour, Self.hour.addingTimeInterval(3600 + 1234)] {
            for width in [nil, 60, 600, 3600, 86_400] as [Int?] {
                let mixed = try await store.breakdown(
                    routeID: RollupFixtures.route,
                    serviceUpstream: RollupFixtures.service,
                    since: since,
                    bucketSeconds: width
                )
                let reference = RouteBreakdown(
                    rollups: minutes.filter { $0.key.minute.addingTimeInterval(60) > since },
                    noise: [:],
                    noiseProbes: 0,
                    accepted: [],
                    serviceUpstream: RollupFixtures.service,
                    since: since,
                    bucketSeconds: width
                )
                let label = "since \(since), width \(width.map(String.init) ?? "none")"
                #expect(mixed.evidence == reference.evidence, "\(label)")
                #expect(mixed.pointers == reference.pointers, "\(label)")
                #expect(mixed.skipped == reference.skipped && mixed.uncomparable == reference.uncomparable, "\(label)")
                #expect(mixed.buckets.map(\.samples) == reference.buckets.map(\.samples), "\(label)")
                #expect(mixed.buckets.map(\.start) == reference.buckets.map(\.start), "\(label)")
            }
        }
    }

    @Test("after minute retention, hours keep every count; a window starting there counts its whole first hour")
    func minuteRetention() async throws {
        let (store, records) = try await Self.filled()
        let since = Self.hour.addingTimeInterval(1800)
        let before = try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: Self.hour)
        #expect(try await store.pruneMinuteRollups(before: Self.hour.addingTimeInterval(7200 + 60)) > 0)
        #expect(try await store.minuteRollupsRetainedFrom() == Self.hour.addingTimeInterval(7200))
        let left = try await store.rollups(routeID: RollupFixtures.route, level: .minute, from: Self.hour.addingTimeInterval(-7200))
        #expect(left.allSatisfy { $0.key.minute >= Self.hour.addingTimeInterval(7200) })
        // Hour-aligned windows read the same as before.
        let after = try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: Self.hour)
        #expect(after == before)
        #expect(try await store.comparisonsCounted() == records.count)
        // A window from half past counts the whole hour: the minutes that told them apart are gone.
        let widened = try await store.evidence(routeID: RollupFixtures.route, serviceUpstream: RollupFixtures.service, since: since)
        #expect(widened == before)
        #expect(try await store.firstComparison(routeID: RollupFixtures.route, since: since) == since)
        #expect(try await store.routeIDs(since: since) == [RollupFixtures.route])
        // Timelines finer than an hour draw the pruned stretch in hours, and minutes after.
        let timeline = try await store.breakdown(routeID: RollupFixtures.route, serviceUpstream: nil, since: Self.hour, bucketSeconds: 600)
        #expect(timeline.buckets.first?.start == Self.hour && timeline.buckets.dropFirst().first?.start == Self.hour.addingTimeInterval(3600))
        #expect(timeline.buckets.map(\.samples).reduce(0, +) == before.samples)
    }

    @Test("drops where only hours are kept make the whole hour a gap; where minutes are kept, the minute")
    func droppedHours() async throws {
        let store = try DiffStoreTests.store()
        let now = Date()
        let old = now.addingTimeInterval(-3 * 86_400)
        var accumulator = RollupAccumulator(instanceID: "a")
        let oldHour = RollupLevel.hour.start(of: old)
        for record in (0..<5).map({ RollupFixtures.record(seed: UInt64($0), start: oldHour, minutes: 1) }) {
            accumulator.add(record)
        }
        accumulator.addDropped(routeID: RollupFixtures.route, at: old, count: 3)
        accumulator.addDropped(routeID: RollupFixtures.route, at: now.addingTimeInterval(-600), count: 2)
        try await store.addRollups(accumulator.takeAll())
        _ = try await store.pruneMinuteRollups(before: now.addingTimeInterval(-86_400))
        let coverage = try await store.coverage(routeID: RollupFixtures.route, from: now.addingTimeInterval(-4 * 86_400), to: now)
        let recentMinute = RollupLevel.minute.start(of: now.addingTimeInterval(-600))
        #expect(
            coverage.gaps == [
                .init(from: oldHour, to: oldHour.addingTimeInterval(3600), reason: .dropped),
                .init(from: recentMinute, to: recentMinute.addingTimeInterval(60), reason: .dropped),
            ]
        )
        #expect(!coverage.complete)
    }

    @Test("migration 0006 builds the hours from a store's minutes and moves route traffic into the rollups")
    func migrationFromMinutes() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hours-\(UUID().uuidString)/store.sqlite").path
        let all = try Migration.load(directory: DiffStoreTests.migrations)
        _ = try MigrationRunner(migrations: all.filter { $0.version < 6 }).migrate(sqliteAt: path)
        var first = LatencyDistribution()
        first.record(milliseconds: 12.5)
        var second = LatencyDistribution()
        second.record(milliseconds: 40)
        second.record(milliseconds: 12.5)
        let pool = try DatabasePool(path: path)
        let minutes = [("2026-12-01T10:05:00.000Z", 3, first), ("2026-12-01T10:47:00.000Z", 4, second)]
        try await pool.write { db in
            for (minute, matches, latency) in minutes {
                try db.execute(
                    sql: "INSERT INTO rollups (route_id, minute, instance_id, matches, dropped) VALUES ('r', ?, 'a', ?, 1)",
                    arguments: [minute, matches]
                )
                try db.execute(
                    sql: """
                        INSERT INTO rollup_latencies (route_id, minute, instance_id, primary_upstream, candidate_upstream, primary_histogram,
                            candidate_histogram) VALUES ('r', ?, 'a', 'legacy', 'svc', ?, ?)
                        """,
                    arguments: [minute, Data(latency.serialized()), Data(LatencyDistribution().serialized())]
                )
                try db.execute(
                    sql:
                        "INSERT INTO rollup_pointers (route_id, minute, instance_id, pointer, kind, count, first_seen, last_seen) VALUES ('r', ?, 'a', '/x', 'changed', 2, ?, ?)",
                    arguments: [minute, minute, minute]
                )
            }
            try db.execute(
                sql: "INSERT INTO route_traffic (route_id, minute, legacy, service, service_errors) VALUES ('r', '2026-12-01T10:05', 7, 2, 1)"
            )
            try db.execute(
                sql: "INSERT INTO route_traffic (route_id, minute, legacy, service, service_errors) VALUES ('quiet', '2026-12-01T11:00', 5, 0, 0)"
            )
        }
        try pool.close()
        let store = try SQLiteDiffStore(path: path, migrations: all)
        let hours = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM hour_rollups ORDER BY route_id, minute, instance_id")
        }
        let summary = hours.map { row -> String in
            let counts = ["matches", "dropped", "legacy_served", "service_served", "service_errors"].map { "\($0)=\(row[$0] as Int)" }
            return "\(row["route_id"] as String) \(row["minute"] as String) \(row["instance_id"] as String) " + counts.joined(separator: " ")
        }
        // Traffic had no instance: it counts under the name rows recorded before rollups have.
        #expect(
            summary == [
                "quiet 2026-12-01T11:00:00.000Z before-rollups matches=0 dropped=0 legacy_served=5 service_served=0 service_errors=0",
                "r 2026-12-01T10:00:00.000Z a matches=7 dropped=2 legacy_served=0 service_served=0 service_errors=0",
                "r 2026-12-01T10:00:00.000Z before-rollups matches=0 dropped=0 legacy_served=7 service_served=2 service_errors=1",
            ]
        )
        #expect(try await store.lastLegacyTraffic(routeID: "r") == StoredTimestamp.parse("2026-12-01T10:05:00.000Z"))
        let latency = try #require(
            try await store.pool.read { db in try Data.fetchOne(db, sql: "SELECT primary_histogram FROM hour_rollup_latencies WHERE route_id = 'r'") }
        )
        var merged = first
        merged.merge(second)
        #expect(try LatencyDistribution(serialized: latency) == merged)
        let pointer = try await store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT count, first_seen, last_seen FROM hour_rollup_pointers WHERE route_id = 'r'")
        }
        let seen = pointer.map { "\($0["count"] as Int) \($0["first_seen"] as String) \($0["last_seen"] as String)" }
        #expect(seen == "4 2026-12-01T10:05:00.000Z 2026-12-01T10:47:00.000Z")
        let traffic = try await store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name = 'route_traffic'")
        }
        #expect(traffic == 0, "the old traffic table is gone")
    }
}
