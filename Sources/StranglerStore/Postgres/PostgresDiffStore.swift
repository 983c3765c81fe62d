import Foundation
import Logging
import NIOCore
import PostgresNIO
import StranglerCore

/// The shared store: PostgreSQL, for several proxy instances that must see one truth. It
/// answers every question the embedded ``SQLiteDiffStore`` answers, from the same tables
/// (`migrations/postgres/`), and is tested against the same expectations.
///
/// Writes are batched: the rows of a recorder batch go in one `INSERT … SELECT FROM UNNEST`
/// per table, and rollups merge with `INSERT … ON CONFLICT DO UPDATE`, adding to what each
/// instance's minute and hour already hold. Instances write their own rollup rows (rollups are
/// keyed by instance); the few rows they share (learned noise, when a route was first compared)
/// are written in sorted order, so concurrent transactions can wait on each other but never
/// deadlock.
public final class PostgresDiffStore: DiffStore {
    /// The connection pool. Nothing outside the store module uses it but its tests.
    public let client: PostgresClient
    /// Where the store is, without its password.
    public let url: PostgresStoreURL
    let logger: Logger
    /// The longest one store operation (a transaction, a read) may take, waiting for a
    /// connection included; PostgresNIO's pool would otherwise hold a request while it retries
    /// an unreachable server, and the recorder's writes behind it.
    let operationTimeout: Duration
    private let running: Task<Void, Never>

    public var location: String { url.description }

    /// Connects, applies pending migrations and returns the store; the pool keeps running until
    /// ``close()``.
    /// - Parameter operationTimeout: the longest one operation may take before it fails with
    ///   ``PostgresStoreError`` (the recorder then keeps its counts and retries).
    public static func open(
        url: PostgresStoreURL,
        migrations: [Migration],
        logger: Logger,
        operationTimeout: Duration = .seconds(5)
    ) async throws -> PostgresDiffStore {
        try await checkReachable(url, logger: logger, timeout: operationTimeout)
        let store = PostgresDiffStore(url: url, logger: logger, operationTimeout: operationTimeout)
        // Lets the pool's run task start before the first lease, which PostgresNIO would
        // otherwise warn about (harmlessly) at every start.
        await Task.yield()
        do {
            _ = try await PostgresMigrationRunner(migrations: migrations).migrate(store.client, location: url.description, logger: logger)
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    /// Opens and closes one connection, so that a server that refuses (a wrong password, a
    /// missing database) or can't be reached says so in its own words at start, rather than
    /// after the pool's retries as a timeout.
    static func checkReachable(_ url: PostgresStoreURL, logger: Logger, timeout: Duration) async throws {
        try await withTimeout(timeout, location: url.description, hint: "check the URL's host, port, user, password and database") {
            let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0, logger: logger)
            try await connection.close()
        }
    }

    /// Connects, applies pending migrations and disconnects: `strangler migrate`.
    public static func migrate(url: PostgresStoreURL, migrations: [Migration], logger: Logger) async throws -> MigrationRunner.Outcome {
        try await checkReachable(url, logger: logger, timeout: .seconds(10))
        let store = PostgresDiffStore(url: url, logger: logger, operationTimeout: .seconds(60))
        await Task.yield()
        do {
            let outcome = try await PostgresMigrationRunner(migrations: migrations).migrate(store.client, location: url.description, logger: logger)
            await store.close()
            return outcome
        } catch {
            await store.close()
            throw error
        }
    }

    private init(url: PostgresStoreURL, logger: Logger, operationTimeout: Duration) {
        self.url = url
        self.logger = logger
        self.operationTimeout = operationTimeout
        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        self.client = client
        running = Task { await client.run() }
    }

    /// Closes the pool's connections.
    public func close() async {
        running.cancel()
        await running.value
    }

    deinit {
        running.cancel()
    }

    // MARK: Writing

    /// Writes comparison rows and rollup increments in one transaction: all of it or none of it.
    ///
    /// A write whose outcome the store did not see (it timed out, or the connection broke after
    /// COMMIT went out) is checked before it is reported as failed: the transaction recorded a
    /// token, and claiming that token waits for the transaction to end. Found, the write
    /// committed and succeeds; claimed, it did not, and the caller retries its counts without
    /// counting anything twice. Only when the check can't reach the database either is a
    /// committed write reported as failed.
    public func write(_ batch: ArraySlice<ComparisonRecord>, rollups: [RouteMinuteRollup]) async throws {
        guard !batch.isEmpty || !rollups.isEmpty else { return }
        let token = UUID().uuidString
        let now = StoredTimestamp.format(Date())
        do {
            try await transaction { connection in
                try await connection.query("INSERT INTO store_writes (token, written_at) VALUES (\(token), \(now))", logger: self.logger)
                try await Self.add(rollups, connection, self.logger)
                try await Self.insert(batch, connection, self.logger)
            }
        } catch {
            let claimed = try? await read(
                "INSERT INTO store_writes (token, written_at) VALUES (\(token), \(now)) ON CONFLICT DO NOTHING RETURNING 1",
                as: (Int.self)
            ) { $0 }
            if claimed?.isEmpty == true {
                logger.notice("a store write reported failed had committed; counted once", metadata: ["error": "\(error)"])
                return
            }
            throw error
        }
    }

    /// Runs `body` in a transaction, with PostgreSQL's own words in the error if it fails.
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        try await bounded { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    /// Runs `operation` for at most ``operationTimeout``; a failure carries PostgreSQL's words.
    /// On timeout the operation is cancelled (a transaction cut short rolls back, as PostgreSQL
    /// drops a connection's open transaction).
    func bounded<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        try await Self.withTimeout(operationTimeout, location: location, operation)
    }

    /// Runs `operation` for at most `timeout`, and turns any failure into a
    /// ``PostgresStoreError`` naming the store, with `hint` after a failure that is not the
    /// timeout.
    static func withTimeout<Result: Sendable>(
        _ timeout: Duration,
        location: String,
        hint: String? = nil,
        _ operation: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        do {
            return try await withThrowingTaskGroup(of: Result?.self) { group in
                group.addTask { try await operation() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let result = first else {
                    throw PostgresStoreError(location: location, cause: "no answer within \(timeout); is the database up and reachable?")
                }
                return result
            }
        } catch let error as PostgresStoreError {
            throw error
        } catch {
            throw PostgresStoreError(location: location, cause: PostgresErrorText.describe(error) + (hint.map { "; \($0)" } ?? ""))
        }
    }

    /// Runs one read query and collects what `row` makes of each row.
    func read<each Column: PostgresDecodable, Value: Sendable>(
        _ query: PostgresQuery,
        as types: (repeat each Column).Type,
        _ row: @escaping @Sendable (repeat each Column) throws -> Value
    ) async throws -> [Value] {
        try await bounded { [client, logger] in
            var values: [Value] = []
            for try await columns in try await client.query(query, logger: logger).decode(types) {
                values.append(try row(repeat each columns))
            }
            return values
        }
    }

    /// Runs `body` on one connection inside a read-only REPEATABLE READ transaction: every query
    /// of a reading sees the same snapshot, as the SQLite store's readers do, so a write that
    /// commits between two of them can't make a bucket count mismatches its samples don't have.
    func snapshot<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        try await bounded { [client, logger] in
            try await client.withConnection { connection in
                try await connection.query("START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                do {
                    let result = try await body(connection)
                    try await connection.query("COMMIT", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    /// One query's rows on `connection`, each made into a value by `row`.
    static func fetch<each Column: PostgresDecodable, Value>(
        _ connection: PostgresConnection,
        _ query: PostgresQuery,
        as types: (repeat each Column).Type,
        logger: Logger,
        _ row: (repeat each Column) throws -> Value
    ) async throws -> [Value] {
        var values: [Value] = []
        for try await columns in try await connection.query(query, logger: logger).decode(types) {
            values.append(try row(repeat each columns))
        }
        return values
    }

    /// Runs one statement outside an explicit transaction.
    func execute(_ query: PostgresQuery) async throws {
        try await bounded { [client, logger] in
            try await client.query(query, logger: logger)
            return ()
        }
    }

    /// Inserts the batch's kept rows and their differences, replaces reservoir examples, and
    /// counts noise probes: a few statements per batch, whatever its size.
    private static func insert(_ batch: ArraySlice<ComparisonRecord>, _ connection: PostgresConnection, _ logger: Logger) async throws {
        var kept: [ComparisonRecord] = []
        var reservoir: [String: Int] = [:]
        var probes: [ComparisonRecord] = []
        for record in batch {
            if record.noisePointers != nil { probes.append(record) }
            switch record.row {
            case .notKept:
                continue
            case .reservoir(let slot):
                // A later example of the same slot and hour replaces an earlier one in the batch
                // too: only the last is inserted.
                let key =
                    "\(record.routeID)\u{0}\(slot)\u{0}\(StoredTimestamp.format(ExampleSampler<SystemRandomNumberGenerator>.hour(of: record.recordedAt)))"
                if let earlier = reservoir[key] { kept[earlier].row = .notKept }
                reservoir[key] = kept.count
            case .kept:
                break
            }
            kept.append(record)
        }
        kept.removeAll { $0.row == .notKept }
        let replaced = kept.compactMap { record -> (String, Int, String, String)? in
            guard case .reservoir(let slot) = record.row else { return nil }
            let hour = ExampleSampler<SystemRandomNumberGenerator>.hour(of: record.recordedAt)
            return (record.routeID, slot, StoredTimestamp.format(hour), StoredTimestamp.format(hour.addingTimeInterval(3600)))
        }
        if !replaced.isEmpty {
            try await connection.query(
                """
                DELETE FROM comparisons c USING UNNEST(\(replaced.map(\.0)), \(replaced.map(\.1)), \(replaced.map(\.2)), \(replaced.map(\.3)))
                    AS r(route_id, slot, hour_from, hour_to)
                WHERE c.route_id = r.route_id AND c.reservoir_slot = r.slot AND c.recorded_at >= r.hour_from AND c.recorded_at < r.hour_to
                """,
                logger: logger
            )
        }
        if !kept.isEmpty {
            // Ids first, so each difference can name its comparison without relying on the order
            // an INSERT returns its rows in.
            var ids: [Int64] = []
            for try await id in try await connection.query(
                "SELECT nextval('comparisons_id_seq') FROM generate_series(1, \(kept.count))",
                logger: logger
            ).decode(Int64.self) {
                ids.append(id)
            }
            // Nullable columns travel as arrays of plain values with a stand-in for "none" (-1
            // for numbers that are never negative, NaN for latencies, "" for reasons), which
            // NULLIF turns back into NULL: PostgreSQL arrays of optionals don't bind.
            let reasons = kept.map { record -> String in
                switch record.row {
                case .kept(let reason): reason ?? ""
                case .reservoir: "reservoir"
                case .notKept: ""
                }
            }
            let slots = kept.map { record -> Int in
                if case .reservoir(let slot) = record.row { return slot }
                return -1
            }
            try await connection.query(
                """
                INSERT INTO comparisons (id, route_id, request_id, method, path, recorded_at, table_version, primary_upstream,
                    candidate_upstream, primary_status, candidate_status, primary_ms, candidate_ms, outcome, skip_reason,
                    difference_count, example_reason, reservoir_slot)
                SELECT id, route_id, request_id, method, path, recorded_at, table_version, primary_upstream, candidate_upstream,
                    NULLIF(primary_status, -1), NULLIF(candidate_status, -1), NULLIF(primary_ms, 'NaN'::float8),
                    NULLIF(candidate_ms, 'NaN'::float8), outcome, NULLIF(skip_reason, ''), difference_count,
                    NULLIF(example_reason, ''), NULLIF(reservoir_slot, -1)
                FROM UNNEST(\(ids), \(kept.map(\.routeID)), \(kept.map(\.requestID)), \(kept.map(\.method)), \(kept.map(\.path)),
                    \(kept.map { StoredTimestamp.format($0.recordedAt) }), \(kept.map(\.tableVersion)), \(kept.map(\.primaryUpstream)),
                    \(kept.map(\.candidateUpstream)), \(kept.map { $0.primaryStatus ?? -1 }), \(kept.map { $0.candidateStatus ?? -1 }),
                    \(kept.map { $0.primaryMilliseconds ?? .nan }), \(kept.map { $0.candidateMilliseconds ?? .nan }),
                    \(kept.map(\.outcome.rawValue)), \(kept.map { $0.reason ?? "" }), \(kept.map(\.differences.count)), \(reasons), \(slots))
                    AS r(id, route_id, request_id, method, path, recorded_at, table_version, primary_upstream, candidate_upstream,
                        primary_status, candidate_status, primary_ms, candidate_ms, outcome, skip_reason, difference_count,
                        example_reason, reservoir_slot)
                """,
                logger: logger
            )
            var owners: [Int64] = []
            var differences: [Difference] = []
            for (id, record) in zip(ids, kept) {
                for difference in record.differences {
                    owners.append(id)
                    differences.append(difference)
                }
            }
            if !differences.isEmpty {
                // Values may be absent (a missing field): a parallel array says which are.
                try await connection.query(
                    """
                    INSERT INTO differences (comparison_id, pointer, kind, primary_value, candidate_value)
                    SELECT comparison_id, pointer, kind, CASE WHEN has_primary THEN primary_value END,
                        CASE WHEN has_candidate THEN candidate_value END
                    FROM UNNEST(\(owners), \(differences.map(\.pointer)), \(differences.map(\.kind.rawValue)),
                        \(differences.map { $0.primary ?? "" }), \(differences.map { $0.primary != nil }),
                        \(differences.map { $0.candidate ?? "" }), \(differences.map { $0.candidate != nil }))
                        WITH ORDINALITY AS r(comparison_id, pointer, kind, primary_value, has_primary, candidate_value, has_candidate, n)
                    ORDER BY n
                    """,
                    logger: logger
                )
            }
        }
        if !probes.isEmpty { try await recordNoise(probes, connection, logger) }
    }

    /// Counts noise probes per route, and a noisy observation per differing pointer, as the
    /// SQLite store does: every row of a route carries the route's probe total.
    private static func recordNoise(_ probes: [ComparisonRecord], _ connection: PostgresConnection, _ logger: Logger) async throws {
        struct Tally {
            var probes = 0
            var noisy: [String: Int] = [:]
            var first: String
            var last: String
        }
        var byRoute: [String: Tally] = [:]
        for probe in probes {
            let time = StoredTimestamp.format(probe.recordedAt)
            var tally = byRoute[probe.routeID] ?? Tally(first: time, last: time)
            tally.probes += 1
            tally.first = min(tally.first, time)
            tally.last = max(tally.last, time)
            for pointer in Set(probe.noisePointers ?? []) { tally.noisy[pointer, default: 0] += 1 }
            byRoute[probe.routeID] = tally
        }
        let pointer = SQLiteDiffStore.probesPointer
        // Noise rows are shared by every instance: routes and pointers in sorted order, so
        // concurrent writers lock them in one order.
        for (route, tally) in byRoute.sorted(by: { $0.key < $1.key }) {
            try await connection.query(
                """
                INSERT INTO noise (route_id, pointer, observations, noisy, first_seen, last_seen)
                VALUES (\(route), \(pointer), \(tally.probes), 0, \(tally.first), \(tally.last))
                ON CONFLICT (route_id, pointer) DO UPDATE SET observations = noise.observations + excluded.observations,
                    last_seen = GREATEST(noise.last_seen, excluded.last_seen)
                """,
                logger: logger
            )
            if !tally.noisy.isEmpty {
                let pointers = tally.noisy.keys.sorted()
                try await connection.query(
                    """
                    INSERT INTO noise (route_id, pointer, observations, noisy, first_seen, last_seen)
                    SELECT \(route), pointer, 0, noisy, \(tally.first), \(tally.last) FROM UNNEST(\(pointers), \(pointers.map { tally.noisy[$0]! })) AS r(pointer, noisy)
                    ON CONFLICT (route_id, pointer) DO UPDATE SET noisy = noise.noisy + excluded.noisy,
                        last_seen = GREATEST(noise.last_seen, excluded.last_seen)
                    """,
                    logger: logger
                )
            }
            try await connection.query(
                """
                UPDATE noise SET observations = (SELECT observations FROM noise WHERE route_id = \(route) AND pointer = \(pointer))
                WHERE route_id = \(route) AND pointer <> \(pointer)
                """,
                logger: logger
            )
        }
    }

    /// Nothing to move: PostgreSQL manages its own log.
    public func checkpoint() async throws {}

    /// Deletes example comparisons recorded before `cutoff`, then all but the newest `maxRows`.
    public func prune(recordedBefore cutoff: Date?, maxRows: Int?) async throws -> Int {
        try await transaction { connection in
            var deleted = 0
            if let cutoff {
                let rows = try await connection.query(
                    "WITH gone AS (DELETE FROM comparisons WHERE recorded_at < \(StoredTimestamp.format(cutoff)) RETURNING 1) SELECT COUNT(*) FROM gone",
                    logger: self.logger
                )
                for try await count in rows.decode(Int.self) { deleted += count }
            }
            try await connection.query(
                "DELETE FROM store_writes WHERE written_at < \(StoredTimestamp.format(Date().addingTimeInterval(-86_400)))",
                logger: self.logger
            )
            if let maxRows {
                let rows = try await connection.query(
                    """
                    WITH gone AS (DELETE FROM comparisons WHERE id <= (SELECT id FROM comparisons ORDER BY id DESC LIMIT 1 OFFSET \(maxRows))
                        RETURNING 1) SELECT COUNT(*) FROM gone
                    """,
                    logger: self.logger
                )
                for try await count in rows.decode(Int.self) { deleted += count }
            }
            return deleted
        }
    }

    /// The database's size on disk in bytes (`pg_database_size`), for the store-growth bench.
    public func databaseSize() async throws -> Int {
        try await read("SELECT pg_database_size(current_database())", as: (Int.self)) { $0 }.first ?? 0
    }

    /// Number of stored example comparisons, optionally for one route.
    public func comparisonCount(route: String? = nil) async throws -> Int {
        let query: PostgresQuery =
            if let route { "SELECT COUNT(*) FROM comparisons WHERE route_id = \(route)" } else { "SELECT COUNT(*) FROM comparisons" }
        return try await read(query, as: (Int.self)) { $0 }.first ?? 0
    }
}

/// A PostgreSQL store operation that failed: where, and PostgreSQL's own words.
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public var location: String
    public var cause: String

    public var description: String {
        "the store at \(location) failed: \(cause)"
    }
}
