import Logging
import NIOCore
import NIOHTTP1
import StranglerCore

// The handler's upstream side: it carries out the exchange state machine's actions (attempts,
// the fallback to legacy, the upstream timeout) and, as the delegate of the upstream connection
// it borrows, forwards the response to the client.

extension ProxyHandler {
    // MARK: - Running the state machine's actions

    /// Carries out what the state machine decided. Outcomes that need their cause (a failure's
    /// error, why the client is cut off) are not actions: they are handled where their event is
    /// fed, which has the cause.
    func run(_ action: ExchangeStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .connect(let attempt, let fresh):
            connect(attempt: attempt, fresh: fresh, context: context)
        case .sendRequest(let connection, let ends, let pauseReads):
            sendRequest(on: connection, ends: ends, pauseReads: pauseReads)
        case .sendRequestEnd(let connection):
            // A body without chunks ends with nothing to write, and so nothing to flush.
            if connection.writeRequestEnd() { record.wroteUpstreamSinceFlush = true }
            updateUpstreamTimer()
        case .pauseReads(let connection):
            connection.pauseReads()
            updateUpstreamTimer()
        case .resumeReads(let connection):
            connection.resumeReads()
            updateUpstreamTimer()
        case .releaseConnection(let connection, let reusable):
            // Reads held back on it are resumed by the pool; a connection with no pool is closed.
            if let pool = record.connectionPool {
                pool.release(connection, reusable: reusable)
            } else {
                connection.close()
            }
        case .finishExchange:
            finishExchange(context: context)
        }
    }

    // MARK: - Attempts

    /// Takes or asks for a connection to the current upstream for `attempt`.
    private func connect(attempt: Int, fresh: Bool, context: ChannelHandlerContext) {
        guard let pool = loop.pool(named: record.upstreamName) else {
            respondWithError(.connectFailed("no upstream named \"\(record.upstreamName)\" in the live route table"), context: context)
            return
        }
        record.connectionPool = pool
        if let connection = UpstreamCall.connection(from: pool, fresh: fresh, for: self, attempt: attempt) {
            run(machine.connectionReady(connection, attempt: attempt), context: context)
        }
    }

    /// Sends the request on the attempt's connection: head, the body buffered so far, and the
    /// end if the client's request has ended.
    private func sendRequest(on connection: UpstreamConnection, ends: Bool, pauseReads: Bool) {
        guard let outbound = record.outbound, let pool = record.connectionPool else { return }
        UpstreamCall.start(outbound, body: bufferedBody, ends: ends, on: connection, upstream: pool.upstream, for: self, deadlines: nil)
        if !machine.replayable { bufferedBody.removeAll() }
        record.wroteUpstreamSinceFlush = false
        timeoutLimit = .milliseconds(Int64(pool.upstream.timeoutMs))
        if pauseReads { connection.pauseReads() }
        updateUpstreamTimer()
        if connection.isWritable { resumeClientReads() }
    }

    /// The attempt failed before any of its response reached the client, with `error`; the
    /// machine said what follows: a replay on legacy, or the error as the answer.
    private func attemptFailed(_ error: ProxyError, then end: ExchangeStateMachine.AttemptEnd, context: ChannelHandlerContext) {
        countFailedAttempt(kind: error.metricKind)
        switch end {
        case .fallBack(let attempt, let closing):
            replayOnLegacy(attempt: attempt, closing: closing, reason: error.description, context: context)
        case .answerError(let closing):
            closing?.close()
            writeErrorAnswer(error, context: context)
        }
    }

    /// A failed attempt ends: its timer stops, and the error is counted (as `kind`) for the
    /// upstream and, when the service failed, for the route's traffic.
    private func countFailedAttempt(kind: String) {
        cancelTimeout()
        loop.metrics.recordUpstreamError(upstream: record.upstreamName, kind: kind)
        record.recordServiceError(in: &loop.traffic)
    }

    /// Replays the request on legacy as `attempt` after the service failed it (the machine
    /// already counted the fallback as used and started the attempt): closes `closing`, if any,
    /// moves the exchange to legacy, logging `reason`, and asks for a connection.
    private func replayOnLegacy(attempt: Int, closing: UpstreamConnection?, reason: String, context: ChannelHandlerContext) {
        closing?.close()
        if let route = record.route { fallBack(to: route.legacy, reason: reason) }
        connect(attempt: attempt, fresh: false, context: context)
    }

    /// Moves the exchange to legacy after the service failed it.
    private func fallBack(to legacy: String, reason: String) {
        loop.metrics.recordFallback(route: record.routeID)
        if let shadow { settleShadow(.atFallback(candidate: shadow.candidateUpstream, legacy: legacy)) }
        loop.logger.warning(
            "service failed; retrying on legacy",
            metadata: [
                "request_id": "\(requestID.string)", "route": "\(record.routeID)", "from": "\(record.upstreamName)", "to": "\(legacy)",
                "reason": "\(reason)",
            ]
        )
        record.fallBack(to: legacy, traffic: &loop.traffic)
    }

    // MARK: - Timeouts

    /// Runs the upstream timeout only while the proxy waits on the upstream (the machine says
    /// when: ``ExchangeStateMachine/upstreamTimerRuns(upstreamWritable:)``).
    private func updateUpstreamTimer() {
        guard let connection = machine.connection, machine.upstreamTimerRuns(upstreamWritable: connection.isWritable) else {
            cancelTimeout()
            return
        }
        if deadlineSlot < 0 {
            lastUpstreamActivity = .now()
            loop.deadlines.arm(self)
        }
    }

    func cancelTimeout() {
        loop.deadlines.disarm(self)
    }

    /// The upstream has been silent for `timeoutMs` (each read moves the deadline).
    func upstreamDeadlineReached() {
        guard let context, machine.connection != nil, let upstream = record.connectionPool?.upstream else { return }
        let error = ProxyError(silentUpstream: upstream)
        switch machine.upstreamTimedOut() {
        case nil:
            break
        case .abortClient(let closing):
            closing?.close()
            loop.metrics.recordUpstreamError(upstream: record.upstreamName, kind: error.metricKind)
            abortClient(outcome: .upstreamTimeoutMidBody)
        case .answerError(let closing):
            // A timed-out request may have had effects upstream: the machine never replays it.
            attemptFailed(error, then: .answerError(closing: closing), context: context)
        }
    }
}

// MARK: - Upstream → client

extension ProxyHandler: UpstreamDeadlineClient {
    var upstreamDeadline: NIODeadline { lastUpstreamActivity + timeoutLimit }
}

extension ProxyHandler: UpstreamCaller {
    func upstreamConnection(_ connection: UpstreamConnection?, error: ProxyError?, attempt: Int, from pool: UpstreamPool) {
        guard let context else {
            // The client connection is gone: nothing will use the connection.
            if let connection { pool.release(connection, reusable: true) }
            return
        }
        if let connection {
            switch machine.connectionReady(connection, attempt: attempt) {
            case .releaseConnection(let connection, let reusable):
                // The exchange moved on (client left, or it was answered): give it back.
                pool.release(connection, reusable: reusable)
            case let action:
                run(action, context: context)
            }
            return
        }
        let error = error ?? .connectFailed("unknown connect failure")
        guard let end = machine.connectionFailed(attempt: attempt, isConnectFailure: error.isConnectFailure) else { return }
        attemptFailed(error, then: end, context: context)
    }
}

extension ProxyHandler: UpstreamResponseDelegate {
    func upstreamDidReceiveHead(_ head: UpstreamResponseHead) {
        guard let context else { return }
        let code = head.statusCode
        switch machine.responseHeadReceived(status: code, keepAlive: head.isKeepAlive) {
        case .forward:
            break
        case .ignore:
            return
        case .fallBack(let attempt, let closing):
            // Discard the service's error and replay on legacy; this connection's response is
            // abandoned, so it can't be reused.
            countFailedAttempt(kind: "status_\(code)")
            replayOnLegacy(attempt: attempt, closing: closing, reason: "\(record.upstreamName) answered \(code)", context: context)
            return
        }
        record.responseStatus = UInt(code)
        if code >= 500 { record.recordServiceError(in: &loop.traffic) }

        let framing = ResponseFraming(
            method: method,
            statusCode: code,
            contentLength: head.contentLength,
            clientVersion: clientVersion,
            clientKeepAlive: clientKeepAlive,
            requestComplete: machine.requestComplete,
            closeAlready: record.closeAfterResponse
        )
        record.closeAfterResponse = framing.closeAfterResponse
        response.holdHead(head, clientVersion: clientVersion, requestID: requestID, upstreamName: record.upstreamName, framing: framing)
        shadow?.primaryHead(head)
    }

    /// Writes the forwarded head if it is still waiting for body bytes.
    private func writePendingHead(_ context: ChannelHandlerContext) {
        if let head = response.takeHead() { writeHead(head, context) }
    }

    private func writeHead(_ head: ByteBuffer, _ context: ChannelHandlerContext) {
        machine.responseHeadWritten()
        context.write(wrapOutboundOut(head), promise: nil)
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        guard let context, machine.responseStarted, buffer.readableBytes > 0 else { return }
        switch response.body(buffer) {
        case .joinedHead:
            break
        case .chunk(let head, let part):
            if let head { writeHead(head, context) }
            context.writeChunk(part)
        case .asIs(let head, let part):
            if let head { writeHead(head, context) }
            context.write(wrapOutboundOut(part), promise: nil)
        }
        shadow?.primaryBody(buffer)
        run(machine.responseBodyForwarded(), context: context)
    }

    func upstreamDidReceiveEnd(_ trailers: ByteBuffer?) {
        guard let context, machine.responseStarted else { return }
        writePendingHead(context)
        cancelTimeout()
        settleShadow(.atResponseEnd(requestComplete: machine.requestComplete))
        // Reusable only if both messages ended cleanly on this connection.
        run(machine.responseEnded(), context: context)
        completeResponse(context: context, trailers: trailers)
    }

    func upstreamDidFail(_ error: Error) {
        guard let context, let connection = machine.connection else { return }
        let wasReused = connection.exchanges > 0
        let started = machine.responseStarted
        // Only a connection's own error can say the request never left; the message is built
        // only for the branch that reports it (a stale retry or an abort never shows it).
        let isConnectFailure = (error as? ProxyError)?.isConnectFailure ?? false
        switch machine.upstreamFailed(wasReused: wasReused, isConnectFailure: isConnectFailure) {
        case .ignore:
            break
        case .abortClient:
            // The head reached the client: the connection failed us mid-body (it is already
            // closing, and has let go of this exchange).
            loop.metrics.recordUpstreamError(upstream: record.upstreamName, kind: "closed_mid_body")
            abortClient(outcome: .upstreamClosedMidBody)
        case .retryFresh(let attempt):
            cancelTimeout()
            connect(attempt: attempt, fresh: true, context: context)
        case .attemptEnded(let end):
            if started {
                // The head was read but none of it reached the client (the failure came in the
                // same read, bad chunk framing say): the client still gets a clean 502.
                response.reset()
                record.responseStatus = 0
            }
            attemptFailed(
                ProxyError(upstreamFailure: error, upstream: record.upstreamName, responseStarted: started),
                then: end,
                context: context
            )
        }
    }

    func upstreamReadComplete() {
        lastUpstreamActivity = .now()
        if let context {
            writePendingHead(context)
            context.flush()
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        // The upstream took bytes: progress, so its timeout starts again.
        if isWritable { lastUpstreamActivity = .now() }
        if isWritable {
            resumeClientReads()
        } else if clientSide.pauseReads() {
            clientReadsPausedChanged(true)
        }
        updateUpstreamTimer()
    }
}
