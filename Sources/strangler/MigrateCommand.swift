import ArgumentParser
import Foundation
import StranglerStore

/// `strangler migrate`: bring the diff store's schema up to date.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the numbered SQL migrations in migrations/ to the diff store.",
        discussion: """
            Each migration runs in its own transaction and is recorded; an applied one is never
            re-run, and one whose file was edited after it was applied stops the run.

            Examples:
              strangler migrate
              strangler migrate --store /var/lib/strangler/diffs.sqlite --migrations /opt/strangler/migrations
            """
    )

    @Option(help: "The SQLite store (created if missing).")
    var store = "strangler.sqlite"

    @Option(help: "The folder of numbered .sql files (default: ./migrations, or the one beside the executable's checkout).")
    var migrations: String?

    func run() async throws {
        do {
            let runner = MigrationRunner(migrations: try Migration.load(directory: try MigrationsLocator.find(explicit: migrations)))
            let outcome = try runner.migrate(sqliteAt: store)
            for migration in outcome.applied {
                print("applied \(migration.name)")
            }
            print("\(store): schema up to date (\(outcome.alreadyApplied + outcome.applied.count) migrations, \(outcome.applied.count) applied now)")
        } catch {
            printError("migrate failed: \(error)")
            throw ExitCode(1)
        }
    }
}
