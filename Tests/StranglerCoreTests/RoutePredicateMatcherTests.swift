import Foundation
import StranglerCore
import Testing

/// Route predicates (`match`) as the route table applies them: parsed from JSON, checked by the
/// validator for ambiguity, and chosen among by the matcher (path specificity first, then
/// predicates, falling through to the next most specific route and then to the default).
@Suite("Route predicates in route tables")
struct RoutePredicateMatcherTests {
    static let upstreams =
        #""upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "svc": {"url": "http://127.0.0.1:9101"}}, "defaultUpstream": "legacy""#

    /// A table with `routes` (the JSON array's text).
    static func table(_ routes: String) throws(RouteTableError) -> RouteTable {
        try RouteTable.parse(Data("{\(upstreams), \"routes\": \(routes)}".utf8))
    }

    /// The error parsing a table with `routes` gives; nil when it parses.
    static func error(_ routes: String) -> RouteTableError? {
        do {
            _ = try table(routes)
            return nil
        } catch {
            return error
        }
    }

    /// The id of the route `table` picks, or "default" when none does.
    static func routed(_ table: RouteTable, _ target: String, _ headers: [(name: String, value: String)] = []) -> String {
        routed(table, "GET", target, headers)
    }

    /// The id of the route `table` picks for a `method` request, or "default" when none does.
    static func routed(_ table: RouteTable, _ method: String, _ target: String, _ headers: [(name: String, value: String)] = []) -> String {
        let index = table.matcher.matchIndex(method: method, uri: target, request: RequestDetails(target: target, headers: headers))
        return index.map { table.routes[$0].id } ?? "default"
    }

    // MARK: - Each predicate kind

    @Test("host: exact name ignoring port, case and a trailing dot; no Host header does not match")
    func hostExact() throws {
        let table = try Self.table(#"[{"id": "shop", "mode": "legacy", "path": "/p/**", "match": {"host": "shop.example.com"}}]"#)
        for host in ["shop.example.com", "SHOP.Example.Com", "shop.example.com:8443", "shop.example.com.", "Shop.Example.com.:80"] {
            #expect(Self.routed(table, "/p/1", [("Host", host)]) == "shop", "\(host)")
        }
        for host in ["example.com", "a.shop.example.com", "shop.example.co", "shop.example.com.evil", "shopexample.com"] {
            #expect(Self.routed(table, "/p/1", [("Host", host)]) == "default", "\(host)")
        }
        #expect(Self.routed(table, "/p/1") == "default", "no Host header")
        #expect(Self.routed(table, "/p/1", [("host", "shop.example.com")]) == "shop", "the Host header's name in any case")
    }

    @Test("host: *. covers exactly one label, not the bare domain nor two labels")
    func hostWildcard() throws {
        let table = try Self.table(#"[{"id": "brands", "mode": "legacy", "path": "/p/**", "match": {"host": "*.Example.com."}}]"#)
        for host in ["a.example.com", "brand-b.EXAMPLE.com:443", "x.example.com."] {
            #expect(Self.routed(table, "/p", [("Host", host)]) == "brands", "\(host)")
        }
        for host in ["example.com", "a.b.example.com", "aexample.com", ".example.com", "a.example.org"] {
            #expect(Self.routed(table, "/p", [("Host", host)]) == "default", "\(host)")
        }
    }

    @Test("headers: names without case, values exact; a list means any; a repeated header matches on any of its values")
    func headers() throws {
        let table = try Self.table(
            #"""
            [{"id": "web", "mode": "legacy", "path": "/h/one", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "listed", "mode": "legacy", "path": "/h/list", "match": {"headers": {"x-channel": ["web", "app"]}}}]
            """#
        )
        #expect(Self.routed(table, "/h/one", [("X-Channel", "web")]) == "web")
        #expect(Self.routed(table, "/h/one", [("x-CHANNEL", "web")]) == "web")
        #expect(Self.routed(table, "/h/one", [("X-Channel", "Web")]) == "default", "values compare exactly")
        #expect(Self.routed(table, "/h/one", [("X-Channel", "web ")]) == "default")
        #expect(Self.routed(table, "/h/one", [("X-Channel", "app"), ("X-Channel", "web")]) == "web", "second of two lines")
        #expect(Self.routed(table, "/h/one", [("X-Channel", "app"), ("X-Other", "web")]) == "default")
        #expect(Self.routed(table, "/h/one") == "default")
        #expect(Self.routed(table, "/h/list", [("X-Channel", "app")]) == "listed")
        #expect(Self.routed(table, "/h/list", [("X-Channel", "web")]) == "listed")
        #expect(Self.routed(table, "/h/list", [("X-Channel", "store")]) == "default")
        #expect(Self.routed(table, "/h/list", [("X-Channel", "store"), ("x-channel", "app")]) == "listed")
    }

    @Test("query: exact or listed values, a repeated key matches on any value, names and values percent-decoded")
    func query() throws {
        let table = try Self.table(
            #"""
            [{"id": "tenant", "mode": "legacy", "path": "/q/{id}", "match": {"query": {"tenant": ["t-17", "t 42"]}}}]
            """#
        )
        #expect(Self.routed(table, "/q/1?tenant=t-17") == "tenant")
        #expect(Self.routed(table, "/q/1?a=b&tenant=t%2042") == "tenant", "value percent-decoded")
        #expect(Self.routed(table, "/q/1?tenant=t%2D17") == "tenant", "an escaped hyphen")
        #expect(Self.routed(table, "/q/1?te%6Eant=t-17") == "tenant", "name percent-decoded")
        #expect(Self.routed(table, "/q/1?tenant=t-1&tenant=t-17") == "tenant", "second value of a repeated key")
        #expect(Self.routed(table, "/q/1?tenant=t-1&tenant=t-2") == "default")
        #expect(Self.routed(table, "/q/1?tenant=T-17") == "default", "values compare exactly")
        #expect(Self.routed(table, "/q/1?xtenant=t-17") == "default")
        #expect(Self.routed(table, "/q/1?tenant=t-1717") == "default")
        #expect(Self.routed(table, "/q/1") == "default")
        #expect(Self.routed(table, "/q/1#tenant=t-17") == "default", "a fragment is not the query")
        #expect(Self.routed(table, "/q/1?x=1#&tenant=t-17") == "default", "the query ends at #")
    }

    @Test("cookies: several in one Cookie header, several Cookie lines, quoted values; names exact")
    func cookies() throws {
        let table = try Self.table(#"[{"id": "beta", "mode": "legacy", "path": "/c", "match": {"cookies": {"beta": "1"}}}]"#)
        #expect(Self.routed(table, "/c", [("Cookie", "beta=1")]) == "beta")
        #expect(Self.routed(table, "/c", [("Cookie", "session=abc; beta=1; theme=dark")]) == "beta")
        #expect(Self.routed(table, "/c", [("Cookie", "session=abc;beta=1")]) == "beta")
        #expect(Self.routed(table, "/c", [("Cookie", "session=abc"), ("cookie", "theme=dark; beta=1")]) == "beta", "a second Cookie line")
        #expect(Self.routed(table, "/c", [("Cookie", "beta=\"1\"")]) == "beta", "a quoted value")
        #expect(Self.routed(table, "/c", [("Cookie", "beta=0; beta=1")]) == "beta", "a repeated cookie: any value")
        #expect(Self.routed(table, "/c", [("Cookie", "Beta=1")]) == "default", "cookie names are exact")
        #expect(Self.routed(table, "/c", [("Cookie", "beta=10; xbeta=1")]) == "default")
        #expect(Self.routed(table, "/c", [("X-Cookie", "beta=1")]) == "default")
        #expect(Self.routed(table, "/c") == "default")
    }

    @Test("{\"present\": true} requires the key and {\"present\": false} its absence, for headers, query and cookies")
    func presence() throws {
        let table = try Self.table(
            #"""
            [{"id": "has-header", "mode": "legacy", "path": "/p/h", "match": {"headers": {"X-Beta": {"present": true}}}},
             {"id": "no-header", "mode": "legacy", "path": "/p/nh", "match": {"headers": {"X-Internal": {"present": false}}}},
             {"id": "has-query", "mode": "legacy", "path": "/p/q", "match": {"query": {"debug": {"present": true}}}},
             {"id": "no-query", "mode": "legacy", "path": "/p/nq", "match": {"query": {"debug": {"present": false}}}},
             {"id": "has-cookie", "mode": "legacy", "path": "/p/c", "match": {"cookies": {"beta": {"present": true}}}},
             {"id": "no-cookie", "mode": "legacy", "path": "/p/nc", "match": {"cookies": {"beta": {"present": false}}}}]
            """#
        )
        #expect(Self.routed(table, "/p/h", [("x-beta", "")]) == "has-header", "an empty value is present")
        #expect(Self.routed(table, "/p/h", [("X-Beta", "anything")]) == "has-header")
        #expect(Self.routed(table, "/p/h") == "default")
        #expect(Self.routed(table, "/p/nh") == "no-header")
        #expect(Self.routed(table, "/p/nh", [("X-INTERNAL", "1")]) == "default")
        #expect(Self.routed(table, "/p/q?debug") == "has-query", "a key without =")
        #expect(Self.routed(table, "/p/q?a=1&debug=") == "has-query")
        #expect(Self.routed(table, "/p/q?a=1") == "default")
        #expect(Self.routed(table, "/p/nq") == "no-query")
        #expect(Self.routed(table, "/p/nq?a=1") == "no-query")
        #expect(Self.routed(table, "/p/nq?a=1&debug=0") == "default")
        #expect(Self.routed(table, "/p/c", [("Cookie", "a=1; beta=")]) == "has-cookie")
        #expect(Self.routed(table, "/p/c", [("Cookie", "a=1")]) == "default")
        #expect(Self.routed(table, "/p/nc", [("Cookie", "a=1")]) == "no-cookie")
        #expect(Self.routed(table, "/p/nc") == "no-cookie")
        #expect(Self.routed(table, "/p/nc", [("Cookie", "a=1"), ("Cookie", "beta=x")]) == "default")
    }

    @Test("every predicate of a route must hold")
    func allPredicates() throws {
        let table = try Self.table(
            #"""
            [{"id": "all", "mode": "legacy", "path": "/all", "match": {"host": "shop.example.com", "headers": {"X-Channel": "web"},
                                                     "query": {"tenant": ["t-17", "t-42"]}, "cookies": {"beta": "1"}}}]
            """#
        )
        let full: [(name: String, value: String)] = [("Host", "shop.example.com"), ("X-Channel", "web"), ("Cookie", "beta=1")]
        #expect(Self.routed(table, "/all?tenant=t-42", full) == "all")
        for dropped in full.indices {
            var headers = full
            headers.remove(at: dropped)
            #expect(Self.routed(table, "/all?tenant=t-42", headers) == "default", "without \(full[dropped].name)")
        }
        #expect(Self.routed(table, "/all", full) == "default", "without the tenant")
        #expect(Self.routed(table, "/all?tenant=t-1", full) == "default")
    }

    // MARK: - Precedence

    @Test("a strict superset of predicates wins whatever the table order")
    func strictSupersetWins() throws {
        let narrow =
            #"{"id": "web-t17", "mode": "legacy", "path": "/o/{id}", "match": {"headers": {"X-Channel": "web"}, "query": {"tenant": "t-17"}}}"#
        let wide = #"{"id": "web", "mode": "legacy", "path": "/o/{id}", "match": {"headers": {"X-Channel": "web"}}}"#
        for routes in ["[\(narrow), \(wide)]", "[\(wide), \(narrow)]"] {
            let table = try Self.table(routes)
            #expect(Self.routed(table, "/o/1?tenant=t-17", [("X-Channel", "web")]) == "web-t17", "\(routes)")
            #expect(Self.routed(table, "/o/1?tenant=t-18", [("X-Channel", "web")]) == "web", "\(routes)")
            #expect(Self.routed(table, "/o/1?tenant=t-17") == "default", "\(routes)")
        }
    }

    @Test("narrower conditions on the same key win: fewer listed values, a value over presence, an exact host over a wildcard")
    func narrowerWins() throws {
        let pairs: [(narrow: String, wide: String, request: [(name: String, value: String)], target: String)] = [
            (#"{"headers": {"X-Channel": "web"}}"#, #"{"headers": {"X-Channel": ["web", "app"]}}"#, [("X-Channel", "web")], "/n"),
            (#"{"query": {"t": ["a", "b"]}}"#, #"{"query": {"t": ["a", "b", "c"]}}"#, [], "/n?t=b"),
            (#"{"cookies": {"beta": "1"}}"#, #"{"cookies": {"beta": {"present": true}}}"#, [("Cookie", "beta=1")], "/n"),
            (#"{"host": "a.example.com"}"#, #"{"host": "*.example.com"}"#, [("Host", "a.example.com")], "/n"),
        ]
        for pair in pairs {
            let narrow = #"{"id": "narrow", "mode": "legacy", "path": "/n", "match": \#(pair.narrow)}"#
            let wide = #"{"id": "wide", "mode": "legacy", "path": "/n", "match": \#(pair.wide)}"#
            for routes in ["[\(narrow), \(wide)]", "[\(wide), \(narrow)]"] {
                let table = try Self.table(routes)
                #expect(Self.routed(table, pair.target, pair.request) == "narrow", "\(routes)")
            }
        }
    }

    @Test("a route with predicates wins over one without on the same path, whatever the table order")
    func predicatedBeatsPlain() throws {
        let plain = #"{"id": "plain", "mode": "legacy", "methods": ["GET"], "path": "/inv/{sku}"}"#
        let web = #"{"id": "web", "mode": "legacy", "methods": ["GET"], "path": "/inv/{item}", "match": {"headers": {"X-Channel": "web"}}}"#
        for routes in ["[\(plain), \(web)]", "[\(web), \(plain)]"] {
            let table = try Self.table(routes)
            #expect(Self.routed(table, "/inv/1", [("X-Channel", "web")]) == "web", "\(routes)")
            #expect(Self.routed(table, "/inv/1", [("X-Channel", "app")]) == "plain", "\(routes)")
            #expect(Self.routed(table, "/inv/1") == "plain", "\(routes)")
            #expect(Self.routed(table, "POST", "/inv/1", [("X-Channel", "web")]) == "default", "\(routes)")
        }
        // A plain route for every method and a predicated one for GET alone.
        let table = try Self.table(
            #"[{"id": "any", "mode": "legacy", "path": "/inv/{sku}"}, {"id": "web-get", "mode": "legacy", "methods": ["GET"], "path": "/inv/{sku}", "match": {"headers": {"X-Channel": "web"}}}]"#
        )
        #expect(Self.routed(table, "/inv/1", [("X-Channel", "web")]) == "web-get")
        #expect(Self.routed(table, "/inv/1") == "any")
        #expect(Self.routed(table, "DELETE", "/inv/1", [("X-Channel", "web")]) == "any")
    }

    @Test("path specificity comes first: a plain literal route beats a predicated {param} route")
    func literalBeatsPredicatedParam() throws {
        let table = try Self.table(
            #"""
            [{"id": "web-order", "mode": "legacy", "path": "/orders/{id}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "export", "mode": "legacy", "path": "/orders/export"},
             {"id": "web-rest", "mode": "legacy", "path": "/orders/**", "match": {"headers": {"X-Channel": "web"}}}]
            """#
        )
        #expect(Self.routed(table, "/orders/export", [("X-Channel", "web")]) == "export")
        #expect(Self.routed(table, "/orders/1", [("X-Channel", "web")]) == "web-order")
        #expect(Self.routed(table, "/orders/1/items", [("X-Channel", "web")]) == "web-rest")
        #expect(Self.routed(table, "/orders/1") == "default")
    }

    @Test("HEAD takes a GET route and its predicates; a HEAD request failing them falls through")
    func headFollowsGet() throws {
        let table = try Self.table(
            #"""
            [{"id": "web", "mode": "legacy", "methods": ["GET"], "path": "/h/{id}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "rest", "mode": "legacy", "methods": ["GET"], "path": "/h/**"}]
            """#
        )
        #expect(Self.routed(table, "HEAD", "/h/1", [("X-Channel", "web")]) == "web")
        #expect(Self.routed(table, "HEAD", "/h/1", [("X-Channel", "app")]) == "rest")
        #expect(Self.routed(table, "POST", "/h/1", [("X-Channel", "web")]) == "default")
    }

    @Test("for HEAD, a GET route with predicates wins over a plain route for every method, even beside a HEAD route of that path")
    func headPrefersPredicatedGetRouteBesideHeadRoute() throws {
        // Without a route listing HEAD, the GET route with predicates wins: predicates beat none.
        let alone = try Self.table(
            #"""
            [{"id": "any", "mode": "legacy", "path": "/x/{id}"},
             {"id": "web-get", "mode": "legacy", "methods": ["GET"], "path": "/x/{id}", "match": {"headers": {"X-Channel": "web"}}}]
            """#
        )
        #expect(Self.routed(alone, "GET", "/x/1", [("X-Channel", "web")]) == "web-get")
        #expect(Self.routed(alone, "HEAD", "/x/1", [("X-Channel", "web")]) == "web-get")
        // A route for HEAD alone whose predicates one HEAD request could meet together with
        // web-get's (which takes HEAD through GET) is ambiguous, as for two routes of one method.
        let overlapping = Self.error(
            #"""
            [{"id": "any", "mode": "legacy", "path": "/x/{id}"},
             {"id": "web-get", "mode": "legacy", "methods": ["GET"], "path": "/x/{id}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "probe-head", "mode": "legacy", "methods": ["HEAD"], "path": "/x/{id}", "match": {"headers": {"X-Probe": "1"}}}]
            """#
        )
        #expect(overlapping?.problems.map(\.path) == ["routes[2].match"])
        #expect(overlapping?.problems.first?.message.contains("for HEAD") == true, "\(String(describing: overlapping))")
        // One that excludes web-get's requests changes nothing for them: they still satisfy
        // web-get's predicates, and the plain every-method route does not take them.
        let beside = try Self.table(
            #"""
            [{"id": "any", "mode": "legacy", "path": "/x/{id}"},
             {"id": "web-get", "mode": "legacy", "methods": ["GET"], "path": "/x/{id}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "probe-head", "mode": "legacy", "methods": ["HEAD"], "path": "/x/{id}",
              "match": {"headers": {"X-Probe": "1", "X-Channel": {"present": false}}}}]
            """#
        )
        #expect(Self.routed(beside, "GET", "/x/1", [("X-Channel", "web")]) == "web-get")
        #expect(Self.routed(beside, "HEAD", "/x/1", [("X-Probe", "1")]) == "probe-head")
        #expect(Self.routed(beside, "HEAD", "/x/1", [("X-Channel", "web"), ("X-Probe", "1")]) == "web-get")
        #expect(
            Self.routed(beside, "HEAD", "/x/1", [("X-Channel", "web")]) == "web-get",
            "the plain every-method route took a HEAD request that meets the GET route's predicates"
        )
    }

    // MARK: - Falling through

    @Test("a request failing a predicated route's predicates falls through to the next most specific route, then to the default")
    func fallThrough() throws {
        let table = try Self.table(
            #"""
            [{"id": "order-web", "mode": "legacy", "methods": ["GET"], "path": "/orders/{id}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "orders-tenant", "mode": "legacy", "path": "/orders/**", "match": {"query": {"tenant": "t-17"}}},
             {"id": "orders", "mode": "legacy", "methods": ["GET"], "path": "/orders/**"},
             {"id": "items-web", "mode": "legacy", "path": "/items/{id}", "match": {"cookies": {"beta": "1"}}}]
            """#
        )
        #expect(Self.routed(table, "/orders/1?tenant=t-17", [("X-Channel", "web")]) == "order-web")
        #expect(Self.routed(table, "/orders/1?tenant=t-17", [("X-Channel", "app")]) == "orders-tenant")
        #expect(Self.routed(table, "/orders/1", [("X-Channel", "app")]) == "orders")
        #expect(Self.routed(table, "POST", "/orders/1?tenant=t-17", [("X-Channel", "web")]) == "orders-tenant")
        #expect(Self.routed(table, "POST", "/orders/1", [("X-Channel", "web")]) == "default")
        #expect(Self.routed(table, "/items/1", [("Cookie", "beta=1")]) == "items-web")
        #expect(Self.routed(table, "/items/1", [("Cookie", "beta=2")]) == "default")
        #expect(table.matcher.matchIndex(method: "GET", uri: "/items/1") == nil, "no headers: nothing matches")
    }

    @Test("falling through backtracks across segments: a literal branch whose routes all fail gives way to a {param} branch")
    func fallThroughBacktracks() throws {
        let table = try Self.table(
            #"""
            [{"id": "export-web", "mode": "legacy", "path": "/orders/export/{fmt}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "order-part", "mode": "legacy", "path": "/orders/{id}/{part}"},
             {"id": "root-web", "mode": "legacy", "path": "/**", "match": {"host": "*.example.com"}}]
            """#
        )
        #expect(Self.routed(table, "/orders/export/csv", [("X-Channel", "web")]) == "export-web")
        #expect(Self.routed(table, "/orders/export/csv") == "order-part")
        #expect(Self.routed(table, "/orders/export", [("Host", "a.example.com")]) == "root-web")
        #expect(Self.routed(table, "/orders/export") == "default")
    }

    // MARK: - Validation

    func ambiguity(_ routes: String) -> [RouteTableError.Problem] {
        (Self.error(routes)?.problems ?? []).filter { $0.path.hasSuffix(".match") }
    }

    @Test("overlapping predicates where neither contains the other are refused at routes[i].match, naming both routes")
    func overlappingRefused() throws {
        let routes = #"""
            [{"id": "plain", "mode": "legacy", "path": "/inv/{sku}"},
             {"id": "web", "mode": "legacy", "methods": ["GET"], "path": "/inv/{sku}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "tenant", "mode": "legacy", "methods": ["GET", "POST"], "path": "/inv/{id}", "match": {"query": {"tenant": "t-17"}}}]
            """#
        #expect(throws: RouteTableError.self) { try Self.table(routes) }
        let problems = try #require(Self.error(routes)).problems
        #expect(problems.count == 1, "\(problems)")
        let problem = try #require(problems.first)
        #expect(problem.path == "routes[2].match")
        #expect(problem.message.hasPrefix(#"routes[2] ("tenant") and routes[1] ("web") take "#), "\(problem.message)")
        #expect(problem.message.contains("/inv/{"))
        #expect(problem.message.contains("GET"))
        #expect(!problem.message.contains("POST"), "only the shared method is named: \(problem.message)")
    }

    @Test("routes with equal predicates on one path shape are refused, however the header names are spelled")
    func equalPredicatesRefused() throws {
        let problems = ambiguity(
            #"""
            [{"id": "a", "mode": "legacy", "path": "/e/{x}", "match": {"headers": {"X-Channel": "web"}}},
             {"id": "b", "mode": "legacy", "methods": ["GET"], "path": "/e/{y}", "match": {"headers": {"x-channel": "web"}}}]
            """#
        )
        #expect(problems.map(\.path) == ["routes[1].match"])
        #expect(problems.first?.message.hasPrefix(#"routes[1] ("b") and routes[0] ("a") take "#) == true)
        #expect(problems.first?.message.contains("same predicates") == true)
    }

    @Test("predicates on different keys that one request can meet together are refused; each later route names the first it clashes with")
    func differentKeysRefused() throws {
        let problems = ambiguity(
            #"""
            [{"id": "h", "mode": "legacy", "path": "/k", "match": {"host": "shop.example.com"}},
             {"id": "c", "mode": "legacy", "path": "/k", "match": {"cookies": {"beta": "1"}}},
             {"id": "q", "mode": "legacy", "path": "/k", "match": {"query": {"tenant": {"present": true}}}}]
            """#
        )
        #expect(problems.map(\.path) == ["routes[1].match", "routes[2].match"])
        #expect(problems.first?.message.hasPrefix(#"routes[1] ("c") and routes[0] ("h")"#) == true)
        #expect(problems.last?.message.hasPrefix(#"routes[2] ("q") and routes[0] ("h")"#) == true)
    }

    @Test("not ambiguous: disjoint values, different methods, presence against absence, a value against absence, different path shapes")
    func notAmbiguous() throws {
        let tables = [
            #"[{"id": "web", "mode": "legacy", "path": "/a", "match": {"headers": {"X-Channel": "web"}}}, {"id": "app", "mode": "legacy", "path": "/a", "match": {"headers": {"X-Channel": ["app", "store"]}}}]"#,
            #"[{"id": "get", "mode": "legacy", "methods": ["GET"], "path": "/a/{x}", "match": {"headers": {"X-Channel": "web"}}}, {"id": "post", "mode": "legacy", "methods": ["POST"], "path": "/a/{y}", "match": {"query": {"t": "1"}}}]"#,
            #"[{"id": "has", "mode": "legacy", "path": "/a", "match": {"cookies": {"beta": {"present": true}}}}, {"id": "not", "mode": "legacy", "path": "/a", "match": {"cookies": {"beta": {"present": false}}}}]"#,
            #"[{"id": "one", "mode": "legacy", "path": "/a", "match": {"query": {"t": "1"}}}, {"id": "none", "mode": "legacy", "path": "/a", "match": {"query": {"t": {"present": false}}, "headers": {"X-A": "1"}}}]"#,
            #"[{"id": "shop", "mode": "legacy", "path": "/a", "match": {"host": "shop.example.com"}}, {"id": "brand", "mode": "legacy", "path": "/a", "match": {"host": "*.example.org"}}]"#,
            #"[{"id": "exact", "mode": "legacy", "path": "/a/{x}", "match": {"headers": {"X-A": "1"}}}, {"id": "rest", "mode": "legacy", "path": "/a/**", "match": {"query": {"t": "1"}}}]"#,
        ]
        for routes in tables {
            #expect(Self.error(routes) == nil, "\(routes): \(Self.error(routes)?.description ?? "")")
        }
        let table = try Self.table(tables[3])
        #expect(Self.routed(table, "/a?t=1", [("X-A", "1")]) == "one")
        #expect(Self.routed(table, "/a", [("X-A", "1")]) == "none")
        #expect(Self.routed(table, "/a?t=2", [("X-A", "1")]) == "default")
    }

    @Test("many routes on one path with values for one key: each clash is still found, with the earliest route it clashes with")
    func manyTenantsOnOnePath() {
        // 300 tenant routes (each also asking for the web channel), then: a route for the web
        // channel alone (implied by each of them: fine), one for a tenant's store channel
        // (disjoint on the channel: fine), one for a tenant already taken (the same predicates
        // as that route), and one for a cookie alone (overlaps the first tenant route).
        var routes = (0..<300).map {
            #"{"id": "t\#($0)", "mode": "legacy", "methods": ["GET"], "path": "/o/{id}", "match": {"query": {"tenant": "t-\#($0)"}, "headers": {"X-Channel": "web"}}}"#
        }
        routes.append(#"{"id": "web", "mode": "legacy", "methods": ["GET"], "path": "/o/{x}", "match": {"headers": {"X-Channel": "web"}}}"#)
        routes.append(
            #"{"id": "store", "mode": "legacy", "methods": ["GET"], "path": "/o/{x}", "match": {"query": {"tenant": "t-7"}, "headers": {"X-Channel": "store"}}}"#
        )
        routes.append(
            #"{"id": "again", "mode": "legacy", "methods": ["GET"], "path": "/o/{x}", "match": {"headers": {"x-channel": "web"}, "query": {"tenant": "t-150"}}}"#
        )
        routes.append(#"{"id": "beta", "mode": "legacy", "methods": ["GET"], "path": "/o/{x}", "match": {"cookies": {"beta": "1"}}}"#)
        let problems = Self.error("[" + routes.joined(separator: ",") + "]")?.problems ?? []
        #expect(problems.map(\.path) == ["routes[302].match", "routes[303].match"])
        #expect(problems.first?.message.contains("routes[150] (\"t150\")") == true, "\(problems)")
        #expect(problems.first?.message.contains("the same predicates") == true, "\(problems)")
        #expect(problems.last?.message.contains("routes[0] (\"t0\")") == true, "\(problems)")
    }

    @Test("a plain route beside predicated ones is fine, but two plain routes on one shape stay refused")
    func plainRoutes() {
        #expect(
            Self.error(
                #"[{"id": "p", "mode": "legacy", "path": "/a/{x}"}, {"id": "w", "mode": "legacy", "path": "/a/{y}", "match": {"headers": {"X-A": "1"}}}]"#
            ) == nil
        )
        let clash = Self.error(
            #"[{"id": "p", "mode": "legacy", "path": "/a/{x}"}, {"id": "q", "mode": "legacy", "methods": ["GET"], "path": "/a/{y}"}]"#
        )
        #expect(clash?.problems.map(\.path) == ["routes[1].path"])
    }

    @Test("bad match values are refused at their JSON path")
    func badValues() throws {
        func problems(_ match: String) -> [RouteTableError.Problem] {
            Self.error(#"[{"id": "r", "mode": "legacy", "path": "/a", "match": \#(match)}]"#)?.problems ?? []
        }
        let cases: [(match: String, path: String, says: String)] = [
            (#"{"headers": {"X_Channel": "web"}}"#, "routes[0].match.headers.X_Channel", "\"_\""),
            (#"{"headers": {"X-Channel": []}}"#, "routes[0].match.headers.X-Channel", "empty list"),
            (#"{"query": {"tenant": []}}"#, "routes[0].match.query.tenant", "empty list"),
            (#"{"hosts": "shop.example.com"}"#, "routes[0].match.hosts", "unknown key"),
            (#"{"host": "shop example.com"}"#, "routes[0].match.host", "not a host name"),
            (#"{"host": "*.*.example.com"}"#, "routes[0].match.host", "not a host name"),
            (#"{"host": 1}"#, "routes[0].match.host", "must be a string"),
            (#"{"headers": {"Host": "shop.example.com"}}"#, "routes[0].match.headers.Host", "match.host"),
            (#"{"headers": {"X-A": "1", "x-a": "2"}}"#, "routes[0].match.headers.x-a", "ignore case"),
            (#"{"headers": {"X A": "1"}}"#, #"routes[0].match.headers["X A"]"#, "not a header name"),
            (#"{"cookies": {"beta": {"present": "yes"}}}"#, "routes[0].match.cookies.beta", "present"),
            (#"{"cookies": {"beta": {"present": true, "other": 1}}}"#, "routes[0].match.cookies.beta", "present"),
            (#"{"cookies": {"beta": ["1", 2]}}"#, "routes[0].match.cookies.beta[1]", "must be a string"),
            (#"{"query": {"t": 1}}"#, "routes[0].match.query.t", "found"),
            (#"{"query": ["t"]}"#, "routes[0].match.query", "must be an object"),
            (#"{}"#, "routes[0].match", "empty"),
            (#""web""#, "routes[0].match", "must be an object"),
            (#"{"query": {"t": [\#((0...64).map { "\"v\($0)\"" }.joined(separator: ","))]}}"#, "routes[0].match.query.t", "at most 64"),
        ]
        for (match, path, says) in cases {
            let found = problems(match)
            #expect(found.contains { $0.path == path && $0.message.contains(says) }, "\(match): \(found)")
        }
        // Every problem of a table with several bad values is reported, each at its own path.
        let several = problems(#"{"headers": {"X_A": "1"}, "query": {"t": []}, "cookies": {"c": 3}, "extra": 1}"#)
        #expect(
            Set(several.map(\.path))
                == ["routes[0].match.headers.X_A", "routes[0].match.query.t", "routes[0].match.cookies.c", "routes[0].match.extra"]
        )
    }

    @Test("control characters in match keys and values are escaped in every message, as elsewhere in the table")
    func hostileNamesEscaped() throws {
        let matches = [
            #"{"x\u001b[2J": 1}"#,
            #"{"headers": {"X\u001b[31m": "1"}}"#,
            #"{"query": {"t\u0007": "1"}}"#,
            #"{"cookies": {"c\u001b]0;pwn\u0007": "1"}}"#,
            #"{"host": "a\u001b[2J.example.com"}"#,
        ]
        for match in matches {
            let found = try #require(Self.error(#"[{"id": "r", "mode": "legacy", "path": "/a", "match": \#(match)}]"#), "\(match)")
            for problem in found.problems {
                #expect(!problem.description.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(match): \(problem)")
            }
        }
    }

    @Test("an overlong key in match is refused without being repeated whole")
    func overlongKeysCut() throws {
        let long = String(repeating: "k", count: 100_000)
        for match in [#"{"\#(long)": 1}"#, #"{"headers": {"\#(long)": "1"}}"#, #"{"query": {"\#(long)": "1"}}"#] {
            let found = try #require(Self.error(#"[{"id": "r", "mode": "legacy", "path": "/a", "match": \#(match)}]"#))
            #expect(!found.problems.isEmpty)
            #expect(found.description.utf8.count < 2048, "\(found.description.utf8.count) bytes for one overlong key")
        }
    }

    // MARK: - Against a brute-force reference

    @Test("random tables with predicates: validation and matching agree with a brute-force reference (seeded)")
    func agreesWithBruteForce() throws {
        var random = SeededRandom(state: 0x2024_0024)
        var tables = 0
        var valid = 0
        var checked = 0
        var predicatedWins = 0
        var fellThrough = 0
        var disagreements = 0
        for _ in 0..<400 {
            var specs: [RouteSpec] = []
            for index in 0..<(1 + random.below(5)) {
                specs.append(RouteSpec.random(id: "r\(index)", &random))
            }
            tables += 1
            let json = "[" + specs.map(\.json).joined(separator: ",") + "]"
            let expectedValid = BruteForce.isValid(specs)
            let parsed = try? Self.table(json)
            if (parsed != nil) != expectedValid {
                disagreements += 1
                Issue.record("validation: expected \(expectedValid ? "valid" : "refused"), got \(Self.error(json)?.description ?? "valid"): \(json)")
                continue
            }
            guard let table = parsed else { continue }
            valid += 1
            for _ in 0..<40 {
                let request = RequestSpec.random(&random)
                let accepted = BruteForce.acceptable(specs, request)
                let (target, headers) = request.rendered(&random)
                let found = table.matcher.matchIndex(
                    method: request.method,
                    uri: target,
                    request: RequestDetails(target: target, headers: headers)
                )
                checked += 1
                if !accepted.contains(found) {
                    disagreements += 1
                    Issue.record(
                        "\(request.method) \(target) \(headers): got \(found.map { specs[$0].id } ?? "nil"), expected one of \(accepted.map { $0.map { specs[$0].id } ?? "nil" }) in \(json)"
                    )
                }
                if let found, !specs[found].predicates.isEmpty { predicatedWins += 1 }
                if let found, let first = BruteForce.firstFittingGroup(specs, request), !first.contains(found) { fellThrough += 1 }
                if disagreements > 20 { return }
            }
        }
        #expect(disagreements == 0)
        // Enough of each kind of case for the agreement to mean something.
        #expect(valid > 100, "only \(valid) of \(tables) tables were valid")
        #expect(tables - valid > 50, "only \(tables - valid) tables were refused")
        #expect(predicatedWins > 500, "only \(predicatedWins) of \(checked) requests went to a route with predicates")
        #expect(fellThrough > 100, "only \(fellThrough) requests fell through to a less specific path")
    }
}

// MARK: - The brute-force reference

/// A condition on one key, as the reference sees it.
private enum ValueSpec: Equatable {
    case values([String])
    case present
    case absent

    var json: String {
        switch self {
        case .values(let values): values.count == 1 ? "\"\(values[0])\"" : "[" + values.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        case .present: #"{"present": true}"#
        case .absent: #"{"present": false}"#
        }
    }

    /// Whether a key with `values` (every occurrence) satisfies the condition.
    func holds(_ values: [String]) -> Bool {
        switch self {
        case .values(let expected): values.contains(where: expected.contains)
        case .present: !values.isEmpty
        case .absent: values.isEmpty
        }
    }
}

/// Predicates on a host, the `X-Channel` header, the `tenant` query parameter and the `beta` cookie.
private struct PredicateSpec: Equatable {
    var host: String?
    var channel: ValueSpec?
    var tenant: ValueSpec?
    var beta: ValueSpec?

    var isEmpty: Bool { host == nil && channel == nil && tenant == nil && beta == nil }

    var json: String {
        var parts: [String] = []
        if let host { parts.append("\"host\": \"\(host)\"") }
        if let channel { parts.append("\"headers\": {\"X-Channel\": \(channel.json)}") }
        if let tenant { parts.append("\"query\": {\"tenant\": \(tenant.json)}") }
        if let beta { parts.append("\"cookies\": {\"beta\": \(beta.json)}") }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    func holds(_ request: RequestSpec) -> Bool {
        if let host {
            guard let name = request.host else { return false }
            if host.hasPrefix("*.") {
                let domain = host.dropFirst(2)
                guard name.hasSuffix("." + domain) else { return false }
                let label = name.dropLast(domain.count + 1)
                if label.isEmpty || label.contains(".") { return false }
            } else if name != host {
                return false
            }
        }
        if let channel, !channel.holds(request.channel) { return false }
        if let tenant, !tenant.holds(request.tenant) { return false }
        if let beta, !beta.holds(request.beta) { return false }
        return true
    }

    static let hosts: [String?] = [nil, nil, nil, "a.example.com", "b.example.com", "*.example.com"]
    static let channels: [ValueSpec?] = [nil, nil, nil, .values(["web"]), .values(["web", "app"]), .values(["app"]), .present, .absent]
    static let tenants: [ValueSpec?] = [nil, nil, nil, .values(["t1"]), .values(["t1", "t2"]), .present, .absent]
    static let betas: [ValueSpec?] = [nil, nil, nil, nil, .values(["1"]), .present, .absent]

    static func random(_ random: inout SeededRandom) -> PredicateSpec {
        PredicateSpec(
            host: hosts[random.below(hosts.count)],
            channel: channels[random.below(channels.count)],
            tenant: tenants[random.below(tenants.count)],
            beta: betas[random.below(betas.count)]
        )
    }
}

private struct RouteSpec {
    var id: String
    var methods: [String]
    var path: String
    var predicates: PredicateSpec

    static let paths = ["/orders/{id}", "/orders/{key}", "/orders/export", "/orders/**", "/orders", "/**", "/orders/{id}/items", "/{x}/export", "/"]
    // No route lists HEAD: a HEAD request takes GET routes, then routes for every method.
    static let methodSets: [[String]] = [[], [], ["GET"], ["POST"], ["GET", "POST"]]

    static func random(id: String, _ random: inout SeededRandom) -> RouteSpec {
        let predicates = random.below(4) == 0 ? PredicateSpec() : PredicateSpec.random(&random)
        return RouteSpec(
            id: id,
            methods: methodSets[random.below(methodSets.count)],
            path: paths[random.below(paths.count)],
            predicates: predicates
        )
    }

    var json: String {
        var text = "{\"id\": \"\(id)\", \"mode\": \"legacy\", \"path\": \"\(path)\""
        if !methods.isEmpty { text += ", \"methods\": [" + methods.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        if !predicates.isEmpty { text += ", \"match\": \(predicates.json)" }
        return text + "}"
    }

    /// Literal segments as themselves, `{...}` as nil; and whether the path ends in `/**`.
    var template: (segments: [String?], catchAll: Bool) {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        if parts == [""] { parts = [] }
        let catchAll = parts.last == "**"
        if catchAll { parts.removeLast() }
        return (parts.map { $0.hasPrefix("{") ? nil : $0 }, catchAll)
    }

    var shape: String {
        let (segments, catchAll) = template
        return segments.map { $0 ?? "{}" }.joined(separator: "/") + (catchAll ? "/**" : "")
    }

    func takes(_ method: String) -> Bool { methods.isEmpty || methods.contains(method) }
}

/// A request: values per key, in order, before spelling them on the wire.
private struct RequestSpec {
    var method: String
    var path: String
    var host: String?
    var channel: [String]
    var tenant: [String]
    var beta: [String]

    static let paths = [
        "/orders/1", "/orders/export", "/orders", "/orders/1/items", "/orders/export/items", "/x/export", "/", "/orders/", "/other/thing",
    ]

    static func random(_ random: inout SeededRandom) -> RequestSpec {
        func values(_ pool: [String]) -> [String] {
            // Mostly one value or none; sometimes a repeated key.
            switch random.below(6) {
            case 0, 1: []
            case 5: [pool[random.below(pool.count)], pool[random.below(pool.count)]]
            default: [pool[random.below(pool.count)]]
            }
        }
        return RequestSpec(
            method: ["GET", "GET", "HEAD", "POST", "DELETE"][random.below(5)],
            path: paths[random.below(paths.count)],
            host: [nil, "a.example.com", "b.example.com", "c.example.com", "example.com", "a.b.example.com"][random.below(6)],
            channel: values(["web", "app", "store"]),
            tenant: values(["t1", "t2", "t3"]),
            beta: values(["1", "2"])
        )
    }

    /// The target and header lines, spelled in one of the ways that mean the same.
    func rendered(_ random: inout SeededRandom) -> (target: String, headers: [(name: String, value: String)]) {
        var headers: [(name: String, value: String)] = []
        if var host {
            if random.below(3) == 0 { host = host.uppercased() }
            if random.below(3) == 0 { host += "." }
            if random.below(3) == 0 { host += ":8080" }
            headers.append((["Host", "host", "HOST"][random.below(3)], host))
        }
        for value in channel {
            headers.append((["X-Channel", "x-channel", "X-CHANNEL"][random.below(3)], value))
        }
        if random.below(5) == 0 { headers.append(("X-Unrelated", "web")) }
        var pairs = tenant.map { value in
            "tenant=" + (random.below(3) == 0 ? value.replacingOccurrences(of: "t", with: "%74") : value)
        }
        if random.below(3) == 0 { pairs.insert("other=t1", at: random.below(pairs.count + 1)) }
        let target = path + (pairs.isEmpty ? (random.below(4) == 0 ? "?" : "") : "?" + pairs.joined(separator: "&"))
        var cookies = beta.map { "beta=\($0)" }
        if random.below(3) == 0 { cookies.insert("session=abc", at: random.below(cookies.count + 1)) }
        if !cookies.isEmpty {
            if random.below(2) == 0 {
                headers.append(("Cookie", cookies.joined(separator: "; ")))
            } else {
                for cookie in cookies { headers.append(("cookie", cookie)) }
            }
        }
        return (target, headers)
    }
}

/// The rules of §3 written out over small finite sets, with no trie and no precedence numbers.
private enum BruteForce {
    /// Every request with at most one value per key that the predicates can tell apart.
    static let universe: [RequestSpec] = {
        var all: [RequestSpec] = []
        for host in [nil, "a.example.com", "b.example.com", "c.example.com", "example.com"] as [String?] {
            for channel in [[], ["web"], ["app"], ["store"]] as [[String]] {
                for tenant in [[], ["t1"], ["t2"], ["t3"]] as [[String]] {
                    for beta in [[], ["1"], ["2"]] as [[String]] {
                        all.append(RequestSpec(method: "GET", path: "/", host: host, channel: channel, tenant: tenant, beta: beta))
                    }
                }
            }
        }
        return all
    }()

    /// Which requests of the universe the predicates accept.
    static func accepted(_ predicates: PredicateSpec) -> [Bool] {
        universe.map(predicates.holds)
    }

    /// `a` accepts a subset of what `b` accepts.
    static func subset(_ a: [Bool], _ b: [Bool]) -> Bool {
        zip(a, b).allSatisfy { !$0 || $1 }
    }

    /// Whether the table is valid: no two routes of one shape, sharing a method, that some
    /// request satisfies both of unless one's accepted requests are a strict subset of the other's.
    static func isValid(_ routes: [RouteSpec]) -> Bool {
        for (i, a) in routes.enumerated() {
            for b in routes[..<i]
            where a.shape == b.shape && (a.methods.isEmpty || b.methods.isEmpty || a.methods.contains(where: b.methods.contains)) {
                let (sa, sb) = (accepted(a.predicates), accepted(b.predicates))
                let overlap = zip(sa, sb).contains { $0 && $1 }
                let strict = (subset(sa, sb) && !subset(sb, sa)) || (subset(sb, sa) && !subset(sa, sb))
                if overlap && !strict { return false }
            }
        }
        return true
    }

    /// Path specificity as a sequence compared left to right (smaller is more specific): per
    /// segment literal 0, `{param}` 1; then 0 for a route that ends with the path, 2 for `/**`
    /// where it starts. Nil when the route's path does not fit.
    static func signature(_ route: RouteSpec, _ path: String) -> [Int]? {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        if segments == [""] { segments = [] }
        let (template, catchAll) = route.template
        if catchAll ? segments.count < template.count : segments.count != template.count { return nil }
        var kinds: [Int] = []
        for (expected, segment) in zip(template, segments) {
            if let expected {
                guard expected == segment else { return nil }
                kinds.append(0)
            } else {
                guard !segment.isEmpty else { return nil }
                kinds.append(1)
            }
        }
        return kinds + [catchAll ? 2 : 0]
    }

    /// Groups of routes whose path fits, most specific path first.
    static func groups(_ routes: [RouteSpec], _ path: String) -> [[Int]] {
        var bySignature: [[Int]: [Int]] = [:]
        for (index, route) in routes.enumerated() {
            if let signature = signature(route, path) { bySignature[signature, default: []].append(index) }
        }
        return bySignature.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { bySignature[$0]! }
    }

    /// Every answer the rules allow: the most specific routes (by path, then by method, then by
    /// predicates) whose predicates hold. More than one only when a repeated key meets two routes'
    /// disjoint predicates at once; nil when no route takes the request.
    static func acceptable(_ routes: [RouteSpec], _ request: RequestSpec) -> Set<Int?> {
        for group in groups(routes, request.path) {
            let tiers: [[Int]] =
                request.method == "HEAD"
                ? [group.filter { routes[$0].takes("GET") }, group.filter { routes[$0].methods.isEmpty }]
                : [group.filter { routes[$0].takes(request.method) }]
            for tier in tiers {
                let holding = tier.filter { routes[$0].predicates.holds(request) }
                let best = holding.filter { candidate in
                    let mine = accepted(routes[candidate].predicates)
                    return !holding.contains { other in
                        let theirs = accepted(routes[other].predicates)
                        return subset(theirs, mine) && !subset(mine, theirs)
                    }
                }
                if !best.isEmpty { return Set(best.map { Optional($0) }) }
            }
        }
        return [nil]
    }

    /// The most specific group with a route for the request's method, predicates aside.
    static func firstFittingGroup(_ routes: [RouteSpec], _ request: RequestSpec) -> [Int]? {
        groups(routes, request.path).first { group in
            group.contains { routes[$0].takes(request.method) || (request.method == "HEAD" && routes[$0].takes("GET")) }
        }
    }
}
