import StranglerStore
import Testing

/// The first of `elections` to lead, waiting a generous 30 s at most (``finishes(within:_:)``:
/// a hang guard, not a measurement); past that the test fails.
package func firstLeader(of elections: [PostgresLeadership]) async throws -> PostgresLeadership {
    try await finishes(within: .seconds(30)) {
        await withTaskGroup(of: Void.self) { group in
            for election in elections { group.addTask { await election.waitUntil(leader: true) } }
            await group.next()
            group.cancelAll()
        }
    }
    return try #require(elections.first { $0.isLeader })
}
