import NIOCore

/// The upstream side of one client exchange: which attempt is in flight, on which connection,
/// how far the response got, and what a failure may still do (fall back to legacy, retry a
/// stale keep-alive connection once).
///
/// A value type with no I/O: ``ProxyHandler`` feeds it events (a connection arrived, the
/// response's head, a failure, the client's writability) and carries out what each returns:
/// an ``Action`` it runs as is, or, from an event that has a cause (an error, a head, an
/// expired bound), an outcome the handler completes with that cause. Failure paths that used to meet through flags meet here, in one switch per event,
/// which the tests drive without sockets.
///
/// Hot-path cost: the state is a few words (one connection reference, a few flags), mutated in
/// place; nothing here allocates.
struct ExchangeStateMachine {
    /// Where the exchange is. Each phase carries what only it has.
    enum State {
        /// Between exchanges.
        case idle
        /// Waiting for an upstream connection. `attempt` names this request for one: an answer
        /// for any other attempt is for one the exchange abandoned.
        case connecting(attempt: Int)
        /// The request is going (or went) upstream; the response has not finished.
        case forwarding(Forwarding)
        /// The response is finished (or the proxy answered itself); waiting for the request's end.
        case draining
        /// Only while a transition rewrites the forwarding payload, so that it is not shared
        /// (and copied) while it changes.
        case modifying
    }

    /// The attempt in flight on an upstream connection.
    struct Forwarding {
        /// The connection the request went out on.
        var connection: UpstreamConnection
        /// The request's end has been written on this connection.
        var requestSent: Bool
        /// Reads from the upstream are held back because the client is not taking the response.
        var readsPaused: Bool
        /// How far the upstream's response got.
        var response: Response
    }

    /// How far the upstream's response got towards the client.
    enum Response: Equatable {
        /// No head yet: a failure can still be answered cleanly (or retried).
        case awaited
        /// The head was read but has not reached the client: a failure still gets a clean 502.
        case headRead(keepAlive: Bool)
        /// The head reached the client: after that, a failure can only abort the connection.
        case headWritten(keepAlive: Bool)
    }

    /// Whether a failed service answer may be replayed on legacy.
    enum Fallback: Equatable {
        /// Not on this route or method, or no longer (a timeout, or a response that started).
        case forbidden
        /// Once, if the request can still be sent again.
        case permitted
        /// Already replayed on legacy.
        case used
    }

    /// What the handler does after an event: each case is carried out as it stands, with
    /// nothing but what it carries. Outcomes that need their cause (an error, the reason a
    /// client is cut off) come back in their own types (``AttemptEnd``, ``UpstreamFailure``,
    /// ``Ending``, ``Abort``, ``HeadVerdict``, ``Cancel``) from the event that has the cause.
    enum Action {
        /// Nothing.
        case none
        /// Ask the current upstream's pool for a connection for `attempt`; `fresh` bypasses idle
        /// connections (the retry after a stale one).
        case connect(attempt: Int, fresh: Bool)
        /// Send the request on `connection`: its head and the body so far, and the end when
        /// `ends`. Hold back its reads first when `pauseReads` (the client is not writable).
        case sendRequest(UpstreamConnection, ends: Bool, pauseReads: Bool)
        /// Write the request's end on `connection`.
        case sendRequestEnd(UpstreamConnection)
        /// Hold back reads from `connection`.
        case pauseReads(UpstreamConnection)
        /// Resume reads from `connection`.
        case resumeReads(UpstreamConnection)
        /// Give `connection` back to its pool. Reads held back on it are resumed by the pool
        /// (``UpstreamPool/release(_:reusable:)``), which owns that for every borrower.
        case releaseConnection(UpstreamConnection, reusable: Bool)
        /// Both messages are done: finish the exchange.
        case finishExchange
    }

    /// What follows an attempt that failed before any of its response reached the client.
    enum AttemptEnd {
        /// Close `closing`, if any, and replay on legacy as `attempt`.
        case fallBack(attempt: Int, closing: UpstreamConnection?)
        /// Nothing may go again: close `closing`, if any, and answer the client with the error.
        case answerError(closing: UpstreamConnection?)
    }

    /// What follows a failure of the attempt's upstream connection.
    enum UpstreamFailure {
        /// No attempt is forwarding: the failure is for one the exchange abandoned.
        case ignore
        /// The response had started towards the client: close the client connection.
        case abortClient
        /// The connection was a stale keep-alive one: try again on a fresh connection as `attempt`.
        case retryFresh(attempt: Int)
        /// Nothing of the response reached the client: fall back or answer.
        case attemptEnded(AttemptEnd)
    }

    /// How an exchange the proxy can't complete normally ends towards the client.
    enum Ending {
        /// Nothing of a response has gone: close `closing`, if any, and answer with the error.
        case answerError(closing: UpstreamConnection?)
        /// The response had started and can't be completed: close `closing`, if any, and the
        /// client connection.
        case abortClient(closing: UpstreamConnection?)
    }

    /// What a client bound that expired past the point of an answer closes.
    enum Abort {
        /// An upstream call was running: close `closing`, if any, and record the exchange as cut short.
        case exchange(closing: UpstreamConnection?)
        /// No exchange to abort: close the client connection.
        case connection
    }

    /// What becomes of the upstream's response head.
    enum HeadVerdict {
        /// No attempt is forwarding: the head is for one the exchange abandoned.
        case ignore
        /// Forward it to the client.
        case forward
        /// Discard the service's error and replay on legacy as `attempt`; `closing`'s response
        /// is abandoned, so it is closed.
        case fallBack(attempt: Int, closing: UpstreamConnection)
    }

    /// The upstream call the client left during.
    struct Cancel {
        /// The connection to close, if one was in use.
        var closing: UpstreamConnection?
        /// The response had started: it has a status of its own.
        var responseStarted: Bool
    }

    private(set) var state = State.idle
    /// The last attempt number handed out; attempts are never reused over the connection's life.
    private var lastAttempt = 0
    /// The client's request has ended.
    private(set) var requestComplete = false
    /// The request may be sent again: idempotent, and its body still buffered.
    private(set) var replayable = false
    /// Whether a failure may still be replayed on legacy.
    private(set) var fallback = Fallback.forbidden
    /// A stale keep-alive connection was already retried once.
    private(set) var retriedStale = false
    /// The client channel's writability as its last change said.
    private(set) var clientWritable = true

    // MARK: - Views

    /// No exchange is running.
    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// An upstream call is running (connecting or forwarding).
    var isCalling: Bool {
        switch state {
        case .connecting, .forwarding: true
        case .idle, .draining, .modifying: false
        }
    }

    /// The upstream connection of the attempt in flight.
    var connection: UpstreamConnection? {
        if case .forwarding(let forwarding) = state { return forwarding.connection }
        return nil
    }

    /// A response (the upstream's, or the proxy's own) has started towards the client.
    var responseStarted: Bool {
        switch state {
        case .forwarding(let forwarding): forwarding.response != .awaited
        case .draining: true
        case .idle, .connecting, .modifying: false
        }
    }

    /// Whether the upstream timeout runs: only while the proxy waits on the upstream, for it to
    /// take request bytes, or, once the request is all sent, for its response while the proxy is
    /// reading. Time spent waiting on the client (more of its body, or room to write the
    /// response, when the proxy paused the upstream's reads itself) is the client's own bounds'
    /// business (docs/reliability.md, "The upstream timeout").
    func upstreamTimerRuns(upstreamWritable: Bool) -> Bool {
        guard case .forwarding(let forwarding) = state else { return false }
        return !upstreamWritable || (forwarding.requestSent && !forwarding.readsPaused)
    }

    // MARK: - The client's request

    /// A new exchange begins: everything the last one decided is forgotten.
    mutating func exchangeStarted() {
        state = .idle
        requestComplete = false
        replayable = false
        fallback = .forbidden
        retriedStale = false
    }

    /// The request is routed and goes upstream.
    ///
    /// - Parameters:
    ///   - replayable: it may be sent again (an idempotent method).
    ///   - mayFallBack: a failure of its upstream may be replayed on legacy.
    mutating func startCalling(replayable: Bool, mayFallBack: Bool) -> Action {
        self.replayable = replayable
        fallback = mayFallBack ? .permitted : .forbidden
        return nextAttempt(fresh: false)
    }

    /// The request's body outgrew what is kept for a replay.
    mutating func stopReplaying() {
        replayable = false
    }

    /// The client's request has ended.
    mutating func requestEnded() -> Action {
        requestComplete = true
        switch state {
        case .forwarding(var forwarding):
            guard !forwarding.requestSent else { return .none }
            state = .modifying
            forwarding.requestSent = true
            state = .forwarding(forwarding)
            return .sendRequestEnd(forwarding.connection)
        case .draining:
            return .finishExchange
        case .idle, .connecting:
            return .none
        case .modifying:
            preconditionFailure("invalid state: \(state)")
        }
    }

    /// The rest of the request will not be read (the proxy answers and closes).
    mutating func requestAbandoned() {
        requestComplete = false
    }

    // MARK: - Connections

    /// A connection arrived for `attempt`.
    mutating func connectionReady(_ connection: UpstreamConnection, attempt: Int) -> Action {
        guard case .connecting(let current) = state, current == attempt else {
            // The exchange moved on (the client left, or it was answered): give it back.
            return .releaseConnection(connection, reusable: true)
        }
        let paused = !clientWritable
        state = .forwarding(Forwarding(connection: connection, requestSent: requestComplete, readsPaused: paused, response: .awaited))
        return .sendRequest(connection, ends: requestComplete, pauseReads: paused)
    }

    /// No connection could be had for `attempt`.
    mutating func connectionFailed(attempt: Int, isConnectFailure: Bool) -> AttemptEnd? {
        guard case .connecting(let current) = state, current == attempt else { return nil }
        return attemptFailed(closing: nil, isConnectFailure: isConnectFailure)
    }

    // MARK: - The upstream's response

    /// The upstream's response head arrived with `status`.
    mutating func responseHeadReceived(status: Int, keepAlive: Bool) -> HeadVerdict {
        guard case .forwarding(var forwarding) = state else { return .ignore }
        if fallback == .permitted, status >= 500, replayable {
            // Discard the service's error and replay on legacy; this connection's response is
            // abandoned, so it can't be reused.
            fallback = .used
            return .fallBack(attempt: startAttempt(), closing: forwarding.connection)
        }
        state = .modifying
        forwarding.response = .headRead(keepAlive: keepAlive)
        state = .forwarding(forwarding)
        return .forward
    }

    /// The forwarded head was written to the client.
    mutating func responseHeadWritten() {
        guard case .forwarding(var forwarding) = state, case .headRead(let keepAlive) = forwarding.response else { return }
        state = .modifying
        forwarding.response = .headWritten(keepAlive: keepAlive)
        state = .forwarding(forwarding)
    }

    /// A part of the response body was forwarded to the client.
    mutating func responseBodyForwarded() -> Action {
        clientWritable ? .none : pauseReads()
    }

    /// The upstream's response ended: the connection goes back to its pool, reusable only if
    /// both messages ended cleanly on it.
    mutating func responseEnded() -> Action {
        guard case .forwarding(let forwarding) = state else { return .none }
        let keepAlive: Bool
        switch forwarding.response {
        case .awaited: return .none
        case .headRead(let alive), .headWritten(let alive): keepAlive = alive
        }
        state = .draining
        return .releaseConnection(forwarding.connection, reusable: keepAlive && forwarding.requestSent)
    }

    /// The upstream connection failed. It has already let go of the exchange; it is not closed
    /// here.
    ///
    /// - Parameters:
    ///   - wasReused: the connection had carried an earlier exchange (it may have been closed
    ///     by the upstream while idle).
    ///   - isConnectFailure: the error says the request never reached the upstream.
    mutating func upstreamFailed(wasReused: Bool, isConnectFailure: Bool) -> UpstreamFailure {
        guard case .forwarding(let forwarding) = state else { return .ignore }
        switch forwarding.response {
        case .headWritten:
            state = .idle
            return .abortClient
        case .headRead:
            // The head was read but none of it reached the client (the failure came in the same
            // read, bad chunk framing say): the client still gets a clean 502, but this request
            // is not replayed.
            fallback = .forbidden
            return .attemptEnded(attemptFailed(closing: nil, isConnectFailure: isConnectFailure))
        case .awaited:
            // A keep-alive connection the upstream closed while it sat idle: the request never
            // got there, so an idempotent one is retried once on a fresh connection.
            if Self.retriesStale(wasReused: wasReused, answerBegun: false, replayable: replayable, retriedAlready: retriedStale) {
                retriedStale = true
                return .retryFresh(attempt: startAttempt())
            }
            return .attemptEnded(attemptFailed(closing: nil, isConnectFailure: isConnectFailure))
        }
    }

    /// The upstream has been silent for its timeout; nil when no attempt is forwarding. A
    /// timed-out request may have had effects upstream: it is never replayed, only answered
    /// (or, once its response started, cut off).
    mutating func upstreamTimedOut() -> Ending? {
        guard case .forwarding(let forwarding) = state else { return nil }
        if forwarding.response != .awaited {
            state = .idle
            return .abortClient(closing: forwarding.connection)
        }
        fallback = .forbidden
        state = .draining
        return .answerError(closing: forwarding.connection)
    }

    // MARK: - The client

    /// The client channel's writability changed: the upstream's reads follow it.
    mutating func clientWritabilityChanged(isWritable: Bool) -> Action {
        clientWritable = isWritable
        return isWritable ? resumeReads() : pauseReads()
    }

    /// The proxy answers the client itself (a refusal, a failure, a timeout): the upstream call,
    /// if any, ends. Returns ``Ending/answerError(closing:)`` when nothing of a response has gone
    /// yet, else ``Ending/abortClient(closing:)``.
    mutating func answerWithError() -> Ending {
        let closing = connection
        if responseStarted {
            state = .idle
            return .abortClient(closing: closing)
        }
        state = .draining
        return .answerError(closing: closing)
    }

    /// A client bound expired past the point of an answer: the exchange and the connection end.
    mutating func abort() -> Abort {
        switch state {
        case .connecting, .forwarding:
            let closing = connection
            state = .idle
            return .exchange(closing: closing)
        case .idle, .draining:
            return .connection
        case .modifying:
            preconditionFailure("invalid state: \(state)")
        }
    }

    /// The client connection closed; returns the upstream call it cut short, if one was running.
    mutating func clientClosed() -> Cancel? {
        let action: Cancel?
        switch state {
        case .connecting, .forwarding:
            action = Cancel(closing: connection, responseStarted: responseStarted)
        case .idle, .draining:
            action = nil
        case .modifying:
            preconditionFailure("invalid state: \(state)")
        }
        state = .idle
        return action
    }

    /// The exchange is over (both messages done, or the connection is closing).
    mutating func exchangeFinished() {
        state = .idle
    }

    // MARK: - Helpers

    /// Whether a failed connection is retried once on a fresh one: a keep-alive connection the
    /// upstream closed while it sat idle fails before any answer, and the request never got
    /// there, so one that may be sent again goes once more. Shared by every upstream call (the
    /// exchange here, ``SideCall``), so that they retry alike.
    static func retriesStale(wasReused: Bool, answerBegun: Bool, replayable: Bool, retriedAlready: Bool) -> Bool {
        wasReused && !answerBegun && replayable && !retriedAlready
    }

    /// Moves to a new attempt and says to connect for it.
    private mutating func nextAttempt(fresh: Bool) -> Action {
        .connect(attempt: startAttempt(), fresh: fresh)
    }

    /// Moves to a new attempt, waiting for its connection; returns its number.
    private mutating func startAttempt() -> Int {
        lastAttempt &+= 1
        state = .connecting(attempt: lastAttempt)
        return lastAttempt
    }

    /// The attempt could not be used before any of its response reached the client. After a
    /// connect failure nothing reached the upstream and the whole body is still buffered; after
    /// anything else only a replayable request may go again.
    private mutating func attemptFailed(closing: UpstreamConnection?, isConnectFailure: Bool) -> AttemptEnd {
        if fallback == .permitted, replayable || isConnectFailure {
            fallback = .used
            return .fallBack(attempt: startAttempt(), closing: closing)
        }
        state = .draining
        return .answerError(closing: closing)
    }

    private mutating func pauseReads() -> Action {
        guard case .forwarding(var forwarding) = state, !forwarding.readsPaused else { return .none }
        state = .modifying
        forwarding.readsPaused = true
        state = .forwarding(forwarding)
        return .pauseReads(forwarding.connection)
    }

    private mutating func resumeReads() -> Action {
        guard case .forwarding(var forwarding) = state, forwarding.readsPaused else { return .none }
        state = .modifying
        forwarding.readsPaused = false
        state = .forwarding(forwarding)
        return .resumeReads(forwarding.connection)
    }
}
