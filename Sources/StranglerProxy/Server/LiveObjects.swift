#if DEBUG
import Atomics

/// Counts one event loop's live client connection handlers and shadow-path objects in debug builds, so tests can show that
/// nothing outlives its exchange (a retain cycle here once leaked every shadowed request).
/// Release builds have no counter and pay nothing.
final class LiveObjects: Sendable {
    let shadowExchanges = ManagedAtomic<Int>(0)
    let sideCalls = ManagedAtomic<Int>(0)
    /// Client connection handlers not yet freed: one per open connection, none after they close.
    let proxyHandlers = ManagedAtomic<Int>(0)
}
#endif
