import Atomics
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
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
/// ``ResponseHeadRewrite``, ``RouteChoice``, ``ErrorAnswer``), and ``ClientResponseWriter``
/// says what the response puts on the wire. This file is the client side; the upstream side
/// (the machine's actions, attempts, the upstream timeout, the response as the upstream
/// connection's delegate) is in `ProxyHandler+Upstream.swift`.
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let loop: LoopContext
    var context: ChannelHandlerContext?
    private var clientAddress = "unknown"
    private var clientTrusted = false
    /// The connection came through the TLS listener: upstreams get `X-Forwarded-Proto: https`.
    private let overTLS: Bool

    /// The exchange's upstream side: attempts, connection, response progress, what a failure
    /// may still do. Every decision about them is made there; this handler carries them out.
    var machine = ExchangeStateMachine()
    /// The current exchange's route, upstream and outbound request; fresh for each exchange.
    var record = ExchangeRecord(closeAfterResponse: false)
    // The request's own facts, set per request head (a request refused before its head keeps
    // the last one's: its answer goes in the version the client last spoke).
    var requestID = RequestIDValue.client("")
    var method = HTTPMethod.GET
    /// The request target, for the access log; set only while it is on.
    private var uri = ""
    var clientVersion = HTTPVersion.http1_1
    var clientKeepAlive = true
    private var startTime = NIODeadline.now()
    /// Body parts not yet written upstream, or all of them while the request is replayable.
    var bufferedBody: [ByteBuffer] = []
    /// The last exchange's two head buffers, reused for the next exchange's heads.
    private var spareRequestHead = SpareHeadBuffer()
    /// The response on its way to the client: the held head and the body's framing.
    var response = ClientResponseWriter()
    var lastUpstreamActivity = NIODeadline.now()
    var timeoutLimit = TimeAmount.zero
    var deadlineSlot = -1
    /// The copy to the other side, when this request is shadowed.
    var shadow: ShadowExchange?

    /// The client's own bounds: head, body, send, keep-alive and the staged close.
    private var timeouts: ClientTimeouts
    /// Position in the loop's ``ClientConnections``; -1 when not registered.
    var connectionSlot = -1
    /// The client's unsent response bytes when the send bound last saw them: less means progress.
    private var lastBufferedToClient = 0

    /// The client side of the connection: paused reads, pipelined bytes, the input's end, the
    /// staged close. Every decision about them is made there; this handler carries them out.
    var clientSide: ClientConnectionStateMachine

    private var requestParser: ClientRequestParser
    /// Routes each request on its normal path; keeps the buffer an unusual path is normalised in.
    private var targetRouter: TargetRouter
    /// When the last read between exchanges began: the next head's bounds count from it.
    private var readTime = NIODeadline.now()

    /// - Parameters:
    ///   - holdsConnectionPlace: the connection took a place in the server's count
    ///     (``ClientConnectionCount``), which the handler gives back when the connection closes.
    ///   - overTLS: a TLS handler before this one decrypts the connection.
    init(loop: LoopContext, holdsConnectionPlace: Bool = false, overTLS: Bool = false) {
        self.overTLS = overTLS
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
        if overTLS, let tls = error as? NIOSSLError, case .handshakeFailed = tls {
            // A client that does not trust the certificate, or speaks no common version: the
            // listener's side of a rotation gone wrong shows here first.
            loop.metrics.metrics.addToCounter("strangler_tls_handshake_failures_total", labels: [("listener", "proxy")], 1)
        }
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
            overTLS: overTLS,
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
                    target: UnsafeRawBufferPointer(rebasing: raw[head.target]),
                    request: head
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
    func settleShadow(_ verdict: ShadowVerdict) {
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

    // MARK: - Responses to the client

    /// Answers the client with `error`, ending the upstream call if there is one; if a response
    /// already started, the connection is aborted instead.
    func respondWithError(_ error: ProxyError, context: ChannelHandlerContext) {
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
    func writeErrorAnswer(_ error: ProxyError, context: ChannelHandlerContext) {
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
    func completeResponse(context: ChannelHandlerContext, trailers: ByteBuffer? = nil) {
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

    func finishExchange(context: ChannelHandlerContext) {
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
    func abortClient(outcome: ExchangeOutcome) {
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
    func clientReadsPausedChanged(_ paused: Bool) {
        if timeouts.isReadingBody { timeouts.clientReadsPaused(paused, now: .now()) }
    }

    /// Lets reads from the client flow again (unless pipelined requests still wait for their
    /// turn), issuing the read asked for while they were paused.
    func resumeClientReads() {
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
