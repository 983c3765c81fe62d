import Foundation
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("PendingValue: waiting for work that shutdown does not wait for")
struct PendingValueTests {
    @Test("a cancelled waiter stops waiting at once; the value still reaches every other waiter, and only the first value counts")
    func cancelledWaiter() async throws {
        let pending = PendingValue<Int>()
        let cancelled = Task { try await pending.value() }
        let waiting = Task { try await pending.value() }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        pending.fulfill(7)
        #expect(try await waiting.value == 7)
        pending.fulfill(8)
        #expect(try await pending.value() == 7)
    }

    @Test("work on a thread of its own delivers its result")
    func onThread() async throws {
        let pending = PendingValue.onThread(named: "test") { (1...1000).reduce(0, +) }
        #expect(try await pending.value() == 500_500)
    }
}
