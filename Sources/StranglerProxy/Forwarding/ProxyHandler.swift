import Atomics
import Logging
import NIOCore
import NIOHTTP1
import StranglerCore

/// Forwards the requests of one client connection to upstreams, streaming in both directions.
///
/// One instance per client connection, the whole pipeline. It reads requests from the
/// connection's bytes itself (``ClientRequestParser``) and writes response bytes itself: both
/// heads are copied line by line from the bytes they arrived as (``ClientRequestHead``,
/// ``UpstreamResponseHead``), with no `HTTPHeaders`, decoder or encoder in between. It handles
/// one exchange at a time: the bytes of a pipelined request wait unparsed until the exchange
/// before it has finished, so responses go out in order. It answers requests the parser
/// rejects, and closes idle connections when the server quiesces. It is also the delegate of the
/// upstream connection it borrows, so an exchange allocates no object of its own.
/// Backpressure: reads from one side are held back while the other side is not writable.
///
/// What happens to the upstream call (attempts, the fallback to legacy, the retry of a stale
/// connection, timeouts, backpressure, the client leaving) is decided by
/// ``ExchangeStateMachine``: the handler feeds it events and carries out the actions it returns.
/// The heads and the route are computed by pure functions (``OutboundHead``,
/// ``ResponseHeadRewrite``, ``RouteChoice``, ``ErrorAnswer``).
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let loop: LoopContext
    private var context: ChannelHandlerContext?
    private var clientAddress = "unknown"
    private var clientTrusted = false

    /// The exchange's upstream side: attempts, connection, response progress, what a failure
    /// may still do. Every decision about them is made there; this handler carries them out.
    private var machine = ExchangeStateMachine()
    /// The current exchange's route, upstream and outbound request; fresh for each exchange.
    private var record = ExchangeRecord(closeAfterResponse: false)
    // The request's own facts, set per request head (a request refused before its head keeps
    // the last one's: its answer goes in the version the client last spoke).
    private var requestID = RequestIDValue.client("")
    private var method = HTTPMethod.GET
    /// The request target, for the access log; set only while it is on.
    private var uri = ""
    private var clientVersion = HTTPVersion.http1_1
    private var clientKeepAlive = true
    private var startTime = NIODeadline.now()
    /// Body parts not yet written upstream, or all of them while the request is replayable.
    private var bufferedBody: [ByteBuffer] = []
    /// The last exchange's two head buffers, reused for the next exchange's heads.
    private var spareRequestHead = SpareHeadBuffer()
    /// The response on its way to the client: the held head and the body's framing.
    private var response = ClientResponseWriter()
    private var lastUpstreamActivity = NIODeadline.now()
    private var timeoutLimit = TimeAmount.zero
    var deadlineSlot = -1
    /// The copy to the other side, when this request is shadowed.
    private var shadow: ShadowExchange?

    /// The client's own bounds: head, body, send, keep-alive and the staged close.
    private var timeouts: ClientTimeouts
    /// Position in the loop's ``ClientConnections``; -1 when not registered.
    var connectionSlot = -1
    /// The client's unsent response bytes when the send bound last saw them: less means progress.
    private var lastBufferedToClient = 0

    /// The client side of the connection: paused reads, pipelined bytes, the input's end, the
    /// staged close. Every decision about them is made there; this handler carries them out.
    private var clientSide: ClientConnectionStateMachine

    private var requestParser: ClientRequestParser
    /// Routes each request on its normal path; keeps the buffer an unusual path is normalised in.
    private var targetRouter: TargetRouter
    /// When the last read between exchanges began: the next head's bounds count from it.
    private var readTime = NIODeadline.now()

    /// - Parameter holdsConnectionPlace: the connection took a place in the server's count
    ///   (``ClientConnectionCount``), which the handler gives back when the connection closes.
    init(loop: LoopContext, holdsConnectionPlace: Bool = false) {
        self.clientSide = ClientConnectionStateMachine(
            holdsPlace: holdsConnectionPlace,
            discardBudget: loop.configuration.lingerMaxBytes
        )
        self.loop = loop
        self.requestParser = ClientRequestParser(maxHeadBytes: loop.configuration.maxHeaderBytes)
        self.timeouts = ClientTimeouts(limits: loop.configuration.clientTimeoutLimits)
        #if DEBUG
        loop.live.proxyHandlers.wrappingIncrement(ordering: .relaxed)
        #endif
        self.targetRouter = TargetRouter(policy: loop.configuration.ambiguousPaths)
    }

    #if DEBUG
    deinit {
        loop.live.proxyHandlers.wrappingDecrement(ordering: .relaxed)
    }
    #endif

    // MARK: - Channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { channelBecameActive(context.channel) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it here would keep both, and everything the
        // handler holds, alive after the connection closed.
        self.context = nil
        releaseConnectionPlace()
    }

    /// Gives the connection's place in the server's count back, once.
    private func releaseConnectionPlace() {
        if clientSide.releasePlace() { loop.clientCount.closed() }
    }

    func channelActive(context: ChannelHandlerContext) {
        channelBecameActive(context.channel)
        context.fireChannelActive()
    }

    private func channelBecameActive(_ channel: Channel) {
        guard connectionSlot < 0 else { return }
        loop.clients.register(self)
        timeouts.connectionOpened(now: .now())
        if let ip = channel.remoteAddress?.ipAddress {
            clientAddress = ip
            clientTrusted = loop.configuration.trustedProxies.contains(ip)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        loop.clients.unregister(self)
        if clientSide.channelClosed() { loop.clientCount.closed() }
        timeouts.closed()
        // Always: the loop's deadline list holds armed handlers strongly.
        cancelTimeout()
        // The client is gone: cancel the upstream call rather than finish it for nobody.
        if let cancel = machine.clientClosed() {
            cancel.closing?.close()
            abandonShadow()
            if !cancel.responseStarted { record.responseStatus = 499 }
            logExchange(outcome: .clientClosed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeClient(context: context)
    }

    /// Closes the client connection; nothing more it sent is read as a request.
    private func closeClient(context: ChannelHandlerContext) {
        clientSide.closeInput()
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiesce()
    }

    /// The server is shutting down: finish the current exchange, then close.
    func quiesce() {
        guard let context else { return }
        switch clientSide.quiesce(exchangeRunning: !machine.isIdle) {
        case .close:
            closeClient(context: context)
        case .closeAfterExchange:
            // The response says `Connection: close` if its head has not gone yet; either way the
            // connection closes once this exchange is done, and pipelined requests are dropped.
            record.closeAfterResponse = true
        }
    }

    /// The parser rejected bytes from the client. Nothing of that request is forwarded, and
    /// nothing after it is read: where it ends is unknown.
    private func rejectRequest(_ failure: HTTPParseFailure, context: ChannelHandlerContext) {
        let error = ProxyError(rejecting: failure, maxHeaderBytes: loop.configuration.maxHeaderBytes)
        clientSide.inputRejected()
        switch machine.state {
        case .idle:
            // A request that never became an exchange: answer it, then close.
            beginExchange()
            requestID = loop.requestIDs.nextValue()
            startTime = .now()
            record.closeAfterResponse = true
            respondWithError(error, context: context)
        case .connecting, .forwarding:
            // If the request is complete, a later pipelined one is broken: finish this one, then
            // close. Otherwise this request's own body is broken: abandon the upstream call.
            record.closeAfterResponse = true
            if !machine.requestComplete { respondWithError(error, context: context) }
        case .draining, .modifying:
            // The response is out; the rest of its request is unreadable.
            record.closeAfterResponse = true
            finishExchange(context: context)
        }
    }

    /// Starts an exchange from a fresh record and machine state, letting go of anything the
    /// last one still held.
    private func beginExchange() {
        abandonShadow()
        record = ExchangeRecord(closeAfterResponse: clientSide.quiescing)
        response.reset()
        // Kept with its capacity: a body's parts are buffered again in the next exchange.
        bufferedBody.removeAll(keepingCapacity: true)
        machine.exchangeStarted()
        cancelTimeout()
    }

    // MARK: - Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch clientSide.bytesArrived(&buffer) {
        case .discarded:
            // A staged close: what the client still sends is read only to be discarded, up to a
            // limit, and each byte moves the linger's idle bound.
            timeouts.lingerRead(now: .now())
            return
        case .closeDiscarding:
            timeouts.closed()
            context.close(promise: nil)
            return
        case .parse:
            break
        }
        if machine.isIdle {
            // One clock read serves both this read and the head it completes (the sweep checks
            // bounds at a quarter of their length, so a read cycle's drift does not matter).
            readTime = .now()
            if timeouts.idleSince != nil { timeouts.requestBytesArrived(now: readTime) }
        }
        parseRequests(&buffer, context: context)
    }

    /// Hands the client's bytes to the exchange as request parts, one part at a time. Bytes of a
    /// request that would start while the current exchange still runs are held by the
    /// connection's state machine until it has finished.
    private func parseRequests(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        while clientSide.parsesInput {
            if !machine.isIdle && machine.requestComplete {
                if buffer.readableBytes > 0, clientSide.holdPipelined(buffer) { clientReadsPausedChanged(true) }
                return
            }
            if requestParser.isDone {
                guard buffer.readableBytes > 0 else { return }
                requestParser.expectMessage(())
            }
            let event: ClientRequestParser.Event?
            do {
                event = try requestParser.next(&buffer)
            } catch {
                rejectRequest(error as? HTTPParseFailure ?? HTTPParseFailure("\(error)"), context: context)
                return
            }
            guard let event else { return }
            switch event {
            case .head(let head): receiveHead(head, context: context)
            case .body(let part): receiveBody(part, context: context)
            case .end: receiveEnd(context: context)
            }
        }
    }

    /// Parses waiting pipelined bytes once the exchange before them has finished.
    private func deliverPipelined(context: ChannelHandlerContext) {
        guard var buffer = clientSide.startDelivering() else { return }
        defer { clientSide.deliveryEnded() }
        parseRequests(&buffer, context: context)
        // No client read cycle follows to flush what these parts wrote upstream.
        flushUpstream()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushUpstream()
        context.fireChannelReadComplete()
    }

    /// Request parts are written upstream as they arrive and flushed once per read cycle.
    private func flushUpstream() {
        if record.wroteUpstreamSinceFlush, let connection = machine.connection {
            record.wroteUpstreamSinceFlush = false
            connection.flush()
        }
    }

    private func receiveHead(_ head: ClientRequestHead, context: ChannelHandlerContext) {
        beginExchange()
        // Only the access log reads them.
        if loop.configuration.accessLog {
            startTime = .now()
            uri = head.uri
        }
        method = head.method
        clientVersion = head.version
        clientKeepAlive = head.isKeepAlive
        timeouts.headReceived(now: readTime, bodyFollows: head.isChunked || (head.contentLength ?? 0) > 0)

        let rewritten = OutboundHead.make(
            from: head,
            clientAddress: clientAddress,
            clientTrusted: clientTrusted,
            buffer: spareRequestHead.take(capacity: head.bytes.readableBytes + 160 + clientAddress.utf8.count),
            requestIDs: &loop.requestIDs
        )
        spareRequestHead.keep(rewritten.request.head)
        requestID = rewritten.requestID
        record.outbound = rewritten.request

        var shadowTarget: String?
        var mayFallBack = false
        // Routed on the target's normal path, so every spelling of a path takes its route; the
        // target still goes upstream as sent. What can't be routed safely gets 400.
        let index: Int?
        do {
            index = try head.bytes.withUnsafeReadableBytes { raw in
                try targetRouter.matchIndex(
                    in: loop.table.matcher,
                    method: head.method.rawValue,
                    target: UnsafeRawBufferPointer(rebasing: raw[head.target])
                )
            }
        } catch {
            respondWithError(ProxyError(refusingTarget: error), context: context)
            return
        }
        if let index {
            let entry = loop.routes[index]
            let choice = RouteChoice(route: entry.route, head: head, targetRouter: targetRouter, sampler: &loop.sampler)
            record.take(entry, index: index, choice: choice, traffic: &loop.traffic)
            shadowTarget = choice.shadowTarget
            mayFallBack = choice.mayFallBack
        } else {
            record.routeID = "default"
            record.upstreamName = loop.table.defaultUpstream
        }

        if let length = head.contentLength, length > loop.configuration.maxBodyBytes {
            respondWithError(ProxyError(declaredBody: length, limit: loop.configuration.maxBodyBytes), context: context)
            return
        }

        if let matched = record.matched, let shadowTarget, loop.shadowSink != nil {
            shadow = ShadowExchange.start(
                for: head,
                outbound: record.outbound,
                entry: matched,
                servedBy: record.upstreamName,
                candidate: shadowTarget,
                requestID: requestID,
                loop: loop
            )
        }
        // Expect: 100-continue is answered here so the client starts sending while the upstream
        // connection is set up; the upstream gets the body without the expectation.
        if rewritten.expectsContinue {
            var interim = context.channel.allocator.buffer(capacity: 32)
            interim.writeHTTPResponseHead(HTTPResponseHead(version: head.version, status: .continue))
            context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
        }
        run(machine.startCalling(replayable: head.method.isIdempotent, mayFallBack: mayFallBack), context: context)
    }

    private func receiveBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard machine.isCalling else { return }
        shadow?.requestBody(buffer)
        timeouts.bodyProgress(now: .now())
        record.bodyBytes += buffer.readableBytes
        if record.bodyBytes > loop.configuration.maxBodyBytes {
            // The upstream call, if any, is closed with the answer.
            respondWithError(ProxyError(bodyOver: loop.configuration.maxBodyBytes), context: context)
            return
        }
        let connection = machine.connection
        if machine.replayable, record.bodyBytes > loop.configuration.maxReplayBytes {
            machine.stopReplaying()
            if connection != nil { bufferedBody.removeAll() }
        }
        if let connection {
            connection.writeRequestBody(buffer)
            record.wroteUpstreamSinceFlush = true
            if machine.replayable { bufferedBody.append(buffer) }
        } else {
            bufferedBody.append(buffer)
            // Nothing to send it to yet: stop reading until the upstream connection is up.
            if clientSide.pauseReads() { clientReadsPausedChanged(true) }
        }
    }

    private func receiveEnd(context: ChannelHandlerContext) {
        let action = machine.requestEnded()
        timeouts.requestEnded()
        shadow?.requestEnded()
        run(action, context: context)
    }

    // MARK: - Shadow

    /// The primary did not complete: the shadow has nothing to compare against.
    private func abandonShadow() {
        settleShadow(.primaryFailed)
    }

    /// Tells the shadow copy, if any, what became of the primary (``ShadowVerdict`` decides),
    /// and lets go of it unless it carries on.
    private func settleShadow(_ verdict: ShadowVerdict) {
        guard let shadow else { return }
        switch verdict {
        case .keep:
            return
        case .primaryEnded:
            self.shadow = nil
            shadow.primaryEnded()
        case .primaryFailed:
            self.shadow = nil
            shadow.primaryFailed()
        }
    }

    // MARK: - Running the state machine's actions

    /// Carries out what the state machine decided. Outcomes that need their cause (a failure's
    /// error, why the client is cut off) are not actions: they are handled where their event is
    /// fed, which has the cause.
    private func run(_ action: ExchangeStateMachine.Action, context: ChannelHandlerContext) {
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
        countFailedAttempt(kind: error.name)
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

    private func cancelTimeout() {
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
            loop.metrics.recordUpstreamError(upstream: record.upstreamName, kind: error.name)
            abortClient(outcome: .upstreamTimeoutMidBody)
        case .answerError(let closing):
            // A timed-out request may have had effects upstream: the machine never replays it.
            attemptFailed(error, then: .answerError(closing: closing), context: context)
        }
    }

    // MARK: - Responses to the client

    /// Answers the client with `error`, ending the upstream call if there is one; if a response
    /// already started, the connection is aborted instead.
    private func respondWithError(_ error: ProxyError, context: ChannelHandlerContext) {
        switch machine.answerWithError() {
        case .abortClient(let closing):
            abandonShadow()
            cancelTimeout()
            closing?.close()
            abortClient(outcome: .error(error))
        case .answerError(let closing):
            closing?.close()
            writeErrorAnswer(error, context: context)
        }
    }

    /// Writes `error` as the response (the machine has moved to draining) and completes it.
    private func writeErrorAnswer(_ error: ProxyError, context: ChannelHandlerContext) {
        abandonShadow()
        cancelTimeout()
        record.responseStatus = error.status.code
        // If the client is still sending a body we will not read, the connection can't be reused.
        let closing = !machine.requestComplete || !clientKeepAlive
        if closing { record.closeAfterResponse = true }
        response.reset()
        let response = ErrorAnswer.bytes(
            for: error,
            requestID: requestID,
            upstream: record.upstreamName,
            clientVersion: clientVersion,
            closing: closing,
            allocator: context.channel.allocator
        )
        context.write(wrapOutboundOut(response), promise: nil)
        completeResponse(context: context)
    }

    /// The response has ended towards the client; the exchange finishes when the request has too.
    private func completeResponse(context: ChannelHandlerContext, trailers: ByteBuffer? = nil) {
        let last = response.end(trailers: trailers, allocator: context.channel.allocator)
        if record.closeAfterResponse && !machine.requestComplete {
            // Don't wait for a body we won't read: close once the answer is out, in stages, so
            // that the client reads the answer instead of a reset.
            logExchange(outcome: .ok)
            machine.exchangeFinished()
            stagedClose(context: context, last: last)
            return
        }
        if let last {
            context.writeAndFlush(wrapOutboundOut(last), promise: nil)
        } else {
            context.flush()
        }
        if machine.requestComplete { finishExchange(context: context) }
    }

    private func finishExchange(context: ChannelHandlerContext) {
        logExchange(outcome: .ok)
        machine.exchangeFinished()
        // Quiescing sets closeAfterResponse too.
        if record.closeAfterResponse {
            switch clientSide.closeAfterExchange() {
            case .staged:
                // The client may still be sending (requests pipelined after this one, or the
                // rest of a request the parser refused): let it read this answer before the
                // close, rather than have unread bytes reset it.
                stagedClose(context: context, last: nil)
            case .immediate:
                closeClient(context: context)
            }
            return
        }
        let now = NIODeadline.now()
        timeouts.exchangeEnded(now: now, nextRequestWaiting: false)
        deliverPipelined(context: context)
        // Pipelined bytes that began a head (not just a stray CRLF) start its deadline.
        if machine.isIdle, requestParser.hasStartedMessage { timeouts.requestBytesArrived(now: now) }
        resumeClientReads()
    }

    /// Ends the connection after a response while the client may still be sending (RFC 9112
    /// §9.6, nginx's lingering close): write the rest, shut the write side, then read and
    /// discard until the client closes or the linger bounds expire. Closing with unread bytes
    /// would make the kernel send a reset, and the client's stack would drop the answer.
    private func stagedClose(context: ChannelHandlerContext, last: ByteBuffer?) {
        clientSide.stagedCloseStarted()
        // The linger's bounds start once the answer is out; until then a slow reader is held to
        // the send bound, so its answer is not cut short.
        timeouts.stopReadBounds()
        context.writeAndFlush(wrapOutboundOut(last ?? ByteBuffer())).assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                self.timeouts.lingerStarted(now: .now())
                context.close(mode: .output, promise: nil)
            case .failure:
                context.close(promise: nil)
            }
        }
        // Keep reading, to discard: a full receive buffer would stall the client's send.
        if clientSide.resumeReadsToDiscard() { context.read() }
    }

    /// The response already started and can't be completed: closing the connection is the only
    /// honest signal; ending it would make a short body look complete. The machine has already
    /// let go of the upstream call.
    private func abortClient(outcome: ExchangeOutcome) {
        abandonShadow()
        cancelTimeout()
        logExchange(outcome: outcome)
        machine.exchangeFinished()
        if let context { closeClient(context: context) }
    }

    // MARK: - Client bounds

    func closeNow() {
        timeouts.closed()
        if let context { closeClient(context: context) }
    }

    /// Acts on a client bound that expired (the loop's sweep calls this).
    func checkTimeouts(now: NIODeadline) {
        guard let context else { return }
        if timeouts.isSendStalled {
            let buffered = Self.bufferedBytes(context.channel)
            if buffered < lastBufferedToClient { timeouts.sendProgress(now: now) }
            lastBufferedToClient = buffered
        }
        guard let expiry = timeouts.expired(now: now) else { return }
        switch ClientTimeoutAnswer.choose(expiry, limits: timeouts.limits, responseStarted: machine.responseStarted) {
        case .closeLingering:
            timeouts.closed()
            context.close(promise: nil)
        case .close(let kind):
            loop.metrics.recordClientTimeout(kind)
            closeNow()
        case .answer(let kind, let error):
            loop.metrics.recordClientTimeout(kind)
            answerTimeout(error, context: context)
        case .abort(let kind, let outcome):
            loop.metrics.recordClientTimeout(kind)
            abortExchange(outcome: outcome, context: context)
        }
    }

    /// Answers 408 for a request that did not arrive in time, then closes in stages.
    private func answerTimeout(_ error: ProxyError, context: ChannelHandlerContext) {
        if machine.isIdle {
            beginExchange()
            requestID = loop.requestIDs.nextValue()
            startTime = .now()
        }
        clientSide.closeInput()
        record.closeAfterResponse = true
        machine.requestAbandoned()
        respondWithError(error, context: context)
    }

    /// Ends the exchange and the connection at once: the upstream call (if any) and the client.
    private func abortExchange(outcome: ExchangeOutcome, context: ChannelHandlerContext) {
        switch machine.abort() {
        case .exchange(let closing):
            closing?.close()
            abortClient(outcome: outcome)
            timeouts.closed()
        case .connection:
            timeouts.closed()
            closeClient(context: context)
        }
    }

    private func logExchange(outcome: ExchangeOutcome) {
        loop.metrics.recordRequest(route: record.routeID, upstream: record.upstreamName, status: record.responseStatus)
        guard loop.configuration.accessLog, loop.logger.logLevel <= .info else { return }
        let line = AccessLogLine(
            method: method,
            uri: uri,
            record: record,
            requestID: requestID,
            client: clientAddress,
            outcome: outcome,
            elapsed: NIODeadline.now() - startTime
        )
        loop.logger.info(line.message, metadata: line.metadata)
    }

    // MARK: - Backpressure on client reads

    func read(context: ChannelHandlerContext) {
        if clientSide.readRequested() { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // NIO reports each change synchronously: the machine keeps the last one, which saves an
        // atomic load per response part.
        let isWritable = context.channel.isWritable
        if isWritable {
            timeouts.sendStalled(false, now: .now())
        } else {
            // The client is behind: its send bound runs, and progress is judged by how many
            // bytes still wait for it.
            lastBufferedToClient = Self.bufferedBytes(context.channel)
            timeouts.sendStalled(true, now: .now())
        }
        run(machine.clientWritabilityChanged(isWritable: isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    /// Response bytes queued for the client and not yet taken by its socket.
    private static func bufferedBytes(_ channel: Channel) -> Int {
        (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    /// The body bound does not count time the proxy itself holds the client back.
    private func clientReadsPausedChanged(_ paused: Bool) {
        if timeouts.isReadingBody { timeouts.clientReadsPaused(paused, now: .now()) }
    }

    /// Lets reads from the client flow again (unless pipelined requests still wait for their
    /// turn), issuing the read asked for while they were paused.
    private func resumeClientReads() {
        guard case .resumed(let read) = clientSide.resumeReads() else { return }
        clientReadsPausedChanged(false)
        if read, let context { context.read() }
    }
}

extension ProxyHandler: ClientConnection {
    /// Only a connection with nothing left to write is idle: one whose answer still waits for a
    /// slow reader is not offered for eviction.
    var idleSince: NIODeadline? {
        guard let since = timeouts.idleSince, let context, Self.bufferedBytes(context.channel) == 0 else { return nil }
        return since
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
