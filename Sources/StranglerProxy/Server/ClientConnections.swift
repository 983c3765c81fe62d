import NIOCore

/// A client connection as its loop's ``ClientConnections`` sees it.
protocol ClientConnection: AnyObject {
    /// Position in the loop's list, or -1 when not registered. Owned by the list.
    var connectionSlot: Int { get set }
    /// When the connection started waiting for a request with nothing of it read; nil while a
    /// request is under way. Such a connection can be closed to make room for a new one.
    var idleSince: NIODeadline? { get }
    /// Checks the connection's own bounds at `now` and acts on any that expired.
    func checkTimeouts(now: NIODeadline)
    /// Asks the connection to finish its current exchange and close (graceful shutdown).
    func quiesce()
    /// Closes the connection now.
    func closeNow()
}

/// The open client connections of one event loop: for graceful shutdown, for the client
/// timeouts (one periodic sweep per loop instead of a scheduled task per connection or per
/// request), and for making room at the connection cap.
///
/// Registering and unregistering are an append and a swap. The sweep runs every `resolution`
/// while a connection is open and visits each once: a timeout fires up to one resolution late.
final class ClientConnections {
    private let eventLoop: EventLoop
    let resolution: TimeAmount
    private var connections: [ClientConnection] = []
    private var sweep: Scheduled<Void>?

    init(eventLoop: EventLoop, resolution: TimeAmount) {
        self.eventLoop = eventLoop
        self.resolution = resolution
    }

    /// The sweep's period for a set of limits: a quarter of the shortest, between 10 ms and 1 s,
    /// so a bound fires within a quarter of its length.
    static func resolution(for limits: ClientTimeouts.Limits) -> TimeAmount {
        let shortest = [limits.header, limits.body, limits.send, limits.keepAlive, limits.lingerIdle].min()!
        return .nanoseconds(min(max(shortest.nanoseconds / 4, 10_000_000), 1_000_000_000))
    }

    var count: Int { connections.count }

    func register(_ connection: ClientConnection) {
        guard connection.connectionSlot < 0 else { return }
        connection.connectionSlot = connections.count
        connections.append(connection)
        if sweep == nil { scheduleSweep() }
    }

    func unregister(_ connection: ClientConnection) {
        let slot = connection.connectionSlot
        guard slot >= 0 else { return }
        connection.connectionSlot = -1
        let last = connections.removeLast()
        if slot < connections.count {
            connections[slot] = last
            last.connectionSlot = slot
        }
        if connections.isEmpty {
            sweep?.cancel()
            sweep = nil
        }
    }

    /// Closes the connection that has waited longest for a request with nothing of it read, to
    /// make room for a new one (nginx drains its "reusable" connections the same way). Returns
    /// false when every connection has a request under way.
    func evictLongestIdle() -> Bool {
        var oldest: ClientConnection?
        var oldestSince = NIODeadline.distantFuture
        for connection in connections {
            if let since = connection.idleSince, since < oldestSince {
                oldest = connection
                oldestSince = since
            }
        }
        guard let oldest else { return false }
        unregister(oldest)
        oldest.closeNow()
        return true
    }

    func quiesceAll() {
        for connection in connections { connection.quiesce() }
    }

    func closeAll() {
        for connection in connections { connection.closeNow() }
    }

    private func scheduleSweep() {
        sweep = eventLoop.assumeIsolated().scheduleTask(in: resolution) {
            self.sweep = nil
            let now = NIODeadline.now()
            // A check may close its connection, which unregisters it and moves the last one into
            // its slot: walk from the end so that every connection is visited once.
            var index = self.connections.count - 1
            while index >= 0 {
                if index < self.connections.count { self.connections[index].checkTimeouts(now: now) }
                index -= 1
            }
            if !self.connections.isEmpty, self.sweep == nil { self.scheduleSweep() }
        }
    }

    /// Stops the sweep, at shutdown.
    func stop() {
        sweep?.cancel()
        sweep = nil
    }
}
