import Foundation
import NIOConcurrencyHelpers
import StranglerProxy

/// A value produced once, elsewhere, that any number of tasks can wait for. A waiter whose task
/// is cancelled stops waiting at once; whatever produces the value carries on.
///
/// Validating a large route table is seconds of work that cannot be interrupted. Graceful
/// shutdown must not wait for it, so the hot reload waits through this type: cancelling the
/// waiter returns at once, and the abandoned work ends on its own (or with the process).
package final class PendingValue<Value: Sendable>: Sendable {
    private struct State {
        /// Set once; an enum rather than an optional, so an optional `Value` works too.
        package var value: Produced = .notYet
        package var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        package var nextWaiter: UInt64 = 0
    }

    private enum Produced {
        case notYet
        case produced(Value)
    }

    private let state = NIOLockedValueBox(State())

    package init() {}

    /// Sets the value and wakes every waiter. Only the first call counts.
    package func fulfill(_ value: Value) {
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
    package func value() async throws -> Value {
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
    package static func onThread(named name: String, _ body: @escaping @Sendable () -> Value) -> PendingValue {
        let pending = PendingValue()
        // Normal priority: it resumes the waiting tasks. Its CPU-heavy part goes to BackgroundWork.
        BackgroundWork.start(named: name, priority: .normal) { pending.fulfill(body()) }
        return pending
    }
}
