import Foundation
import NIOCore
import StranglerProxy
import StranglerTestSupport
import Testing

/// Clients that attack or confuse the proxy on purpose, sent as raw bytes against a live proxy
/// (docs/reliability.md, "Hostile clients"): request smuggling, malformed and ambiguous syntax,
/// odd request forms, pipelining, `Expect: 100-continue`, slowloris and stalled bodies, and
/// header names meant to pass for the proxy's own.
///
/// Every case checks four things: what the client is answered; that the upstreams saw exactly
/// the requests they should (none for a refusal, never a request hidden in a body); that a
/// refusal ends in a clean close, not a reset (the staged close); and that the proxy still
/// serves a plain GET on a fresh connection afterwards.
///
/// Nothing here asserts how long
/// anything took; the waits are generous polling loops. The cases run one at a time: each
/// starts its own proxy and two upstreams.
@Suite("Hostile clients", .serialized)
struct HostileClientTests {
    /// `/svc/**` goes to the "service" upstream; everything else to "legacy" (the default).
    static let routes = #"[{"id": "svc", "path": "/svc/**", "mode": "service", "service": "service"}]"#

    /// A complete request that a smuggling attempt hides in a body. The upstream must never
    /// see `/smuggled`.
    static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n"

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// CL.TE: `Content-Length` covers the whole body; read as chunked, the body ends at the
    /// empty chunk and ``smuggled`` becomes a request of its own. `encoding` is the
    /// Transfer-Encoding line (or lines) as sent.
    static func lengthThenEncoding(_ encoding: String) -> [UInt8] {
        let body = "0\r\n\r\n" + smuggled
        return bytes("POST /echo HTTP/1.1\r\nHost: shop.example\r\nContent-Length: \(body.utf8.count)\r\n\(encoding)\r\n\r\n\(body)")
    }

    /// TE.CL: read as chunked, ``smuggled`` is the data of one chunk; read by a
    /// `Content-Length` that covers only the chunk-size line, it is a request of its own.
    static func encodingThenLength(_ encoding: String) -> [UInt8] {
        let size = String(smuggled.utf8.count, radix: 16)
        let body = "\(size)\r\n\(smuggled)\r\n0\r\n\r\n"
        return bytes("POST /echo HTTP/1.1\r\nHost: shop.example\r\n\(encoding)\r\nContent-Length: \(size.utf8.count + 2)\r\n\r\n\(body)")
    }

    /// The body "hello" with its length declared by `lengthLines`, then `then` (by default
    /// ``smuggled``): a reader that took a different length would find a request, or garbage,
    /// where this one's body ends.
    static func lengths(_ lengthLines: String, then: String = smuggled) -> [UInt8] {
        bytes("POST /echo HTTP/1.1\r\nHost: shop.example\r\n\(lengthLines)\r\n\r\nhello\(then)")
    }

    // MARK: - Refused requests

    /// A request the proxy must answer itself and never forward.
    struct Refusal: Sendable, CustomTestStringConvertible {
        var name: String
        var request: [UInt8]
        var status: Int
        /// The `error` field of the JSON answer.
        var error: String
        init(_ name: String, _ request: [UInt8], status: Int = 400, error: String = "bad_request") {
            self.name = name
            self.request = request
            self.status = status
            self.error = error
        }

        var testDescription: String { name }
    }

    static let refusalCases: [Refusal] = [
        // Smuggling: both framings, and Transfer-Encoding spelled so one reader might miss it.
        Refusal("CL.TE: Content-Length, then Transfer-Encoding: chunked", lengthThenEncoding("Transfer-Encoding: chunked")),
        Refusal("TE.CL: Transfer-Encoding: chunked, then Content-Length", encodingThenLength("Transfer-Encoding: chunked")),
        Refusal("obfuscated TE: 'chunked ' with a trailing space, and Content-Length", lengthThenEncoding("Transfer-Encoding: chunked ")),
        Refusal("obfuscated TE: 'xchunked', and Content-Length", lengthThenEncoding("Transfer-Encoding: xchunked")),
        Refusal("obfuscated TE: 'chunked, identity', and Content-Length", lengthThenEncoding("Transfer-Encoding: chunked, identity")),
        Refusal("obfuscated TE: a space and a tab before the value, and Content-Length", lengthThenEncoding("Transfer-Encoding: \tchunked")),
        Refusal(
            "obfuscated TE: 'Transfer-Encoding:\\tchunked' (tab, no space), and Content-Length",
            lengthThenEncoding("Transfer-Encoding:\tchunked")
        ),
        Refusal(
            "two Transfer-Encoding headers (chunked, then identity), no Content-Length",
            bytes(
                "POST /echo HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n\(smuggled)"
            )
        ),
        Refusal("conflicting Content-Length headers (5, then 50)", lengths("Content-Length: 5\r\nContent-Length: 50")),
        Refusal("Content-Length with a list value (5, 5)", lengths("Content-Length: 5, 5")),
        Refusal("Content-Length with a sign (+5)", lengths("Content-Length: +5")),
        Refusal(
            "a chunk size that is not hexadecimal",
            bytes("POST /echo HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n\(smuggled)")
        ),
        Refusal(
            "a chunk size too large for any body (17 hex digits)",
            bytes("POST /echo HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000f\r\nhello\r\n0\r\n\r\n")
        ),

        // Header syntax two parsers could read differently.
        Refusal("obs-fold (a header line continued on the next)", bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\nX-Note: a\r\n folded\r\n\r\n")),
        Refusal("bare LF line endings", bytes("GET /echo HTTP/1.1\nHost: shop.example\n\n")),
        Refusal("NUL in a header value", bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\nX-Note: a\u{0}b\r\n\r\n")),
        Refusal("a space before the colon (Transfer-Encoding : chunked)", lengthThenEncoding("Transfer-Encoding : chunked")),
        Refusal("two Host headers", bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\nHost: evil.example\r\n\r\n")),
        Refusal("an invalid method token (G(T)", bytes("G(T /echo HTTP/1.1\r\nHost: shop.example\r\n\r\n")),

        // Sizes.
        Refusal(
            "a request line longer than --max-header-bytes (40 KiB target)",
            bytes("GET /echo?\(String(repeating: "a", count: 40 * 1024)) HTTP/1.1\r\nHost: shop.example\r\n\r\n"),
            status: 431,
            error: "headers_too_large"
        ),
        Refusal(
            "10,000 header lines",
            bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\n" + (0..<10_000).map { "X-H\($0): \($0)\r\n" }.joined() + "\r\n"),
            status: 431,
            error: "headers_too_large"
        ),

        // Request forms the proxy does not serve.
        Refusal(
            "CONNECT shop.example:443",
            bytes("CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\n\r\n"),
            status: 405,
            error: "method_not_allowed"
        ),
        Refusal(
            "HTTP/1.1 without Host",
            bytes("GET /echo HTTP/1.1\r\nAccept: */*\r\n\r\n")
        ),
        Refusal(
            "an invalid Host value (a space in it)",
            bytes("GET /echo HTTP/1.1\r\nHost: shop example\r\n\r\n")
        ),
        Refusal(
            "HTTP/0.9 (GET / and CRLF, nothing more)",
            bytes("GET /\r\n")
        ),
        Refusal("the HTTP/2 connection preface", bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),

        // Paths that route one way and may be read another upstream.
        Refusal(
            "an encoded slash in the path (/svc%2Fecho)",
            bytes("GET /svc%2Fecho HTTP/1.1\r\nHost: shop.example\r\n\r\n")
        ),
        Refusal(
            "an encoded dot-dot segment (/svc/%2e%2e/admin)",
            bytes("GET /svc/%2e%2e/admin HTTP/1.1\r\nHost: shop.example\r\n\r\n")
        ),
    ]

    @Test("refused: the proxy answers itself, closes cleanly, and forwards nothing", arguments: refusalCases)
    func refused(_ refusal: Refusal) async throws {
        try await withProxy(routes: Self.routes) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(refusal.request)
            let response = try await connection.readResponse()
            #expect(response.status == refusal.status)
            #expect(response.json()["error"] as? String == refusal.error, "\(response.text)")
            #expect(response.header("connection")?.lowercased() == "close")
            #expect(await connection.waitUntilClosed(), "the proxy kept the connection open after refusing")
            #expect(connection.unreadBytes.isEmpty, "a second answer: bytes after the refused head were read as a request")
            #expect(connection.errors.isEmpty, "the refusal ended in \(connection.errors), not a clean close")
            await connection.close()
            try await Self.expectStillServing(proxy)
        }
    }

    // MARK: - Requests that are served

    /// A request the proxy must forward, once, to `upstream`.
    struct Served: Sendable, CustomTestStringConvertible {
        var name: String
        var request: [UInt8]
        /// "legacy" or "service".
        var upstream: String
        var method = "GET"
        /// The targets the upstream may see: the client's as sent, or another spelling of it
        /// where one is as correct (an absolute-form target in origin form).
        var targets: [String]
        var body = ""
        /// Every value the upstream must see for each named header; an empty list: none at all.
        var headers: [String: [String]] = [:]

        var testDescription: String { name }
    }

    static let servedCases: [Served] = [
        Served(
            name: "Content-Length with leading zeros (005) is five bytes",
            request: lengths("Content-Length: 005", then: ""),
            upstream: "legacy",
            method: "POST",
            targets: ["/echo"],
            body: "hello"
        ),
        Served(
            name: "absolute-form target (GET http://x/echo) reaches the upstream",
            request: bytes("GET http://shop.example/echo?abs HTTP/1.1\r\nHost: shop.example\r\n\r\n"),
            upstream: "legacy",
            targets: ["/echo?abs", "http://shop.example/echo?abs"]
        ),
        Served(
            name: "absolute-form target routes by its path (http://x/svc/echo goes to the service)",
            request: bytes("GET http://shop.example/svc/echo?abs HTTP/1.1\r\nHost: shop.example\r\n\r\n"),
            upstream: "service",
            targets: ["/svc/echo?abs", "http://shop.example/svc/echo?abs"]
        ),
        Served(
            name: "dot segments route by the normal path (/legacy/../svc/echo goes to the service)",
            request: bytes("GET /legacy/../svc/echo?dots HTTP/1.1\r\nHost: shop.example\r\n\r\n"),
            upstream: "service",
            targets: ["/legacy/../svc/echo?dots", "/svc/echo?dots"]
        ),
        Served(
            name: "HTTP/1.0 without Host is accepted",
            request: bytes("GET /echo?v=10 HTTP/1.0\r\n\r\n"),
            upstream: "legacy",
            targets: ["/echo?v=10"]
        ),
        Served(
            name: "X_Forwarded_For (underscores) does not reach the upstream",
            request: bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n"),
            upstream: "legacy",
            targets: ["/echo"],
            headers: ["x_forwarded_for": [], "x-forwarded-for": ["127.0.0.1"]]
        ),
        Served(
            name: "X_Strangler_Shadow: dry-run (underscores) does not reach the upstream",
            request: bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\nX_Strangler_Shadow: dry-run\r\n\r\n"),
            upstream: "legacy",
            targets: ["/echo"],
            headers: ["x_strangler_shadow": [], "x-strangler-shadow": []]
        ),
        Served(
            name: "X-Strangler-Shadow from a client does not reach the upstream",
            request: bytes("GET /echo HTTP/1.1\r\nHost: shop.example\r\nX-Strangler-Shadow: dry-run\r\n\r\n"),
            upstream: "legacy",
            targets: ["/echo"],
            headers: ["x-strangler-shadow": []]
        ),
    ]

    @Test("served: forwarded once, to the right upstream, with nothing hidden in it", arguments: servedCases)
    func forwarded(_ served: Served) async throws {
        try await withProxy(routes: Self.routes) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(served.request)
            let response = try await connection.readResponse()
            #expect(response.status == 200, "\(response.text)")
            #expect(response.header("x-strangler-upstream") == served.upstream)
            let upstream = served.upstream == "service" ? proxy.service : proxy.legacy
            let seen = upstream.requests
            #expect(seen.count == 1, "the upstream saw \(seen.map(\.uri))")
            if let request = seen.first {
                #expect(request.method == served.method)
                #expect(served.targets.contains(request.uri), "the upstream saw \(request.uri)")
                #expect(request.body == Array(served.body.utf8))
                for (name, values) in served.headers {
                    #expect(request.headers(name) == values, "\(name) as the upstream saw it")
                }
            }
            if response.header("connection")?.lowercased() == "close" {
                #expect(await connection.waitUntilClosed())
                #expect(connection.errors.isEmpty, "ended with \(connection.errors)")
            }
            await connection.close()
            try await Self.expectStillServing(
                proxy,
                legacy: served.upstream == "legacy" ? seen.map(\.uri) : [],
                service: served.upstream == "service" ? seen.map(\.uri) : []
            )
        }
    }

    /// RFC 9110 §8.6 lets a recipient either refuse a repeated `Content-Length` or take it as
    /// the one value it repeats. Either is safe; forwarding both lines is not: a strict upstream
    /// parser (llhttp: NIO's, Node's) refuses a request with two, so the client is not served.
    @Test("duplicate identical Content-Length headers (5, 5): refused with 400, or forwarded with one Content-Length")
    func duplicateContentLength() async throws {
        try await withProxy(routes: Self.routes, upstreamExtra: #", "timeoutMs": 5000"#) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(Self.lengths("Content-Length: 5\r\nContent-Length: 5", then: ""))
            let response = try await connection.readResponse()
            if response.status == 400 {
                #expect(response.json()["error"] as? String == "bad_request")
                #expect(await connection.waitUntilClosed())
                #expect(connection.errors.isEmpty, "the refusal ended in \(connection.errors), not a clean close")
                await connection.close()
                try await Self.expectStillServing(proxy)
            } else {
                #expect(response.status == 200, "neither refused nor served: \(response.text)")
                let seen = proxy.legacy.requests
                #expect(seen.map(\.body) == [Array("hello".utf8)], "the upstream saw \(seen.map(\.uri))")
                #expect(seen.first?.headers("content-length") == ["5"], "the upstream got the repeated header as sent")
                await connection.close()
                try await Self.expectStillServing(proxy, legacy: ["/echo"])
            }
        }
    }

    // MARK: - Upgrade, pipelining, Expect

    @Test("Upgrade: websocket is not upgraded: Upgrade and Connection stay on the client's hop, the connection stays HTTP")
    func websocketUpgradeNotUpgraded() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(
                "GET /echo?ws HTTP/1.1\r\nHost: shop.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(response.header("upgrade") == nil)
            let seen = try #require(proxy.legacy.requests.first)
            #expect(seen.headers("upgrade").isEmpty, "Upgrade reached the upstream")
            #expect(seen.headers("connection").isEmpty, "Connection reached the upstream")
            // Still HTTP/1.1 on the same connection: the next bytes are a request, not frames.
            try await connection.send("GET /echo?after-ws HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            let next = try await connection.readResponse()
            #expect(next.status == 200)
            #expect(next.json()["uri"] as? String == "/echo?after-ws")
            await connection.close()
            try await Self.expectStillServing(proxy, legacy: ["/echo?ws", "/echo?after-ws"])
        }
    }

    @Test("10 pipelined requests in one write are answered in order, each its own; bodies that look like requests stay bodies")
    func tenPipelined() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            let targets = (0..<10).map { "/echo?n=\($0)" }
            var requests = ""
            for (index, target) in targets.enumerated() {
                if index.isMultiple(of: 2) {
                    requests += "GET \(target) HTTP/1.1\r\nHost: shop.example\r\n\r\n"
                } else {
                    // A body that is itself a request: it must reach the upstream as this one's body.
                    requests += "POST \(target) HTTP/1.1\r\nHost: shop.example\r\nContent-Length: \(Self.smuggled.utf8.count)\r\n\r\n\(Self.smuggled)"
                }
            }
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(requests)
            for (index, target) in targets.enumerated() {
                let response = try await connection.readResponse()
                #expect(response.status == 200, "answer \(index)")
                #expect(response.json()["uri"] as? String == target, "answer \(index) is not its request's")
                #expect(response.json()["body"] as? String == (index.isMultiple(of: 2) ? "" : Self.smuggled), "answer \(index)")
            }
            #expect(connection.unreadBytes.isEmpty, "more answers than requests")
            #expect(!connection.isClosed)
            await connection.close()
            try await Self.expectStillServing(proxy, legacy: targets)
        }
    }

    @Test("Expect: 100-continue with a 2 MiB body gets 100 Continue, then the answer; the body reaches the upstream intact")
    func expectContinueLargeBody() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            let size = 2 * 1024 * 1024
            let body = (0..<size).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send(
                "POST /echo?expect HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue\r\nContent-Length: \(size)\r\n\r\n"
            )
            let interim = try await connection.readRaw(until: "\r\n\r\n")
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(interim.prefix(200))")
            #expect(proxy.legacy.requests.isEmpty, "the upstream had a complete request before the body was sent")
            try await connection.send(body)
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(response.json()["bodyLength"] as? Int == size)
            let seen = try #require(proxy.legacy.requests.first)
            #expect(seen.body == body, "the body reached the upstream altered")
            #expect(seen.headers("expect").isEmpty, "the expectation was answered by the proxy, not forwarded")
            await connection.close()
            try await Self.expectStillServing(proxy, legacy: ["/echo?expect"])
        }
    }

    // MARK: - Slow clients

    @Test("slowloris: a head sent one byte at a time gets 408 and a clean close within --client-header-timeout")
    func slowloris() async throws {
        // Long enough that the first byte surely arrives inside it, even on a busy machine (a
        // connection that sent nothing is closed without an answer).
        try await withProxy(routes: Self.routes, configure: { $0.clientHeaderTimeout = .seconds(2) }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            // Far more bytes than the deadline lets through at this pace: the head never completes.
            let head = Array("GET /echo HTTP/1.1\r\nHost: shop.example\r\nX-Slow: \(String(repeating: "s", count: 10_000))\r\n\r\n".utf8)
            for byte in head {
                if connection.isClosed || !connection.unreadBytes.isEmpty { break }
                try await connection.send([byte])
                try await Task.sleep(for: .milliseconds(20))
            }
            let response = try await connection.readResponse(seconds: 30)
            #expect(response.status == 408)
            #expect(response.json()["error"] as? String == "client_timeout")
            #expect(response.header("connection")?.lowercased() == "close")
            #expect(await connection.waitUntilClosed(seconds: 30))
            #expect(connection.errors.isEmpty, "ended with \(connection.errors)")
            #expect(proxy.legacy.requests.isEmpty)
            await connection.close()
            try await Self.expectStillServing(proxy)
        }
    }

    @Test("a slow POST that stalls gets 408 and a clean close; the upstream never gets a complete request")
    func stalledPost() async throws {
        try await withProxy(routes: Self.routes, configure: { $0.clientBodyTimeout = .milliseconds(500) }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("POST /echo?stall HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 1000\r\n\r\n")
            // A few pieces, slowly, then nothing.
            for _ in 0..<3 {
                try await connection.send(String(repeating: "p", count: 10))
                try await Task.sleep(for: .milliseconds(50))
            }
            let response = try await connection.readResponse(seconds: 30)
            #expect(response.status == 408)
            #expect(response.json()["error"] as? String == "client_timeout")
            #expect(response.header("connection")?.lowercased() == "close")
            #expect(await connection.waitUntilClosed(seconds: 30))
            #expect(connection.errors.isEmpty, "ended with \(connection.errors)")
            // The half-sent upstream request is dropped with its connection, never completed.
            for _ in 0..<1000 where proxy.legacy.closedConnections == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(proxy.legacy.closedConnections >= 1, "the upstream connection carrying half a request stayed open")
            #expect(proxy.legacy.requests.isEmpty, "the upstream got a complete request")
            await connection.close()
            try await Self.expectStillServing(proxy)
        }
    }

    // MARK: - After every case

    /// A plain GET on a fresh connection still works, and the upstreams saw exactly `legacy`
    /// and `service` (by target) before it, and nothing else: no request smuggled in a body.
    static func expectStillServing(
        _ proxy: ProxyHarness,
        legacy: [String] = [],
        service: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let probe = try await RawConnection.get(port: proxy.port, "/echo?still-serving")
        #expect(probe.status == 200, "the proxy stopped serving", sourceLocation: sourceLocation)
        #expect(proxy.legacy.requests.map(\.uri) == legacy + ["/echo?still-serving"], sourceLocation: sourceLocation)
        #expect(proxy.service.requests.map(\.uri) == service, sourceLocation: sourceLocation)
    }
}
