import Foundation
import NIOCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// What the client connection handler does without NIO's pipelining and error handlers in
/// front of it: pipelined requests in order, quiescing on shutdown, parser errors.
@Suite("Client connection lifecycle")
struct ConnectionLifecycleTests {
    @Test("pipelined requests are answered in order, each by its own upstream call, even when the first is slow")
    func pipelinedInOrder() async throws {
        try await withProxy(configure: { $0.threads = 1 }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            // One write: a slow request, a fast one, and one with a body behind them.
            try await connection.send(
                "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /echo?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            )
            let first = try await connection.readResponse()
            let second = try await connection.readResponse()
            let third = try await connection.readResponse()
            #expect(first.json()["slow"] as? Bool == true)
            #expect(second.json()["uri"] as? String == "/echo?n=2")
            #expect(third.json()["uri"] as? String == "/echo?n=3")
            #expect(third.json()["method"] as? String == "POST")
            #expect(proxy.legacy.requests.map(\.uri) == ["/slow?ms=300", "/echo?n=2", "/echo?n=3"])
            #expect(proxy.legacy.requests.last?.body == Array("hello".utf8))
            // Still usable afterwards.
            try await connection.send("GET /echo?n=4 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await connection.readResponse().json()["uri"] as? String == "/echo?n=4")
            await connection.close()
        }
    }

    @Test("a malformed request pipelined behind a good one: the good one is answered, then the connection closes")
    func malformedBehindGood() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(
                "GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 7\r\n\r\nabcdefg"
            )
            let first = try await connection.readResponse()
            #expect(first.status == 200)
            #expect(first.json()["slow"] as? Bool == true)
            #expect(await connection.waitUntilClosed())
            #expect(proxy.legacy.requests.map(\.uri) == ["/slow?ms=200"])
        }
    }

    @Test("shutdown closes idle client connections and lets an in-flight exchange finish with Connection: close")
    func quiesceOnShutdown() async throws {
        // One event loop, so the idle connection closing shows that the busy one's loop has
        // quiesced too. The upstream holds its answer until the test releases it, after the
        // shutdown has begun, however slow the machine.
        let proxy = try await ProxyHarness.start(configure: {
            $0.shutdownGracePeriod = .seconds(60)
            $0.threads = 1
        })
        let idle = try await RawConnection.connect(port: proxy.port)
        try await idle.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await idle.readResponse().status == 200)

        let busy = try await RawConnection.connect(port: proxy.port)
        try await busy.send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in 0..<3000 where !proxy.legacy.requests.contains(where: { $0.uri == "/held" }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(proxy.legacy.requests.contains { $0.uri == "/held" })
        async let stopped: Void = proxy.server.shutdown()
        #expect(await idle.waitUntilClosed())
        #expect(busy.unreadBytes.isEmpty)
        proxy.legacy.releaseHeld()
        let response = try await busy.readResponse()
        #expect(response.status == 200)
        #expect(response.json()["held"] as? Bool == true)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(await busy.waitUntilClosed())
        await stopped
        await proxy.legacy.stop()
        await proxy.service.stop()
    }

    @Test("a request head that is not HTTP gets 400 as JSON and a closed connection")
    func garbage() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("HELLO THERE\r\n\r\n")
            let response = try await connection.readResponse()
            #expect(response.status == 400)
            #expect(response.json()["error"] as? String == "bad_request")
            #expect(response.header("connection")?.lowercased() == "close")
            #expect(await connection.waitUntilClosed())
            #expect(proxy.legacy.requests.isEmpty)
        }
    }
}

extension ConnectionLifecycleTests {
    @Test("a client that pipelines hundreds of requests in one write gets every answer, in order")
    func pipelineFlood() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            let count = 300
            // Requests wait unparsed behind the current exchange, so the proxy holds no more
            // than what it read; nothing is refused.
            try await connection.send((0..<count).map { "GET /echo?n=\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            for index in 0..<count {
                let response = try await connection.readResponse(seconds: 10)
                #expect(response.status == 200)
                #expect(response.json()["uri"] as? String == "/echo?n=\(index)")
            }
            #expect(proxy.legacy.requests.count == count)
            let fresh = try await RawConnection.get(port: proxy.port, "/echo")
            #expect(fresh.status == 200)
        }
    }
}
