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
final class ProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Between exchanges.
        case idle
        /// Waiting for an upstream connection (connect or pool).
        case connecting
        /// The request is going (or went) upstream; the response has not finished.
        case forwarding
        /// The response is finished (or the proxy answered itself); waiting for the request's end.
        case draining
    }

    private let loop: LoopContext
    private var context: ChannelHandlerContext?
    private var clientAddress = "unknown"
    private var clientTrusted = false

    // One exchange's state. Flat fields rather than an object, reset per request.
    private var phase = Phase.idle
    /// Bumped per attempt so that a late pool callback for an abandoned attempt is recognised.
    private var attempt = 0
    private var requestID = RequestIDValue.client("")
    /// The matched route, shared with the loop's table: holding it costs one reference, not a
    /// copy of every field of the route.
    private var matched: LoopContext.RouteEntry?
    private var route: Route? { matched?.route }
    private var routeID = "default"
    /// The route's index in the table it was matched in, and that table's traffic generation.
    private var routeIndex = -1
    private var trafficGeneration = 0
    private var upstreamName = ""
    private var method = HTTPMethod.GET
    /// The request target, for the access log; set only while it is on.
    private var uri = ""
    private var outbound: OutboundRequest?
    private var clientVersion = HTTPVersion.http1_1
    private var clientKeepAlive = true
    private var closeAfterResponse = false
    private var startTime = NIODeadline.now()
    private var requestComplete = false
    private var requestSentUpstream = false
    private var bodyBytes = 0
    /// Body parts not yet written upstream, or all of them while the request is replayable.
    private var bufferedBody: [ByteBuffer] = []
    private var replayable = false
    private var canFallback = false
    private var usedFallback = false
    private var retriedStale = false
    private var connection: UpstreamConnection?
    private var connectionPool: UpstreamPool?
    private var wroteUpstreamSinceFlush = false
    private var responseStarted = false
    private var responseStatus: UInt = 0
    private var upstreamKeepAlive = true
    /// The response goes to the client in chunked framing (its upstream sent no length).
    private var chunkedToClient = false
    /// The forwarded head, not written yet: body bytes read with it join it, so a small
    /// response leaves as one buffer (one write, no vector) rather than two.
    private var pendingHead: ByteBuffer?
    /// Body bytes joined `pendingHead`; it is written when the read ends, so that a framing error
    /// later in the same read still leaves the client a clean 502 rather than an unsent head.
    private var pendingHeadHasBody = false
    /// The most body bytes copied into the head's buffer; larger parts go as their own slices.
    static let bodyBytesJoiningHead = 4096
    /// The last exchange's two head buffers, which the next exchange writes its heads into.
    /// Once the sockets have taken their bytes nothing else holds them, and `clear` reuses
    /// them: a fresh buffer costs two allocations (its storage object and its bytes). If a head
    /// is still queued (a slow client), `clear` allocates, as a fresh buffer would.
    private var spareRequestHead = ByteBuffer()
    private var spareResponseHead = ByteBuffer()
    /// The largest buffer kept as a spare. Heads are usually well under 1 KB (4 KB more when
    /// body bytes join the response's); a rare large head should not stay with an idle
    /// keep-alive connection for the rest of its life.
    static let spareHeadCapacityLimit = 16 * 1024
    private var lastUpstreamActivity = NIODeadline.now()
    /// The upstream whose `timeoutMs` applies while armed in the loop's ``UpstreamDeadlines``.
    private var timeoutUpstream: Upstream?
    private var timeoutLimit = TimeAmount.zero
    var deadlineSlot = -1
    /// The copy to the other side, when this request is shadowed.
    private var shadow: ShadowExchange?

    /// The client's own bounds: head, body, send, keep-alive and the staged close.
    private var timeouts: ClientTimeouts
    /// Position in the loop's ``ClientConnections``; -1 when not registered.
    var connectionSlot = -1
    /// Whether this connection holds a place in the server's connection count.
    private var counted = false
    /// The client's unsent response bytes when the send bound last saw them: less means progress.
    private var lastBufferedToClient = 0
    /// Upstream reads are held back because the client is not taking the response: the
    /// upstream timeout does not run meanwhile (the proxy, not the upstream, is waiting).
    private var upstreamReadsPaused = false
    /// The forwarded response head has been written to the client: after that, a failure can
    /// only abort the connection.
    private var responseHeadWritten = false

    // Backpressure on reads from the client.
    private var clientReadsPaused = false
    /// The client channel's writability as its last change said; NIO reports each change
    /// synchronously, and this saves an atomic load per response part.
    private var clientWritable = true
    private var pendingClientRead = false

    private var requestParser: ClientRequestParser
    /// Routes each request on its normal path; keeps the buffer an unusual path is normalised in.
    private var targetRouter: TargetRouter
    /// Bytes of requests that arrived while the exchange before them was still running. They
    /// wait unparsed, and reading stops until they have had their turn: what a pipelining
    /// client makes the proxy hold is bounded by one read cycle (`maxMessagesPerRead` reads).
    private var pipelined: ByteBuffer?
    private var deliveringPipelined = false
    /// Set once the connection is closing (or the client's bytes stopped making sense): nothing
    /// more from it is parsed.
    private var inputClosed = false
    /// Set when the server shuts down: finish the current exchange, then close.
    private var quiescing = false
    /// Set when the parser refused the client's bytes: more of them may still be on the way.
    private var inputRejected = false
    /// Set by a staged close: what the client still sends is read and dropped.
    private var discardingInput = false
    /// Bytes dropped so far in a staged close, against `lingerMaxBytes`.
    private var discarded = 0
    /// When the last read between exchanges began: the next head's bounds count from it.
    private var readTime = NIODeadline.now()

    /// - Parameter holdsConnectionPlace: the connection took a place in the server's count
    ///   (``ClientConnectionCount``), which the handler gives back when the connection closes.
    init(loop: LoopContext, holdsConnectionPlace: Bool = false) {
        self.counted = holdsConnectionPlace
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
        if counted {
            counted = false
            loop.clientCount.closed()
        }
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
        releaseConnectionPlace()
        timeouts.closed()
        inputClosed = true
        pipelined = nil
        // Always: the loop's deadline list holds armed handlers strongly.
        cancelTimeout()
        // The client is gone: cancel the upstream call rather than finish it for nobody.
        if phase == .connecting || phase == .forwarding {
            attempt += 1
            if let connection {
                self.connection = nil
                connection.close()
            }
            abandonShadow()
            if !responseStarted { responseStatus = 499 }
            logExchange(outcome: "client_closed")
        }
        phase = .idle
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        closeClient(context: context)
    }

    /// Closes the client connection; nothing more it sent is read as a request.
    private func closeClient(context: ChannelHandlerContext) {
        inputClosed = true
        pipelined = nil
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
        quiescing = true
        if phase == .idle {
            closeClient(context: context)
        } else {
            // The response says `Connection: close` if its head has not gone yet; either way the
            // connection closes once this exchange is done, and pipelined requests are dropped.
            closeAfterResponse = true
        }
    }

    /// The parser rejected bytes from the client. Nothing of that request is forwarded, and
    /// nothing after it is read: where it ends is unknown.
    private func rejectRequest(_ failure: HTTPParseFailure, context: ChannelHandlerContext) {
        let error = ProxyError(rejecting: failure, maxHeaderBytes: loop.configuration.maxHeaderBytes)
        inputRejected = true
        inputClosed = true
        pipelined = nil
        switch phase {
        case .idle:
            // A request that never became an exchange: answer it, then close.
            resetExchange()
            requestID = loop.requestIDs.nextValue()
            startTime = .now()
            closeAfterResponse = true
            respondWithError(error, context: context)
        case .connecting, .forwarding:
            // If the request is complete, a later pipelined one is broken: finish this one, then
            // close. Otherwise this request's own body is broken: abandon the upstream call.
            closeAfterResponse = true
            if !requestComplete { respondWithError(error, context: context) }
        case .draining:
            // The response is out; the rest of its request is unreadable.
            closeAfterResponse = true
            finishExchange(context: context)
        }
    }

    // MARK: - Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if discardingInput {
            // A staged close: what the client still sends is read only to be discarded, up to a
            // limit, and each byte moves the linger's idle bound.
            discarded += unwrapInboundIn(data).readableBytes
            if discarded > loop.configuration.lingerMaxBytes {
                timeouts.closed()
                context.close(promise: nil)
            } else {
                timeouts.lingerRead(now: .now())
            }
            return
        }
        var buffer = unwrapInboundIn(data)
        if phase == .idle {
            // One clock read serves both this read and the head it completes (the sweep checks
            // bounds at a quarter of their length, so a read cycle's drift does not matter).
            readTime = .now()
            if timeouts.idleSince != nil { timeouts.requestBytesArrived(now: readTime) }
        }
        if var waiting = pipelined {
            pipelined = nil
            waiting.writeBuffer(&buffer)
            buffer = waiting
        }
        parseRequests(&buffer, context: context)
    }

    /// Hands the client's bytes to the exchange as request parts, one part at a time. Bytes of a
    /// request that would start while the current exchange still runs are kept in `pipelined`.
    private func parseRequests(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        while !inputClosed {
            if phase != .idle && requestComplete {
                if buffer.readableBytes > 0 {
                    pipelined = buffer
                    pauseClientReads()
                }
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
        guard !deliveringPipelined, var buffer = pipelined else { return }
        pipelined = nil
        deliveringPipelined = true
        defer { deliveringPipelined = false }
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
        if wroteUpstreamSinceFlush, let connection {
            wroteUpstreamSinceFlush = false
            connection.flush()
        }
    }

    private func receiveHead(_ head: ClientRequestHead, context: ChannelHandlerContext) {
        resetExchange()
        attempt += 1
        // Only the access log reads them.
        if loop.configuration.accessLog {
            startTime = .now()
            uri = head.uri
        }
        method = head.method
        clientVersion = head.version
        clientKeepAlive = head.isKeepAlive
        timeouts.headReceived(now: readTime, bodyFollows: head.isChunked || (head.contentLength ?? 0) > 0)

        let (outbound, expectsContinue) = makeOutboundHead(from: head)
        self.outbound = outbound

        var shadowTarget: String?
        // Routed on the target's normal path, so every spelling of a path takes its route; the
        // target still goes upstream as sent. What can't be routed safely gets 400.
        let index: Int?
        do {
            index = try head.bytes.withUnsafeReadableBytes { raw in
                try targetRouter.matchIndex(
                    in: loop.table.matcher, method: head.method.rawValue, target: UnsafeRawBufferPointer(rebasing: raw[head.target]))
            }
        } catch {
            respondWithError(ProxyError(refusingTarget: error), context: context)
            return
        }
        if let index {
            let entry = loop.routes[index]
            matched = entry
            shadowTarget = choose(entry, index: index, head: head)
        } else {
            routeID = "default"
            upstreamName = loop.table.defaultUpstream
        }

        if let length = head.contentLength, length > loop.configuration.maxBodyBytes {
            respondWithError(
                .bodyTooLarge(
                    "the request body is \(length) bytes; this proxy accepts at most \(loop.configuration.maxBodyBytes)"
                ),
                context: context
            )
            return
        }

        replayable = head.method.isIdempotent
        if let matched, let shadowTarget, loop.shadowSink != nil {
            shadow = makeShadow(entry: matched, candidate: shadowTarget, client: head)
        }
        // Expect: 100-continue is answered here so the client starts sending while the upstream
        // connection is set up; the upstream gets the body without the expectation.
        if expectsContinue {
            var interim = context.channel.allocator.buffer(capacity: 32)
            interim.writeHTTPResponseHead(HTTPResponseHead(version: head.version, status: .continue))
            context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
        }
        startAttempt(fresh: false)
    }

    private func receiveBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard phase == .connecting || phase == .forwarding else { return }
        shadow?.requestBody(buffer)
        timeouts.bodyProgress(now: .now())
        bodyBytes += buffer.readableBytes
        if bodyBytes > loop.configuration.maxBodyBytes {
            if let connection {
                self.connection = nil
                connection.close()
            }
            respondWithError(
                .bodyTooLarge("the request body exceeded \(loop.configuration.maxBodyBytes) bytes, the most this proxy accepts"),
                context: context
            )
            return
        }
        if replayable, bodyBytes > loop.configuration.maxReplayBytes {
            replayable = false
            if connection != nil { bufferedBody.removeAll() }
        }
        if let connection {
            connection.writeRequestBody(buffer)
            wroteUpstreamSinceFlush = true
            if replayable { bufferedBody.append(buffer) }
        } else {
            bufferedBody.append(buffer)
            // Nothing to send it to yet: stop reading until the upstream connection is up.
            pauseClientReads()
        }
    }

    private func receiveEnd(context: ChannelHandlerContext) {
        requestComplete = true
        timeouts.requestEnded()
        shadow?.requestEnded()
        switch phase {
        case .forwarding:
            if let connection, !requestSentUpstream {
                // A body without chunks ends with nothing to write, and so nothing to flush.
                if connection.writeRequestEnd() { wroteUpstreamSinceFlush = true }
                requestSentUpstream = true
                updateUpstreamTimer()
            }
        case .draining:
            finishExchange(context: context)
        case .connecting, .idle:
            break
        }
    }

    /// Sets the exchange's route and upstream from the matched route (`entry`, at `index` in
    /// the live table), counts its traffic, and returns the upstream that gets a shadow copy, if
    /// any. The route is read in place in the loop's table (``LoopContext/routes``): the request
    /// copies none of its fields.
    private func choose(_ entry: LoopContext.RouteEntry, index: Int, head: ClientRequestHead) -> String? {
        var shadowTarget: String?
        routeID = entry.route.id
        routeIndex = index
        trafficGeneration = loop.traffic.generation
        upstreamName = entry.route.primaryUpstream
        canFallback = entry.route.fallsBackToLegacy && head.method.isIdempotent
        switch entry.route.mode {
        case .legacy, .retired:
            break
        case .shadow:
            shadowTarget = entry.route.service
        case .canary:
            if let service = entry.route.service, canaryServes(entry.route, head: head) {
                upstreamName = service
                if entry.route.shadow != nil { shadowTarget = entry.route.legacy }
            } else {
                canFallback = false
                if entry.route.shadow != nil { shadowTarget = entry.route.service }
            }
        case .service:
            // Reverse shadow: legacy still gets a compared copy while the service serves.
            if entry.route.shadow != nil { shadowTarget = entry.route.legacy }
        }
        let servedByLegacy = upstreamName == entry.route.legacy
        loop.traffic.record(
            route: index, routeID: entry.route.id, generation: trafficGeneration, legacy: servedByLegacy ? 1 : 0,
            service: servedByLegacy ? 0 : 1
        )
        return shadowTarget
    }

    /// Copies the client's head for the upstream in one pass over its header lines: same method,
    /// same target byte for byte, the same lines byte for byte minus hop-by-hop ones, plus
    /// forwarding headers and the request id. The same pass takes the request id (kept when
    /// valid, else generated) and `Expect: 100-continue` (answered here, not forwarded).
    private func makeOutboundHead(from head: ClientRequestHead) -> (request: OutboundRequest, expectsContinue: Bool) {
        var out = Self.takeSpare(&spareRequestHead, capacity: head.bytes.readableBytes + 160 + clientAddress.utf8.count)
        // The request line as upstreams without a base path get it: the client's own bytes
        // when it spoke HTTP/1.1.
        if head.version.minor == 1 {
            head.bytes.withUnsafeReadableBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[head.requestLine])) }
        } else {
            OutboundRequest.writeRequestLine(method: head.method, basePath: "", target: head.targetBytes, into: &out)
        }
        let linesStart = out.readableBytes
        var copier = HeadLineCopier()
        var wantsTrailers = false
        var expectsContinue = false
        var incomingID: String?
        var host: Range<Int>?
        var trustedChain = ""
        var trustedProto = false
        var trustedForwardedHost = false
        head.bytes.withUnsafeReadableBytes { raw in
            for field in head.fields {
                switch field.kind {
                case .other, .xStranglerUpstream, .contentType, .contentEncoding:
                    if head.isConnectionListed(field) { continue }
                    copier.keep(field.line, from: raw, into: &out)
                case .contentLength:
                    copier.keep(field.line, from: raw, into: &out)
                case .connection, .transferEncoding, .keepAlive, .proxyConnection, .proxyAuthenticate, .proxyAuthorization, .trailer,
                    .upgrade:
                    // Hop-by-hop; the body's framing is restated below.
                    continue
                case .underscored: continue  // dropped, as nginx does: see ProxyHeaderName.underscored
                case .te:
                    if HTTPHeadSyntax.tokens(raw, field.value).contains("trailers") { wantsTrailers = true }
                case .xStranglerShadow:
                    // Only the proxy marks a request as a shadow copy: an upstream may treat one
                    // differently (a dry run skips its writes), so a client can't claim to be one.
                    continue
                case .host:
                    host = field.value
                    copier.keep(field.line, from: raw, into: &out)
                case .expect:
                    if HTTPHeadSyntax.matches(raw, field.value, "100-continue") {
                        expectsContinue = true
                    } else {
                        copier.keep(field.line, from: raw, into: &out)
                    }
                case .xRequestID:
                    if incomingID == nil { incomingID = head.string(at: field.value) }
                // Forwarding headers: a trusted peer's are extended, anyone else's replaced.
                case .xForwardedFor:
                    if clientTrusted {
                        let value = head.string(at: field.value)
                        trustedChain += trustedChain.isEmpty ? value : ", " + value
                    }
                case .xForwardedProto:
                    if clientTrusted {
                        trustedProto = true
                        copier.keep(field.line, from: raw, into: &out)
                    }
                case .xForwardedHost:
                    if clientTrusted {
                        trustedForwardedHost = true
                        copier.keep(field.line, from: raw, into: &out)
                    }
                case .forwarded:
                    if clientTrusted { copier.keep(field.line, from: raw, into: &out) }
                }
            }
            copier.flush(raw, into: &out)
            if !trustedForwardedHost, let host {
                out.writeStaticString("X-Forwarded-Host: ")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[host]))
                out.writeStaticString("\r\n")
            }
        }
        if let incomingID, RequestID.isValid(incomingID) {
            requestID = .client(incomingID)
        } else {
            requestID = loop.requestIDs.nextValue()
        }
        out.writeStaticString("X-Forwarded-For: ")
        if !trustedChain.isEmpty {
            out.writeString(trustedChain)
            out.writeStaticString(", ")
        }
        out.writeString(clientAddress)
        if !trustedProto { out.writeStaticString("\r\nX-Forwarded-Proto: http") }
        out.writeStaticString("\r\nX-Request-Id: ")
        out.writeRequestID(requestID)
        out.writeStaticString("\r\n")
        if wantsTrailers { out.writeStaticString("te: trailers\r\n") }

        // Framing: keep the client's, so a request without a body goes up without one.
        if head.isChunked {
            out.writeStaticString("transfer-encoding: chunked\r\n")
        } else if head.contentLength == nil, head.method.framingAlwaysExpectsBody {
            out.writeStaticString("content-length: 0\r\n")
        }
        out.writeStaticString("\r\n")

        Self.keepSpare(out, in: &spareRequestHead)
        // Upstream-specific parts (base path, a missing Host) are added per attempt, as encoded.
        let outbound = OutboundRequest(
            method: head.method, target: head.targetBytes, head: out, linesStart: linesStart, hasHost: host != nil, isChunked: head.isChunked
        )
        return (outbound, expectsContinue)
    }

    // MARK: - Canary

    /// Whether this request is in the canary's service share: by the sticky key's bucket when
    /// the request has one, else by chance.
    private func canaryServes(_ route: Route, head: ClientRequestHead) -> Bool {
        guard let canary = route.canary, canary.percent > 0 else { return false }
        if canary.percent >= 100 { return true }
        switch canary.stickyKey {
        case .header(let name)?:
            if let value = head.firstValue(named: name) {
                return CanarySplit.servesService(bucket: CanarySplit.bucket(of: value.utf8), percent: canary.percent)
            }
        case .param(let name)?:
            if let value = CanarySplit.parameter(name, of: route.path, uri: targetRouter.routedPath(of: head.uri)) {
                return CanarySplit.servesService(bucket: CanarySplit.bucket(of: value.utf8), percent: canary.percent)
            }
        case nil:
            break
        }
        return loop.sampler.unit() * 100 < canary.percent
    }

    /// Counts a failed service answer for the route's traffic (auto-demote reads it).
    private func recordServiceError() {
        guard let route, upstreamName == route.service, routeIndex >= 0 else { return }
        loop.traffic.record(route: routeIndex, routeID: route.id, generation: trafficGeneration, serviceErrors: 1)
    }

    // MARK: - Shadow

    /// Decides whether this request gets a copy on the other side, and builds that copy.
    /// Sampling is not a skip; everything else that prevents a shadow is counted with a reason.
    /// The route is read in place in its shared entry: a `Route` copy retains a score of fields.
    private func makeShadow(entry: LoopContext.RouteEntry, candidate: String, client: ClientRequestHead) -> ShadowExchange? {
        guard let outbound else { return nil }
        let rate = entry.route.shadow?.sampleRate ?? 1.0
        if rate < 1.0, loop.sampler.unit() >= rate { return nil }
        let safe = client.method == .GET || client.method == .HEAD || client.method == .OPTIONS
        let writes = safe ? ShadowWrites.mirror : (entry.route.shadow?.writes ?? .skip)
        if writes == .skip {
            loop.metrics.recordShadowSkip(route: entry.route.id, reason: "write_skipped")
            return nil
        }
        guard loop.shadowsInFlight < loop.configuration.maxShadowsPerLoop else {
            loop.metrics.recordShadowSkip(route: entry.route.id, reason: "concurrency")
            return nil
        }
        var copy = outbound
        // The primary's copy has no marker of its own (a client's is dropped), so it is added.
        copy.appendHeader("X-Strangler-Shadow", writes == .dryRun ? "dry-run" : "mirror")
        if writes == .dryRun {
            // Stable per request, so a retried dry run is recognisably the same one.
            copy.setHeader("Idempotency-Key", "strangler-" + requestID.string)
        }
        // Noise probe: a sampled safe request also goes to legacy a second time (DESIGN.md §4).
        var probe: OutboundRequest?
        if safe, upstreamName == entry.route.legacy, entry.route.compare?.learnNoise == true, loop.sampler.unit() < loop.configuration.noiseSampleRate {
            probe = outbound
            probe?.appendHeader("X-Strangler-Shadow", "mirror")
        }
        return ShadowExchange(
            loop: loop, route: entry, tableVersion: loop.table.version, requestID: requestID.string, method: client.method,
            uri: client.uri, candidateRequest: copy, noiseRequest: probe, primaryUpstream: upstreamName, candidateUpstream: candidate
        )
    }

    /// The primary did not complete: the shadow has nothing to compare against.
    private func abandonShadow() {
        if let shadow {
            self.shadow = nil
            shadow.primaryFailed()
        }
    }

    // MARK: - Attempts

    private func startAttempt(fresh: Bool) {
        guard let pool = loop.pool(named: upstreamName) else {
            respondWithError(.connectFailed("no upstream named \"\(upstreamName)\" in the live route table"), context: context!)
            return
        }
        phase = .connecting
        connectionPool = pool
        if !fresh, let connection = pool.takeIdle() {
            attach(connection)
            return
        }
        let thisAttempt = attempt
        let callback: (UpstreamConnection?, ProxyError?) -> Void = { connection, error in
            guard self.attempt == thisAttempt, self.phase == .connecting else {
                // The exchange moved on (client left, or it was answered): give the connection back.
                if let connection { pool.release(connection, reusable: true) }
                return
            }
            if let connection {
                self.attach(connection)
            } else {
                self.attemptFailed(error ?? .connectFailed("unknown connect failure"))
            }
        }
        if fresh { pool.acquireFresh(callback) } else { pool.acquire(callback) }
    }

    private func attach(_ connection: UpstreamConnection) {
        guard let outbound, let pool = connectionPool else { return }
        self.connection = connection
        connection.begin(self, bodyless: method == .HEAD)
        phase = .forwarding
        connection.writeRequest(outbound, for: pool.upstream)
        for part in bufferedBody {
            connection.writeRequestBody(part)
        }
        if !replayable { bufferedBody.removeAll() }
        if requestComplete {
            connection.writeRequestEnd()
            requestSentUpstream = true
        }
        connection.flush()
        wroteUpstreamSinceFlush = false
        timeoutUpstream = pool.upstream
        timeoutLimit = .milliseconds(Int64(pool.upstream.timeoutMs))
        upstreamReadsPaused = false
        if !clientWritable { pauseUpstreamReads() }
        updateUpstreamTimer()
        if connection.isWritable { resumeClientReads() }
    }

    /// The upstream could not be used before any of its response reached the client.
    private func attemptFailed(_ error: ProxyError) {
        connection = nil
        cancelTimeout()
        loop.metrics.recordUpstreamError(upstream: upstreamName, kind: error.name)
        recordServiceError()
        // After a connect failure nothing reached the upstream and the whole body is still
        // buffered; after anything else only a replayable request may go again.
        if canFallback, !usedFallback, replayable || error.isConnectFailure, let route {
            fallBack(to: route.legacy, reason: error.description)
            return
        }
        respondWithError(error, context: context!)
    }

    private func fallBack(to legacy: String, reason: String) {
        usedFallback = true
        loop.metrics.recordFallback(route: routeID)
        if routeIndex >= 0 {
            loop.traffic.record(route: routeIndex, routeID: routeID, generation: trafficGeneration, legacy: 1)
        }
        // A copy going to legacy would now compare legacy with itself.
        if shadow?.candidateUpstream == legacy { abandonShadow() }
        loop.logger.warning(
            "service failed; retrying on legacy",
            metadata: ["request_id": "\(requestID.string)", "route": "\(routeID)", "from": "\(upstreamName)", "to": "\(legacy)", "reason": "\(reason)"]
        )
        upstreamName = legacy
        requestSentUpstream = false
        attempt += 1
        startAttempt(fresh: false)
    }

    // MARK: - Timeouts

    /// Runs the upstream timeout only while the proxy waits on the upstream: for it to take
    /// request bytes, or, once the request is all sent, for its response while the proxy is
    /// reading. Time spent waiting on the client (more of its body, or room to write the
    /// response) is the client's own bounds' business (DESIGN.md §8).
    private func updateUpstreamTimer() {
        guard phase == .forwarding, let connection else {
            cancelTimeout()
            return
        }
        let waitingOnUpstream = !connection.isWritable || (requestSentUpstream && !upstreamReadsPaused)
        if waitingOnUpstream {
            if deadlineSlot < 0 {
                lastUpstreamActivity = .now()
                loop.deadlines.arm(self)
            }
        } else {
            cancelTimeout()
        }
    }

    /// Holds back reads from the upstream while the client is not taking the response.
    private func pauseUpstreamReads() {
        guard let connection, !upstreamReadsPaused else { return }
        upstreamReadsPaused = true
        connection.pauseReads()
        updateUpstreamTimer()
    }

    private func resumeUpstreamReads() {
        guard let connection, upstreamReadsPaused else { return }
        upstreamReadsPaused = false
        connection.resumeReads()
        updateUpstreamTimer()
    }

    private func cancelTimeout() {
        loop.deadlines.disarm(self)
    }

    /// The upstream has been silent for `timeoutMs` (each read moves the deadline).
    func upstreamDeadlineReached() {
        guard phase == .forwarding, let upstream = timeoutUpstream else { return }
        let error = ProxyError.upstreamTimeout(
            "upstream \"\(upstream.name)\" (\(upstream.authority)) sent nothing for \(upstream.timeoutMs) ms (timeoutMs)"
        )
        if let connection {
            self.connection = nil
            connection.close()
        }
        if responseStarted {
            loop.metrics.recordUpstreamError(upstream: upstreamName, kind: error.name)
            abortClient(outcome: "upstream_timeout_mid_body")
        } else {
            // A timed-out request may have had effects upstream: never replay it.
            canFallback = false
            attemptFailed(error)
        }
    }

    // MARK: - Responses to the client

    private func respondWithError(_ error: ProxyError, context: ChannelHandlerContext) {
        abandonShadow()
        cancelTimeout()
        if let connection {
            self.connection = nil
            connection.close()
        }
        guard !responseStarted else {
            abortClient(outcome: error.name)
            return
        }
        responseStarted = true
        responseStatus = error.status.code
        let body = error.jsonBody(
            requestID: requestID.string, upstream: upstreamName.isEmpty ? nil : upstreamName, allocator: context.channel.allocator
        )
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "x-request-id", value: requestID.string)
        if error.status == .methodNotAllowed {
            // RFC 9110 §15.5.6: a 405 names what is allowed. The proxy forwards every method it
            // knows except CONNECT; these are the common ones.
            headers.add(name: "allow", value: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
        }
        // If the client is still sending a body we will not read, the connection can't be reused.
        if !requestComplete || !clientKeepAlive {
            closeAfterResponse = true
            headers.add(name: "connection", value: "close")
        }
        chunkedToClient = false
        var response = context.channel.allocator.buffer(capacity: 160 + body.readableBytes)
        response.writeHTTPResponseHead(HTTPResponseHead(version: clientVersion, status: error.status, headers: headers))
        response.writeImmutableBuffer(body)
        context.write(wrapOutboundOut(response), promise: nil)
        completeResponse(context: context)
    }

    /// The response has ended towards the client; the exchange finishes when the request has too.
    private func completeResponse(context: ChannelHandlerContext, trailers: ByteBuffer? = nil) {
        phase = .draining
        // A chunked body ends with the last chunk and any trailers; other framings need nothing.
        var last: ByteBuffer?
        if chunkedToClient {
            if let trailers {
                var chunk = context.channel.allocator.buffer(capacity: 5 + trailers.readableBytes)
                chunk.writeStaticString("0\r\n")
                chunk.writeImmutableBuffer(trailers)
                chunk.writeStaticString("\r\n")
                last = chunk
            } else {
                last = ChannelHandlerContext.lastChunk
            }
        }
        if closeAfterResponse && !requestComplete {
            // Don't wait for a body we won't read: close once the answer is out, in stages, so
            // that the client reads the answer instead of a reset.
            logExchange(outcome: "ok")
            phase = .idle
            stagedClose(context: context, last: last)
            return
        }
        if let last {
            context.writeAndFlush(wrapOutboundOut(last), promise: nil)
        } else {
            context.flush()
        }
        if requestComplete { finishExchange(context: context) }
    }

    private func finishExchange(context: ChannelHandlerContext) {
        logExchange(outcome: "ok")
        phase = .idle
        // Quiescing sets closeAfterResponse too.
        if closeAfterResponse {
            if !quiescing && (pipelined != nil || inputRejected) {
                // The client may still be sending (requests pipelined after this one, or the
                // rest of a request the parser refused): let it read this answer before the
                // close, rather than have unread bytes reset it.
                stagedClose(context: context, last: nil)
            } else {
                closeClient(context: context)
            }
            return
        }
        let now = NIODeadline.now()
        timeouts.exchangeEnded(now: now, nextRequestWaiting: false)
        deliverPipelined(context: context)
        // Pipelined bytes that began a head (not just a stray CRLF) start its deadline.
        if phase == .idle, requestParser.hasStartedMessage { timeouts.requestBytesArrived(now: now) }
        resumeClientReads()
    }

    /// Ends the connection after a response while the client may still be sending (RFC 9112
    /// §9.6, nginx's lingering close): write the rest, shut the write side, then read and
    /// discard until the client closes or the linger bounds expire. Closing with unread bytes
    /// would make the kernel send a reset, and the client's stack would drop the answer.
    private func stagedClose(context: ChannelHandlerContext, last: ByteBuffer?) {
        inputClosed = true
        pipelined = nil
        discardingInput = true
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
        clientReadsPaused = false
        if pendingClientRead {
            pendingClientRead = false
            context.read()
        }
    }

    /// The response already started and can't be completed: closing the connection is the only
    /// honest signal; ending it would make a short body look complete.
    private func abortClient(outcome: String) {
        abandonShadow()
        cancelTimeout()
        logExchange(outcome: outcome)
        phase = .idle
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
        let limits = timeouts.limits
        switch expiry {
        case .linger:
            timeouts.closed()
            context.close(promise: nil)
        case .keepAlive, .header(partial: false):
            // Nothing of a request arrived: close without an answer, as nginx does, since an
            // answer could cross a request the client is sending just now.
            loop.metrics.recordClientTimeout(expiry == .keepAlive ? "keepalive" : "header")
            closeNow()
        case .header(partial: true):
            loop.metrics.recordClientTimeout("header")
            answerTimeout(
                .requestTimeout("the request head did not arrive within \(Self.describe(limits.header))"),
                context: context)
        case .body:
            loop.metrics.recordClientTimeout("body")
            let error = ProxyError.requestTimeout(
                "the client sent no request body bytes for \(Self.describe(limits.body))")
            if responseStarted || phase == .draining {
                abortExchange(outcome: "client_body_timeout")
            } else {
                answerTimeout(error, context: context)
            }
        case .send:
            // The client has stopped taking the response: close both sides.
            loop.metrics.recordClientTimeout("send")
            abortExchange(outcome: "client_send_timeout")
        }
    }

    /// Answers 408 for a request that did not arrive in time, then closes in stages.
    private func answerTimeout(_ error: ProxyError, context: ChannelHandlerContext) {
        if phase == .idle {
            resetExchange()
            requestID = loop.requestIDs.nextValue()
            startTime = .now()
        }
        inputClosed = true
        pipelined = nil
        closeAfterResponse = true
        requestComplete = false
        respondWithError(error, context: context)
    }

    /// Ends the exchange and the connection at once: the upstream call (if any) and the client.
    private func abortExchange(outcome: String) {
        attempt += 1
        if let connection {
            self.connection = nil
            connection.close()
        }
        if phase == .idle || phase == .draining {
            timeouts.closed()
            if let context { closeClient(context: context) }
            return
        }
        abortClient(outcome: outcome)
        timeouts.closed()
    }

    private static func describe(_ amount: TimeAmount) -> String {
        let millis = amount.nanoseconds / 1_000_000
        return millis % 1000 == 0 ? "\(millis / 1000) s" : "\(millis) ms"
    }

    private func resetExchange() {
        abandonShadow()
        matched = nil
        routeID = "default"
        routeIndex = -1
        upstreamName = ""
        outbound = nil
        closeAfterResponse = quiescing
        requestComplete = false
        requestSentUpstream = false
        bodyBytes = 0
        bufferedBody.removeAll(keepingCapacity: true)
        replayable = false
        canFallback = false
        usedFallback = false
        retriedStale = false
        connection = nil
        connectionPool = nil
        wroteUpstreamSinceFlush = false
        responseStarted = false
        responseHeadWritten = false
        upstreamReadsPaused = false
        chunkedToClient = false
        pendingHead = nil
        responseStatus = 0
        upstreamKeepAlive = true
        cancelTimeout()
    }

    private func logExchange(outcome: String) {
        loop.metrics.recordRequest(route: routeID, upstream: upstreamName, status: responseStatus)
        guard loop.configuration.accessLog, loop.logger.logLevel <= .info else { return }
        let elapsed = NIODeadline.now() - startTime
        let millis = Double(elapsed.nanoseconds) / 1_000_000
        loop.logger.info(
            "\(method.rawValue) \(uri) \(responseStatus)",
            metadata: [
                "request_id": "\(requestID.string)", "route": "\(routeID)", "mode": "\(route?.mode.rawValue ?? "default")",
                "upstream": "\(upstreamName)", "status": "\(responseStatus)",
                "ms": "\((millis * 100).rounded() / 100)", "client": "\(clientAddress)",
                "outcome": "\(outcome)",
            ]
        )
    }

    // MARK: - Backpressure on client reads

    func read(context: ChannelHandlerContext) {
        if clientReadsPaused {
            pendingClientRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritable = context.channel.isWritable
        if clientWritable {
            timeouts.sendStalled(false, now: .now())
            resumeUpstreamReads()
        } else {
            // The client is behind: its send bound runs, and progress is judged by how many
            // bytes still wait for it.
            lastBufferedToClient = Self.bufferedBytes(context.channel)
            timeouts.sendStalled(true, now: .now())
            pauseUpstreamReads()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Response bytes queued for the client and not yet taken by its socket.
    private static func bufferedBytes(_ channel: Channel) -> Int {
        (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    private func pauseClientReads() {
        guard !clientReadsPaused else { return }
        clientReadsPaused = true
        if timeouts.isReadingBody { timeouts.clientReadsPaused(true, now: .now()) }
    }

    private func resumeClientReads() {
        // Pipelined requests are waiting: read no more until they have had their turn.
        guard clientReadsPaused, pipelined == nil else { return }
        clientReadsPaused = false
        if timeouts.isReadingBody { timeouts.clientReadsPaused(false, now: .now()) }
        if pendingClientRead, let context {
            pendingClientRead = false
            context.read()
        }
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

extension ProxyHandler: UpstreamResponseDelegate {
    func upstreamDidReceiveHead(_ head: UpstreamResponseHead) {
        guard let context else { return }
        let code = head.statusCode
        if canFallback, !usedFallback, code >= 500, replayable, let route {
            // Discard the service's error and replay on legacy; this connection's response is
            // abandoned, so it can't be reused.
            if let connection {
                self.connection = nil
                connection.close()
            }
            cancelTimeout()
            loop.metrics.recordUpstreamError(upstream: upstreamName, kind: "status_\(code)")
            recordServiceError()
            fallBack(to: route.legacy, reason: "\(upstreamName) answered \(code)")
            return
        }
        responseStarted = true
        responseStatus = UInt(code)
        upstreamKeepAlive = head.isKeepAlive
        if code >= 500 { recordServiceError() }

        // Framing towards the client: the upstream's length when it sent one; otherwise chunked,
        // except that an HTTP/1.0 client can't take chunks, so its body ends at the close.
        let bodyless = method == .HEAD || code == 204 || code == 304
        let unframed = !bodyless && head.contentLength == nil
        chunkedToClient = unframed && clientVersion.minor >= 1
        // An answer before the request's end ends the connection (DESIGN.md §8): the rest of the
        // body is read and dropped in a staged close, not waited for with reads paused.
        if !clientKeepAlive || (clientVersion.minor == 0 && unframed) || !requestComplete {
            closeAfterResponse = true
        }

        // One pass over the upstream's lines: hop-by-hop ones out (and a Content-Length that
        // Transfer-Encoding overrode), ours replaced, the rest copied byte for byte.
        let joining = min(head.contentLength ?? 0, Self.bodyBytesJoiningHead)
        var out = Self.takeSpare(
            &spareResponseHead, capacity: head.bytes.readableBytes + 96 + requestID.utf8Count + upstreamName.utf8.count + joining
        )
        out.writeStatusLineStart(version: clientVersion, code: code)
        head.bytes.withUnsafeReadableBytes { raw in
            // The reason phrase and its CRLF, then the kept lines, in runs.
            var copier = HeadLineCopier()
            copier.keep(head.reason.lowerBound..<(head.fields.first?.line.lowerBound ?? raw.count - 2), from: raw, into: &out)
            for field in head.fields {
                switch field.kind {
                case .xRequestID, .xStranglerUpstream:
                    continue
                case .contentLength where head.contentLength == nil:
                    continue
                case let kind where kind.isHopByHop:
                    continue
                default:
                    if head.isConnectionListed(field) { continue }
                    copier.keep(field.line, from: raw, into: &out)
                }
            }
            copier.flush(raw, into: &out)
        }
        out.writeStaticString("X-Request-Id: ")
        out.writeRequestID(requestID)
        out.writeStaticString("\r\nX-Strangler-Upstream: ")
        out.writeString(upstreamName)
        out.writeStaticString("\r\n")
        if chunkedToClient { out.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if closeAfterResponse {
            out.writeStaticString("Connection: close\r\n")
        } else if clientVersion.minor == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        pendingHead = out
        pendingHeadHasBody = false
        shadow?.primaryHead(head)
    }

    /// Writes the forwarded head if it is still waiting for body bytes.
    private func writePendingHead(_ context: ChannelHandlerContext) {
        if let head = pendingHead {
            pendingHead = nil
            writeHead(head, context)
        }
    }

    /// Writes the forwarded head (with any body bytes that joined it), keeping its buffer for
    /// the next response's head.
    private func writeHead(_ head: ByteBuffer, _ context: ChannelHandlerContext) {
        responseHeadWritten = true
        Self.keepSpare(head, in: &spareResponseHead)
        context.write(wrapOutboundOut(head), promise: nil)
    }

    /// Keeps `buffer` as the next head's spare, unless it has grown past the limit.
    private static func keepSpare(_ buffer: ByteBuffer, in spare: inout ByteBuffer) {
        if buffer.capacity <= Self.spareHeadCapacityLimit { spare = buffer }
    }

    /// An emptied buffer of at least `capacity` bytes, made from `spare` (which is left empty,
    /// so that the buffer is uniquely held and reused without allocating when nothing else
    /// holds it).
    private static func takeSpare(_ spare: inout ByteBuffer, capacity: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        swap(&buffer, &spare)
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        guard let context, responseStarted, buffer.readableBytes > 0 else { return }
        if var head = pendingHead, !pendingHeadHasBody, buffer.readableBytes <= Self.bodyBytesJoiningHead {
            pendingHead = nil
            if chunkedToClient { head.writeChunkSizeLine(buffer.readableBytes) }
            head.writeImmutableBuffer(buffer)
            if chunkedToClient { head.writeStaticString("\r\n") }
            pendingHead = head
            pendingHeadHasBody = true
        } else if chunkedToClient {
            writePendingHead(context)
            context.writeChunk(buffer)
        } else {
            writePendingHead(context)
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        shadow?.primaryBody(buffer)
        if !clientWritable { pauseUpstreamReads() }
    }

    func upstreamDidReceiveEnd(_ trailers: ByteBuffer?) {
        guard let context, responseStarted else { return }
        writePendingHead(context)
        cancelTimeout()
        if let shadow {
            self.shadow = nil
            // An answer before the request ended means the copy was never sent: nothing to compare.
            if requestComplete { shadow.primaryEnded() } else { shadow.primaryFailed() }
        }
        if let connection, let pool = connectionPool {
            self.connection = nil
            // Reusable only if both messages ended cleanly on this connection.
            pool.release(connection, reusable: upstreamKeepAlive && requestSentUpstream)
        }
        completeResponse(context: context, trailers: trailers)
    }

    func upstreamDidFail(_ error: Error) {
        guard phase == .forwarding else { return }
        let wasReused = (connection?.exchanges ?? 0) > 0
        connection = nil
        if responseHeadWritten {
            loop.metrics.recordUpstreamError(upstream: upstreamName, kind: "closed_mid_body")
            abortClient(outcome: "upstream_closed_mid_body")
            return
        }
        if responseStarted {
            // The head was read but none of it reached the client (the failure came in the same
            // read, bad chunk framing say): the client still gets a clean 502.
            responseStarted = false
            pendingHead = nil
            responseStatus = 0
            chunkedToClient = false
            let proxyError = error as? ProxyError ?? .invalidResponse("upstream \"\(upstreamName)\" failed in its response: \(error)")
            canFallback = false
            attemptFailed(proxyError)
            return
        }
        // A keep-alive connection the upstream closed while it sat idle: the request never got
        // there, so an idempotent one is retried once on a fresh connection.
        if wasReused, !retriedStale, replayable {
            retriedStale = true
            cancelTimeout()
            requestSentUpstream = false
            attempt += 1
            startAttempt(fresh: true)
            return
        }
        let proxyError: ProxyError
        if let known = error as? ProxyError {
            proxyError = known
        } else {
            proxyError = .upstreamClosed("upstream \"\(upstreamName)\" failed before answering: \(error)")
        }
        attemptFailed(proxyError)
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
        if isWritable { resumeClientReads() } else { pauseClientReads() }
        updateUpstreamTimer()
    }
}

extension HTTPMethod {
    /// Methods whose requests normally carry a body: without one, the request says
    /// `Content-Length: 0` rather than nothing, which some servers refuse (411).
    var framingAlwaysExpectsBody: Bool {
        switch self {
        case .GET, .HEAD, .DELETE, .CONNECT, .TRACE: false
        default: true
        }
    }

    /// Methods whose repetition has no additional effect (RFC 9110 §9.2.2): safe to replay.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }
}
