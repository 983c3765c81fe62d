import Foundation
import Logging
import ServiceLifecycle
import StranglerTestSupport
import Testing

@testable import StranglerStore

/// Retention is a cluster duty: with a shared store only the leader prunes, and one that becomes
/// leader does not wait an hour to.
@Suite("Retention runs on the leader only")
struct LeaderRetentionTests {
    /// A leadership the test hands over when it likes.
    final class Switch: Leadership, @unchecked Sendable {
        private let lock = NSLock()
        private var leading: Bool

        init(leading: Bool) { self.leading = leading }

        var isLeader: Bool {
            get { lock.withLock { leading } }
            set { lock.withLock { leading = newValue } }
        }
    }

    /// A store with 12 example rows, and a recorder whose retention keeps 10, running (as
    /// `serve` runs it) while `body` runs.
    static func recording(leadership: (any Leadership)?, _ body: (SQLiteDiffStore) async throws -> Void) async throws {
        let store = try DiffStoreTests.store()
        try await store.insertCounted((0..<12).map { DiffStoreTests.kept("k\($0)") })
        // Without a leadership, the recorder's default: this instance alone, always the leader.
        let recorder = DiffRecorder(
            store: store,
            interval: .milliseconds(20),
            retention: .init(maxRows: 10),
            leadership: leadership ?? SingleInstanceLeadership(),
            logger: DiffStoreTests.logger
        )
        try await whileRunning([recorder], logger: DiffStoreTests.logger) { try await body(store) }
    }

    /// Waits, a generous 30 s at most, until the store holds `rows` example rows.
    static func waitForRows(_ store: SQLiteDiffStore, _ rows: Int) async throws {
        for _ in 0..<1500 where try await store.comparisonCount() != rows {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test("a lone instance's recorder prunes from the start, as it always did")
    func loneInstancePrunes() async throws {
        try await Self.recording(leadership: nil) { store in
            try await Self.waitForRows(store, 10)
            #expect(try await store.comparisonCount() == 10)
        }
    }

    @Test("a recorder that is not the leader never prunes; once it leads it prunes at its next round")
    func followerDoesNotPrune() async throws {
        let leadership = Switch(leading: false)
        try await Self.recording(leadership: leadership) { store in
            // Many rounds of the recorder, none of them pruning.
            for _ in 0..<10 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try await store.comparisonCount() == 12, "a follower leaves retention to the leader")

            leadership.isLeader = true
            try await Self.waitForRows(store, 10)
            #expect(try await store.comparisonCount() == 10, "the new leader pruned without waiting for the hourly round")
        }
    }
}
