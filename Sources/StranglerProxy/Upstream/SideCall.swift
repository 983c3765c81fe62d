import NIOCore
import NIOHTTP1
import StranglerCore

/// Which call of a shadowed request a ``SideCall`` is; its raw value prefixes the call's
/// failure reasons in comparison records and metrics (`candidate_timeout`, `noise_closed`).
enum ShadowRole: String {
    /// The copy sent to the side being evaluated.
    case candidate
    /// The second call to the primary's own upstream, which measures how much its answers vary
    /// on their own.
    case noise
}

/// One extra call made for a shadowed request: the candidate, or legacy a second time to learn
/// noise. It borrows a connection from the same event loop's pool, sends the copy, captures the
/// answer up to a cap, and reports exactly once, answered or failed with a reason. It never
/// touches the client's channel.
final class SideCall {
    private(set) var side: ShadowJob.Side
    /// Why the call produced no usable answer; nil when answered.
    private var failed: Failure?
    /// Why the call produced no usable answer, as comparison records name it
    /// (`candidate_timeout`, ...); nil when answered.
    var failure: String? { failed.map { $0.reason(role: role) } }
    private(set) var isDone = false
    private let loop: LoopContext
    private let role: ShadowRole
    private let limit: Int
    private let timeoutOverride: Int?
    /// The route's `compare.headers`: with the body's type and encoding, all of the answer's
    /// head a comparison reads.
    private let comparedHeaders: [String]
    /// The exchange that owns this call, told once when the call is done. The call holds it
    /// (it must outlive the client's exchange while the copy is in flight) until then, and lets
    /// it go when telling it: keeping it would be a retain cycle that leaks every shadowed
    /// request. A reference, not a closure: one allocation fewer per shadowed request.
    var exchange: ShadowExchange?
    private var bytes = 0
    private var connection: UpstreamConnection?
    /// Whether the upstream keeps the connection open after this answer.
    private var keepAlive = true
    private var pool: UpstreamPool?
    /// The copy and its body, kept while it may be sent once more: an idempotent copy whose
    /// pooled connection turned out closed before any answer (a stale keep-alive connection).
    private var replay: (request: OutboundRequest, body: [ByteBuffer])?
    /// The copy already went once more after a stale connection.
    private var retriedStale = false
    /// The copy and its body while the pool finds a connection for them.
    private var waiting: (request: OutboundRequest, body: [ByteBuffer])?
    private var start = NIODeadline.now()
    private var timeout = TimeAmount.zero
    var deadlineSlot = -1

    /// - Parameters:
    ///   - role: which call this is; it names the call in failure reasons.
    ///   - timeoutMs: the call's own timeout; nil means the upstream's `timeoutMs`.
    ///   - comparedHeaders: the header names (lowercase) the comparison reads besides
    ///     `Content-Type` and `Content-Encoding`.
    init(loop: LoopContext, upstream: String, role: ShadowRole, timeoutMs: Int?, comparedHeaders: [String]) {
        self.loop = loop
        self.side = ShadowJob.Side(upstream: upstream)
        self.role = role
        self.limit = loop.configuration.maxCaptureBytes
        self.timeoutOverride = timeoutMs
        self.comparedHeaders = comparedHeaders
        #if DEBUG
        loop.live.sideCalls.wrappingIncrement(ordering: .relaxed)
        #endif
    }

    #if DEBUG
    deinit {
        loop.live.sideCalls.wrappingDecrement(ordering: .relaxed)
    }
    #endif

    /// Tells the exchange once and lets it go.
    private func finished() {
        let exchange = self.exchange
        self.exchange = nil
        exchange?.sideCallFinished()
    }

    /// Sends `request` and `body` on a pooled connection.
    func send(_ request: OutboundRequest, body: [ByteBuffer]) {
        guard !isDone else { return }
        guard let pool = loop.pool(named: side.upstream) else {
            fail(.unknownUpstream)
            return
        }
        self.pool = pool
        start = .now()
        acquire(request, body: body, from: pool, fresh: false)
    }

    /// Sends on a connection from `pool`: any (an idle one, or a new one), or a `fresh` one.
    private func acquire(_ request: OutboundRequest, body: [ByteBuffer], from pool: UpstreamPool, fresh: Bool) {
        // Kept while the pool finds a connection; nothing is copied but references.
        waiting = (request, body)
        if let connection = UpstreamCall.connection(from: pool, fresh: fresh, for: self, attempt: 0) {
            waiting = nil
            send(request, body: body, on: connection, from: pool)
        }
    }

    private func send(_ request: OutboundRequest, body: [ByteBuffer], on connection: UpstreamConnection, from pool: UpstreamPool) {
        self.connection = connection
        // A reused connection may turn out to have been closed by the upstream while it sat idle;
        // the copy is kept only when the stale-retry rule could send it again.
        replay = connection.exchanges > 0 && request.method.isIdempotent ? (request, body) : nil
        timeout = .milliseconds(Int64(timeoutOverride ?? pool.upstream.timeoutMs))
        UpstreamCall.start(request, body: body, ends: true, on: connection, upstream: pool.upstream, for: self, deadlines: loop.deadlines)
    }

    /// Ends the call without an answer and without reporting (the exchange no longer needs it).
    func cancel() {
        exchange = nil
        guard !isDone else { return }
        isDone = true
        release(reusable: false)
    }

    private func fail(_ reason: Failure) {
        guard !isDone else { return }
        isDone = true
        failed = reason
        side.dropCapture()
        release(reusable: false)
        finished()
    }

    private func release(reusable: Bool) {
        loop.deadlines.disarm(self)
        waiting = nil
        if let connection {
            self.connection = nil
            if reusable, let pool { pool.release(connection, reusable: true) } else { connection.close() }
        }
    }
}

extension SideCall: UpstreamDeadlineClient {
    /// The whole call must be done by then, however much it streamed (unlike the primary,
    /// whose deadline moves with each read).
    var upstreamDeadline: NIODeadline { start + timeout }

    func upstreamDeadlineReached() {
        fail(.timeout)
    }
}

extension SideCall: UpstreamResponseDelegate {
    func upstreamDidReceiveHead(_ head: UpstreamResponseHead) {
        side.captureHead(head, comparing: comparedHeaders, bodyLimit: limit)
        keepAlive = head.isKeepAlive
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        guard !isDone else { return }
        bytes += buffer.readableBytes
        if bytes > limit {
            fail(.bodyTooLarge)
            return
        }
        side.append(buffer)
    }

    func upstreamDidReceiveEnd(_ trailers: ByteBuffer?) {
        guard !isDone else { return }
        isDone = true
        replay = nil
        side.milliseconds = Double((NIODeadline.now() - start).nanoseconds) / 1_000_000
        release(reusable: keepAlive)
        finished()
    }

    func upstreamDidFail(_ error: Error) {
        let wasReused = (connection?.exchanges ?? 0) > 0
        connection = nil
        // A pooled connection the upstream had closed while it sat idle, found out before any
        // answer: the copy goes once more on a fresh connection, by the primary's rule.
        // The call's deadline keeps running from the first attempt.
        if let replay, !isDone, let pool,
            ExchangeStateMachine.retriesStale(
                wasReused: wasReused,
                answerBegun: side.status != nil,
                replayable: replay.request.method.isIdempotent,
                retriedAlready: retriedStale
            )
        {
            retriedStale = true
            self.replay = nil
            acquire(replay.request, body: replay.body, from: pool, fresh: true)
            return
        }
        replay = nil
        // An answer that is not valid HTTP is a finding about the candidate, not a lost connection.
        let invalid = (error as? ProxyError)?.isInvalidResponse ?? false
        fail(invalid ? .invalidResponse : .closed)
    }

    func upstreamReadComplete() {}

    func upstreamWritabilityChanged(isWritable: Bool) {}
}

extension SideCall: UpstreamCaller {
    func upstreamConnection(_ connection: UpstreamConnection?, error: ProxyError?, attempt: Int, from pool: UpstreamPool) {
        let waiting = self.waiting
        self.waiting = nil
        guard let connection else {
            fail(error?.isConnectFailure == true ? .unreachable : .error)
            return
        }
        guard !isDone, let waiting else {
            pool.release(connection, reusable: true)
            return
        }
        send(waiting.request, body: waiting.body, on: connection, from: pool)
    }
}

extension SideCall {
    /// Why a side call produced no usable answer.
    enum Failure: Equatable {
        /// The route table names no such upstream any more.
        case unknownUpstream
        /// No connection could be opened.
        case unreachable
        /// The pool could not provide a connection for another reason (too many waiting).
        case error
        /// The whole call took longer than its timeout.
        case timeout
        /// The connection closed before the answer was complete.
        case closed
        /// The answer was not valid HTTP: a finding about the upstream, not a lost connection.
        case invalidResponse
        /// The answer is larger than the capture limit.
        case bodyTooLarge

        /// The reason as comparison records and skip metrics name it: prefixed by the call's
        /// role (`candidate_timeout`), except a body over the cap, which is the same for both.
        func reason(role: ShadowRole) -> String {
            let role = role.rawValue
            return switch self {
            case .unknownUpstream: role + "_unknown"
            case .unreachable: role + "_unreachable"
            case .error: role + "_error"
            case .timeout: role + "_timeout"
            case .closed: role + "_closed"
            case .invalidResponse: role + "_invalid_response"
            case .bodyTooLarge: "body_too_large"
            }
        }
    }
}
