import NIOConcurrencyHelpers

/// An async mutex: callers run one at a time, in arrival order.
actor AsyncSerial {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// Jobs that run one after another, in the order they were added, each in a task of its own.
///
/// Whoever adds a job does not wait for it, and nothing waits for the chain at shutdown: a job
/// cut short by the process ending is one the next start makes up for (the route file audit
/// records the file it starts with).
final class TaskChain: Sendable {
    private let last = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init() {}

    /// Adds `job`; it starts once every job added before it has finished.
    func add(_ job: @escaping @Sendable () async -> Void) {
        last.withLockedValue { last in
            let previous = last
            last = Task {
                await previous?.value
                await job()
            }
        }
    }

    /// Returns once every job added before the call has finished, or at once when the calling
    /// task is cancelled (graceful shutdown must not wait for an audit).
    func settled() async {
        guard let task = last.withLockedValue({ $0 }) else { return }
        let done = PendingValue<Void>()
        Task {
            await task.value
            done.fulfill(())
        }
        try? await done.value()
    }
}
