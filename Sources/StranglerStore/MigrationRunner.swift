import Foundation
import GRDB

/// Applies numbered SQL migrations to a SQLite store, each in its own transaction, and records
/// them in `schema_migrations`. An applied migration is never re-run, and one whose file changed
/// since it was applied stops the run.
public struct MigrationRunner: Sendable {
    /// The migrations this build knows, applied in this order (``Migration/load(directory:dialect:)``
    /// sorts them by number).
    public let migrations: [Migration]

    /// A runner for `migrations`, usually ``Migration/load(directory:dialect:)``'s result.
    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// What a run did.
    public struct Outcome: Sendable {
        /// Migrations applied by this run, in order.
        public var applied: [Migration]
        /// Migrations that were already in the store.
        public var alreadyApplied: Int
    }

    /// Opens (creating if needed) the SQLite store at `path` in WAL mode and migrates it.
    public func migrate(sqliteAt path: String) throws(MigrationError) -> Outcome {
        try migrate(try SQLiteFile.open(path))
    }

    /// Migrates an open database.
    public func migrate(_ writer: some DatabaseWriter) throws(MigrationError) -> Outcome {
        let recorded: [Int: (name: String, checksum: String)]
        do {
            recorded = try writer.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS schema_migrations (
                            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)
                        """
                )
                var result: [Int: (String, String)] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT version, name, checksum FROM schema_migrations") {
                    result[row["version"]] = (row["name"], row["checksum"])
                }
                return result
            }
        } catch {
            throw .storeUnavailable(path: writer.path, underlying: "\(error)")
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, entry) in recorded.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else { throw .unknownApplied(version: version, name: entry.name) }
            if migration.checksum != entry.checksum {
                throw .edited(name: migration.name, recorded: entry.checksum, now: migration.checksum)
            }
        }
        var outcome = Outcome(applied: [], alreadyApplied: recorded.count)
        for migration in migrations where recorded[migration.version] == nil {
            do {
                try writer.write { db in
                    try db.execute(sql: migration.sql)
                    try db.execute(
                        sql: "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                        arguments: [migration.version, migration.name, migration.checksum, ISO8601DateFormatter().string(from: Date())]
                    )
                }
            } catch {
                throw .failed(name: migration.name, underlying: "\(error)")
            }
            outcome.applied.append(migration)
        }
        return outcome
    }
}

/// Opening the store's SQLite file: its folder is created, and WAL mode (DatabasePool) with a
/// busy timeout lets readers run beside the one writer.
enum SQLiteFile {
    static func open(_ path: String) throws(MigrationError) -> DatabasePool {
        do {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            // The store's own SQL functions, on every connection: migrations use them too.
            configuration.prepareDatabase { db in db.add(function: LatencyMergeAggregate.function) }
            return try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw .storeUnavailable(path: path, underlying: "\(error)")
        }
    }
}
