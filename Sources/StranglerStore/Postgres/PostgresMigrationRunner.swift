import Foundation
import Logging
import PostgresNIO

/// Applies the PostgreSQL migrations (`migrations/postgres/`) with the same rules as
/// ``MigrationRunner``: numbered, recorded with a checksum, each in its own transaction, and an
/// applied file that was edited since is refused.
///
/// Several instances may start at once against one empty database: the whole run holds a
/// PostgreSQL advisory lock, so one instance migrates and the others wait, then find nothing
/// left to do.
public struct PostgresMigrationRunner: Sendable {
    /// The advisory lock's key: any constant the store's other locks don't use.
    static let lockKey: Int64 = 0x5374_7261_6E67_6C01  // "Strangl" and 1

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// Reads the PostgreSQL migrations: only the `postgres/` folder of `directory`, as the
    /// shared files at its top are SQLite's.
    public static func load(directory: String) throws(MigrationError) -> [Migration] {
        let folder = (directory as NSString).appendingPathComponent("postgres")
        guard FileManager.default.fileExists(atPath: folder) else { throw .missingDirectory(folder) }
        return try Migration.load(directory: folder, dialect: "-")
    }

    /// Migrates the database `client` connects to.
    /// - Parameter location: the store's URL without its password, for errors.
    public func migrate(_ client: PostgresClient, location: String, logger: Logger) async throws(MigrationError) -> MigrationRunner.Outcome {
        do {
            return try await client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
                let result: Result<MigrationRunner.Outcome, any Error>
                do {
                    result = .success(try await migrate(connection, logger: logger))
                } catch {
                    result = .failure(error)
                }
                // The lock is the session's: released whatever happened, so the others get through.
                // A failed release is not the migrations' failure (the connection closing frees it).
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                return try result.get()
            }
        } catch let error as MigrationError {
            throw error
        } catch {
            throw .storeUnavailable(path: location, underlying: String(reflecting: error))
        }
    }

    private func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> MigrationRunner.Outcome {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)
            """,
            logger: logger
        )
        var recorded: [Int: (name: String, checksum: String)] = [:]
        for try await (version, name, checksum) in try await connection.query(
            "SELECT version, name, checksum FROM schema_migrations",
            logger: logger
        ).decode((Int, String, String).self) {
            recorded[version] = (name, checksum)
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, entry) in recorded.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else { throw MigrationError.unknownApplied(version: version, name: entry.name) }
            if migration.checksum != entry.checksum {
                throw MigrationError.edited(name: migration.name, recorded: entry.checksum, now: migration.checksum)
            }
        }
        var outcome = MigrationRunner.Outcome(applied: [], alreadyApplied: recorded.count)
        for migration in migrations where recorded[migration.version] == nil {
            do {
                try await connection.withTransaction(logger: logger) { connection in
                    for statement in SQLScript.statements(migration.sql) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let appliedAt = ISO8601DateFormatter().string(from: Date())
                    try await connection.query(
                        """
                        INSERT INTO schema_migrations (version, name, checksum, applied_at)
                        VALUES (\(migration.version), \(migration.name), \(migration.checksum), \(appliedAt))
                        """,
                        logger: logger
                    )
                }
            } catch {
                throw MigrationError.failed(name: migration.name, underlying: PostgresErrorText.describe(error))
            }
            outcome.applied.append(migration)
        }
        return outcome
    }
}

/// PostgreSQL's own words for a failure (`PSQLError` hides the server's message from its
/// plain description, to keep query text out of logs).
enum PostgresErrorText {
    static func describe(_ error: any Error) -> String {
        if let error = error as? PostgresTransactionError {
            return describe(error.closureError ?? error.beginError ?? error.commitError ?? error)
        }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let detail = error.serverInfo?[.detail].map { " (\($0))" } ?? ""
                return message + detail
            }
            // A connection that failed carries the network's reason (refused, unreachable).
            return error.underlying.map { "\(error.code): \($0)" } ?? "\(error.code)"
        }
        return "\(error)"
    }
}
