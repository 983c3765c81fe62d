import Foundation
import Logging
import ServiceLifecycle
import StranglerTestSupport
import Testing

@testable import StranglerStore

/// Leader election on a real PostgreSQL server: instances sharing one database agree on one
/// leader, and leadership moves when the leader's session ends or the leader stops.
@Suite("Leader election among instances sharing a PostgreSQL store")
struct PostgresLeadershipTests {
    static var logger: Logger {
        var logger = Logger(label: "test.leadership")
        logger.logLevel = .critical
        return logger
    }

    /// An election that tries often, so that the tests wait little for a change. Locks and
    /// sessions are looked at in the test's own database only: the tests beside it run
    /// elections of their own, in databases of their own, on the same server.
    static func election(_ url: URL, _ instance: String) throws -> PostgresLeadership {
        PostgresLeadership(
            url: try PostgresStoreURL(url.absoluteString),
            instance: instance,
            interval: .milliseconds(100),
            checkTimeout: .seconds(3),
            logger: logger
        )
    }

    @Test("the lock key is the FNV-1a hash of \"strangler leader\": fixed, so every version competes for one lock")
    func lockKey() {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "strangler leader".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        #expect(PostgresLeadership.lockKey == Int64(bitPattern: hash))
    }

    @Test("of two instances on one database exactly one leads, and its session holds the lock")
    func oneLeader() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let a = try Self.election(url, "a")
        let b = try Self.election(url, "b")
        try await running([a, b]) {
            let leader = try await firstLeader(of: [a, b])
            let other = leader === a ? b : a
            // Both keep trying every 100 ms: a few rounds later there is still one leader.
            for _ in 0..<3 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(leader.isLeader)
            #expect(!other.isLeader)
            let holders = try psql(
                url,
                """
                SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
                """
            )
            #expect(holders == "strangler leader election (\(leader.instance))")
        }
    }

    @Test("when the leader's backend is terminated, the leader gives up leadership and the other instance takes it")
    func terminatedBackend() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let a = try Self.election(url, "a")
        let b = try Self.election(url, "b")
        try await running([a, b]) {
            let leader = try await firstLeader(of: [a, b])
            let other = leader === a ? b : a
            let terminated = try psql(
                url,
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name = 'strangler leader election (\(leader.instance))' AND datname = current_database()
                """
            )
            #expect(terminated == "t")
            try await eventually("the other instance leads") { await other.waitUntil(leader: true) }
            try await eventually("the old leader knows it lost") { await leader.waitUntil(leader: false) }
            // The old leader steps back, reconnects, finds the lock taken, and stays a follower.
            for _ in 0..<3 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(other.isLeader)
            #expect(!leader.isLeader)
        }
    }

    @Test("a leader that shuts down gracefully frees the lock, and the other instance takes over")
    func gracefulShutdownHandsOver() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let a = try Self.election(url, "a")
        let b = try Self.election(url, "b")
        let groupA = ServiceGroup(services: [a], logger: Self.logger)
        let groupB = ServiceGroup(services: [b], logger: Self.logger)
        let taskA = Task { try await groupA.run() }
        let taskB = Task { try await groupB.run() }
        defer {
            taskA.cancel()
            taskB.cancel()
        }
        let leader = try await firstLeader(of: [a, b])
        let (leaderGroup, leaderTask) = leader === a ? (groupA, taskA) : (groupB, taskB)
        let (otherGroup, otherTask) = leader === a ? (groupB, taskB) : (groupA, taskA)
        let other = leader === a ? b : a

        await leaderGroup.triggerGracefulShutdown()
        try await leaderTask.value
        #expect(!leader.isLeader, "a stopped instance is not the leader")
        try await eventually("the other instance leads") { await other.waitUntil(leader: true) }

        await otherGroup.triggerGracefulShutdown()
        try await otherTask.value
        #expect(!other.isLeader)
        // The server ends a closed session's backend, and frees its lock, a moment later.
        let locks = """
            SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
            WHERE l.locktype = 'advisory' AND d.datname = current_database()
            """
        for _ in 0..<300 where try psql(url, locks) != "0" { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try psql(url, locks) == "0", "shutdown freed the lock")
    }

    @Test("an instance that cannot reach the database never leads, and still stops when asked")
    func unreachable() async throws {
        let cluster = try PostgresCluster.shared()
        let port = try LoopbackPorts.reserve()
        let url = try #require(URL(string: "postgres://\(cluster.superuser)@127.0.0.1:\(port)/nowhere"))
        let election = try Self.election(url, "lonely")
        let group = ServiceGroup(services: [election], logger: Self.logger)
        let task = Task { try await group.run() }
        // Several rounds of refused connections, with backoff.
        for _ in 0..<5 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!election.isLeader)
        await group.triggerGracefulShutdown()
        try await task.value
        #expect(!election.isLeader)
    }

    @Test("a leader whose database goes away gives up leadership, and leads again once it is back")
    func databaseOutage() async throws {
        // A cluster of its own: stopping the shared one would break the tests beside this one.
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let url = try cluster.makeDatabase()
        let election = try Self.election(url, "alone")
        try await running([election]) {
            try await eventually("the only instance leads") { await election.waitUntil(leader: true) }
            try cluster.stop()
            try await eventually("the leader gives up when the database stops") { await election.waitUntil(leader: false) }
            try cluster.start()
            try await eventually("it leads again once the database is back") { await election.waitUntil(leader: true) }
        }
    }

    @Test("waiting for a change that never comes ends when the waiting task is cancelled")
    func waitIsCancellable() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        // Never run: it never leads.
        let election = try Self.election(url, "idle")
        let waiter = Task { await election.waitUntil(leader: true) }
        waiter.cancel()
        await waiter.value
        #expect(!election.isLeader)
        // A wait for what already holds returns at once.
        await election.waitUntil(leader: false)
    }
}

/// Runs the elections in one service group while `body` runs, then shuts them down gracefully.
private func running(_ elections: [PostgresLeadership], _ body: () async throws -> Void) async throws {
    try await whileRunning(elections, logger: PostgresLeadershipTests.logger, body)
}

/// Waits for `condition` to return, for a generous 30 s (``finishes(within:_:)``); past that
/// the test fails, saying what it waited for, rather than hangs.
private func eventually(
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping @Sendable () async -> Void
) async throws {
    do {
        try await finishes(within: .seconds(30), sourceLocation: sourceLocation) { await condition() }
    } catch {
        Issue.record("\(what): not within 30 s", sourceLocation: sourceLocation)
        throw error
    }
}

/// Runs `sql` with the cluster's `psql` on the URL's database (a third session, beside the
/// elections') and returns its output; a failure fails the test.
private func psql(_ database: URL, _ sql: String) throws -> String {
    let (status, output) = try PostgresCluster.shared().psql(database, sql)
    try #require(status == 0, "psql failed: \(output)")
    return output
}
