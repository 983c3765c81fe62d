import ArgumentParser
import Foundation
import Logging
import StranglerAdmin
import StranglerControl
import StranglerProxy
import StranglerStore

/// `--store`, `--migrations` and retention, shared by `serve` and `demo`.
struct StoreOptions: ParsableArguments {
    @Option(
        help: """
            The diff store: a SQLite file, or a postgres://USER@HOST:PORT/DB URL shared by several instances (default: \
            $STRANGLER_STORE, else strangler.sqlite beside the routes file). Migrations are applied on start.
            """
    )
    var store: String?

    @Option(help: "The folder of numbered .sql migrations (default: ./migrations, or the one beside the executable's checkout).")
    var migrations: String?

    @Option(
        name: .customLong("instance-id"),
        help: """
            This instance's name in the rollups it writes (letters, digits, '.', '_', '-'). By default one is made from the \
            host name once and kept in STORE.instance (strangler.instance beside the routes file for a postgres:// store), so \
            a restart continues its rows. Instances sharing a postgres:// store and a routes folder each need their own.
            """
    )
    var instanceID: String?

    @Option(help: "Delete example comparisons (the sampled detail rows) older than this many days.")
    var retentionDays = 14

    @Option(help: "Delete rollups (the evidence gates and reports read, per hour and per minute) older than this many days.")
    var rollupRetentionDays = 400

    @Option(
        help: """
            Delete per-minute rollups older than this many days (default 8, at most --rollup-retention-days); their hours \
            stay. Windows that start earlier count their first hour whole, and timelines there are drawn in hours.
            """
    )
    var minuteRollupRetentionDays: Int?

    /// Minutes are kept 8 days unless told otherwise, and never longer than the hours.
    var minuteRetentionDays: Int { minuteRollupRetentionDays ?? min(8, rollupRetentionDays) }

    @Option(help: "A safety net: keep at most this many example rows. Reaching it is logged as an error.")
    var retentionRows = 1_000_000

    @Option(help: "Example rows kept per route, pointer and kind each hour.")
    var examplesPerPointer = 5

    @Option(help: "Status-mismatch example rows kept per route each hour.")
    var exampleStatusCap = 100

    @Option(help: "Reservoir example rows per route each hour (a uniform sample of the other mismatches, uncomparable and skipped).")
    var exampleReservoir = 20

    mutating func validate() throws {
        let limits: [(String, Int, Int)] = [
            ("--retention-days", retentionDays, 1), ("--rollup-retention-days", rollupRetentionDays, 1),
            ("--minute-rollup-retention-days", minuteRetentionDays, 1),
            ("--retention-rows", retentionRows, 1), ("--examples-per-pointer", examplesPerPointer, 0),
            ("--example-status-cap", exampleStatusCap, 0), ("--example-reservoir", exampleReservoir, 0),
        ]
        for (name, value, minimum) in limits where value < minimum {
            throw ValidationError("\(name) must be at least \(minimum), got \(value)")
        }
        if let minuteRollupRetentionDays, rollupRetentionDays < minuteRollupRetentionDays {
            throw ValidationError(
                "--minute-rollup-retention-days (\(minuteRollupRetentionDays)) is longer than --rollup-retention-days (\(rollupRetentionDays)): minutes are kept no longer than their hours"
            )
        }
        if rollupRetentionDays < retentionDays {
            throw ValidationError(
                "--rollup-retention-days (\(rollupRetentionDays)) is shorter than --retention-days (\(retentionDays)): examples would outlive the evidence they illustrate"
            )
        }
    }

    /// The store path for a routes file.
    func storePath(routes: String) -> String {
        StoreLocation.path(explicit: store, routes: routes)
    }

    /// The opened store with the recorder and the comparison worker that feed it.
    struct Pipeline {
        var store: any DiffStore
        var recorder: DiffRecorder
        var worker: ComparisonWorker
        var path: String
        /// With a shared store: who of the instances runs the cluster's duties (retention,
        /// auto-demote); nil with SQLite, where this instance is alone.
        var leadership: PostgresLeadership?
    }

    /// Opens the store (applying migrations) and builds the recorder and comparison worker.
    func makePipeline(routes: String, defaultStore: String? = nil, metrics: ProxyMetrics, logger: Logger) async throws -> Pipeline {
        let path = store ?? defaultStore ?? storePath(routes: routes)
        // A proxy starts while its shared database is away: it serves its last table and records
        // once the database answers. A refused login or a missing database still stops it.
        let store = try await StoreLocation.open(path: path, migrations: migrations, logger: logger, whenUnreachable: .connectLater)
        // A shared store has no file of this instance's to keep its name beside: it is kept beside
        // the routes file instead.
        let identityFile =
            PostgresStoreURL.isPostgres(path)
            ? URL(fileURLWithPath: routes).deletingLastPathComponent().appendingPathComponent("strangler.instance").path
            : InstanceIdentity.file(besideSQLiteStore: path)
        let instance =
            try instanceID.map { id throws(InstanceIdentityError) in try InstanceIdentity(id: id) }
            ?? InstanceIdentity.load(from: identityFile)
        let leadership = (store as? PostgresDiffStore).map { PostgresLeadership(url: $0.url, instance: instance.id, logger: logger) }
        let recorder = DiffRecorder(
            store: store,
            retention: .init(
                maxAgeDays: retentionDays,
                maxRows: retentionRows,
                rollupDays: rollupRetentionDays,
                minuteRollupDays: minuteRetentionDays
            ),
            leadership: leadership ?? SingleInstanceLeadership(),
            instanceID: instance.id,
            examples: .init(firstPerPointer: examplesPerPointer, statusCap: exampleStatusCap, reservoirSize: exampleReservoir),
            logger: logger
        )
        let location = (store as? PostgresDiffStore)?.location ?? path
        return Pipeline(
            store: store,
            recorder: recorder,
            worker: ComparisonWorker(recorder: recorder, metrics: metrics, logger: logger),
            path: location,
            leadership: leadership
        )
    }
}

/// Where the diff store is, for every command: `--store`, else `$STRANGLER_STORE`, else
/// `strangler.sqlite` beside the routes file; and opening it with the migrations applied. A
/// `postgres://` (or `postgresql://`) location is the shared PostgreSQL store, with the
/// migrations of `migrations/postgres/`.
enum StoreLocation {
    /// Opens the store at `path`, a SQLite file or a PostgreSQL URL, applying pending migrations.
    /// - Parameter whenUnreachable: for a PostgreSQL store whose server does not answer: fail
    ///   (commands), or open and connect later (a proxy, which must start and serve anyway).
    static func open(
        path: String,
        migrations: String?,
        logger: Logger,
        whenUnreachable: PostgresDiffStore.WhenUnreachable = .fail
    ) async throws -> any DiffStore {
        guard PostgresStoreURL.isPostgres(path) else { return try open(path: path, migrations: migrations) }
        let url = try PostgresStoreURL(path)
        let directory = try MigrationsLocator.find(explicit: migrations)
        return try await PostgresDiffStore.open(
            url: url,
            migrations: try PostgresMigrationRunner.load(directory: directory),
            logger: logger,
            whenUnreachable: whenUnreachable
        )
    }

    /// Lets a PostgreSQL store's connections go; nothing for a SQLite file.
    /// `path` as messages show it: a PostgreSQL URL without its password.
    static func shown(_ path: String) -> String {
        guard PostgresStoreURL.isPostgres(path) else { return path }
        return (try? PostgresStoreURL(path).description) ?? "the postgres:// store URL"
    }

    static func close(_ store: any DiffStore) async {
        if let store = store as? PostgresDiffStore { await store.close() }
    }

    static func path(explicit: String?, routes: String) -> String {
        explicit ?? ProcessInfo.processInfo.environment["STRANGLER_STORE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? URL(fileURLWithPath: routes).deletingLastPathComponent().appendingPathComponent("strangler.sqlite").path
    }

    /// Opens the store, applying pending migrations; a store written before rollups existed
    /// has its comparison rows folded into rollups then, once, whichever command opens it
    /// first, with progress on standard error for a large store.
    static func open(path: String, migrations: String?) throws -> SQLiteDiffStore {
        guard !PostgresStoreURL.isPostgres(path) else {
            throw ValidationError("\(path): this command reads a SQLite store file")
        }
        let directory = try MigrationsLocator.find(explicit: migrations)
        let store = try SQLiteDiffStore(path: path, migrations: try Migration.load(directory: directory))
        let started = ContinuousClock.now
        let folded = try store.foldRowsIntoRollups(instanceID: SQLiteDiffStore.foldedInstanceID) { progress in
            guard progress.total > SQLiteDiffStore.foldStep else { return }
            FileHandle.standardError.write(
                Data("folding comparisons recorded before rollups into rollups: \(progress.folded) of \(progress.total)\n".utf8)
            )
        }
        if folded > 0 {
            FileHandle.standardError.write(
                Data(
                    "folded \(folded) comparisons recorded before rollups into rollups in \(ContinuousClock.now - started); their rows stay as examples\n"
                        .utf8
                )
            )
        }
        return store
    }
}

/// Where the migrations are when no `--migrations` is given.
enum MigrationsLocator {
    static func find(explicit: String?) throws(MigrationError) -> String {
        if let explicit { return explicit }
        var candidates = [FileManager.default.currentDirectoryPath + "/migrations"]
        // A checkout's binary lives in .build/<triple>/<config>/ or .build/<config>/.
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            directory = directory.deletingLastPathComponent()
            candidates.append(directory.appendingPathComponent("migrations").path)
        }
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + "/0001_comparisons.sql") {
            return candidate
        }
        throw .missingDirectory(candidates.first!)
    }
}
