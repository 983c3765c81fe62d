import NIOCore
import StranglerCore
import StranglerProxy
import StranglerTestSupport
import Testing

/// Requests a client should not be able to get past the proxy, against a live proxy: what the
/// client is answered, and that the upstream never sees them.
@Suite("Hostile requests")
struct HostileRequestTests {
    /// A request, the status and error name the proxy answers it with, and a part of the message.
    struct Refusal: Sendable, CustomTestStringConvertible {
        var request: String
        var status: Int
        var error: String
        var message: String
        var testDescription: String { request.prefix(40).debugDescription }
    }

    @Test(
        "refused requests get their status, a named cause and a closed connection, and are never forwarded",
        arguments: [
            Refusal(
                request: "CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\n\r\n",
                status: 405,
                error: "method_not_allowed",
                message: "CONNECT method is not supported"
            ),
            Refusal(request: "GET /echo HTTP/1.1\r\nAccept: */*\r\n\r\n", status: 400, error: "bad_request", message: "without a Host header"),
            Refusal(request: "GET /echo HTTP/1.1\r\nHost: a b/c\r\n\r\n", status: 400, error: "bad_request", message: "Host header is not"),
            Refusal(request: "GET /echo HTTP/1.1\r\nHost: user@shop\r\n\r\n", status: 400, error: "bad_request", message: "Host header is not"),
            Refusal(request: "GET /echo HTTP/1.0\r\nHost: shop/x\r\n\r\n", status: 400, error: "bad_request", message: "Host header is not"),
            // HTTP/0.9: the line alone, as such a client sends it; no blank line follows.
            Refusal(request: "GET /echo\r\n", status: 400, error: "bad_request", message: "HTTP/0.9"),
            Refusal(request: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 400, error: "bad_request", message: "HTTP/2 connection preface"),
        ]
    )
    func refused(refusal: Refusal) async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.exchange(port: proxy.port, refusal.request)
            #expect(response.status == refusal.status)
            #expect(response.json()["error"] as? String == refusal.error)
            let message = response.json()["message"] as? String ?? ""
            #expect(message.contains(refusal.message), "\(message)")
            #expect(response.header("connection")?.lowercased() == "close")
            if refusal.status == 405 {
                #expect(response.header("allow")?.contains("GET") == true, "a 405 names the methods allowed")
            }
            #expect(proxy.legacy.requests.isEmpty)
        }
    }

    @Test("an HTTP/1.0 request without Host is still served")
    func http10WithoutHost() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.exchange(port: proxy.port, "GET /echo?v=10 HTTP/1.0\r\n\r\n")
            #expect(response.status == 200)
            #expect(proxy.legacy.requests.map(\.uri) == ["/echo?v=10"])
        }
    }

    /// The underscore spellings of the proxy's own headers, and of an ordinary one.
    static let underscored = ["X_Strangler_Shadow: dry-run", "X_Forwarded_For: 203.0.113.9", "x_request_id: spoofed", "X_Custom: 1"]

    @Test("request headers with an underscore never reach the upstream; X-Forwarded-For stays the proxy's own")
    func underscoredHeadersDropped() async throws {
        try await withProxy { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/echo", headers: Self.underscored + ["X-Custom: 2"])
            #expect(response.status == 200)
            let seen = try #require(proxy.legacy.requests.first)
            #expect(seen.headers.filter { $0.0.contains("_") }.isEmpty, "\(seen.headers)")
            // The client is not a trusted proxy: the chain is the peer address alone.
            #expect(seen.headers("x-forwarded-for") == ["127.0.0.1"])
            #expect(seen.header("x-custom") == "2")
            #expect(seen.header("x-request-id") != "spoofed")
            #expect(seen.header("x-strangler-shadow") == nil)
        }
    }

    @Test("a shadow copy carries the proxy's marker alone, not a client's underscored one")
    func underscoredHeadersNotInShadowCopy() async throws {
        try await ShadowPipeline.run { pipeline in
            try await withProxy(routes: ShadowTests.routes(), shadowSink: pipeline.worker) { proxy in
                let response = try await RawConnection.get(port: proxy.port, "/inv/SKU-1", headers: Self.underscored)
                #expect(response.status == 200)
                #expect(try await pipeline.waitForComparisons(1) == 1)
                let primary = try #require(proxy.legacy.requests.first)
                let copy = try #require(proxy.service.requests.first)
                #expect(primary.headers.filter { $0.0.contains("_") }.isEmpty)
                #expect(copy.headers.filter { $0.0.contains("_") }.isEmpty)
                #expect(copy.headers("x-strangler-shadow") == ["mirror"])
                #expect(copy.headers("x-forwarded-for") == ["127.0.0.1"])
            }
        }
    }
}
