import Atomics

/// Client connections open over all of a server's loops, against its cap. Touched once when a
/// connection opens and once when it closes, never per request.
final class ClientConnectionCount: Sendable {
    /// The most connections open at once.
    let limit: Int
    private let open = ManagedAtomic(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Connections open now.
    var current: Int { open.load(ordering: .relaxed) }

    /// Takes a place for a new connection; false at the cap (nothing taken).
    func tryOpen() -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.weakCompareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Takes a place past the cap check: the caller made room by closing another connection,
    /// whose place is given back when its close completes.
    func forceOpen() {
        open.wrappingIncrement(ordering: .relaxed)
    }

    /// Gives a connection's place back.
    func closed() {
        open.wrappingDecrement(ordering: .relaxed)
    }
}
