import Foundation
import GRDB
import StranglerCore

/// The embedded diff store: one SQLite file in WAL mode, where readers (reports, gates, the
/// dashboard) run beside the one writer SQLite allows at a time, and comparisons are written in
/// batched transactions (``DiffRecorder``). Opening it applies any pending migrations (README.md,
/// "`strangler serve`": `--store`, `--migrations`).
public final class SQLiteDiffStore: DiffStore {
    /// The database, for the store's own queries and its tests; nothing outside the store module
    /// reads it.
    public let pool: DatabasePool
    /// The SQLite file's path, as given.
    public let path: String
    /// The SQLite file's path, as given.
    public var location: String { path }

    /// Opens (creating if needed) the store and brings its schema up to date.
    public init(path: String, migrations: [Migration]) throws(MigrationError) {
        self.path = path
        pool = try SQLiteFile.open(path)
        _ = try MigrationRunner(migrations: migrations).migrate(pool)
    }

    /// Timestamps as stored (``StoredTimestamp``).
    static func format(_ date: Date) -> String {
        StoredTimestamp.format(date)
    }

    static func parse(_ text: String?) -> Date? {
        text.flatMap(StoredTimestamp.parse)
    }

    /// Writes comparison rows and rollup increments in one transaction: all of it or none of it.
    /// Comparisons without differences go in multi-row inserts; a noise probe's result also
    /// updates the route's learned noise.
    public func write(_ batch: ArraySlice<ComparisonRecord>, rollups: [RouteMinuteRollup]) async throws {
        guard !batch.isEmpty || !rollups.isEmpty else { return }
        try await pool.write { db in
            for rollup in rollups { try Self.add(rollup, db) }
            guard !batch.isEmpty else { return }
            let arena = BindingArena()
            let difference = try db.cachedStatement(
                sql: "INSERT INTO differences (comparison_id, pointer, kind, primary_value, candidate_value) VALUES (?, ?, ?, ?, ?)"
            )
            var differenceRow = try DirectBinding(difference, arena: arena)
            // Comparisons without differences (most of them, on a healthy route) go in
            // multi-row statements: a statement's run has a fixed cost (cursors on the table and
            // its indexes, the program's setup) that one row per run paid every time. A
            // comparison with differences goes alone, for its row id, as does one that replaces a
            // reservoir example or keeps no row.
            var start = batch.startIndex
            while start < batch.endIndex {
                var plain = start
                while plain < batch.endIndex, Self.isPlain(batch[plain]) { plain += 1 }
                while plain - start >= 1 {
                    let rows = Self.comparisonInsertSizes.first { $0 <= plain - start }!
                    var statement = try DirectBinding(db.cachedStatement(sql: Self.comparisonInsert(rows: rows)), arena: arena)
                    for record in batch[start..<(start + rows)] { Self.bind(record, to: &statement) }
                    try statement.step()
                    start += rows
                }
                guard start < batch.endIndex else { break }
                let record = batch[start]
                switch record.row {
                case .notKept:
                    if let pointers = record.noisePointers {
                        try Self.recordNoise(db, route: record.routeID, pointers: pointers, at: Self.format(record.recordedAt))
                    }
                    start += 1
                    continue
                case .reservoir(let slot):
                    let hour = ExampleSampler<SystemRandomNumberGenerator>.hour(of: record.recordedAt)
                    try db.cachedStatement(
                        sql: "DELETE FROM comparisons WHERE route_id = ? AND reservoir_slot = ? AND recorded_at >= ? AND recorded_at < ?"
                    ).execute(arguments: [record.routeID, slot, Self.format(hour), Self.format(hour.addingTimeInterval(3600))])
                case .kept:
                    break
                }
                var row = try DirectBinding(db.cachedStatement(sql: Self.comparisonInsert(rows: 1)), arena: arena)
                Self.bind(record, to: &row)
                try row.step()
                let id = db.lastInsertedRowID
                for item in record.differences {
                    differenceRow.bind(Int(id))
                    differenceRow.bind(item.pointer)
                    differenceRow.bind(item.kind.rawValue)
                    differenceRow.bind(item.primary)
                    differenceRow.bind(item.candidate)
                    try differenceRow.step()
                }
                if let pointers = record.noisePointers {
                    try Self.recordNoise(db, route: record.routeID, pointers: pointers, at: Self.format(record.recordedAt))
                }
                start += 1
            }
        }
    }

    /// Rows per multi-row insert, largest first; a run of plain comparisons is cut greedily.
    /// A row that can go in a multi-row insert: kept outside the reservoir, with nothing else to
    /// write beside it.
    private static func isPlain(_ record: ComparisonRecord) -> Bool {
        guard case .kept = record.row else { return false }
        return record.differences.isEmpty && record.noisePointers == nil
    }

    static let comparisonInsertSizes = [64, 16, 4, 1]
    private static let comparisonInsertSQL: [Int: String] = Dictionary(
        uniqueKeysWithValues: comparisonInsertSizes.map { rows in
            let tuple = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            return (
                rows,
                """
                INSERT INTO comparisons (route_id, request_id, method, path, recorded_at, table_version, primary_upstream,
                    candidate_upstream, primary_status, candidate_status, primary_ms, candidate_ms, outcome, skip_reason, difference_count,
                    example_reason, reservoir_slot)
                VALUES \(Array(repeating: tuple, count: rows).joined(separator: ", "))
                """
            )
        }
    )

    /// The insert of `rows` comparisons (one of ``comparisonInsertSizes``).
    static func comparisonInsert(rows: Int) -> String { comparisonInsertSQL[rows]! }

    /// Binds one comparison's 15 columns, in ``comparisonInsert(rows:)``'s order.
    private static func bind(_ record: ComparisonRecord, to row: inout DirectBinding) {
        row.bind(record.routeID)
        row.bind(record.requestID)
        row.bind(record.method)
        row.bind(record.path)
        row.bind(timestamp: record.recordedAt)
        row.bind(record.tableVersion)
        row.bind(record.primaryUpstream)
        row.bind(record.candidateUpstream)
        row.bind(record.primaryStatus)
        row.bind(record.candidateStatus)
        row.bind(record.primaryMilliseconds)
        row.bind(record.candidateMilliseconds)
        row.bind(record.outcome.rawValue)
        row.bind(record.reason)
        row.bind(record.differences.count)
        switch record.row {
        case .kept(let reason):
            row.bind(reason)
            row.bind(nil as Int?)
        case .reservoir(let slot):
            row.bind("reservoir")
            row.bind(slot)
        case .notKept:
            row.bind(nil as String?)
            row.bind(nil as Int?)
        }
    }

    /// The row that counts a route's noise probes; `#` can't start a JSON pointer.
    public static let probesPointer = "#probes"

    /// Counts one probe for the route and one noisy observation per differing pointer; every
    /// row of the route carries the route's probe total in `observations`.
    private static func recordNoise(_ db: Database, route: String, pointers: [String], at time: String) throws {
        try db.execute(
            sql: """
                INSERT INTO noise (route_id, pointer, observations, noisy, first_seen, last_seen) VALUES (?, ?, 1, 0, ?, ?)
                ON CONFLICT (route_id, pointer) DO UPDATE SET observations = observations + 1, last_seen = excluded.last_seen
                """,
            arguments: [route, probesPointer, time, time]
        )
        for pointer in Set(pointers) {
            try db.execute(
                sql: """
                    INSERT INTO noise (route_id, pointer, observations, noisy, first_seen, last_seen) VALUES (?, ?, 0, 1, ?, ?)
                    ON CONFLICT (route_id, pointer) DO UPDATE SET noisy = noisy + 1, last_seen = excluded.last_seen
                    """,
                arguments: [route, pointer, time, time]
            )
        }
        try db.execute(
            sql: """
                UPDATE noise SET observations = (SELECT observations FROM noise WHERE route_id = ? AND pointer = ?)
                WHERE route_id = ? AND pointer <> ?
                """,
            arguments: [route, probesPointer, route, probesPointer]
        )
    }

    /// A route's learned noise: pointer → probes in which legacy differed from itself there. The
    /// probe count is ``noiseProbes(route:)``.
    public func noise(route: String) async throws -> [String: Int] {
        try await pool.read { db in
            var result: [String: Int] = [:]
            for row in try Row.fetchAll(
                db,
                sql: "SELECT pointer, noisy FROM noise WHERE route_id = ? AND pointer <> ?",
                arguments: [route, Self.probesPointer]
            ) {
                result[row["pointer"]] = row["noisy"]
            }
            return result
        }
    }

    /// ``noise(route:)`` for every route at once, by route id: one read for all the canaries the
    /// monitor refreshes, where one read per route cost thousands of reads every few seconds.
    public func noiseByRoute() async throws -> [String: [String: Int]] {
        try await pool.read { db in
            var result: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT route_id, pointer, noisy FROM noise WHERE pointer <> ?", arguments: [Self.probesPointer]) {
                result[row["route_id"], default: [:]][row["pointer"]] = row["noisy"]
            }
            return result
        }
    }

    /// Noise probes recorded for a route.
    public func noiseProbes(route: String) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT observations FROM noise WHERE route_id = ? AND pointer = ?",
                arguments: [route, Self.probesPointer]
            ) ?? 0
        }
    }

    /// Deletes comparisons recorded before `cutoff`, then all but the newest `maxRows`, with their
    /// differences; a nil limit is not applied. Learned noise, accepted differences, traffic and
    /// the audit trail are kept.
    /// - Returns: how many comparisons were deleted.
    public func prune(recordedBefore cutoff: Date?, maxRows: Int?) async throws -> Int {
        try await pool.write { db in
            var deleted = 0
            if let cutoff {
                try db.execute(sql: "DELETE FROM comparisons WHERE recorded_at < ?", arguments: [Self.format(cutoff)])
                deleted += db.changesCount
            }
            if let maxRows {
                try db.execute(
                    sql: "DELETE FROM comparisons WHERE id <= (SELECT id FROM comparisons ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    arguments: [maxRows]
                )
                deleted += db.changesCount
            }
            return deleted
        }
    }

    /// Copies the write-ahead log into the database file and truncates the log to nothing, so
    /// the store's size on disk is the database file's. Readers still open may make SQLite
    /// leave part of the log; the caller logs that and carries on.
    public func checkpoint() async throws {
        try await pool.writeWithoutTransaction { db in
            try db.checkpoint(.truncate)
        }
    }

    /// Number of stored comparisons, optionally for one route.
    public func comparisonCount(route: String? = nil) async throws -> Int {
        try await pool.read { db in
            if let route {
                return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM comparisons WHERE route_id = ?", arguments: [route]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM comparisons") ?? 0
        }
    }

    /// The stored differences of one request's comparison, in insertion order. (Only
    /// comparisons with differences are indexed by request id: migration 0004.)
    public func differences(requestID: String) async throws -> [Difference] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.pointer, d.kind, d.primary_value, d.candidate_value FROM differences d
                    JOIN comparisons c ON c.id = d.comparison_id WHERE c.request_id = ? AND c.difference_count > 0 ORDER BY d.id
                    """,
                arguments: [requestID]
            ).map { row in
                Difference(
                    kind: DifferenceKind(rawValue: row["kind"]) ?? .changed,
                    pointer: row["pointer"],
                    primary: row["primary_value"],
                    candidate: row["candidate_value"]
                )
            }
        }
    }
}
