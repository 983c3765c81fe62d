import Foundation
import GRDB
import StranglerStore
import Testing

@Suite("Migrations")
struct MigrationRunnerTests {
    static func tempDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("the repository's migrations apply to a fresh SQLite file, once")
    func repositoryMigrations() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").path
        let migrations = try Migration.load(directory: directory)
        #expect(migrations.first?.name == "0001_comparisons.sql")
        let store = try Self.tempDirectory() + "/store.sqlite"
        let first = try MigrationRunner(migrations: migrations).migrate(sqliteAt: store)
        #expect(first.applied.count == migrations.count)
        let second = try MigrationRunner(migrations: migrations).migrate(sqliteAt: store)
        #expect(second.applied.isEmpty)
        #expect(second.alreadyApplied == migrations.count)
        let tables = try DatabaseQueue(path: store).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(Set(tables).isSuperset(of: ["comparisons", "differences", "noise", "route_changes", "schema_migrations"]))
        let journal = try DatabaseQueue(path: store).read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
    }

    @Test("a new file is applied in order; an edited applied file is refused")
    func orderAndEdits() throws {
        let directory = try Self.tempDirectory()
        try "CREATE TABLE a (x INTEGER);".write(toFile: directory + "/0001_a.sql", atomically: true, encoding: .utf8)
        let store = directory + "/store.sqlite"
        _ = try MigrationRunner(migrations: try Migration.load(directory: directory)).migrate(sqliteAt: store)
        try "ALTER TABLE a ADD COLUMN y TEXT;".write(toFile: directory + "/0002_b.sql", atomically: true, encoding: .utf8)
        let outcome = try MigrationRunner(migrations: try Migration.load(directory: directory)).migrate(sqliteAt: store)
        #expect(outcome.applied.map(\.name) == ["0002_b.sql"])

        try "CREATE TABLE a (x INTEGER, z INTEGER);".write(toFile: directory + "/0001_a.sql", atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) {
            _ = try MigrationRunner(migrations: try Migration.load(directory: directory)).migrate(sqliteAt: store)
        }
    }

    @Test("a failing migration is rolled back and not recorded; bad names and duplicates are refused")
    func failures() throws {
        let directory = try Self.tempDirectory()
        try "CREATE TABLE ok (x INTEGER); CREATE TABLE ok (x INTEGER);".write(
            toFile: directory + "/0001_broken.sql",
            atomically: true,
            encoding: .utf8
        )
        let store = directory + "/store.sqlite"
        do {
            _ = try MigrationRunner(migrations: try Migration.load(directory: directory)).migrate(sqliteAt: store)
            Issue.record("a broken migration was applied")
        } catch {
            #expect(error.description.contains("0001_broken.sql"))
        }
        let leftovers = try DatabaseQueue(path: store).read { db in
            (
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE name = 'ok'"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM schema_migrations") ?? -1
            )
        }
        #expect(leftovers.0.isEmpty)
        #expect(leftovers.1 == 0)

        let named = try Self.tempDirectory()
        try "SELECT 1;".write(toFile: named + "/first.sql", atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try Migration.load(directory: named) }

        let duplicated = try Self.tempDirectory()
        try "SELECT 1;".write(toFile: duplicated + "/0001_a.sql", atomically: true, encoding: .utf8)
        try "SELECT 2;".write(toFile: duplicated + "/0001_b.sql", atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try Migration.load(directory: duplicated) }
    }
}
