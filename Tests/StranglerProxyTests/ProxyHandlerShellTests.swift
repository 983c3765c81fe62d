import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import StranglerCore
import Testing

@testable import StranglerProxy

/// The handler shell on an `EmbeddedChannel`, with no sockets: the answers it gives itself (a
/// refused request, an upstream missing from the live table) and how each exchange hands over
/// to the next. The head rewrites and the route choice are checked as the pure functions they are.
@Suite("Proxy handler shell")
struct ProxyHandlerShellTests {
    /// A loop context with no upstream pools (a pool needs a socket event loop), so every request
    /// the proxy would forward gets its "no upstream" answer.
    static func makeLoop(_ eventLoop: EmbeddedEventLoop, maxBodyBytes: Int = 1024) throws -> LoopContext {
        let table = try RouteTable(upstreams: [:], defaultUpstream: "legacy", routes: [], version: "test")
        return LoopContext(
            eventLoop: eventLoop,
            configuration: ProxyConfiguration(port: 0, threads: 1, maxBodyBytes: maxBodyBytes, accessLog: false),
            table: table,
            tls: UpstreamTLSContexts(),
            logger: Logger(label: "test.shell"),
            metrics: ProxyMetrics(),
            shadowSink: nil,
            clientCount: ClientConnectionCount(limit: 10)
        )
    }

    /// A client channel with the handler, active.
    static func makeChannel(maxBodyBytes: Int = 1024) throws -> (EmbeddedChannel, LoopContext) {
        let eventLoop = EmbeddedEventLoop()
        let loop = try makeLoop(eventLoop, maxBodyBytes: maxBodyBytes)
        let channel = EmbeddedChannel(loop: eventLoop)
        try channel.pipeline.syncOperations.addHandler(ProxyHandler(loop: loop))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, loop)
    }

    /// Everything the handler wrote to the client so far, as text.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var all = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
        return String(buffer: all)
    }

    @Test("a request for an upstream missing from the live table gets 502 before its end is read, so the connection closes")
    func missingUpstreamAnswered() throws {
        let (channel, loop) = try Self.makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: first\r\n\r\n"))
        let first = try Self.written(channel)
        #expect(first.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        #expect(first.contains("x-request-id: first\r\n"))
        #expect(first.contains("connection: close\r\n"))
        #expect(first.contains("no upstream named \\\"legacy\\\" in the live route table"))
        // Nothing is left waiting on an upstream.
        #expect(loop.deadlines.count == 0)
        _ = try? channel.finish()
    }

    @Test("a request pipelined behind one the proxy answered early is read and dropped, not answered")
    func pipelinedAfterEarlyAnswer() throws {
        let (channel, _) = try Self.makeChannel()
        try channel.writeInbound(
            ByteBuffer(string: "GET /1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nX-Request-Id: two\r\n\r\n")
        )
        let answers = try Self.written(channel)
        #expect(answers.contains("x-request-id: one"))
        #expect(!answers.contains("x-request-id: two"))
        _ = try? channel.finish()
    }

    @Test("a body declared over the limit is refused with 413 and the connection closes after the answer")
    func bodyTooLarge() throws {
        let (channel, _) = try Self.makeChannel(maxBodyBytes: 10)
        try channel.writeInbound(ByteBuffer(string: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"))
        let answer = try Self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
        #expect(answer.lowercased().contains("connection: close\r\n"))
        _ = try? channel.finish()
    }

    @Test("bytes that are not HTTP get 400 and Connection: close")
    func malformedRequest() throws {
        let (channel, _) = try Self.makeChannel()
        try channel.writeInbound(ByteBuffer(string: "NOT HTTP AT ALL\r\n\r\n"))
        let answer = try Self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(answer.lowercased().contains("connection: close\r\n"))
        _ = try? channel.finish()
    }

    @Test("Expect: 100-continue is answered before the request's own answer")
    func expectContinue() throws {
        let (channel, _) = try Self.makeChannel()
        try channel.writeInbound(ByteBuffer(string: "PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"))
        let answer = try Self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\n"))
        _ = try? channel.finish()
    }

    // MARK: - Pure parts

    /// The first request head in `text`.
    static func requestHead(_ text: String) throws -> ClientRequestHead {
        var parser = ClientRequestParser(maxHeadBytes: 8192)
        parser.expectMessage(())
        var buffer = ByteBuffer(string: text)
        guard case .head(let head)? = try parser.next(&buffer) else { throw ProxyError.invalidResponse("no head") }
        return head
    }

    /// The response head in `text`.
    static func responseHead(_ text: String) throws -> UpstreamResponseHead {
        var parser = UpstreamResponseParser()
        parser.expectResponse(bodyless: false)
        var buffer = ByteBuffer(string: text)
        guard case .head(let head)? = try parser.next(&buffer) else { throw ProxyError.invalidResponse("no head") }
        return head
    }

    @Test("the outbound head: hop-by-hop lines out, forwarding headers and the request id added, 100-continue taken")
    func outboundHead() throws {
        let head = try Self.requestHead(
            "POST /p?q=1 HTTP/1.1\r\nHost: example\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nExpect: 100-continue\r\nX-Forwarded-For: 10.0.0.1\r\nX-Request-Id: abc\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n"
        )
        var ids = RequestIDGenerator()
        let untrusted = OutboundHead.make(from: head, clientAddress: "192.0.2.1", clientTrusted: false, buffer: ByteBuffer(), requestIDs: &ids)
        #expect(untrusted.expectsContinue)
        #expect(untrusted.requestID == .client("abc"))
        #expect(
            String(buffer: untrusted.request.head)
                == "POST /p?q=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 3\r\nAccept: */*\r\nX-Forwarded-Host: example\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Request-Id: abc\r\n\r\n"
        )
        let trusted = OutboundHead.make(from: head, clientAddress: "192.0.2.1", clientTrusted: true, buffer: ByteBuffer(), requestIDs: &ids)
        #expect(String(buffer: trusted.request.head).contains("X-Forwarded-For: 10.0.0.1, 192.0.2.1\r\n"))

        let bodyless = try Self.requestHead("DELETE /x HTTP/1.0\r\nX-Request-Id: not valid!\r\n\r\n")
        let generated = OutboundHead.make(from: bodyless, clientAddress: "192.0.2.1", clientTrusted: false, buffer: ByteBuffer(), requestIDs: &ids)
        guard case .generated = generated.requestID else {
            Issue.record("an invalid client id is replaced")
            return
        }
        #expect(String(buffer: generated.request.head).hasPrefix("DELETE /x HTTP/1.1\r\n"))
        #expect(!String(buffer: generated.request.head).contains("content-length"))
    }

    @Test("the response framing: the upstream's length kept, else chunks for HTTP/1.1 and the close for HTTP/1.0")
    func responseFraming() {
        let framed = ResponseFraming(
            method: .GET,
            statusCode: 200,
            contentLength: 5,
            clientVersion: .http1_1,
            clientKeepAlive: true,
            requestComplete: true,
            closeAlready: false
        )
        #expect(framed == ResponseFraming(chunked: false, closeAfterResponse: false))
        let unframed = ResponseFraming(
            method: .GET,
            statusCode: 200,
            contentLength: nil,
            clientVersion: .http1_1,
            clientKeepAlive: true,
            requestComplete: true,
            closeAlready: false
        )
        #expect(unframed == ResponseFraming(chunked: true, closeAfterResponse: false))
        let old = ResponseFraming(
            method: .GET,
            statusCode: 200,
            contentLength: nil,
            clientVersion: .http1_0,
            clientKeepAlive: true,
            requestComplete: true,
            closeAlready: false
        )
        #expect(old == ResponseFraming(chunked: false, closeAfterResponse: true))
        let head = ResponseFraming(
            method: .HEAD,
            statusCode: 200,
            contentLength: nil,
            clientVersion: .http1_1,
            clientKeepAlive: true,
            requestComplete: true,
            closeAlready: false
        )
        #expect(head == ResponseFraming(chunked: false, closeAfterResponse: false))
        let early = ResponseFraming(
            method: .POST,
            statusCode: 200,
            contentLength: 0,
            clientVersion: .http1_1,
            clientKeepAlive: true,
            requestComplete: false,
            closeAlready: false
        )
        #expect(early.closeAfterResponse)
    }

    @Test("the response head: hop-by-hop and the proxy's own lines replaced, the rest byte for byte")
    func responseHead() throws {
        let head = try Self.responseHead(
            "HTTP/1.1 200 Fine\r\nConnection: keep-alive\r\nX-Request-Id: theirs\r\nX-Strangler-Upstream: theirs\r\nx-custom:  kept \r\nContent-Length: 2\r\n\r\n"
        )
        let framing = ResponseFraming(
            method: .GET,
            statusCode: 200,
            contentLength: head.contentLength,
            clientVersion: .http1_1,
            clientKeepAlive: true,
            requestComplete: true,
            closeAlready: false
        )
        var out = ByteBuffer()
        ResponseHeadRewrite.write(head, clientVersion: .http1_1, requestID: .client("mine"), upstreamName: "legacy", framing: framing, into: &out)
        #expect(
            String(buffer: out)
                == "HTTP/1.1 200 Fine\r\nx-custom:  kept \r\nContent-Length: 2\r\nX-Request-Id: mine\r\nX-Strangler-Upstream: legacy\r\n\r\n"
        )
    }

    @Test("the route choice: the mode decides the upstream, the shadow target and the fallback")
    func routeChoice() throws {
        let path = try PathTemplate.parse("/orders/{id}").get()
        let head = try Self.requestHead("GET /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        let post = try Self.requestHead("POST /orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        var sampler = Xorshift(seed: 1)
        let router = TargetRouter()
        func choice(_ route: Route, _ head: ClientRequestHead) -> RouteChoice {
            RouteChoice(route: route, head: head, targetRouter: router, sampler: &sampler)
        }
        let shadow = Route(id: "s", path: path, mode: .shadow, legacy: "legacy", service: "svc", shadow: ShadowSettings())
        #expect(choice(shadow, head) == RouteChoice(upstream: "legacy", shadowTarget: "svc", mayFallBack: false, side: .legacy))
        let service = Route(id: "v", path: path, mode: .service, legacy: "legacy", service: "svc", fallback: true)
        #expect(choice(service, head) == RouteChoice(upstream: "svc", shadowTarget: nil, mayFallBack: true, side: .service))
        #expect(choice(service, post) == RouteChoice(upstream: "svc", shadowTarget: nil, mayFallBack: false, side: .service))
        let reverse = Route(id: "r", path: path, mode: .service, legacy: "legacy", service: "svc", shadow: ShadowSettings())
        #expect(choice(reverse, head).shadowTarget == "legacy")
        let allIn = Route(id: "c", path: path, mode: .canary, legacy: "legacy", service: "svc", canary: CanarySettings(percent: 100))
        #expect(choice(allIn, head) == RouteChoice(upstream: "svc", shadowTarget: nil, mayFallBack: true, side: .service))
        let none = Route(id: "c0", path: path, mode: .canary, legacy: "legacy", service: "svc", canary: CanarySettings(percent: 0))
        #expect(choice(none, head) == RouteChoice(upstream: "legacy", shadowTarget: nil, mayFallBack: false, side: .legacy))
        let legacy = Route(id: "l", path: path, mode: .legacy, legacy: "legacy")
        #expect(choice(legacy, head) == RouteChoice(upstream: "legacy", shadowTarget: nil, mayFallBack: false, side: .legacy))
    }

    @Test("the record's traffic: the chosen side counted, only the service's failures, a fallback counted for legacy")
    func recordTraffic() throws {
        let path = try PathTemplate.parse("/o").get()
        let route = Route(id: "v", path: path, mode: .service, legacy: "legacy", service: "svc", fallback: true)
        var traffic = LoopTraffic()
        var record = ExchangeRecord(closeAfterResponse: false)
        let choice = RouteChoice(upstream: "svc", shadowTarget: nil, mayFallBack: true, side: .service)
        record.take(LoopContext.RouteEntry(route), index: 0, choice: choice, traffic: &traffic)
        #expect(record.routeID == "v" && record.routeIndex == 0 && record.upstreamName == "svc" && record.route?.id == "v")
        record.recordServiceError(in: &traffic)
        record.fallBack(to: "legacy", traffic: &traffic)
        #expect(record.upstreamName == "legacy")
        // Legacy's own failure is not the service's.
        record.recordServiceError(in: &traffic)
        #expect(traffic.drain() == [RouteTraffic(routeID: "v", legacy: 1, service: 1, serviceErrors: 1)])
    }

    @Test("the proxy's own answer: status, JSON body, request id, Allow for a 405, Connection: close when closing")
    func errorAnswer() {
        let answer = ErrorAnswer.bytes(
            for: .connectFailed("down"),
            requestID: .client("r1"),
            upstream: "legacy",
            clientVersion: .http1_1,
            closing: false,
            allocator: ByteBufferAllocator()
        )
        let body = #"{"error":"upstream_unreachable","status":502,"message":"down","upstream":"legacy","requestId":"r1"}"# + "\n"
        #expect(
            String(buffer: answer)
                == "HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nx-request-id: r1\r\n\r\n"
                + body
        )
        let closing = ErrorAnswer.bytes(
            for: .connectFailed("down"),
            requestID: .client("r1"),
            upstream: "",
            clientVersion: .http1_0,
            closing: true,
            allocator: ByteBufferAllocator()
        )
        let text = String(buffer: closing)
        #expect(text.hasPrefix("HTTP/1.0 502 Bad Gateway\r\n") && text.contains("connection: close\r\n"))
        #expect(!text.contains("\"upstream\""))
    }

    @Test("the shadow plan: safe requests mirror, writes follow the route's policy, the loop's cap skips, a sample rate of 0 samples out")
    func shadowPlan() throws {
        let path = try PathTemplate.parse("/o").get()
        var sampler = Xorshift(seed: 7)
        func plan(_ shadow: ShadowSettings, _ method: HTTPMethod, inFlight: Int = 0, learnNoise: Bool = false) -> ShadowPlan {
            var compare = CompareSettings()
            compare.learnNoise = learnNoise
            let route = Route(id: "s", path: path, mode: .shadow, legacy: "legacy", service: "svc", shadow: shadow, compare: compare)
            return ShadowPlan(
                entry: LoopContext.RouteEntry(route),
                method: method,
                servedBy: "legacy",
                shadowsInFlight: inFlight,
                maxShadows: 2,
                noiseSampleRate: 1.0,
                sampler: &sampler
            )
        }
        #expect(plan(ShadowSettings(), .GET) == .copy(writes: .mirror, probe: false))
        #expect(plan(ShadowSettings(), .GET, learnNoise: true) == .copy(writes: .mirror, probe: true))
        #expect(plan(ShadowSettings(), .POST) == .skipped(.writeSkipped))
        #expect(plan(ShadowSettings(writes: .dryRun), .POST) == .copy(writes: .dryRun, probe: false))
        #expect(plan(ShadowSettings(writes: .dryRun), .POST, learnNoise: true) == .copy(writes: .dryRun, probe: false))
        #expect(plan(ShadowSettings(), .GET, inFlight: 2) == .skipped(.concurrency))
        #expect(plan(ShadowSettings(sampleRate: 0), .GET) == .sampledOut)
    }
}
