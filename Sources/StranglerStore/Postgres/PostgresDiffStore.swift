import Foundation
import Logging
import NIOConcurrencyHelpers
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
public final class PostgresDiffStore: DiffStore, StoreHealthReporting {
    /// What ``open(url:migrations:logger:operationTimeout:whenUnreachable:)`` does when the
    /// database can't be reached at all (no connection, or no answer in time).
    public enum WhenUnreachable: Sendable, Equatable {
        /// The open fails: `strangler migrate`, reports, and a proxy that must not start without
        /// its store.
        case fail
        /// The open returns a store that owes its migrations: every operation fails at once until
        /// the database answers, and the first one after that migrates first. A proxy restarted
        /// during an outage starts and serves from its last known route table. A server that
        /// answers with a refusal (a wrong password, a missing database) still fails the open:
        /// that is a configuration to fix, not an outage to wait out.
        case connectLater
    }

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
    /// The migrations the store applies before its first operation when it was opened without
    /// reaching the database; unused once ``schema`` says they ran.
    private let migrations: [Migration]
    /// Whether those migrations have run, and the attempt under way if not.
    private let schema: SchemaGate
    /// What ``health`` answers, from every bounded operation's outcome.
    private let healthTracker: StoreHealthTracker

    public var location: String { url.description }

    /// Whether the database answers: ``StoreHealth/State/ok``, ``StoreHealth/State/unreachable``
    /// after an operation found no answer, or ``StoreHealth/State/notYetReached`` for a store
    /// opened with ``WhenUnreachable/connectLater`` that has not reached its database since. A
    /// query the server refused (a constraint, a bad statement) leaves it as it is: the server
    /// answered.
    public var health: StoreHealth { healthTracker.health }

    /// Connects, applies pending migrations and returns the store; the pool keeps running until
    /// ``close()``.
    /// - Parameters:
    ///   - operationTimeout: the longest one operation may take before it fails with
    ///     ``PostgresStoreError`` (the recorder then keeps its counts and retries).
    ///   - whenUnreachable: whether a database that can't be reached fails the open (the
    ///     default) or yields a store that connects and migrates later.
    /// - Throws: ``PostgresStoreError`` with the server's or the network's words, or
    ///   ``MigrationError``; with ``WhenUnreachable/connectLater``, only when the server answered.
    public static func open(
        url: PostgresStoreURL,
        migrations: [Migration],
        logger: Logger,
        operationTimeout: Duration = .seconds(5),
        whenUnreachable: WhenUnreachable = .fail
    ) async throws -> PostgresDiffStore {
        do {
            try await checkReachable(url, logger: logger, timeout: operationTimeout)
        } catch let error as PostgresStoreError where error.isOutage && whenUnreachable == .connectLater {
            return await owing(migrations, url: url, logger: logger, operationTimeout: operationTimeout, reason: error.cause)
        }
        let store = PostgresDiffStore(url: url, logger: logger, operationTimeout: operationTimeout, migrations: [], migrated: true)
        // Lets the pool's run task start before the first lease, which PostgresNIO would
        // otherwise warn about (harmlessly) at every start.
        await Task.yield()
        do {
            _ = try await PostgresMigrationRunner(migrations: migrations).migrate(store.client, location: url.description, logger: logger)
        } catch {
            await store.close()
            // The server went away between the check and the migrations: an outage too.
            if whenUnreachable == .connectLater, isOutage(error) {
                return await owing(migrations, url: url, logger: logger, operationTimeout: operationTimeout, reason: "\(error)")
            }
            throw error
        }
        // Today's and the coming days' minute rollup partitions; retention keeps them coming.
        await store.keepMinutePartitions(now: Date())
        return store
    }

    /// A store whose database was not reached at open, and that migrates before its first
    /// operation.
    private static func owing(
        _ migrations: [Migration],
        url: PostgresStoreURL,
        logger: Logger,
        operationTimeout: Duration,
        reason: String
    ) async -> PostgresDiffStore {
        let store = PostgresDiffStore(url: url, logger: logger, operationTimeout: operationTimeout, migrations: migrations, migrated: false)
        store.healthTracker.notReachedAtOpen(reason)
        await Task.yield()
        return store
    }

    /// Opens and closes one connection, so that a server that refuses (a wrong password, a
    /// missing database) or can't be reached says so in its own words at start, rather than
    /// after the pool's retries as a timeout.
    static func checkReachable(_ url: PostgresStoreURL, logger: Logger, timeout: Duration) async throws {
        try await withTimeout(timeout, location: url.description, hint: "check the URL's host, port, user, password and database") {
            var configuration = try url.connectionConfiguration()
            // Connecting can't be cancelled: a shorter timeout must be the connect's own too, or
            // a host that drops packets would hold the caller for the configured connect timeout.
            configuration.options.connectTimeout = min(configuration.options.connectTimeout, TimeAmount(timeout))
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try await connection.close()
        }
    }

    /// Connects, applies pending migrations and disconnects: `strangler migrate`.
    public static func migrate(url: PostgresStoreURL, migrations: [Migration], logger: Logger) async throws -> MigrationRunner.Outcome {
        try await checkReachable(url, logger: logger, timeout: .seconds(10))
        let store = PostgresDiffStore(url: url, logger: logger, operationTimeout: .seconds(60), migrations: [], migrated: true)
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

    private init(url: PostgresStoreURL, logger: Logger, operationTimeout: Duration, migrations: [Migration], migrated: Bool) {
        self.url = url
        self.logger = logger
        self.operationTimeout = operationTimeout
        self.migrations = migrations
        schema = SchemaGate(migrated: migrated)
        healthTracker = StoreHealthTracker(location: url.description, logger: logger)
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

    /// Reaches the database on a connection of its own, then applies the migrations the store
    /// owes, within one ``operationTimeout``. The direct connection comes first because it fails
    /// at once when the server refuses connections, where a lease from the pool would wait the
    /// whole timeout while the pool retries; and it carries the server's own refusal.
    private func applyOwedMigrations() async throws {
        let started = ContinuousClock.now
        do {
            try await Self.withTimeout(operationTimeout, location: location) { [url, client, logger, migrations, operationTimeout] in
                try await Self.checkReachable(url, logger: logger, timeout: operationTimeout)
                _ = try await PostgresMigrationRunner(migrations: migrations).migrate(client, location: url.description, logger: logger)
            }
        } catch let error as PostgresStoreError {
            healthTracker.failed(error.cause, outage: error.isOutage, startedAt: started)
            let cause =
                error.isOutage
                ? "the database has not been reached since the store opened: \(error.cause). Nothing is read or written until it answers; the first operation then applies the migrations"
                : "the store is not ready: \(error.cause)"
            throw PostgresStoreError(location: location, cause: cause, isOutage: error.isOutage)
        }
        healthTracker.answered(startedAt: started)
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
    ///
    /// A store that owes its migrations applies them first (each attempt within its own
    /// ``operationTimeout``). The outcome updates ``health``: an answer makes it ok, no answer
    /// (see ``PostgresStoreError/isOutage``) unreachable, and a refusal of the query itself
    /// leaves it as it is.
    func bounded<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        // Owed migrations report their own outcome to the health (once per attempt, not once per
        // operation waiting on it).
        try await schema.ensureMigrated { [self] in try await applyOwedMigrations() }
        let started = ContinuousClock.now
        do {
            let result = try await Self.withTimeout(operationTimeout, location: location, operation)
            healthTracker.answered(startedAt: started)
            return result
        } catch let error as PostgresStoreError where error.isOutage {
            healthTracker.failed(error.cause, outage: true, startedAt: started)
            throw error
        }
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
                    throw PostgresStoreError(
                        location: location,
                        cause: "no answer within \(timeout); is the database up and reachable?",
                        isOutage: true
                    )
                }
                return result
            }
        } catch let error as PostgresStoreError {
            throw error
        } catch {
            throw PostgresStoreError(
                location: location,
                cause: PostgresErrorText.describe(error) + (hint.map { "; \($0)" } ?? ""),
                isOutage: isOutage(error)
            )
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
    /// Whether the database could not be reached (no connection, a connection that broke, a
    /// server shutting down or starting up, no answer in time) rather than answered with a
    /// refusal: an outage to wait out, where a refusal is the operation's or the configuration's
    /// own fault.
    public var isOutage: Bool = false

    public var description: String {
        "the store at \(location) failed: \(cause)"
    }
}

extension PostgresDiffStore {
    /// Whether `error` means the database was not reached or stopped answering, rather than that
    /// it refused: the store's health changes on the first kind only (a unique violation is not
    /// an outage), and a store opened with ``WhenUnreachable/connectLater`` waits out the first
    /// kind only (a wrong password is not an outage either).
    static func isOutage(_ error: any Error) -> Bool {
        switch error {
        case let error as PostgresStoreError:
            return error.isOutage
        case let error as PostgresTransactionError:
            guard let inner = error.closureError ?? error.beginError ?? error.commitError else { return false }
            return isOutage(inner)
        case let error as PSQLError:
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
                return true
            case .server:
                // The server answered, but only to say it can't serve now: class 08 (connection
                // exception), shutting down (57P01, 57P02), starting up (57P03), or out of
                // connection slots (53300).
                guard let state = error.serverInfo?[.sqlState] else { return false }
                return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(state)
            default:
                return false
            }
        case let error as MigrationError:
            // The runner's word for a connection it could not get or keep.
            if case .storeUnavailable = error { return true }
            return false
        case is IOError, is ChannelError:
            return true
        default:
            // The pool's own refusal once it has failed to connect for a while (it keeps retrying
            // in the background); its type is in a module this one does not import.
            return "\(error)".contains("connectionCreationCircuitBreakerTripped")
        }
    }
}

/// Whether a store's migrations have run, and the one attempt under way if they haven't.
///
/// A store opened before its database could be reached owes its migrations, and no query may run
/// before them: the tables might not exist yet. Many operations can arrive at once (the recorder,
/// the admin API, the route table follower), and the migrations must run once, not once per
/// operation: an operation that finds an attempt under way waits for that one, and a failed
/// attempt is forgotten, so that the next operation tries again. The attempt is a task of its own
/// rather than the first caller's work, so that callers arriving later share it whatever becomes
/// of the first; it is bounded by the store's operation timeout, so waiting on it is bounded too.
/// Once migrated, the check is one lock, without a suspension.
final class SchemaGate: Sendable {
    private enum State: Sendable {
        case migrated
        case owed
        case attempting(Task<Void, any Error>)
    }

    private let state: NIOLockedValueBox<State>

    init(migrated: Bool) {
        state = NIOLockedValueBox(migrated ? .migrated : .owed)
    }

    /// Returns once the migrations have run: at once when they have, else after `attempt` (or
    /// the attempt already under way) succeeds; throws that attempt's error when it fails.
    func ensureMigrated(by attempt: @escaping @Sendable () async throws -> Void) async throws {
        let pending: Task<Void, any Error>? = state.withLockedValue { state in
            switch state {
            case .migrated:
                return nil
            case .attempting(let task):
                return task
            case .owed:
                // The task settles the state itself (after this lock is released), so the state
                // is right however many callers wait on it, and even if none is left.
                let task = Task {
                    do {
                        try await attempt()
                        self.state.withLockedValue { $0 = .migrated }
                    } catch {
                        self.state.withLockedValue { $0 = .owed }
                        throw error
                    }
                }
                state = .attempting(task)
                return task
            }
        }
        try await pending?.value
    }
}
