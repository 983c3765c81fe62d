import ArgumentParser
import Foundation
import Logging
import StranglerStore

/// `strangler migrate`: bring the diff store's schema up to date.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the numbered SQL migrations in migrations/ to the diff store.",
        discussion: """
            Each migration runs in its own transaction and is recorded; an applied one is never
            re-run, and one whose file was edited after it was applied stops the run.

            A postgres:// store takes the migrations in migrations/postgres/, under an advisory
            lock, so instances starting together migrate it once.

            Examples:
              strangler migrate
              strangler migrate --store /var/lib/strangler/diffs.sqlite --migrations /opt/strangler/migrations
              strangler migrate --store postgres://strangler@db.internal:5432/strangler
            """
    )

    @Option(help: "The SQLite store (created if missing), or a postgres://USER@HOST:PORT/DB URL.")
    var store = "strangler.sqlite"

    @Option(help: "The folder of numbered .sql files (default: ./migrations, or the one beside the executable's checkout).")
    var migrations: String?

    func run() async throws {
        do {
            let directory = try MigrationsLocator.find(explicit: migrations)
            let outcome: MigrationRunner.Outcome
            var shown = store
            if PostgresStoreURL.isPostgres(store) {
                let url = try PostgresStoreURL(store)
                shown = url.description
                var logger = Logger(label: "strangler.migrate")
                logger.logLevel = .error
                outcome = try await PostgresDiffStore.migrate(
                    url: url,
                    migrations: try PostgresMigrationRunner.load(directory: directory),
                    logger: logger
                )
            } else {
                outcome = try MigrationRunner(migrations: try Migration.load(directory: directory)).migrate(sqliteAt: store)
            }
            for migration in outcome.applied {
                print("applied \(migration.name)")
            }
            print("\(shown): schema up to date (\(outcome.alreadyApplied + outcome.applied.count) migrations, \(outcome.applied.count) applied now)")
        } catch {
            printError("migrate failed: \(error)")
            throw ExitCode(1)
        }
    }
}
