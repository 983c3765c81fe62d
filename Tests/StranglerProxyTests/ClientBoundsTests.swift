import Foundation
import NIOCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The proxy under clients that misbehave: slow readers and writers, silent and half-open
/// connections, oversized requests sent whole before reading, and more connections than the
/// cap (docs/reliability.md, "Client bounds"). Every bound here is short so that it is the
/// thing under test; nothing asserts how long anything took.
@Suite("Client bounds: timeouts, staged close, connection cap")
struct ClientBoundsTests {
    // MARK: - Upstream timeout counts only time spent waiting on the upstream

    @Test("a client that stops reading for far longer than timeoutMs, then reads on, receives every byte")
    func slowReaderGetsWholeBody() async throws {
        // Far more than the sockets buffer between the proxy and the client, so the proxy has to
        // stop reading the upstream while the client is not reading.
        let size = 16 * 1024 * 1024
        // The upstream answers within milliseconds, far inside its timeoutMs; the client then
        // takes nothing for three times that.
        try await withProxy(upstreamExtra: #", "timeoutMs": 1000"#, configure: { $0.threads = 1 }) { proxy in
            let expected = TestUpstream.patternBytes(count: size)
            let reader = try await PacedReader.connect(port: proxy.port, readSize: 16 * 1024)
            try await reader.send("GET /big?bytes=\(size) HTTP/1.1\r\nHost: x\r\n\r\n")
            try await reader.readUntilHead()
            try await Task.sleep(for: .milliseconds(3000))
            try await reader.readPaced(every: .milliseconds(1))
            let bytes = reader.received
            let parts = try #require(PacedReader.split(bytes))
            #expect(parts.status == 200)
            #expect(bytes.count - parts.headLength == size, "the proxy cut the download short")
            let intact = bytes[parts.headLength...].elementsEqual(expected)
            #expect(intact, "the body arrived altered")
            #expect(!proxy.server.metrics.render().contains("upstream_timeout"))
            await reader.close()
        }
    }

    @Test("the test upstream's /big pattern is 0...250 repeated, whatever its length")
    func bigPatternIsTheDefinedOne() {
        for count in [0, 1, 250, 251, 252, 502, 503, 4096, 100_003] {
            #expect(TestUpstream.patternBytes(count: count) == (0..<count).map { UInt8($0 % 251) }, "\(count)")
        }
    }

    @Test("a slow upload whose bytes keep flowing for longer than timeoutMs is delivered, not 504")
    func slowUploadIsDelivered() async throws {
        let size = 60_000
        // The upload takes about two seconds; the upstream answers within milliseconds of its end.
        try await withProxy(upstreamExtra: #", "timeoutMs": 1000"#) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            // /status/200 answers at once, whatever the body: the test reads the upstream's record.
            try await connection.send("POST /status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n")
            let piece = String(repeating: "u", count: 2_000)
            for _ in 0..<(size / piece.count) {
                try await connection.send(piece)
                try await Task.sleep(for: .milliseconds(60))
            }
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(proxy.legacy.requests.last?.body.count == size)
            await connection.close()
        }
    }

    @Test("a client that stops reading is closed after --client-send-timeout, with its upstream call")
    func stalledReaderIsClosed() async throws {
        let size = 8 * 1024 * 1024
        try await withProxy(configure: {
            $0.threads = 1
            $0.clientSendTimeout = .milliseconds(300)
        }) { proxy in
            let reader = try await PacedReader.connect(port: proxy.port, readSize: 16 * 1024)
            try await reader.send("GET /big?bytes=\(size) HTTP/1.1\r\nHost: x\r\n\r\n")
            // Read nothing until the proxy has given up on this client.
            for _ in 0..<3000 where !proxy.server.metrics.render().contains(#"kind="send""#) {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(proxy.server.metrics.render().contains(#"strangler_client_timeouts_total{kind="send"} 1"#))
            await reader.drain()
            #expect(reader.isClosed)
            let bytes = reader.received
            let parts = try #require(PacedReader.split(bytes))
            #expect(bytes.count - parts.headLength < size, "a closed connection can't have delivered the whole body")
            for _ in 0..<6000 where proxy.legacy.closedConnections == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(proxy.legacy.closedConnections == 1, "the upstream call was closed too")
        }
    }

    // MARK: - Staged close: refusals arrive, not resets

    @Test("a 200 KB head sent whole before reading gets its 431 and a clean close, 10 times of 10")
    func oversizedHeadGets431() async throws {
        try await withProxy { proxy in
            let huge = String(repeating: "a", count: 200 * 1024)
            for attempt in 0..<10 {
                let connection = try await RawConnection.connect(port: proxy.port)
                try await connection.send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: \(huge)\r\n\r\n")
                let response = try await connection.readResponse()
                #expect(response.status == 431, "attempt \(attempt)")
                #expect(await connection.waitUntilClosed(), "attempt \(attempt)")
                #expect(connection.errors.isEmpty, "attempt \(attempt) ended with \(connection.errors)")
            }
        }
    }

    @Test("a 20 MB body sent without Expect: 100-continue gets 413 and a clean close")
    func oversizedBodyGets413() async throws {
        try await withProxy { proxy in
            let body = [UInt8](repeating: UInt8(ascii: "b"), count: 20 * 1024 * 1024)
            for attempt in 0..<3 {
                let connection = try await RawConnection.connect(port: proxy.port)
                try await connection.send(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
                let response = try await connection.readResponse()
                #expect(response.status == 413, "attempt \(attempt)")
                #expect(await connection.waitUntilClosed(), "attempt \(attempt)")
                #expect(connection.errors.isEmpty, "attempt \(attempt) ended with \(connection.errors)")
            }
        }
    }

    @Test("a smuggling attempt followed by a megabyte gets its 400 and a clean close")
    func smugglingGets400() async throws {
        try await withProxy { proxy in
            let tail = String(repeating: "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n", count: 30_000)
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\(tail)"
            )
            let response = try await connection.readResponse()
            #expect(response.status == 400)
            #expect(await connection.waitUntilClosed())
            #expect(connection.errors.isEmpty, "ended with \(connection.errors)")
            #expect(proxy.legacy.requests.isEmpty, "nothing was forwarded")
        }
    }

    // MARK: - Silent, slow and idle connections

    @Test("a connection that sends nothing is closed after --client-header-timeout, without an answer")
    func silentConnectionClosed() async throws {
        try await withProxy(configure: { $0.clientHeaderTimeout = .milliseconds(300) }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            #expect(await connection.waitUntilClosed(seconds: 30))
            #expect(connection.unreadBytes.isEmpty)
            #expect(proxy.server.metrics.render().contains(#"strangler_client_timeouts_total{kind="header"} 1"#))
        }
    }

    /// Runs `body` against a proxy with each header timeout in turn until one attempt is not
    /// closed before any byte of the request arrived. A connection that sent nothing in time is
    /// closed without an answer, by design; on a machine busy enough that the first bytes take
    /// longer than the deadline, the next, longer deadline tells the case apart from a failure.
    static func withHeaderDeadline(
        _ body: (ProxyHarness, RawConnection) async throws -> RawConnection.Response
    ) async throws -> HeaderDeadlineOutcome {
        for seconds in [2, 8, 30] {
            var outcome: HeaderDeadlineOutcome?
            try await withProxy(configure: { $0.clientHeaderTimeout = .seconds(Int64(seconds)) }) { proxy in
                let connection = try await RawConnection.connect(port: proxy.port)
                do {
                    let response = try await body(proxy, connection)
                    let closed = await connection.waitUntilClosed(seconds: 30)
                    outcome = HeaderDeadlineOutcome(response: response, closed: closed, upstreamRequests: proxy.legacy.requests.count)
                } catch let early as RawConnection.ClosedEarly where early.received.isEmpty {
                    outcome = nil
                }
            }
            if let outcome { return outcome }
        }
        Issue.record("every attempt was closed before its first bytes arrived, even with a 30 s header deadline")
        throw CancellationError()
    }

    @Test("part of a head, then silence: 408, then the connection closes")
    func partialHeadGets408() async throws {
        let outcome = try await Self.withHeaderDeadline { _, connection in
            try await connection.send("GET /echo HTTP/1.1\r\nHo")
            return try await connection.readResponse(seconds: 60)
        }
        #expect(outcome.response.status == 408)
        #expect(outcome.response.json()["error"] as? String == "client_timeout")
        #expect(outcome.closed)
        #expect(outcome.upstreamRequests == 0)
    }

    @Test("a head sent one byte at a time does not outlive --client-header-timeout (a deadline, not an idle timer)")
    func dripFedHeadGets408() async throws {
        let outcome = try await Self.withHeaderDeadline { _, connection in
            // Far more bytes than any of the deadlines lets through: the head never completes.
            let head = Array("GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "s", count: 10_000))\r\n\r\n".utf8)
            for byte in head {
                if connection.isClosed || !connection.unreadBytes.isEmpty { break }
                try? await connection.send([byte])
                try await Task.sleep(for: .milliseconds(20))
            }
            return try await connection.readResponse(seconds: 60)
        }
        #expect(outcome.response.status == 408)
        #expect(outcome.closed)
        #expect(outcome.upstreamRequests == 0)
    }

    @Test("an idle keep-alive connection is closed after --keepalive-timeout")
    func idleKeepAliveClosed() async throws {
        try await withProxy(configure: { $0.keepAliveTimeout = .milliseconds(300) }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(await connection.waitUntilClosed(seconds: 30))
            #expect(connection.unreadBytes.isEmpty, "closed without a second answer")
            #expect(proxy.server.metrics.render().contains(#"strangler_client_timeouts_total{kind="keepalive"} 1"#))
        }
    }

    @Test("a request body that stops arriving gets 408 after --client-body-timeout, and the upstream call is dropped")
    func stalledBodyGets408() async throws {
        try await withProxy(configure: { $0.clientBodyTimeout = .milliseconds(300) }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            let response = try await connection.readResponse(seconds: 30)
            #expect(response.status == 408)
            #expect(await connection.waitUntilClosed(seconds: 30))
            for _ in 0..<1000 where proxy.legacy.closedConnections == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(proxy.legacy.closedConnections == 1, "the half-sent upstream request was closed, not pooled")
            #expect(proxy.legacy.requests.isEmpty, "the upstream never saw a complete request")
        }
    }

    // MARK: - Connection cap

    @Test("at --max-client-connections a new client closes the longest-idle connection, or is refused when none is idle")
    func connectionCap() async throws {
        try await withProxy(configure: {
            $0.threads = 1
            $0.maxClientConnections = 4
        }) { proxy in
            #expect(proxy.server.clientConnectionCap == 4)
            var silent: [RawConnection] = []
            for _ in 0..<4 {
                silent.append(try await RawConnection.connect(port: proxy.port))
                for _ in 0..<500 where await proxy.server.openConnections() < silent.count { try await Task.sleep(for: .milliseconds(10)) }
            }
            // A fifth client is served: the oldest silent connection makes room.
            let served = try await RawConnection.get(port: proxy.port, "/echo")
            #expect(served.status == 200)
            #expect(await silent[0].waitUntilClosed())
            #expect(proxy.server.metrics.render().contains("strangler_client_connections_evicted_total 1"))
            for connection in silent { await connection.close() }
            for _ in 0..<500 where await proxy.server.openConnections() > 0 { try await Task.sleep(for: .milliseconds(10)) }

            // Four requests in flight: nothing is idle, so a fifth connection is refused at once.
            var busy: [RawConnection] = []
            for _ in 0..<4 {
                let connection = try await RawConnection.connect(port: proxy.port)
                try await connection.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
                busy.append(connection)
            }
            for _ in 0..<500 where proxy.legacy.requests.count < 4 { try await Task.sleep(for: .milliseconds(10)) }
            let refused = try await RawConnection.connect(port: proxy.port)
            #expect(await refused.waitUntilClosed())
            #expect(proxy.server.metrics.render().contains("strangler_client_connections_refused_total 1"))
            #expect(busy.allSatisfy { !$0.isClosed }, "requests in flight are never evicted")
            for connection in busy { await connection.close() }
        }
    }

    // MARK: - Nothing outlives its connection

    @Test("client connection handlers are freed when their connections close (no retain cycle)")
    func handlersFreedAfterClose() async throws {
        try await withProxy(configure: { $0.threads = 1 }) { proxy in
            for index in 0..<1_000 {
                let response = try await RawConnection.get(port: proxy.port, "/echo?n=\(index)")
                #expect(response.status == 200)
            }
            for _ in 0..<1000 where await proxy.server.openConnections() > 0 { try await Task.sleep(for: .milliseconds(10)) }
            for _ in 0..<1000 where await proxy.server.liveProxyHandlers() > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(await proxy.server.liveProxyHandlers() == 0)
        }
    }
}

/// What an attempt of `ClientBoundsTests.withHeaderDeadline` saw: the answer, whether the
/// connection then closed, and how many requests reached the upstream.
struct HeaderDeadlineOutcome {
    var response: RawConnection.Response
    var closed: Bool
    var upstreamRequests: Int
}
