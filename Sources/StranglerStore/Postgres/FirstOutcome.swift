import NIOConcurrencyHelpers

/// Waits for the first of an operation's outcome, a timeout, or the caller's cancellation, and
/// never for the operation itself once it lost.
///
/// PostgresNIO's connects and queries do not stop when their task is cancelled. A structured
/// timeout (a task group) still waits for its children at the end, so a query that never
/// completes would hold its caller, and a graceful shutdown, for ever. Here the operation runs in
/// a task of its own; the loser is told to end (`abandon`: close its connection) and is not
/// awaited.
enum FirstOutcome {
    /// The operation got no answer in time.
    struct TimedOut: Error, CustomStringConvertible {
        var timeout: Duration
        var description: String { "no answer within \(timeout)" }
    }

    /// The first of `operation`'s outcome, a ``TimedOut`` after `timeout` (never, when nil), or a
    /// `CancellationError` when the caller is cancelled; `abandon` runs (with whether it was a
    /// cancellation) when the operation lost, to make it end, and `discard` gets a value the
    /// operation made after it lost. The operation's task is not awaited.
    static func of<Result: Sendable>(
        timeout: Duration?,
        _ operation: @escaping @Sendable () async throws -> Result,
        abandon: @escaping @Sendable (_ cancelled: Bool) -> Void,
        discard: @escaping @Sendable (Result) -> Void = { _ in }
    ) async throws -> Result {
        let outcome = NIOLockedValueBox<(done: Bool, continuation: CheckedContinuation<Result, any Error>?, early: Swift.Result<Result, any Error>?)>(
            (false, nil, nil)
        )
        // Settles once: the first outcome resumes the caller, later ones are dropped.
        let settle: @Sendable (Swift.Result<Result, any Error>) -> Bool = { result in
            let continuation = outcome.withLockedValue { state -> CheckedContinuation<Result, any Error>?? in
                guard !state.done else { return nil }
                state.done = true
                guard let continuation = state.continuation else {
                    state.early = result
                    return .some(nil)
                }
                return .some(continuation)
            }
            guard let continuation else { return false }
            continuation?.resume(with: result)
            return true
        }
        Task {
            do {
                let value = try await operation()
                // A value that comes after the caller stopped waiting is nobody's: `discard`
                // releases it (closes a connection).
                if !settle(.success(value)) { discard(value) }
            } catch {
                _ = settle(.failure(error))
            }
        }
        let timer = timeout.map { timeout in
            Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                if settle(.failure(TimedOut(timeout: timeout))) { abandon(false) }
            }
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
                let early = outcome.withLockedValue { state -> Swift.Result<Result, any Error>? in
                    if let early = state.early { return early }
                    state.continuation = continuation
                    return nil
                }
                if let early { continuation.resume(with: early) }
            }
        } onCancel: {
            if settle(.failure(CancellationError())) { abandon(true) }
        }
    }

}
