import Foundation
import NIOConcurrencyHelpers

/// The control plane's CPU work (validating, comparing and releasing route tables), run at a
/// lower priority than the event loops.
///
/// The proxy often shares its cores with this work: a reload of a 10,000-route table costs tens
/// of milliseconds of CPU, which at normal priority the scheduler may run for a few milliseconds
/// at a time while an event loop that just woke waits (the client p99 rose to 2.5–3× during such
/// reloads in `bench/routes`). A background thread sets its own nice value to ``niceness``; with
/// the event loops' short slices (``EventLoopSlice``), a loop that wakes runs first.
///
/// Nice 10 weighs a thread about a tenth of a normal one, so on a saturated machine a reload is
/// slower but still finishes: at 19, or as idle work (`SCHED_IDLE`), a 90,000-route table could
/// wait minutes. An unprivileged process can't undo a nice value, and threads inherit it, so the
/// work given to these threads must never start a thread or resume a task (that can start a
/// thread of the concurrency pool): they compute, and a normal thread carries the result on.
package enum BackgroundWork {
    /// The nice value of background threads.
    static let niceness: Int32 = 10

    /// Runs `work` on a background thread and returns its result; the calling thread waits.
    package static func run<Value: Sendable>(_ work: @escaping @Sendable () -> Value) -> Value {
        let finished = ConditionLock(value: false)
        let result = NIOLockedValueBox<Value?>(nil)
        start(named: "routes-compute") {
            let value = work()
            result.withLockedValue { $0 = value }
            finished.lock()
            finished.unlock(withValue: true)
        }
        finished.lock(whenValue: true)
        finished.unlock()
        return result.withLockedValue { $0.take()! }
    }

    /// How a thread started here runs.
    package enum Priority: Sendable {
        /// At nice ``BackgroundWork/niceness``: pure computation only (see above).
        case background
        /// At the process's priority: for a thread that resumes tasks or starts threads, which
        /// would inherit a lower one.
        case normal
    }

    /// Starts `work` on a new thread without waiting for it. Names are at most 15 bytes, the
    /// most Linux keeps.
    package static func start(named name: String, priority: Priority = .background, _ work: @escaping @Sendable () -> Void) {
        let thread = Thread {
            if priority == .background { lowerPriority() }
            work()
        }
        thread.name = name
        thread.start()
    }

    private static func lowerPriority() {
        #if os(Linux)
        // On Linux the nice value belongs to each thread, and `who` 0 is the calling one.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #else
        _ = setpriority(PRIO_PROCESS, 0, niceness)
        #endif
    }
}
