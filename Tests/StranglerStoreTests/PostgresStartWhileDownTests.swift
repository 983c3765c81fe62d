import Foundation
import Logging
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerStore

/// A proxy restarted during a database outage still starts, and says that its store is away: the
/// store opens without its database, migrates once the database answers, and its health follows
/// the database through an outage without the store being reopened. Each test that stops the
/// server has a cluster of its own: stopping the shared one would fail the tests beside it.
@Suite("PostgreSQL store started while the database is down")
struct PostgresStartWhileDownTests {
    static func migrations() throws -> [Migration] {
        try PostgresMigrationRunner.load(directory: DiffStoreTests.migrations)
    }

    @Test(
        "opened while the server is stopped, the store starts, fails each operation at once saying the database was not reached, then migrates on the first operation after the server starts"
    )
    func opensWhileDownAndMigratesLater() async throws {
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let url = try PostgresStoreURL(try cluster.makeDatabase().absoluteString)
        try cluster.stop()
        let log = CapturedLog()
        let migrations = try Self.migrations()
        let store = try await PostgresDiffStore.open(
            url: url,
            migrations: migrations,
            logger: log.logger,
            operationTimeout: .seconds(10),
            whenUnreachable: .connectLater
        )
        #expect(store.health.state == .notYetReached)
        #expect(store.health.lastError?.isEmpty == false)
        #expect(log.lines(.error, "diff store unreachable").count == 1, "\(log.all)")

        for attempt in 0..<3 {
            do {
                try await store.insertCounted([DiffStoreTests.kept("while-down-\(attempt)")])
                Issue.record("a write succeeded while the server was stopped")
            } catch let error as PostgresStoreError {
                #expect(error.isOutage)
                #expect(error.description.contains("has not been reached") && error.description.contains(url.description), "\(error)")
                // Refused at once by the direct connection, not held by the pool until the timeout.
                #expect(!error.description.contains("no answer within"), "\(error)")
            }
        }
        await #expect(throws: PostgresStoreError.self) { try await store.comparisonCount() }
        #expect(store.health.state == .notYetReached)
        #expect(log.lines(.error, "diff store unreachable").count == 1, "one line for the state, none per attempt: \(log.all)")

        try cluster.start()
        // Operations arriving together share one migration attempt, then all get through.
        let counts = try await eventually("every operation succeeds once the server is back") {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<12 { group.addTask { try await store.comparisonCount() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(counts == Array(repeating: 0, count: 12))
        try await store.insertCounted([DiffStoreTests.kept("after-start")])
        #expect(try await store.comparisonCount() == 1)
        #expect(try await store.read("SELECT COUNT(*) FROM schema_migrations", as: (Int.self)) { $0 } == [migrations.count])
        #expect(store.health.state == .ok)
        #expect(store.health.lastError == nil)
        #expect(log.lines(.notice, "diff store reached").count == 1, "\(log.all)")
        await store.close()
    }

    @Test("a missing database and a role the server refuses fail the open in the server's words, even when the store may connect later")
    func refusalsStillFailTheOpen() async throws {
        let cluster = try PostgresCluster.shared()
        let migrations = try Self.migrations()
        func refusal(_ url: String) async -> (text: String, isOutage: Bool?) {
            do {
                let store = try await PostgresDiffStore.open(
                    url: try PostgresStoreURL(url),
                    migrations: migrations,
                    logger: StoreKind.logger,
                    whenUnreachable: .connectLater
                )
                await store.close()
                return ("opened", nil)
            } catch {
                return ("\(error)", (error as? PostgresStoreError)?.isOutage)
            }
        }
        let missing = await refusal("postgres://\(cluster.superuser)@127.0.0.1:\(cluster.port)/no_such_database")
        #expect(missing.text.contains("database \"no_such_database\" does not exist"), "\(missing.text)")
        #expect(missing.isOutage == false)
        let stranger = await refusal("postgres://nobody_here:wrong@127.0.0.1:\(cluster.port)/postgres")
        #expect(stranger.text.contains("nobody_here"), "the server's refusal names the role: \(stranger.text)")
        #expect(!stranger.text.contains("wrong"), "the password stays out of the message: \(stranger.text)")
        #expect(stranger.isOutage == false)

        // Where nothing listens, the same open returns a store that waits for its database.
        let port = try LoopbackPorts.reserve()
        let waiting = try await PostgresDiffStore.open(
            url: try PostgresStoreURL("postgres://\(cluster.superuser)@127.0.0.1:\(port)/strangler"),
            migrations: migrations,
            logger: StoreKind.logger,
            whenUnreachable: .connectLater
        )
        #expect(waiting.health.state == .notYetReached)
        await waiting.close()
        // And without `.connectLater`, it fails as before.
        await #expect(throws: PostgresStoreError.self) {
            _ = try await PostgresDiffStore.open(
                url: try PostgresStoreURL("postgres://\(cluster.superuser)@127.0.0.1:\(port)/strangler"),
                migrations: migrations,
                logger: StoreKind.logger
            )
        }
    }

    @Test(
        "health turns unreachable when the server stops and ok when it is back, one log line each; the pool reconnects without the store being reopened, and a query the server refuses is not an outage"
    )
    func healthFollowsAnOutage() async throws {
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let url = try PostgresStoreURL(try cluster.makeDatabase().absoluteString)
        let log = CapturedLog()
        let store = try await PostgresDiffStore.open(
            url: url,
            migrations: try Self.migrations(),
            logger: log.logger,
            // Long enough that no operation times out on a loaded machine while the server is
            // up: the outage here is a refused connection, not a slow answer.
            operationTimeout: .seconds(10),
            whenUnreachable: .connectLater
        )
        try await eventually("a write goes through") { try await store.insertCounted([DiffStoreTests.kept("before")]) }
        #expect(store.health.state == .ok)

        do {
            try await store.execute("SELECT no_such_column FROM comparisons")
            Issue.record("a bad query was accepted")
        } catch let error as PostgresStoreError {
            #expect(!error.isOutage && error.cause.contains("no_such_column"), "\(error)")
        }
        #expect(store.health.state == .ok, "the server answered: a refused query says nothing about reachability")

        try cluster.stop()
        for _ in 0..<2 {
            do {
                _ = try await store.comparisonCount()
                Issue.record("a read answered while the server was stopped")
            } catch let error as PostgresStoreError {
                #expect(error.isOutage, "\(error)")
            }
        }
        #expect(store.health.state == .unreachable)
        #expect(store.health.lastError?.isEmpty == false)
        #expect(log.lines(.error, "diff store unreachable").count == 1, "one line for the state, none per attempt: \(log.all)")

        try cluster.start()
        // The pool reconnects on its own (its first use may still meet a connection the stop cut).
        try await eventually("a write goes through after the restart") {
            try await store.insertCounted([DiffStoreTests.kept("after")])
        }
        #expect(store.health.state == .ok)
        #expect(store.health.lastError == nil)
        #expect(try await store.comparisonCount() == 2)
        #expect(log.lines(.notice, "diff store reachable again after").count == 1, "\(log.all)")
        #expect(log.lines(.error, "diff store unreachable").count == 1, "\(log.all)")
        await store.close()
    }
}

/// Runs `body` until it succeeds, for up to two minutes, and returns what it returned; throws its
/// last error after that. For conditions that come true eventually (a pool reconnecting) on
/// machines of any speed.
private func eventually<Value>(_ what: String, _ body: () async throws -> Value) async throws -> Value {
    let deadline = ContinuousClock.now + .seconds(120)
    while true {
        do {
            return try await body()
        } catch {
            if ContinuousClock.now >= deadline {
                Issue.record("\(what): still failing after two minutes: \(error)")
                throw error
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// The store's log lines, kept for the test to count: the health's changes must be logged once
/// each, never per attempt.
private final class CapturedLog: @unchecked Sendable {
    /// Guards `entries`, which log handlers on any thread append to.
    private let lock = NSLock()
    private var entries: [(level: Logger.Level, message: String)] = []

    /// A logger whose lines (notice and above) land here.
    var logger: Logger {
        Logger(label: "test.store.health") { _ in Handler(log: self) }
    }

    /// The messages at `level` that start with `prefix`.
    func lines(_ level: Logger.Level, _ prefix: String) -> [String] {
        lock.withLock { entries.filter { $0.level == level && $0.message.hasPrefix(prefix) }.map(\.message) }
    }

    /// Everything kept, for a failed expectation's message.
    var all: String {
        lock.withLock { entries.map { "\($0.level): \($0.message)" }.joined(separator: "\n") }
    }

    fileprivate func append(_ level: Logger.Level, _ message: String) {
        lock.withLock { entries.append((level, message)) }
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .notice

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append(event.level, event.message.description)
        }
    }
}
