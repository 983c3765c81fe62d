import Foundation
@testable import StranglerProxy
import Testing

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

    #if os(Linux)
    @Test("background work starts as idle work and, still running after its grace, is raised to normal scheduling")
    func idleThenRaised() async throws {
        // The thread reports its policy at once, then waits (without spinning) until the raise
        // lands: a machine whose cores are all busy would otherwise never run it.
        let policies = PendingValue<(first: Int32, later: Int32)>.onThread(named: "policy-probe") {
            let first = Self.policy()
            var later = first
            for _ in 0..<6000 where later == first {
                usleep(10_000)
                later = Self.policy()
            }
            return (first, later)
        }
        let seen = try await policies.value()
        #expect(seen.first == 5)  // SCHED_IDLE
        #expect(seen.later == Int32(SCHED_OTHER))
    }

    static func policy() -> Int32 {
        var policy: Int32 = -1
        var parameters = sched_param()
        _ = pthread_getschedparam(pthread_self(), &policy, &parameters)
        return policy
    }
    #endif
}
