import Foundation
import StranglerCore
import Testing

/// A request for the predicates, from plain strings (the data plane's head provides the same
/// views over the bytes it parsed).
struct MatchRequest: RouteMatchRequest {
    var host: String?
    var headers: [(String, String)] = []
    var query: String?

    func withHost<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        guard let host else { return body(nil) }
        return Array(host.utf8).withUnsafeBytes { body($0) }
    }

    func firstHeaderValue(named name: UnsafeRawBufferPointer, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        for (header, value) in headers where header.lowercased().utf8.elementsEqual(name) {
            if Array(value.utf8).withUnsafeBytes({ body($0) }) { return true }
        }
        return false
    }

    func withQuery<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        guard let query else { return body(nil) }
        return Array(query.utf8).withUnsafeBytes { body($0) }
    }
}

@Suite("Route predicates (match)")
struct RouteMatchTests {
    static func parse(_ json: String) -> (match: RouteMatch?, problems: [String]) {
        let value = try! JSONValue.parse(Data(json.utf8))
        let (match, problems) = RouteMatch.parse(value, at: "routes[0].match")
        return (match, problems.map(\.description))
    }

    static func match(_ json: String) throws -> RouteMatch {
        let (match, problems) = parse(json)
        #expect(problems.isEmpty, "\(problems)")
        return try #require(match)
    }

    @Test("host ignores the port, case and a trailing dot; *. covers exactly one label")
    func host() throws {
        let exact = try Self.match(#"{"host": "Shop.Example.com."}"#)
        for host in ["shop.example.com", "SHOP.example.COM:8443", "shop.example.com.", "shop.example.com.:80"] {
            #expect(exact.matches(MatchRequest(host: host)), "\(host)")
        }
        for host in ["example.com", "a.shop.example.com", "shop.example.co", "shop-example.com"] {
            #expect(!exact.matches(MatchRequest(host: host)), "\(host)")
        }
        #expect(!exact.matches(MatchRequest(host: nil)))
        let wildcard = try Self.match(#"{"host": "*.example.com"}"#)
        #expect(wildcard.matches(MatchRequest(host: "brand-a.example.com:443")))
        #expect(!wildcard.matches(MatchRequest(host: "example.com")))
        #expect(!wildcard.matches(MatchRequest(host: "a.b.example.com")))
        #expect(!wildcard.matches(MatchRequest(host: "aexample.com")))
    }

    @Test("headers: names without case, values exact, any of a repeated header's values, presence and absence")
    func headers() throws {
        let web = try Self.match(#"{"headers": {"X-Channel": "web"}}"#)
        #expect(web.matches(MatchRequest(headers: [("x-channel", "web")])))
        #expect(web.matches(MatchRequest(headers: [("X-CHANNEL", "store"), ("X-Channel", "web")])), "any value of a repeated header")
        #expect(!web.matches(MatchRequest(headers: [("X-Channel", "Web")])), "values are exact")
        #expect(!web.matches(MatchRequest(headers: [])))
        let present = try Self.match(#"{"headers": {"X-Beta": {"present": true}, "X-Internal": {"present": false}}}"#)
        #expect(present.matches(MatchRequest(headers: [("X-Beta", "")])))
        #expect(!present.matches(MatchRequest(headers: [("X-Beta", "1"), ("x-internal", "1")])))
        #expect(!present.matches(MatchRequest(headers: [])))
    }

    @Test("query values compare after percent-decoding; a list means any of them; a repeated parameter matches on any value")
    func query() throws {
        let tenants = try Self.match(#"{"query": {"tenant": ["t-17", "t 42"]}}"#)
        #expect(tenants.matches(MatchRequest(query: "tenant=t-17")))
        #expect(tenants.matches(MatchRequest(query: "a=1&tenant=t%2042&b")))
        #expect(tenants.matches(MatchRequest(query: "tenant=t-99&tenant=t-17")))
        #expect(tenants.matches(MatchRequest(query: "t%65nant=t-17")), "names are decoded too")
        #expect(!tenants.matches(MatchRequest(query: "tenant=t-1")))
        #expect(!tenants.matches(MatchRequest(query: "xtenant=t-17")))
        #expect(!tenants.matches(MatchRequest(query: nil)))
        let noDebug = try Self.match(#"{"query": {"debug": {"present": false}}}"#)
        #expect(noDebug.matches(MatchRequest(query: nil)))
        #expect(noDebug.matches(MatchRequest(query: "x=1")))
        #expect(!noDebug.matches(MatchRequest(query: "x=1&debug")))
    }

    @Test("cookies: across Cookie headers, spaces and quotes around values")
    func cookies() throws {
        let beta = try Self.match(#"{"cookies": {"beta": "1"}}"#)
        #expect(beta.matches(MatchRequest(headers: [("Cookie", "session=abc;  beta=1")])))
        #expect(beta.matches(MatchRequest(headers: [("Cookie", "a=b"), ("cookie", "beta=\"1\"")])))
        #expect(!beta.matches(MatchRequest(headers: [("Cookie", "beta=10; xbeta=1")])))
        #expect(!beta.matches(MatchRequest(headers: [])))
    }

    @Test("every predicate must hold")
    func allOf() throws {
        let both = try Self.match(#"{"host": "shop.example.com", "headers": {"X-Channel": "web"}, "cookies": {"beta": "1"}}"#)
        #expect(both.matches(MatchRequest(host: "shop.example.com", headers: [("X-Channel", "web"), ("Cookie", "beta=1")])))
        #expect(!both.matches(MatchRequest(host: "shop.example.com", headers: [("X-Channel", "web")])))
        #expect(!both.matches(MatchRequest(host: "other.example.com", headers: [("X-Channel", "web"), ("Cookie", "beta=1")])))
    }

    @Test("precedence and ambiguity: a strict superset wins; overlapping predicates where neither contains the other are ambiguous")
    func relations() throws {
        let none = RouteMatch()
        let web = try Self.match(#"{"headers": {"X-Channel": "web"}}"#)
        let webTenant = try Self.match(#"{"headers": {"x-channel": "web"}, "query": {"tenant": "t-17"}}"#)
        let store = try Self.match(#"{"headers": {"X-Channel": "store"}}"#)
        let tenant = try Self.match(#"{"query": {"tenant": "t-17"}}"#)
        let webOrApp = try Self.match(#"{"headers": {"X-Channel": ["web", "app"]}}"#)
        let anyChannel = try Self.match(#"{"headers": {"X-Channel": {"present": true}}}"#)
        let noChannel = try Self.match(#"{"headers": {"X-Channel": {"present": false}}}"#)

        #expect(web.isStrictlyMoreSpecific(than: none), "a route with predicates wins over one without")
        #expect(webTenant.isStrictlyMoreSpecific(than: web))
        #expect(web.isStrictlyMoreSpecific(than: webOrApp))
        #expect(webOrApp.isStrictlyMoreSpecific(than: anyChannel))
        #expect(!web.isStrictlyMoreSpecific(than: web))

        #expect(!web.overlaps(store), "web and store never match one request")
        #expect(!anyChannel.overlaps(noChannel))
        #expect(!web.isAmbiguous(with: store))
        #expect(web.isAmbiguous(with: tenant), "a web request for tenant t-17 matches both, and neither contains the other")
        #expect(!web.isAmbiguous(with: webTenant))
        #expect(!web.isAmbiguous(with: none))

        let shop = try Self.match(#"{"host": "shop.example.com"}"#)
        let brands = try Self.match(#"{"host": "*.example.com"}"#)
        let other = try Self.match(#"{"host": "shop.example.org"}"#)
        #expect(shop.isStrictlyMoreSpecific(than: brands))
        #expect(!shop.overlaps(other))
    }

    @Test("bad predicates name their JSON path")
    func problems() {
        func problems(_ json: String) -> [String] { Self.parse(json).problems }
        #expect(problems(#"{"hosts": "x"}"#).contains { $0.hasPrefix("routes[0].match.hosts: unknown key") })
        #expect(problems(#"{"host": "bad host!"}"#).contains { $0.hasPrefix("routes[0].match.host:") })
        #expect(problems(#"{"headers": {"Host": "x"}}"#).contains { $0.hasPrefix("routes[0].match.headers.Host:") && $0.contains("match.host") })
        #expect(problems(#"{"headers": {"X-A": []}}"#).contains { $0.hasPrefix("routes[0].match.headers.X-A:") && $0.contains("empty list") })
        #expect(problems(#"{"query": {"t": {"present": "yes"}}}"#).contains { $0.hasPrefix("routes[0].match.query.t:") })
        #expect(problems(#"{"cookies": {"c": [1]}}"#).contains { $0.hasPrefix("routes[0].match.cookies.c[0]:") })
        #expect(problems(#"{"headers": {"X-A": "1", "x-a": "2"}}"#).contains { $0.contains("ignore case") })
        #expect(problems(#"{}"#).contains { $0.hasPrefix("routes[0].match:") && $0.contains("empty") })
        #expect(problems(#"[]"#).contains { $0.hasPrefix("routes[0].match:") })
    }
}
