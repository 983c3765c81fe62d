import Foundation
import NIOConcurrencyHelpers

/// A value produced once, elsewhere, that any number of tasks can wait for. A waiter whose task
/// is cancelled stops waiting at once; whatever produces the value carries on.
///
/// Validating a large route table is seconds of work that cannot be interrupted. Graceful
/// shutdown must not wait for it, so the hot reload waits through this type: cancelling the
/// waiter returns at once, and the abandoned work ends on its own (or with the process).
final class PendingValue<Value: Sendable>: Sendable {
    private struct State {
        /// Set once; an enum rather than an optional, so an optional `Value` works too.
        var value: Produced = .notYet
        var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private enum Produced {
        case notYet
        case produced(Value)
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    /// Sets the value and wakes every waiter. Only the first call counts.
    func fulfill(_ value: Value) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Value, any Error>] in
            guard case .notYet = state.value else { return [] }
            state.value = .produced(value)
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value, once it is produced.
    /// - Throws: `CancellationError` as soon as the calling task is cancelled.
    func value() async throws -> Value {
        let id = state.withLockedValue { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Under the lock, so a cancellation handler that runs before the waiter is
                // registered is seen here, and one that runs after finds it.
                let ready = state.withLockedValue { state -> Result<Value, any Error>? in
                    if case .produced(let value) = state.value { return .success(value) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}

extension PendingValue {
    /// Runs `body` on a thread of its own; its result becomes the value.
    ///
    /// For work that is long and cannot be interrupted (validating or comparing tables of tens of
    /// thousands of routes) or that blocks (reading the routes file). On an event loop it would
    /// stall that loop's connections; on the Swift concurrency pool it would hold one of its few
    /// threads (one per core), where signal handling and graceful shutdown also run.
    static func onThread(named name: String, _ body: @escaping @Sendable () -> Value) -> PendingValue {
        let pending = PendingValue()
        startThread(named: name) { pending.fulfill(body()) }
        return pending
    }
}

/// Starts `body` on a new thread, scheduled as idle work for its first second. See
/// ``PendingValue/onThread(named:_:)`` for why a thread.
///
/// The work is background work: a 10,000-route table takes a fifth of a second of CPU to
/// validate. At normal priority the kernel shares a core between it and the event loops, so
/// client requests wait for its time slices: the client p99 tripled in `bench/routes` during
/// reloads, and at nice 19 it still rose 2.5×. Under `SCHED_IDLE` a waking event loop preempts
/// it at once. But idle work gets no CPU while the cores are busy, and a reload must still go
/// live on a saturated machine (an urgent revert most of all): a thread still running after
/// ``idleGrace`` goes back to normal priority and takes its fair share.
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    let escalation = IdleEscalation()
    let thread = Thread {
        escalation.begin()
        body()
        escalation.end()
    }
    thread.name = name
    thread.start()
    escalation.scheduleRaise(after: idleGrace)
}

/// How long a background thread runs as idle work before it takes a fair share of the CPU.
let idleGrace: DispatchTimeInterval = .seconds(1)

/// The thread's scheduling, lowered while it starts and raised if it outlives its grace.
///
/// The lock makes the raise safe: the thread marks itself finished under it before it exits,
/// so a raise that finds it unfinished acts on a thread that is still alive.
private final class IdleEscalation: Sendable {
    private struct State {
        var thread: pthread_t?
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    /// On the thread: records it and lowers it to `SCHED_IDLE`.
    func begin() {
        #if os(Linux)
        let thread = pthread_self()
        state.withLockedValue { $0.thread = thread }
        Self.set(thread, policy: Self.schedIdle)
        #endif
    }

    /// On the thread, as it finishes.
    func end() {
        state.withLockedValue { $0.finished = true }
    }

    /// Raises the thread to normal scheduling after `delay`, unless it has finished by then.
    func scheduleRaise(after delay: DispatchTimeInterval) {
        #if os(Linux)
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
            state.withLockedValue { state in
                guard !state.finished, let thread = state.thread else { return }
                Self.set(thread, policy: Int32(SCHED_OTHER))
            }
        }
        #endif
    }

    #if os(Linux)
    /// SCHED_IDLE (5 in <linux/sched.h>); Glibc's module leaves the GNU-only name out.
    private static let schedIdle: Int32 = 5

    private static func set(_ thread: pthread_t, policy: Int32) {
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = pthread_setschedparam(thread, policy, &parameters)
    }
    #endif
}
