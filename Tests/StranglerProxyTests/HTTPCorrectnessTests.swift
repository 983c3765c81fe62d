import Foundation
import NIOCore
import StranglerCore
import StranglerProxy
import StranglerTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The HTTP rules the proxy keeps (README.md, "HTTP behaviour"; docs/reliability.md), item by
/// item, against a live proxy and scriptable upstreams.
@Suite("HTTP correctness (docs/reliability.md)")
struct HTTPCorrectnessTests {
    @Test("hop-by-hop request headers are stripped; end-to-end ones and TE: trailers pass")
    func requestHopByHop() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.exchange(
                port: proxy.port,
                "GET /echo HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Hop-Secret\r\nX-Hop-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\nX-End-To-End: yes\r\n\r\n"
            )
            #expect(response.status == 200)
            let names = response.echoedHeaderNames()
            for hop in ["connection", "x-hop-secret", "keep-alive", "proxy-authorization", "proxy-connection", "upgrade"] {
                #expect(!names.contains(hop), "\(hop) reached the upstream")
            }
            #expect(response.echoedHeader("te") == "trailers")
            #expect(response.echoedHeader("x-end-to-end") == "yes")
        }
    }

    @Test("hop-by-hop response headers are stripped before the client sees them")
    func responseHopByHop() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/hop")
            #expect(response.status == 200)
            #expect(response.text == "{\"hop\":true}")
            for hop in ["x-hop-custom", "keep-alive", "proxy-authenticate", "upgrade", "trailer"] {
                #expect(response.header(hop) == nil, "\(hop) reached the client")
            }
            #expect(response.header("x-end-to-end") == "kept")
        }
    }

    @Test("X-Forwarded-* from an untrusted peer are replaced, not extended")
    func forwardedUntrusted() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(
                port: proxy.port,
                "/echo",
                headers: ["X-Forwarded-For: 6.6.6.6", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"]
            )
            #expect(response.echoedHeader("x-forwarded-for") == "127.0.0.1")
            #expect(response.echoedHeader("x-forwarded-proto") == "http")
            #expect(response.echoedHeader("x-forwarded-host") == "shop.example")
            #expect(response.echoedHeader("host") == "shop.example")
        }
    }

    @Test("X-Forwarded-For from a trusted proxy is extended with the peer address")
    func forwardedTrusted() async throws {
        try await withProxy(configure: { $0.trustedProxies = ["127.0.0.1"] }) { proxy in
            let response = try await RawConnection.get(
                port: proxy.port,
                "/echo",
                headers: ["X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"]
            )
            #expect(response.echoedHeader("x-forwarded-for") == "203.0.113.7, 127.0.0.1")
            #expect(response.echoedHeader("x-forwarded-proto") == "https")
        }
    }

    @Test("path and query reach the upstream byte for byte")
    func pathAndQueryVerbatim() async throws {
        try await withProxy { proxy in
            // Routed on its normal form (/echo/a~b/c%C3%A9), forwarded as sent.
            let target = "/echo/a%7eb/./x/../c%c3%a9?q=a%20b&q=2&empty=&flag&plus=a+b&pct=%E2%82%AC&p=/../%2F"
            let response = try await RawConnection.get(port: proxy.port, target)
            #expect(response.json()["uri"] as? String == target)
        }
        // %2F and ;parameters are refused by default (--ambiguous-paths); when they are let
        // through, they too go as sent.
        try await withProxy(configure: { $0.ambiguousPaths = .forwardWhenRoutesAgree }) { proxy in
            let target = "/echo/a%2Fb/./x/../c;matrix=1?q=a%20b&q=2&empty=&flag&plus=a+b&pct=%E2%82%AC"
            let response = try await RawConnection.get(port: proxy.port, target)
            #expect(response.json()["uri"] as? String == target)
        }
    }

    @Test("a request without Host (HTTP/1.0) reaches the upstream with the upstream's address as Host")
    func missingHost() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.exchange(port: proxy.port, "GET /echo HTTP/1.0\r\n\r\n")
            #expect(response.status == 200)
            #expect(response.echoedHeader("host") == "127.0.0.1:\(proxy.legacy.port)")
        }
    }

    @Test("redirects are passed to the client, never followed")
    func noRedirectFollowing() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/redirect")
            #expect(response.status == 302)
            #expect(response.header("location") == "http://example.invalid/elsewhere")
            #expect(proxy.legacy.requests.count == 1)
        }
    }

    @Test("a request without a body goes upstream without one (no chunked framing)")
    func bodylessRequests() async throws {
        try await withProxy { proxy in
            let get = try await RawConnection.get(port: proxy.port, "/echo")
            #expect(get.echoedHeader("transfer-encoding") == nil)
            #expect(get.echoedHeader("content-length") == nil)
            #expect(get.json()["bodyLength"] as? Int == 0)

            let post = try await RawConnection.exchange(port: proxy.port, "POST /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(post.echoedHeader("transfer-encoding") == nil)
            #expect(post.echoedHeader("content-length") == "0")
        }
    }

    @Test("request bodies stream through with their framing: length and chunked")
    func requestBodies() async throws {
        try await withProxy { proxy in
            let sized = try await RawConnection.exchange(
                port: proxy.port,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"qty\": 12.5}"
            )
            #expect(sized.json()["body"] as? String == "{\"qty\": 12.5}")
            #expect(sized.echoedHeader("content-length") == "13")

            let chunked = try await RawConnection.exchange(
                port: proxy.port,
                "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
            )
            #expect(chunked.json()["body"] as? String == "abcdefg")
            #expect(chunked.echoedHeader("transfer-encoding") == "chunked")
        }
    }

    @Test("HEAD, 204 and 304 carry no body, and the connection stays usable after them")
    func bodylessResponses() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = try await connection.readResponse(noBody: true)
            #expect(head.status == 200)
            #expect(head.header("content-length") == "1234")

            try await connection.send("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n")
            let noContent = try await connection.readResponse()
            #expect(noContent.status == 204)
            #expect(noContent.header("transfer-encoding") == nil)

            try await connection.send("GET /status/304 HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n\r\n")
            let notModified = try await connection.readResponse()
            #expect(notModified.status == 304)
            #expect(notModified.header("etag") == "\"v1\"")

            // Any stray body byte from above would corrupt this response.
            try await connection.send("GET /echo?after=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            let after = try await connection.readResponse()
            #expect(after.status == 200)
            #expect(after.json()["uri"] as? String == "/echo?after=1")
            #expect(connection.unreadBytes.isEmpty)
            await connection.close()
        }
    }

    @Test("heads of changing sizes on one connection go through intact (each connection reuses its head buffers)")
    func headBuffersAcrossSizes() async throws {
        // Small, then larger than the kept-buffer limit (16 KB), then small again, then sizes in
        // between: each exchange writes its heads into the last one's buffers, grown, or fresh.
        try await withProxy(configure: { $0.maxHeaderBytes = 64 * 1024 }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            for (index, size) in [10, 20_000, 10, 9_000, 3_000, 10, 17_000, 200].enumerated() {
                let fill = String(repeating: Character(UnicodeScalar(UInt8(ascii: "a") + UInt8(index))), count: size)
                try await connection.send("GET /echo?n=\(index) HTTP/1.1\r\nHost: x\r\nX-Fill: \(fill)\r\n\r\n")
                let response = try await connection.readResponse()
                #expect(response.status == 200)
                #expect(response.json()["uri"] as? String == "/echo?n=\(index)")
                #expect(response.echoedHeader("x-fill") == fill, "request \(index), \(size) bytes")
                #expect(response.header("x-strangler-upstream") == "legacy")
            }
            #expect(connection.unreadBytes.isEmpty)
            await connection.close()
        }
    }

    @Test("multiple Set-Cookie headers stay separate")
    func setCookies() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/cookies")
            #expect(response.headers("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly", "c=3, d=4; Expires=Wed, 21 Oct 2015 07:28:00 GMT"])
        }
    }

    @Test("chunked upstream responses are relayed intact")
    func chunkedResponse() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/chunked")
            #expect(response.text == "hello world")
        }
    }

    @Test("a chunked response's trailers reach the client after the last chunk; the upstream's reason phrase is kept")
    func responseTrailers() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
            let raw = try await connection.readRaw(until: "X-Checksum: 42\r\n\r\n")
            #expect(raw.hasPrefix("HTTP/1.1 299 Custom Reason\r\n"))
            #expect(raw.lowercased().contains("\r\ntransfer-encoding: chunked\r\n"))
            // The Trailer header is hop-by-hop; the trailer field itself is end to end.
            #expect(!raw.lowercased().contains("\r\ntrailer:"))
            #expect(raw.hasSuffix("\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 42\r\n\r\n"))
            await connection.close()
        }
    }

    @Test("an upstream response with conflicting Content-Length values gives 502, never a guess at the body")
    func invalidUpstreamResponse() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/conflicting-length")
            #expect(response.status == 502)
            let body = response.json()
            #expect(body["error"] as? String == "upstream_invalid_response")
            #expect((body["message"] as? String)?.contains("conflicting Content-Length") == true)
            #expect(body["requestId"] as? String == response.header("x-request-id"))
        }
    }

    @Test("bad chunk framing right after an upstream's head gives a clean 502: no byte had reached the client")
    func badChunkFramingGives502() async throws {
        try await withProxy { proxy in
            for _ in 0..<3 {
                let response = try await RawConnection.get(port: proxy.port, "/bad-chunk")
                #expect(response.status == 502)
                #expect(response.json()["error"] as? String == "upstream_invalid_response")
            }
            #expect(try await RawConnection.get(port: proxy.port, "/echo").status == 200)
        }
    }

    @Test("a close-delimited upstream body reaches HTTP/1.1 clients chunked and HTTP/1.0 clients close-delimited")
    func closeDelimitedResponse() async throws {
        try await withProxy { proxy in
            let modern = try await RawConnection.connect(port: proxy.port)
            try await modern.send("GET /nolength HTTP/1.1\r\nHost: x\r\n\r\n")
            let chunked = try await modern.readResponse()
            #expect(chunked.text == "until-close body")
            #expect(chunked.header("transfer-encoding") == "chunked")
            #expect(!modern.isClosed || modern.unreadBytes.isEmpty)
            await modern.close()

            let old = try await RawConnection.exchange(port: proxy.port, "GET /nolength HTTP/1.0\r\nHost: x\r\n\r\n")
            #expect(old.text == "until-close body")
            #expect(old.header("transfer-encoding") == nil)
        }
    }

    @Test("a 1 MiB response streams through byte for byte")
    func largeResponse() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/big?bytes=1048576")
            #expect(response.body.count == 1_048_576)
            #expect(response.body.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset % 251) })
        }
    }

    @Test("an unreachable upstream gives 502 with a JSON error carrying the request id")
    func badGateway() async throws {
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let dead = refusing.port
        try await withProxy(
            routes: #"[{"id": "down", "path": "/down/**", "mode": "service", "service": "service"}]"#,
            servicePort: dead
        ) { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/down/1")
            #expect(response.status == 502)
            #expect(response.header("content-type") == "application/json")
            let body = response.json()
            #expect(body["error"] as? String == "upstream_unreachable")
            #expect(body["upstream"] as? String == "service")
            #expect(body["requestId"] as? String == response.header("x-request-id"))
            #expect((body["message"] as? String)?.contains("127.0.0.1:\(dead)") == true)
        }
    }

    @Test("a silent upstream gives 504 after timeoutMs, as JSON with the request id")
    func gatewayTimeout() async throws {
        try await withProxy(upstreamExtra: #", "timeoutMs": 300"#) { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/hang", headers: ["X-Request-Id: trace-504"])
            #expect(response.status == 504)
            #expect(response.json()["error"] as? String == "upstream_timeout")
            #expect(response.json()["requestId"] as? String == "trace-504")
            #expect(response.header("x-request-id") == "trace-504")
        }
    }

    @Test("an upstream that dies mid-body makes the proxy abort the client connection")
    func truncatedUpstream() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("GET /truncated HTTP/1.1\r\nHost: x\r\n\r\n")
            await #expect(throws: RawConnection.ClosedEarly.self) {
                _ = try await connection.readResponse()
            }
        }
    }

    @Test("an upstream that stalls mid-body is cut off after timeoutMs and the client connection aborted")
    func stalledBody() async throws {
        try await withProxy(upstreamExtra: #", "timeoutMs": 300"#) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("GET /stall-body HTTP/1.1\r\nHost: x\r\n\r\n")
            await #expect(throws: RawConnection.ClosedEarly.self) {
                _ = try await connection.readResponse()
            }
        }
    }

    @Test("a body over the limit gets 413, by Content-Length or while streaming")
    func payloadTooLarge() async throws {
        try await withProxy(configure: { $0.maxBodyBytes = 1024 }) { proxy in
            let declared = try await RawConnection.exchange(
                port: proxy.port,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
            )
            #expect(declared.status == 413)
            #expect(declared.json()["error"] as? String == "body_too_large")

            let chunk = String(repeating: "x", count: 800)
            let streamed = try await RawConnection.exchange(
                port: proxy.port,
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n\(chunk)\r\n320\r\n\(chunk)\r\n0\r\n\r\n"
            )
            #expect(streamed.status == 413)
            #expect(proxy.legacy.requests.allSatisfy { $0.body.count <= 1024 })
        }
    }

    @Test("an oversized request head gets 431")
    func headersTooLarge() async throws {
        try await withProxy(configure: { $0.maxHeaderBytes = 4096 }) { proxy in
            let big = String(repeating: "a", count: 8000)
            let response = try await RawConnection.exchange(port: proxy.port, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
            #expect(response.status == 431)
            #expect(response.json()["error"] as? String == "headers_too_large")
            #expect(proxy.legacy.requests.isEmpty)
        }
    }

    @Test("conflicting Content-Length / Transfer-Encoding is refused with 400 and never forwarded")
    func smuggling() async throws {
        try await withProxy { proxy in
            let both = try await RawConnection.exchange(
                port: proxy.port,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            #expect(both.status == 400)
            let twoLengths = try await RawConnection.exchange(
                port: proxy.port,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 7\r\n\r\nabcdefg"
            )
            #expect(twoLengths.status == 400)
            #expect(proxy.legacy.requests.isEmpty)
        }
    }

    @Test(
        "requests two parsers could read differently are refused with 400, named, and never forwarded",
        arguments: [
            "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
            "GET /echo HTTP/1.1\nHost: x\n\n",
            "GET /echo HTTP/1.1\r\nHost : x\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        ]
    )
    func ambiguousRequests(request: String) async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.exchange(port: proxy.port, request)
            #expect(response.status == 400)
            #expect(response.json()["error"] as? String == "bad_request")
            #expect((response.json()["message"] as? String)?.contains("not valid HTTP/1.1") == true)
            #expect(response.header("connection")?.lowercased() == "close")
            #expect(proxy.legacy.requests.isEmpty)
        }
    }

    @Test("a stray CRLF after a request body does not break the connection's next request")
    func strayCRLFBetweenRequests() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok\r\n")
            #expect(try await connection.readResponse().status == 200)
            try await connection.send("GET /echo?second HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await connection.readResponse().json()["uri"] as? String == "/echo?second")
            await connection.close()
        }
    }

    @Test("X-Request-Id: a valid one is kept end to end, an invalid one replaced, a missing one generated")
    func requestIDs() async throws {
        try await withProxy { proxy in
            let kept = try await RawConnection.get(port: proxy.port, "/echo", headers: ["X-Request-Id: abc-123"])
            #expect(kept.header("x-request-id") == "abc-123")
            #expect(kept.echoedHeader("x-request-id") == "abc-123")

            let hostile = try await RawConnection.get(port: proxy.port, "/echo", headers: ["X-Request-Id: bad id\t<script>"])
            let replaced = try #require(hostile.header("x-request-id"))
            #expect(replaced != "bad id\t<script>")
            #expect(hostile.echoedHeader("x-request-id") == replaced)

            let generated = try await RawConnection.get(port: proxy.port, "/echo")
            let id = try #require(generated.header("x-request-id"))
            #expect(!id.isEmpty)
            #expect(generated.echoedHeader("x-request-id") == id)
            #expect(id != replaced)
        }
    }

    @Test("a client that leaves cancels the upstream call")
    func clientGoneCancelsUpstream() async throws {
        try await withProxy { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            try await connection.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            // Wait until the upstream has the request, then hang up.
            for _ in 0..<500 where proxy.legacy.requests.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            #expect(proxy.legacy.requests.count == 1)
            await connection.close()
            for _ in 0..<500 where proxy.legacy.closedConnections == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(proxy.legacy.closedConnections == 1)
        }
    }

    @Test("upstream connections are pooled and reused across requests")
    func connectionReuse() async throws {
        try await withProxy(configure: { $0.threads = 1 }) { proxy in
            let connection = try await RawConnection.connect(port: proxy.port)
            for index in 0..<20 {
                try await connection.send("GET /echo?n=\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try await connection.readResponse()
                #expect(response.json()["uri"] as? String == "/echo?n=\(index)")
            }
            await connection.close()
            for index in 0..<5 {
                _ = try await RawConnection.get(port: proxy.port, "/echo?fresh=\(index)")
            }
            #expect(proxy.legacy.requests.count == 25)
            #expect(proxy.legacy.acceptedConnections == 1)
        }
    }

    @Test("a pooled connection that backpressure paused during a large body serves the next request")
    func pooledConnectionAfterLargeBody() async throws {
        // One loop, one pooled upstream connection: every request after the first reuses it.
        try await withProxy(configure: { $0.threads = 1 }) { proxy in
            for index in 0..<6 {
                let response = try await RawConnection.get(port: proxy.port, "/big?n=\(index)&bytes=262144")
                #expect(response.status == 200, "request \(index) answered \(response.status)")
                #expect(response.body.count == 262_144, "request \(index) got \(response.body.count) bytes")
            }
            let small = try await RawConnection.get(port: proxy.port, "/echo")
            #expect(small.status == 200)
            #expect(proxy.legacy.acceptedConnections == 1, "the upstream connection was reused, not replaced")
        }
    }

    @Test("responses say which upstream answered")
    func upstreamHeader() async throws {
        try await withProxy(routes: #"[{"id": "svc", "path": "/svc/**", "mode": "service", "service": "service"}]"#) { proxy in
            let service = try await RawConnection.get(port: proxy.port, "/svc/x")
            let legacy = try await RawConnection.get(port: proxy.port, "/other")
            #expect(service.header("x-strangler-upstream") == "service")
            #expect(legacy.header("x-strangler-upstream") == "legacy")
        }
    }

    @Test("a second HTTP stack (URLSession / libcurl) reads proxied responses correctly")
    func urlSessionClient() async throws {
        try await withProxy { proxy in
            #if canImport(FoundationNetworking)
            let url = URL(string: "http://127.0.0.1:\(proxy.port)/echo?via=curl")!
            let (data, response) = try await URLSession.shared.data(from: url)
            let http = try #require(response as? HTTPURLResponse)
            #expect(http.statusCode == 200)
            let body = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            #expect(body?["uri"] as? String == "/echo?via=curl")
            #expect(http.value(forHTTPHeaderField: "X-Strangler-Upstream") == "legacy")
            #endif
        }
    }
}
