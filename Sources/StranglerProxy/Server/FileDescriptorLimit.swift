#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit, and what it allows the client connection cap to be.
///
/// A client connection costs one descriptor and usually brings an upstream connection with it.
/// If the cap is above what the limit allows, `accept` fails with EMFILE before the cap is
/// reached, and then nothing new is served, a new upstream connection included. So the soft
/// limit is raised to the hard one (as nginx's `worker_rlimit_nofile` and Go's runtime do), and
/// the cap is lowered to fit what remains.
enum FileDescriptorLimit {
    /// Descriptors kept for everything that is not a client or upstream connection: listeners,
    /// the store, logs, the event loops' own.
    static let reserved = 128

    /// Raises the soft limit to the hard one; returns the soft limit in force afterwards, or
    /// nil if it could not be read.
    static func raiseSoftLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur)
    }

    /// The client connection cap that `descriptors` allow: one descriptor for each client
    /// connection and one for its upstream connection, after the reserve.
    static func connectionCap(requested: Int, descriptors: Int) -> Int {
        min(requested, max(16, (descriptors - reserved) / 2))
    }
}
