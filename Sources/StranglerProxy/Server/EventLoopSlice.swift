import CStranglerScheduling
import NIOCore

/// Short scheduling slices for the event loops' threads.
///
/// Linux's EEVDF scheduler (6.12 and later) lets a thread ask for a shorter slice than the
/// default (0.75 ms times one plus the base-2 logarithm of the core count: 1.5 ms on two cores). A thread that wakes with a shorter slice than the one
/// running may preempt it at once instead of waiting for its slice to end. An event loop wakes,
/// forwards a few requests in tens of microseconds and sleeps again; with a 100 µs slice it
/// preempts control-plane work, comparisons and the store's writes on the same core, so they
/// don't add milliseconds to a client's request. Between event loops nothing changes when each
/// has a core of its own, as `--threads` defaults to.
///
/// Older kernels ignore the request and other systems refuse it; the proxy then runs with the
/// kernel's default and says so once in the log.
public enum EventLoopSlice {
    /// The default request: 100 µs, the shortest slice the kernel grants.
    public static let standard = TimeAmount.microseconds(100)
    /// The longest slice the kernel grants.
    public static let longest = TimeAmount.milliseconds(100)

    /// What the kernel made of a request.
    public enum Outcome: Sendable, Equatable {
        /// The thread has the slice, in nanoseconds, that the kernel reports.
        case granted(nanoseconds: UInt64)
        /// The kernel took the request but has no custom slices (before Linux 6.12).
        case ignored
        /// The kernel refused it, with the errno (EPERM: the thread has a policy other than
        /// SCHED_OTHER or SCHED_BATCH; ENOSYS: not Linux).
        case refused(errno: Int32)
    }

    /// Asks for `slice` for the calling thread (an event loop, at its start).
    static func request(_ slice: TimeAmount) -> Outcome {
        // Threads the loop starts (the concurrency pool grows from whichever thread needs it)
        // get the kernel's default again.
        let status = c_strangler_set_thread_slice(UInt64(max(slice.nanoseconds, 0)), 1)
        guard status == 0 else { return .refused(errno: status) }
        let granted = c_strangler_thread_slice()
        return granted == 0 ? .ignored : .granted(nanoseconds: granted)
    }
}
