import NIOCore
import StranglerCore

/// Something that sends a request to an upstream on a pooled connection and reads the answer:
/// the client's exchange (``ProxyHandler``) and a shadow's extra call (``SideCall``).
protocol UpstreamCaller: UpstreamResponseDelegate, UpstreamDeadlineClient {
    /// The pool answered a request for a connection that could not be served at once.
    ///
    /// - Parameters:
    ///   - connection: the connection, or nil when none could be had (then `error` says why).
    ///   - attempt: what the caller passed when it asked, so that it can tell an answer for an
    ///     attempt it has since abandoned.
    ///   - pool: where the connection goes back if the caller no longer wants it.
    func upstreamConnection(_ connection: UpstreamConnection?, error: ProxyError?, attempt: Int, from pool: UpstreamPool)
}

/// The steps every upstream call shares, so that the primary and the side calls take
/// connections and start requests the same way.
enum UpstreamCall {
    /// An idle connection of `pool` when one is ready (the common case under load, which then
    /// allocates nothing); otherwise asks the pool for one, which answers through
    /// ``UpstreamCaller/upstreamConnection(_:error:attempt:from:)``, and returns nil.
    ///
    /// - Parameter fresh: bypass idle connections: a retry after a stale keep-alive connection.
    static func connection(from pool: UpstreamPool, fresh: Bool, for caller: some UpstreamCaller, attempt: Int) -> UpstreamConnection? {
        if !fresh, let connection = pool.takeIdle() { return connection }
        // The pool may answer before this returns (it refuses a request when too many wait).
        let callback: (UpstreamConnection?, ProxyError?) -> Void = { connection, error in
            caller.upstreamConnection(connection, error: error, attempt: attempt, from: pool)
        }
        if fresh { pool.acquireFresh(callback) } else { pool.acquire(callback) }
        return nil
    }

    /// Starts an exchange on `connection`: the caller reads its answer, the head and the body
    /// parts so far are written (and the end, when `ends`), then flushed.
    ///
    /// - Parameter deadlines: arms the caller's deadline here when given. The primary passes
    ///   nil: its timeout runs only while it waits on the upstream, which it decides itself.
    static func start(
        _ request: OutboundRequest,
        body: [ByteBuffer],
        ends: Bool,
        on connection: UpstreamConnection,
        upstream: Upstream,
        for caller: some UpstreamCaller,
        deadlines: UpstreamDeadlines?
    ) {
        connection.begin(caller, bodyless: request.method == .HEAD)
        connection.writeRequest(request, for: upstream)
        for part in body { connection.writeRequestBody(part) }
        if ends { connection.writeRequestEnd() }
        connection.flush()
        deadlines?.arm(caller)
    }
}
