import NIOCore

/// The bounds a client connection is held to, by what the proxy is waiting for from the client
/// (docs/reliability.md, "Client bounds"): a pure state machine that takes the connection's
/// events and says which bound runs and when it expires. ``ProxyHandler`` feeds it; the loop's
/// ``ClientConnections`` sweep asks it, once per resolution, whether anything expired.
///
/// The bounds and their nginx counterparts:
/// - `header` (`client_header_timeout`): the whole request head must arrive within it, counted
///   from the connection's start, or from the first byte of a later request on a kept-alive
///   connection. A deadline, not an idle timer: a byte a second does not extend it.
/// - `keepAlive` (`keepalive_timeout`): how long a connection may sit between requests with
///   nothing sent.
/// - `body` (`client_body_timeout`): the longest the client may send no request body bytes
///   while the proxy is reading them. Time in which the proxy itself stopped reading (the
///   upstream is not taking the body) does not count.
/// - `send` (`send_timeout`): the longest the client may take no response bytes while some
///   wait to be written.
/// - `linger` (`lingering_time`, `lingering_timeout`): after a response that closes the
///   connection while the client may still be sending, how long the proxy reads and discards
///   in all, and how long it waits for the next byte.
struct ClientTimeouts {
    /// The configured lengths.
    struct Limits: Sendable, Equatable {
        var header: TimeAmount
        var body: TimeAmount
        var send: TimeAmount
        var keepAlive: TimeAmount
        var lingerTotal: TimeAmount
        var lingerIdle: TimeAmount
    }

    /// Which bound expired: what the connection does next depends on it.
    enum Expiry: Equatable {
        /// A request head did not arrive in time (408 if any of it arrived).
        case header(partial: Bool)
        /// The connection sat idle between requests.
        case keepAlive
        /// The client stopped sending the request body.
        case body
        /// The client stopped taking the response.
        case send
        /// The staged close is over.
        case linger
    }

    let limits: Limits

    /// Waiting for a request head: since when, and whether any of it arrived.
    private var head: (deadline: NIODeadline, kind: HeadWait)?
    private enum HeadWait { case idle, partial }
    private var body: NIODeadline?
    private var bodyPaused = false
    private var send: NIODeadline?
    private var linger: (total: NIODeadline, idle: NIODeadline)?

    init(limits: Limits) {
        self.limits = limits
    }

    /// When the connection started waiting for a request with nothing of it read (a fresh or
    /// kept-alive connection); nil otherwise. The loop evicts the longest-waiting such
    /// connection when it is at its connection cap.
    private(set) var idleSince: NIODeadline?

    /// The connection was accepted: its first head is due within `header`.
    mutating func connectionOpened(now: NIODeadline) {
        head = (now + limits.header, .partial)
        idleSince = now
    }

    /// An exchange finished and the connection stays open. With bytes of the next request
    /// already waiting, its head is due within `header`; otherwise the connection is idle.
    mutating func exchangeEnded(now: NIODeadline, nextRequestWaiting: Bool) {
        body = nil
        bodyPaused = false
        if nextRequestWaiting {
            head = (now + limits.header, .partial)
            idleSince = nil
        } else {
            head = (now + limits.keepAlive, .idle)
            idleSince = now
        }
    }

    /// Bytes arrived while no exchange runs. On an idle kept-alive connection they start the
    /// next head's deadline; while a head is partly read they change nothing (a deadline, not
    /// an idle timer).
    mutating func requestBytesArrived(now: NIODeadline) {
        idleSince = nil
        if let waiting = head, waiting.kind == .idle {
            head = (now + limits.header, .partial)
        }
    }

    /// The head is complete. `bodyFollows`: the client still has a body to send.
    mutating func headReceived(now: NIODeadline, bodyFollows: Bool) {
        head = nil
        idleSince = nil
        body = bodyFollows ? now + limits.body : nil
        bodyPaused = false
    }

    /// Request body bytes arrived: the body bound starts again.
    mutating func bodyProgress(now: NIODeadline) {
        if body != nil { body = now + limits.body }
    }

    /// The proxy stopped (`paused`) or restarted reading the client for its own reasons: the
    /// body bound does not run while the proxy is the one not reading.
    mutating func clientReadsPaused(_ paused: Bool, now: NIODeadline) {
        guard body != nil, paused != bodyPaused else { return }
        bodyPaused = paused
        if !paused { body = now + limits.body }
    }

    /// Whether the body bound runs: the proxy is reading a request body.
    var isReadingBody: Bool { body != nil }

    /// The request has been read to its end.
    mutating func requestEnded() {
        body = nil
        bodyPaused = false
    }

    /// The client stopped taking response bytes (`stalled`), or took some or all of them.
    /// Progress while stalled starts the bound again.
    mutating func sendStalled(_ stalled: Bool, now: NIODeadline) {
        send = stalled ? now + limits.send : nil
    }

    /// The client took some of the waiting bytes while still behind.
    mutating func sendProgress(now: NIODeadline) {
        if send != nil { send = now + limits.send }
    }

    /// Whether the send bound is running (the client is behind).
    var isSendStalled: Bool { send != nil }

    /// A staged close is under way: no read-side bound applies any more (what the client
    /// sends is discarded), but the send bound still holds until the answer is out.
    mutating func stopReadBounds() {
        head = nil
        body = nil
        bodyPaused = false
        idleSince = nil
    }

    /// A staged close began: the write side is shut, what the client still sends is discarded.
    mutating func lingerStarted(now: NIODeadline) {
        head = nil
        body = nil
        send = nil
        idleSince = nil
        linger = (now + limits.lingerTotal, now + limits.lingerIdle)
    }

    /// Bytes arrived while lingering.
    mutating func lingerRead(now: NIODeadline) {
        if let current = linger { linger = (current.total, min(current.total, now + limits.lingerIdle)) }
    }

    var isLingering: Bool { linger != nil }

    /// The connection is closing for good: no bound runs any more.
    mutating func closed() {
        head = nil
        body = nil
        send = nil
        linger = nil
        idleSince = nil
    }

    /// The bound that has expired at `now`, if any. A linger expiry comes first (the connection
    /// is already closing), then send (the client is not reading what it asked for), then the
    /// read-side bounds.
    func expired(now: NIODeadline) -> Expiry? {
        if let linger, linger.total <= now || linger.idle <= now { return .linger }
        if let send, send <= now { return .send }
        if let body, !bodyPaused, body <= now { return .body }
        if let head, head.deadline <= now { return head.kind == .idle ? .keepAlive : .header(partial: idleSince == nil) }
        return nil
    }
}
