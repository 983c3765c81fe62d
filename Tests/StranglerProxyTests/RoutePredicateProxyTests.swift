import Foundation
import GRDB
import NIOConcurrencyHelpers
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// Route predicates (`match`) through the running proxy: the data plane reads the host, headers,
/// query and cookies from the head the client sent, and the request goes to the upstream the
/// chosen route names, in every mode, across live table swaps.
@Suite("Route predicates through the live proxy")
struct RoutePredicateProxyTests {
    /// Upstream names beside "legacy" and "service" that also lead to the service: the proxy
    /// names the upstream that answered in `X-Strangler-Upstream`, so each route can be told
    /// apart by the name it uses.
    static let aliases = ["svc-a", "svc-b", "svc-c", "svc-d"]

    /// A table for `proxy`'s upstreams (and the aliases) with these routes.
    static func table(_ proxy: ProxyHarness, _ routes: String) throws -> RouteTable {
        let service = "{\"url\": \"http://127.0.0.1:\(proxy.service.port)\"}"
        let upstreams =
            ["\"legacy\": {\"url\": \"http://127.0.0.1:\(proxy.legacy.port)\"}", "\"service\": \(service)"]
            + aliases.map { "\"\($0)\": \(service)" }
        let json = "{\"upstreams\": {\(upstreams.joined(separator: ", "))}, \"defaultUpstream\": \"legacy\", \"routes\": \(routes)}"
        return try RouteTable.parse(Data(json.utf8))
    }

    /// A started proxy serving `routes` (with the aliases), stopped after `body`.
    static func withRoutes(
        _ routes: String,
        shadowSink: ShadowSink? = nil,
        _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        try await withProxy(shadowSink: shadowSink) { proxy in
            try await proxy.server.apply(try table(proxy, routes))
            try await body(proxy)
        }
    }

    /// Sends one request on a fresh connection with `lines` as extra header lines (a Host line
    /// among them replaces the default one) and a unique request id; returns the response and id.
    static func send(
        _ proxy: ProxyHarness,
        method: String = "GET",
        _ target: String,
        _ lines: [String] = []
    ) async throws -> (response: RawConnection.Response, id: String) {
        let id = "req-\(UUID().uuidString)"
        var head = ["\(method) \(target) HTTP/1.1"]
        if !lines.contains(where: { $0.lowercased().hasPrefix("host:") }) { head.append("Host: proxy.test") }
        head += lines + ["X-Request-Id: \(id)"]
        let response = try await RawConnection.exchange(port: proxy.port, head.joined(separator: "\r\n") + "\r\n\r\n", noBody: method == "HEAD")
        return (response, id)
    }

    /// Which upstreams got request `id`.
    static func receivers(_ proxy: ProxyHarness, _ id: String) -> [String] {
        var names: [String] = []
        if proxy.legacy.requests.contains(where: { $0.header("x-request-id") == id }) { names.append("legacy") }
        if proxy.service.requests.contains(where: { $0.header("x-request-id") == id }) { names.append("service") }
        return names
    }

    /// Sends a request and checks that the upstream named `expected` answered it, and that it
    /// went to that upstream's server alone.
    static func expectRouted(
        _ proxy: ProxyHarness,
        method: String = "GET",
        _ target: String,
        _ lines: [String] = [],
        to expected: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let (response, id) = try await send(proxy, method: method, target, lines)
        let what = "\(method) \(target) \(lines)"
        #expect(response.status == 200, "\(what): \(response.status) \(response.text)", sourceLocation: sourceLocation)
        #expect(response.header("x-strangler-upstream") == expected, "\(what)", sourceLocation: sourceLocation)
        let server = expected == "legacy" ? "legacy" : "service"
        #expect(receivers(proxy, id) == [server], "\(what)", sourceLocation: sourceLocation)
        if method != "HEAD" {
            #expect(response.json()["upstream"] as? String == server, "\(what)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Each predicate kind

    @Test("a host predicate reads the Host header: port, case and a trailing dot aside; *. takes one label")
    func host() async throws {
        let routes = #"""
            [{"id": "shop", "path": "/h/**", "mode": "service", "service": "svc-a", "match": {"host": "shop.example.com"}},
             {"id": "brands", "path": "/h/**", "mode": "service", "service": "svc-b", "match": {"host": "*.brands.example"}}]
            """#
        try await Self.withRoutes(routes) { proxy in
            for host in ["shop.example.com", "SHOP.Example.com", "shop.example.com:8080", "Shop.Example.Com.:443", "shop.example.com."] {
                try await Self.expectRouted(proxy, "/h/x", ["Host: \(host)"], to: "svc-a")
            }
            try await Self.expectRouted(proxy, "/h/x", ["Host: a.brands.example"], to: "svc-b")
            try await Self.expectRouted(proxy, "/h/x", ["Host: A.Brands.Example:9000"], to: "svc-b")
            for host in ["example.com", "other.example.com", "brands.example", "a.b.brands.example", "shop.example.com.evil"] {
                try await Self.expectRouted(proxy, "/h/x", ["Host: \(host)"], to: "legacy")
            }
            try await Self.expectRouted(proxy, "/other", ["Host: shop.example.com"], to: "legacy")
        }
    }

    @Test("an absolute-form target names the host as its Host header does")
    func absoluteFormHost() async throws {
        let routes = #"[{"id": "shop", "path": "/h/**", "mode": "service", "service": "svc-a", "match": {"host": "shop.example.com"}}]"#
        try await Self.withRoutes(routes) { proxy in
            try await Self.expectRouted(proxy, "http://shop.example.com:8080/h/x?y=1", ["Host: shop.example.com:8080"], to: "svc-a")
            try await Self.expectRouted(proxy, "http://other.example.com/h/x", ["Host: other.example.com"], to: "legacy")
            let response = try await RawConnection.exchange(port: proxy.port, "GET http://shop.example.com/h/x HTTP/1.0\r\n\r\n")
            #expect(response.status == 200)
            #expect(response.header("x-strangler-upstream") == "svc-a", "an HTTP/1.0 request without Host names its host in the target")
        }
    }

    @Test("a header predicate: name in any case, value exact, any line of a repeated header; an underscored name never matches")
    func headers() async throws {
        let routes = #"""
            [{"id": "web", "path": "/hd/**", "mode": "service", "service": "svc-a", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "mobile", "path": "/hd/**", "mode": "service", "service": "svc-b", "match": {"headers": {"X-Channel": ["ios", "android"]}}}]
            """#
        try await Self.withRoutes(routes) { proxy in
            try await Self.expectRouted(proxy, "/hd/1", ["X-Channel: web"], to: "svc-a")
            try await Self.expectRouted(proxy, "/hd/1", ["x-cHANNEL: web"], to: "svc-a")
            try await Self.expectRouted(proxy, "/hd/1", ["X-Channel:   web  "], to: "svc-a")
            try await Self.expectRouted(proxy, "/hd/1", ["X-Channel: store", "X-Channel: web"], to: "svc-a")
            try await Self.expectRouted(proxy, "/hd/1", ["X-Channel: android"], to: "svc-b")
            try await Self.expectRouted(proxy, "/hd/1", ["X-Channel: Web"], to: "legacy")
            try await Self.expectRouted(proxy, "/hd/1", ["X-Channel: web, store"], to: "legacy")
            try await Self.expectRouted(proxy, "/hd/1", ["X-Other: web"], to: "legacy")
            try await Self.expectRouted(proxy, "/hd/1", ["X_Channel: web"], to: "legacy")
            try await Self.expectRouted(proxy, "/hd/1", [], to: "legacy")
        }
    }

    @Test("a query predicate: listed values, a repeated key, percent-decoded names and values")
    func query() async throws {
        let routes = #"""
            [{"id": "tenants", "path": "/q/{id}", "mode": "service", "service": "svc-a", "match": {"query": {"tenant": ["t-17", "t 42"]}}}]
            """#
        try await Self.withRoutes(routes) { proxy in
            for target in ["/q/1?tenant=t-17", "/q/1?a=1&tenant=t%2042", "/q/1?tenant=t%2D17", "/q/1?ten%61nt=t-17", "/q/1?tenant=x&tenant=t-17"] {
                try await Self.expectRouted(proxy, target, to: "svc-a")
            }
            for target in ["/q/1", "/q/1?tenant=t-1", "/q/1?tenant=T-17", "/q/1?tenants=t-17", "/q/1/more?tenant=t-17"] {
                try await Self.expectRouted(proxy, target, to: "legacy")
            }
        }
    }

    @Test("a cookie predicate: several cookies in one header, several Cookie lines")
    func cookies() async throws {
        let routes = #"[{"id": "beta", "path": "/c/**", "mode": "service", "service": "svc-a", "match": {"cookies": {"beta": "1"}}}]"#
        try await Self.withRoutes(routes) { proxy in
            try await Self.expectRouted(proxy, "/c/x", ["Cookie: session=abc; beta=1; theme=dark"], to: "svc-a")
            try await Self.expectRouted(proxy, "/c/x", ["Cookie: session=abc", "cookie: theme=dark; beta=1"], to: "svc-a")
            try await Self.expectRouted(proxy, "/c/x", ["Cookie: beta=\"1\""], to: "svc-a")
            try await Self.expectRouted(proxy, "/c/x", ["Cookie: beta=10; xbeta=1"], to: "legacy")
            try await Self.expectRouted(proxy, "/c/x", ["Cookie: Beta=1"], to: "legacy")
            try await Self.expectRouted(proxy, "/c/x", [], to: "legacy")
        }
    }

    @Test("presence and absence through the proxy, and every predicate of a route at once")
    func presenceAndAll() async throws {
        let routes = #"""
            [{"id": "all", "path": "/p/**", "mode": "service", "service": "svc-a",
              "match": {"host": "shop.example.com", "headers": {"X-Channel": "web"}, "query": {"tenant": ["t-17", "t-42"]}, "cookies": {"beta": "1"}}},
             {"id": "internal", "path": "/pi/**", "mode": "service", "service": "svc-b",
              "match": {"headers": {"X-Internal": {"present": true}}, "query": {"debug": {"present": false}}}}]
            """#
        try await Self.withRoutes(routes) { proxy in
            let all = ["Host: shop.example.com", "X-Channel: web", "Cookie: beta=1"]
            try await Self.expectRouted(proxy, "/p/x?tenant=t-42", all, to: "svc-a")
            for dropped in all.indices {
                var lines = all
                lines.remove(at: dropped)
                try await Self.expectRouted(proxy, "/p/x?tenant=t-42", lines, to: "legacy")
            }
            try await Self.expectRouted(proxy, "/pi/x", ["X-Internal: "], to: "svc-b")
            try await Self.expectRouted(proxy, "/pi/x?a=1", ["X-Internal: yes"], to: "svc-b")
            try await Self.expectRouted(proxy, "/pi/x?debug", ["X-Internal: yes"], to: "legacy")
            try await Self.expectRouted(proxy, "/pi/x", [], to: "legacy")
        }
    }

    // MARK: - Precedence and falling through

    @Test("precedence live: a strict superset wins, predicates beat none, a literal beats a predicated {param}; failing requests fall through")
    func precedenceAndFallThrough() async throws {
        let routes = #"""
            [{"id": "order-web", "methods": ["GET"], "path": "/orders/{id}", "mode": "service", "service": "svc-a",
              "match": {"headers": {"X-Channel": "web"}}},
             {"id": "order-web-t17", "methods": ["GET"], "path": "/orders/{id}", "mode": "service", "service": "svc-b",
              "match": {"headers": {"X-Channel": "web"}, "query": {"tenant": "t-17"}}},
             {"id": "export", "path": "/orders/export", "mode": "legacy"},
             {"id": "orders-beta", "path": "/orders/**", "mode": "service", "service": "svc-c", "match": {"cookies": {"beta": "1"}}},
             {"id": "order-plain", "methods": ["GET"], "path": "/orders/{id}/items", "mode": "service", "service": "svc-d"},
             {"id": "items-web", "methods": ["GET"], "path": "/orders/{id}/items", "mode": "legacy", "match": {"headers": {"X-Channel": "web"}}}]
            """#
        try await Self.withRoutes(routes) { proxy in
            try await Self.expectRouted(proxy, "/orders/1?tenant=t-17", ["X-Channel: web"], to: "svc-b")
            try await Self.expectRouted(proxy, "/orders/1?tenant=t-18", ["X-Channel: web"], to: "svc-a")
            try await Self.expectRouted(proxy, method: "HEAD", "/orders/1?tenant=t-17", ["X-Channel: web"], to: "svc-b")
            // A literal route without predicates beats the predicated {id} routes.
            try await Self.expectRouted(proxy, "/orders/export?tenant=t-17", ["X-Channel: web"], to: "legacy")
            // Failing the {id} routes' predicates: on to /orders/**, then to the default.
            try await Self.expectRouted(proxy, "/orders/1?tenant=t-17", ["X-Channel: app", "Cookie: beta=1"], to: "svc-c")
            try await Self.expectRouted(proxy, method: "POST", "/orders/1", ["X-Channel: web", "Cookie: beta=1"], to: "svc-c")
            try await Self.expectRouted(proxy, "/orders/1?tenant=t-17", ["X-Channel: app"], to: "legacy")
            // Predicated beats plain on one path, and a plain route takes what fails the predicates.
            try await Self.expectRouted(proxy, "/orders/1/items", ["X-Channel: web"], to: "legacy")
            try await Self.expectRouted(proxy, "/orders/1/items", ["X-Channel: app"], to: "svc-d")
            try await Self.expectRouted(proxy, method: "HEAD", "/orders/1/items", ["X-Channel: app"], to: "svc-d")
        }
    }

    // MARK: - Modes

    @Test("predicates in every mode: legacy, shadow (the service gets the compared copy), canary at 100 %, and service")
    func everyMode() async throws {
        let routes = #"""
            [{"id": "legacy-web", "path": "/m/legacy/**", "mode": "legacy", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "legacy-rest", "path": "/m/legacy/**", "mode": "service", "service": "svc-a"},
             {"id": "shadow-web", "path": "/m/shadow/**", "mode": "shadow", "service": "service", "match": {"headers": {"X-Channel": "web"}},
              "compare": {"ignore": ["/headers"]}},
             {"id": "canary-web", "path": "/m/canary/**", "mode": "canary", "service": "svc-b", "canary": {"percent": 100},
              "match": {"headers": {"X-Channel": "web"}}},
             {"id": "service-web", "path": "/m/service/**", "mode": "service", "service": "svc-c", "match": {"headers": {"X-Channel": "web"}}}]
            """#
        try await ShadowPipeline.run { pipeline in
            try await Self.withRoutes(routes, shadowSink: pipeline.worker) { proxy in
                // Legacy mode with predicates: matching requests stay on legacy, the rest move.
                try await Self.expectRouted(proxy, "/m/legacy/1", ["X-Channel: web"], to: "legacy")
                try await Self.expectRouted(proxy, "/m/legacy/1", ["X-Channel: app"], to: "svc-a")
                // Canary at 100 % and service mode: matching requests to the service, the rest to legacy.
                try await Self.expectRouted(proxy, "/m/canary/1", ["X-Channel: web"], to: "svc-b")
                try await Self.expectRouted(proxy, "/m/canary/1", ["X-Channel: app"], to: "legacy")
                try await Self.expectRouted(proxy, "/m/service/1", ["X-Channel: web"], to: "svc-c")
                try await Self.expectRouted(proxy, "/m/service/1", [], to: "legacy")

                // Shadow mode: a request failing the predicates is not shadowed; one meeting them
                // is served by legacy and compared with the service's copy.
                let (plain, plainID) = try await Self.send(proxy, "/m/shadow/1", ["X-Channel: app"])
                #expect(plain.header("x-strangler-upstream") == "legacy")
                let (shadowed, shadowedID) = try await Self.send(proxy, "/m/shadow/2?x=1", ["X-Channel: web"])
                #expect(shadowed.status == 200)
                #expect(shadowed.header("x-strangler-upstream") == "legacy")
                #expect(shadowed.json()["upstream"] as? String == "legacy")
                #expect(try await pipeline.waitForComparisons(1) == 1)
                let row = try #require(try await pipeline.row(requestID: shadowedID))
                #expect(row["route_id"] as String == "shadow-web")
                #expect(row["candidate_upstream"] as String == "service")
                let copy = try #require(proxy.service.requests.first { $0.header("x-request-id") == shadowedID })
                #expect(copy.uri == "/m/shadow/2?x=1")
                #expect(copy.header("x-strangler-shadow") == "mirror")
                #expect(copy.header("x-channel") == "web")
                #expect(Self.receivers(proxy, plainID) == ["legacy"])
                #expect(try await pipeline.row(requestID: plainID) == nil)
                #expect(try await pipeline.store.comparisonsCounted() == 1)
            }
        }
    }

    // MARK: - Hot reload

    /// What a request of one kind may get under each table of the reload test.
    enum Kind: String, CaseIterable {
        case web, app, noChannel

        var lines: [String] {
            switch self {
            case .web: ["X-Channel: web"]
            case .app: ["X-Channel: app"]
            case .noChannel: []
            }
        }
    }

    /// The reload test's tables: none with predicates; one adding a predicated route for the web
    /// channel beside the plain one; one with a route for requests without a channel alone.
    static let reloadTables: [(routes: String, allows: [Kind: String])] = [
        (
            #"[{"id": "svc", "path": "/svc/**", "mode": "legacy"}]"#,
            [.web: "legacy", .app: "legacy", .noChannel: "legacy"]
        ),
        (
            #"""
            [{"id": "svc-web", "path": "/svc/**", "mode": "service", "service": "service", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "svc", "path": "/svc/**", "mode": "legacy"}]
            """#,
            [.web: "service", .app: "legacy", .noChannel: "legacy"]
        ),
        (
            #"""
            [{"id": "svc-direct", "path": "/svc/{id}", "mode": "service", "service": "service", "match": {"headers": {"X-Channel": {"present": false}}}}]
            """#,
            [.web: "legacy", .app: "legacy", .noChannel: "service"]
        ),
    ]

    /// The reload test's shared record: which table versions may be live, and every answer.
    struct ReloadLog {
        /// Index into the sequence of applied tables of the last one every loop has.
        var completed = 0
        /// Index of the last one any loop may have.
        var started = 0
        var done = false
        var answers: [(kind: Kind, first: Int, last: Int, upstream: String)] = []
        var failures: [String] = []
    }

    @Test("a hot reload adding and removing predicates under load: no request fails, each answer comes from an upstream a live table allowed")
    func reloadUnderLoad() async throws {
        try await withProxy { proxy in
            let tables = try Self.reloadTables.map { try Self.table(proxy, $0.routes) }
            // The table applied at each step: 0 first, then each change adds or removes predicates.
            let sequence = [0] + Array(repeating: [1, 0, 2, 1, 2, 0], count: 4).flatMap { $0 }
            try await proxy.server.apply(tables[sequence[0]])
            let log = NIOLockedValueBox(ReloadLog())

            /// One request of `kind` on `connection`, recorded with the table versions around it.
            @Sendable func exchange(_ kind: Kind, _ connection: RawConnection, _ number: Int) async throws {
                let first = log.withLockedValue { $0.completed }
                let lines = ["GET /svc/\(number) HTTP/1.1", "Host: proxy.test"] + kind.lines
                try await connection.send(lines.joined(separator: "\r\n") + "\r\n\r\n")
                let response = try await connection.readResponse()
                log.withLockedValue { log in
                    let upstream = response.header("x-strangler-upstream") ?? "none"
                    if response.status != 200 || response.json()["upstream"] as? String != upstream {
                        log.failures.append("\(kind) #\(number): \(response.status) from \(upstream): \(response.text.prefix(200))")
                    }
                    log.answers.append((kind, first, log.started, upstream))
                }
            }

            try await withThrowingTaskGroup(of: Void.self) { group in
                // Two clients keep one connection each across the swaps; one opens a connection per request.
                for client in 0..<3 {
                    group.addTask {
                        var connection: RawConnection?
                        var number = 0
                        while !log.withLockedValue({ $0.done }) {
                            number += 1
                            let kind = Kind.allCases[(number + client) % 3]
                            do {
                                let current: RawConnection
                                if let connection, client < 2 {
                                    current = connection
                                } else {
                                    current = try await RawConnection.connect(port: proxy.port)
                                }
                                connection = current
                                try await exchange(kind, current, number * 10 + client)
                                if client == 2 {
                                    await current.close()
                                    connection = nil
                                }
                            } catch {
                                log.withLockedValue { $0.failures.append("client \(client) #\(number): \(error)") }
                                await connection?.close()
                                connection = nil
                            }
                        }
                        await connection?.close()
                    }
                }
                group.addTask {
                    defer { log.withLockedValue { $0.done = true } }
                    for step in 1..<sequence.count {
                        log.withLockedValue { $0.started = step }
                        try await proxy.server.apply(tables[sequence[step]])
                        log.withLockedValue { $0.completed = step }
                        // Each table serves every kind of request at least once before the next swap.
                        try await finishes(within: .seconds(120)) {
                            while true {
                                let served = log.withLockedValue { log in
                                    Set(log.answers.filter { $0.first == step && $0.last == step }.map(\.kind))
                                }
                                if served.count == Kind.allCases.count { return }
                                try await Task.sleep(for: .milliseconds(2))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }

            let final = log.withLockedValue { $0 }
            #expect(final.failures.isEmpty, "\(final.failures.prefix(10))")
            var seen: [Kind: Set<String>] = [:]
            var outside: [String] = []
            for answer in final.answers {
                let allowed = Set((answer.first...answer.last).map { Self.reloadTables[sequence[$0]].allows[answer.kind]! })
                if !allowed.contains(answer.upstream) {
                    outside.append("\(answer.kind) under steps \(answer.first)...\(answer.last) got \(answer.upstream); allowed \(allowed.sorted())")
                }
                seen[answer.kind, default: []].insert(answer.upstream)
            }
            #expect(outside.isEmpty, "\(outside.count) answers outside the live tables: \(outside.prefix(10))")
            // Each table went live while the clients were sending: every kind saw each upstream
            // some table gave it, and the app channel, which no table moves, never left legacy.
            #expect(seen[.web] == ["legacy", "service"])
            #expect(seen[.noChannel] == ["legacy", "service"])
            #expect(seen[.app] == ["legacy"])
        }
    }
}
