import Foundation
import StranglerCore
import StranglerProxy
import StranglerTestSupport
import Testing

/// A retired route must not be reachable on legacy through another spelling of its path.
@Suite("Every spelling of a routed path")
struct PathSpellingTests {
    static let routes = #"[{"id": "inv", "path": "/inventory/**", "mode": "retired", "service": "service"}]"#

    /// Spellings of `/inventory/SKU-1` (and of paths under `/inventory/`) that some server reads
    /// as such a path.
    static let spellings = [
        "/inventory/SKU-1",
        "http://shop.example/inventory/SKU-1",
        "http://shop.example/inventory/SKU-1?q=1",
        "HTTP://shop.example/inventory/SKU-1",
        "https://shop.example/inventory/SKU-1",
        "/x/../inventory/SKU-1",
        "//inventory/SKU-1",
        "/%69nventory/SKU-1",
        "/inventory%2FSKU-1",
        "/inventory%2fSKU-1",
        "/./inventory/SKU-1",
        "/inventory/./SKU-1",
        "/inventory//SKU-1",
        "/inventory/%53KU-1",
        "/%2e/inventory/SKU-1",
        "/inventory/x/../SKU-1",
        "/inventory/SKU-1%2f..",
        "/inventory/..%2f..",
        "/../inventory/SKU-1",
        "/inventory/%2E%2E/x",
        "/inventory/.%2e/inventory/SKU-1",
        "/inventory\\SKU-1",
        "/inventory%5CSKU-1",
        "/inventory;v=1/SKU-1",
        "/x/..;/inventory/SKU-1",
        "/x//../inventory/SKU-1",
        "/inventory/SKU-1/.",
        "/inventory/SKU-1?next=/../admin",
        "http://shop.example//inventory/./SKU-1",
    ]

    @Test(
        "a retired route's path spelled 29 ways: the service gets it byte for byte, or the proxy answers 400; legacy never",
        arguments: AmbiguousPathPolicy.allCases
    )
    func retiredRouteSpellings(policy: AmbiguousPathPolicy) async throws {
        try await withProxy(routes: Self.routes, configure: { $0.ambiguousPaths = policy }) { proxy in
            var served: [String] = []
            var refused: [String] = []
            for target in Self.spellings {
                let response = try await RawConnection.get(port: proxy.port, target)
                if response.status == 400 {
                    refused.append(target)
                    #expect(response.json()["error"] as? String == "bad_request", "\(target)")
                    #expect((response.json()["message"] as? String)?.contains("not forwarded") == true, "\(target)")
                    #expect(response.header("x-upstream-name") == nil, "\(target)")
                } else {
                    served.append(target)
                    #expect(response.status == 200, "\(target)")
                    #expect(response.json()["upstream"] as? String == "service", "\(target)")
                    #expect(response.json()["uri"] as? String == target, "\(target): forwarded as sent")
                }
            }
            #expect(proxy.legacy.requests.isEmpty)
            #expect(proxy.service.requests.map(\.uri) == served)
            // Both outcomes happen, and the plain spellings are served under either policy.
            #expect(served.count >= 15)
            #expect(refused.count >= 8)
            for target in ["http://shop.example/inventory/SKU-1", "/x/../inventory/SKU-1", "//inventory/SKU-1", "/%69nventory/SKU-1"] {
                #expect(served.contains(target), "\(target)")
            }
            if policy == .reject {
                #expect(refused.contains("/inventory%2FSKU-1"))
                #expect(refused.contains("/inventory/SKU-1%2f.."))
            } else {
                // Every reading of these stays under /inventory/.
                #expect(served.contains("/inventory/SKU-1%2f.."))
                #expect(served.contains("/inventory/.%2e/inventory/SKU-1"))
                #expect(refused.contains("/inventory%2FSKU-1"))
            }
            // Counted as the route's traffic, and the refusals as the proxy's own 400s.
            #expect(await Self.requestCount(proxy, route: "inv", upstream: "service", code: "2xx", expected: served.count) == served.count)
            #expect(await Self.requestCount(proxy, route: "default", upstream: "", code: "4xx", expected: refused.count) == refused.count)
            #expect(!proxy.server.metrics.render().contains(#"upstream="legacy""#))
        }
    }

    @Test("a canary sticky by a path parameter keeps every spelling of a path on one side")
    func canaryParameter() async throws {
        let routes = """
            [{"id": "order", "path": "/orders/{id}", "mode": "canary", "service": "service",
              "canary": {"percent": 50, "stickyKey": "param:id"}}]
            """
        try await withProxy(routes: routes) { proxy in
            var sides: Set<String> = []
            for number in 0..<30 {
                var upstreams: [String] = []
                for target in ["/orders/ORD-\(number)", "/orders/%4FRD-\(number)", "http://shop.example//orders/./ORD-\(number)?v=2"] {
                    let response = try await RawConnection.get(port: proxy.port, target)
                    upstreams.append(response.json()["upstream"] as? String ?? "?")
                    #expect(response.json()["uri"] as? String == target)
                }
                #expect(Set(upstreams).count == 1, "ORD-\(number): \(upstreams)")
                sides.formUnion(upstreams)
            }
            #expect(sides == ["legacy", "service"])
        }
    }

    @Test("paths are case-sensitive: /INVENTORY is another path, and goes to the default upstream")
    func caseSensitive() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/INVENTORY/SKU-1")
            #expect(response.json()["upstream"] as? String == "legacy")
            #expect(response.json()["uri"] as? String == "/INVENTORY/SKU-1")
        }
    }

    @Test("a target that is neither a path nor an absolute URL is refused; OPTIONS * goes to the default upstream")
    func targetForms() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            for request in [
                "GET inventory/SKU-1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
                "CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\n\r\n", "GET ftp://x/inventory/SKU-1 HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /inventory/%zz HTTP/1.1\r\nHost: x\r\n\r\n", "GET /inventory/SKU-1%00 HTTP/1.1\r\nHost: x\r\n\r\n",
            ] {
                let response = try await RawConnection.exchange(port: proxy.port, request)
                // CONNECT is refused by the parser before routing, as a method the proxy does not serve.
                #expect(response.status == (request.hasPrefix("CONNECT") ? 405 : 400), "\(request)")
            }
            let options = try await RawConnection.exchange(port: proxy.port, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(options.json()["upstream"] as? String == "legacy")
            #expect(proxy.service.requests.isEmpty)
            #expect(proxy.legacy.requests.map(\.uri) == ["*"])
        }
    }

    /// `strangler_requests_total` for one label set, once it reaches `expected` (or after a
    /// second): the count is made as the exchange finishes, which may be just after the client
    /// has read the response.
    static func requestCount(_ proxy: ProxyHarness, route: String, upstream: String, code: String, expected: Int) async -> Int {
        let prefix = #"strangler_requests_total{route="\#(route)",upstream="\#(upstream)",code="\#(code)"} "#
        var count = 0
        for _ in 0..<50 {
            let line = proxy.server.metrics.render().split(separator: "\n").first { $0.hasPrefix(prefix) }
            count = line.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
            if count == expected { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return count
    }
}
