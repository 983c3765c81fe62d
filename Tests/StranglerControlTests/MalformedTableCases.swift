import Foundation
import StranglerTestSupport

@testable import StranglerControl
@testable import StranglerProxy

/// One malformed `routes.json`: its bytes, and where and why it must be rejected.
struct MalformedTable: Sendable {
    var name: String
    var bytes: Data
    /// The JSON path one of the reported problems must have.
    var path: String
    /// Fragments that problem's message must contain (case-insensitive); empty where only the
    /// path is part of the contract.
    var says: [String]

    init(_ name: String, _ text: String, at path: String, says: [String] = []) {
        self.init(name, Data(text.utf8), at: path, says: says)
    }

    init(_ name: String, _ bytes: Data, at path: String, says: [String] = []) {
        self.name = name
        self.bytes = bytes
        self.path = path
        self.says = says
    }
}

/// The malformed tables, each the good table with one thing broken, so that the problem the
/// case is about is the one the validator must find.
///
/// The good table has two upstreams, `legacy` and `service`, and one route, `good`, that sends
/// `/good/**` to the service: a request there shows which table is live.
struct MalformedTableCases {
    let legacyURL: String
    let serviceURL: String

    static let goodRoute = #"{"id": "good", "path": "/good/**", "mode": "service", "service": "service"}"#
    static let syntax = ["not valid JSON:", "line ", "column "]

    var upstreams: String { #"{"legacy": {"url": "\#(legacyURL)"}, "service": {"url": "\#(serviceURL)"}}"# }

    /// The table, one member a line: upstreams on line 2, defaultUpstream on 3, routes on 4.
    func document(upstreams: String? = nil, defaultUpstream: String = #""legacy""#, routes: String? = nil, extra: String = "") -> String {
        """
        {
          "upstreams": \(upstreams ?? self.upstreams),
          "defaultUpstream": \(defaultUpstream),
          "routes": \(routes ?? "[\(Self.goodRoute)]")\(extra)
        }

        """
    }

    /// The good table: every case breaks one thing in it.
    var good: String { document() }

    /// The good table with `route` as its only route.
    func route(_ route: String) -> String { document(routes: "[\(route)]") }

    /// The good table with the `service` upstream replaced by `upstream`.
    func service(_ upstream: String) -> String {
        document(upstreams: #"{"legacy": {"url": "\#(legacyURL)"}, "service": \#(upstream)}"#)
    }

    /// The good table with the service's url replaced; `url` is JSON string content.
    func serviceURL(_ url: String) -> String { service(#"{"url": "\#(url)"}"#) }

    var all: [MalformedTable] {
        syntaxCases + encodingCases + shapeCases + upstreamCases + urlCases + timeoutCases + routeCases + settingsCases
    }

    // MARK: - JSON syntax, encoding and size

    var syntaxCases: [MalformedTable] {
        [
            MalformedTable("trailing comma in an object", document(extra: ","), at: "$", says: Self.syntax),
            MalformedTable("trailing comma in an array", document(routes: "[\(Self.goodRoute),]"), at: "$", says: Self.syntax + ["line 4"]),
            MalformedTable("missing closing brace", String(good.dropLast(2)), at: "$", says: Self.syntax),
            MalformedTable("garbage", "routes: everything to legacy, please\n", at: "$", says: Self.syntax),
            MalformedTable("single quotes", good.replacingOccurrences(of: "\"", with: "'"), at: "$", says: Self.syntax),
            MalformedTable("a line comment", "// the routes\n" + good, at: "$", says: Self.syntax),
            MalformedTable("a block comment", document(extra: " /* more later */"), at: "$", says: Self.syntax),
            MalformedTable("an unquoted key", good.replacingOccurrences(of: "\"routes\"", with: "routes"), at: "$", says: Self.syntax),
            MalformedTable("NaN as a number", service(#"{"url": "\#(serviceURL)", "timeoutMs": NaN}"#), at: "$", says: Self.syntax),
            MalformedTable("two documents", good + good, at: "$", says: Self.syntax),
            MalformedTable("an unterminated string", document(defaultUpstream: "\"legacy"), at: "$", says: Self.syntax),
        ]
    }

    var encodingCases: [MalformedTable] {
        let deep = 10_000
        return [
            MalformedTable("an empty file", Data(), at: "$", says: ["empty"]),
            MalformedTable("only whitespace", " \n\t\r\n  \n", at: "$", says: ["empty"]),
            MalformedTable("non-UTF-8 bytes in a string", withBytes([0xFF, 0xFE]), at: "$", says: ["UTF-8"]),
            MalformedTable("an overlong UTF-8 encoding", withBytes([0xC0, 0xAF]), at: "$", says: ["UTF-8"]),
            MalformedTable("a truncated UTF-8 sequence", withBytes([0xE2, 0x82]), at: "$", says: ["UTF-8"]),
            MalformedTable(
                "10,000 nested arrays in a route's description",
                route(
                    #"{"id": "good", "path": "/good/**", "mode": "service", "service": "service", "description": "#
                        + String(repeating: "[", count: deep) + String(repeating: "]", count: deep) + "}"
                ),
                at: "$",
                says: ["nesting"]
            ),
            MalformedTable(
                "10,000 nested arrays at the top",
                String(repeating: "[", count: deep) + String(repeating: "]", count: deep),
                at: "$",
                says: ["nesting"]
            ),
            MalformedTable(
                "10,000 nested objects at the top",
                String(repeating: #"{"a": "#, count: deep) + "1" + String(repeating: "}", count: deep),
                at: "$",
                says: ["nesting"]
            ),
            MalformedTable(
                "a 10 MB route id",
                route(
                    #"{"id": ""# + String(repeating: "a", count: 10 * 1024 * 1024)
                        + #"", "path": "/good/**", "mode": "service", "service": "service"}"#
                ),
                at: "routes[0].id",
                says: ["256"]
            ),
        ]
    }

    /// The good route with `bytes` (not valid UTF-8) inside its description string.
    private func withBytes(_ bytes: [UInt8]) -> Data {
        let marker = "@BYTES@"
        let text = route(#"{"id": "good", "path": "/good/**", "mode": "service", "service": "service", "description": "x\#(marker)y"}"#)
        let parts = text.components(separatedBy: marker)
        return Data(parts[0].utf8) + Data(bytes) + Data(parts[1].utf8)
    }

    // MARK: - The document's shape

    var shapeCases: [MalformedTable] {
        [
            MalformedTable("the top is an array", "[\(good)]", at: "$", says: ["object"]),
            MalformedTable("the top is a string", #""routes.json""#, at: "$", says: ["object"]),
            MalformedTable("the top is null", "null", at: "$", says: ["object"]),
            MalformedTable("routes is an object", document(routes: #"{"good": \#(Self.goodRoute)}"#), at: "routes", says: ["array"]),
            MalformedTable("routes is missing", #"{"upstreams": \#(upstreams), "defaultUpstream": "legacy"}"#, at: "routes", says: ["missing"]),
            MalformedTable("upstreams is an array", document(upstreams: #"[{"url": "\#(legacyURL)"}]"#), at: "upstreams", says: ["object"]),
            MalformedTable("upstreams is missing", #"{"defaultUpstream": "legacy", "routes": []}"#, at: "upstreams", says: ["missing"]),
            MalformedTable("upstreams is empty", document(upstreams: "{}", routes: "[]"), at: "upstreams", says: ["at least one"]),
            MalformedTable("defaultUpstream is a number", document(defaultUpstream: "1"), at: "defaultUpstream", says: ["string"]),
            MalformedTable("defaultUpstream is missing", #"{"upstreams": \#(upstreams), "routes": []}"#, at: "defaultUpstream", says: ["missing"]),
            MalformedTable("defaultUpstream is unknown", document(defaultUpstream: #""legacyy""#), at: "defaultUpstream", says: ["unknown upstream"]),
            MalformedTable("an unknown top-level key", document(extra: #", "rotues": []"#), at: "rotues", says: ["unknown key"]),
            MalformedTable("a duplicate top-level routes", document(extra: #", "routes": []"#), at: "routes", says: ["duplicate key"]),
        ]
    }

    // MARK: - Upstreams

    var upstreamCases: [MalformedTable] {
        [
            MalformedTable("an upstream that is a string", service(#""\#(serviceURL)""#), at: "upstreams.service", says: ["object"]),
            MalformedTable("an upstream without a url", service(#"{"timeoutMs": 100}"#), at: "upstreams.service.url", says: ["missing"]),
            MalformedTable("an upstream url that is a number", service(#"{"url": 9000}"#), at: "upstreams.service.url", says: ["string"]),
            MalformedTable("an empty upstream url", serviceURL(""), at: "upstreams.service.url", says: ["empty"]),
            MalformedTable(
                "an unknown key in an upstream",
                service(#"{"url": "\#(serviceURL)", "timeout": 100}"#),
                at: "upstreams.service.timeout",
                says: ["unknown key"]
            ),
            MalformedTable(
                "a duplicate url in an upstream",
                service(#"{"url": "\#(serviceURL)", "url": "\#(legacyURL)"}"#),
                at: "upstreams.service.url",
                says: ["duplicate key"]
            ),
        ]
    }

    var urlCases: [MalformedTable] {
        let at = "upstreams.service.url"
        return [
            MalformedTable("an ftp URL", serviceURL("ftp://127.0.0.1:9"), at: at, says: ["scheme"]),
            MalformedTable("a ws URL", serviceURL("ws://127.0.0.1:9"), at: at, says: ["http:// or https://"]),
            MalformedTable("port 0", serviceURL("http://127.0.0.1:0"), at: at, says: ["port"]),
            MalformedTable("port 70000", serviceURL("http://127.0.0.1:70000"), at: at, says: ["port"]),
            MalformedTable("port abc", serviceURL("http://127.0.0.1:abc"), at: at, says: ["port"]),
            MalformedTable("an empty port", serviceURL("http://127.0.0.1:"), at: at, says: ["port"]),
            MalformedTable("userinfo", serviceURL("http://u:p@127.0.0.1:9"), at: at, says: ["credentials"]),
            MalformedTable("a query", serviceURL("http://127.0.0.1:9/a?x=1"), at: at, says: ["query"]),
            MalformedTable("a fragment", serviceURL("http://127.0.0.1:9/a#f"), at: at, says: ["fragment"]),
            MalformedTable("CR LF in the base path", serviceURL(#"http://127.0.0.1:9/a\r\nX-Injected: 1"#), at: at, says: ["control character"]),
            MalformedTable("NUL in the base path", serviceURL(#"http://127.0.0.1:9/a\u0000b"#), at: at, says: ["control character"]),
            MalformedTable("a space in the base path", serviceURL("http://127.0.0.1:9/a b"), at: at, says: ["space"]),
            MalformedTable("a space in the host", serviceURL("http://127.0.0 .1:9"), at: at),
            MalformedTable("CR in the host", serviceURL(#"http://127.0.0.1\r:9"#), at: at),
            MalformedTable("an unclosed IPv6 host", serviceURL("http://[::1:9000"), at: at),
            MalformedTable("an IPv6 host with port 99999", serviceURL("http://[::1]:99999"), at: at, says: ["port"]),
            MalformedTable("text after an IPv6 host", serviceURL("http://[::1]x:9"), at: at),
            MalformedTable("no host before the port", serviceURL("http://:9000"), at: at, says: ["host"]),
            MalformedTable("a scheme and nothing else", serviceURL("http://"), at: at, says: ["host"]),
            MalformedTable("no scheme", serviceURL("127.0.0.1:9000"), at: at),
        ]
    }

    var timeoutCases: [MalformedTable] {
        var cases: [MalformedTable] = []
        for key in ["timeoutMs", "connectTimeoutMs"] {
            for value in ["0", "-1", "1.5", "1e12", #""100""#, "true"] {
                cases.append(
                    MalformedTable("\(key) \(value)", service(#"{"url": "\#(serviceURL)", "\#(key)": \#(value)}"#), at: "upstreams.service.\(key)")
                )
            }
        }
        cases += [
            MalformedTable(
                "maxConnectionsPerLoop 0",
                service(#"{"url": "\#(serviceURL)", "maxConnectionsPerLoop": 0}"#),
                at: "upstreams.service.maxConnectionsPerLoop"
            ),
            MalformedTable(
                "idleTimeoutMs null",
                service(#"{"url": "\#(serviceURL)", "idleTimeoutMs": null}"#),
                at: "upstreams.service.idleTimeoutMs"
            ),
            MalformedTable(
                "shadow.timeoutMs 0",
                route(#"{"id": "good", "path": "/good/**", "mode": "shadow", "service": "service", "shadow": {"timeoutMs": 0}}"#),
                at: "routes[0].shadow.timeoutMs"
            ),
        ]
        return cases
    }

    // MARK: - Routes

    /// The good route with `fields` (JSON members) added after its own.
    func good(adding fields: String) -> String {
        route(String(Self.goodRoute.dropLast()) + ", " + fields + "}")
    }

    var routeCases: [MalformedTable] {
        let good = Self.goodRoute
        return [
            MalformedTable("a route that is a string", document(routes: #"["good"]"#), at: "routes[0]", says: ["object"]),
            MalformedTable(
                "mode is a number",
                route(#"{"id": "good", "path": "/good/**", "mode": 3, "service": "service"}"#),
                at: "routes[0].mode",
                says: ["string"]
            ),
            MalformedTable(
                "an unknown mode",
                route(#"{"id": "good", "path": "/good/**", "mode": "shadowed", "service": "service"}"#),
                at: "routes[0].mode",
                says: ["unknown mode"]
            ),
            MalformedTable(
                "mode is missing",
                route(#"{"id": "good", "path": "/good/**", "service": "service"}"#),
                at: "routes[0].mode",
                says: ["missing"]
            ),
            MalformedTable("a duplicate mode key", self.good(adding: #""mode": "legacy""#), at: "routes[0].mode", says: ["duplicate key"]),
            MalformedTable("methods is a string", self.good(adding: #""methods": "GET""#), at: "routes[0].methods", says: ["array"]),
            MalformedTable("a method that is a number", self.good(adding: #""methods": [1]"#), at: "routes[0].methods[0]"),
            MalformedTable("a method with a space", self.good(adding: #""methods": ["GE T"]"#), at: "routes[0].methods[0]"),
            MalformedTable("an empty methods list", self.good(adding: #""methods": []"#), at: "routes[0].methods", says: ["empty"]),
            MalformedTable("fallback is \"yes\"", self.good(adding: #""fallback": "yes""#), at: "routes[0].fallback", says: ["true or false"]),
            MalformedTable("an unknown key in a route", self.good(adding: #""methd": ["GET"]"#), at: "routes[0].methd", says: ["unknown key"]),
            MalformedTable(
                "id is missing",
                route(#"{"path": "/good/**", "mode": "service", "service": "service"}"#),
                at: "routes[0].id",
                says: ["missing"]
            ),
            MalformedTable(
                "id is a number",
                route(#"{"id": 7, "path": "/good/**", "mode": "service", "service": "service"}"#),
                at: "routes[0].id",
                says: ["string"]
            ),
            MalformedTable(
                "a space in an id",
                route(#"{"id": "good one", "path": "/good/**", "mode": "service", "service": "service"}"#),
                at: "routes[0].id"
            ),
            MalformedTable(
                "ESC in an id",
                route(#"{"id": "good\u001b[2J", "path": "/good/**", "mode": "service", "service": "service"}"#),
                at: "routes[0].id"
            ),
            MalformedTable(
                "a 300-character id",
                route(#"{"id": "\#(String(repeating: "x", count: 300))", "path": "/good/**", "mode": "service", "service": "service"}"#),
                at: "routes[0].id",
                says: ["256"]
            ),
            MalformedTable(
                "a duplicate id",
                document(routes: #"[\#(good), {"id": "good", "path": "/other", "mode": "legacy"}]"#),
                at: "routes[1].id",
                says: ["duplicate id"]
            ),
            MalformedTable(
                "path is missing",
                route(#"{"id": "good", "mode": "service", "service": "service"}"#),
                at: "routes[0].path",
                says: ["missing"]
            ),
            MalformedTable(
                "a path without a leading slash",
                route(#"{"id": "good", "path": "good/**", "mode": "service", "service": "service"}"#),
                at: "routes[0].path"
            ),
            MalformedTable(
                "** before the end of a path",
                route(#"{"id": "good", "path": "/good/**/x", "mode": "service", "service": "service"}"#),
                at: "routes[0].path"
            ),
            MalformedTable(
                "a query in a path",
                route(#"{"id": "good", "path": "/good?x=1", "mode": "service", "service": "service"}"#),
                at: "routes[0].path"
            ),
            MalformedTable(
                "ambiguous parameters",
                document(
                    routes:
                        #"[\#(good), {"id": "a", "path": "/orders/{id}", "methods": ["GET"], "mode": "legacy"}, {"id": "b", "path": "/orders/{x}", "methods": ["GET"], "mode": "legacy"}]"#
                ),
                at: "routes[2].path",
                says: ["ambiguous"]
            ),
            MalformedTable(
                "ambiguous: every method against GET",
                document(
                    routes:
                        #"[{"id": "a", "path": "/good/{id}", "mode": "legacy"}, {"id": "b", "path": "/good/{x}", "methods": ["GET"], "mode": "legacy"}, \#(good)]"#
                ),
                at: "routes[1].path",
                says: ["ambiguous"]
            ),
            MalformedTable(
                "an unknown service upstream",
                route(#"{"id": "good", "path": "/good/**", "mode": "service", "service": "servce"}"#),
                at: "routes[0].service",
                says: ["unknown upstream"]
            ),
            MalformedTable(
                "an unknown legacy upstream",
                self.good(adding: #""legacy": "legacyy""#),
                at: "routes[0].legacy",
                says: ["unknown upstream"]
            ),
            MalformedTable("shadow mode without a service", route(#"{"id": "good", "path": "/good/**", "mode": "shadow"}"#), at: "routes[0].service"),
            MalformedTable(
                "a service that is also legacy",
                route(#"{"id": "good", "path": "/good/**", "mode": "service", "service": "legacy"}"#),
                at: "routes[0].service"
            ),
        ]
    }

    // MARK: - Shadow, canary, compare, gate

    var settingsCases: [MalformedTable] {
        func canary(_ block: String) -> String {
            route(#"{"id": "good", "path": "/good/{sku}", "mode": "canary", "service": "service", "canary": \#(block)}"#)
        }
        return [
            MalformedTable(
                "canary mode without a canary block",
                route(#"{"id": "good", "path": "/good/**", "mode": "canary", "service": "service"}"#),
                at: "routes[0].canary"
            ),
            MalformedTable(
                "canary without percent",
                canary(#"{"stickyKey": "header:X-Customer"}"#),
                at: "routes[0].canary.percent",
                says: ["missing"]
            ),
            MalformedTable("canary.percent is a string", canary(#"{"percent": "10"}"#), at: "routes[0].canary.percent", says: ["number"]),
            MalformedTable("canary.percent 150", canary(#"{"percent": 150}"#), at: "routes[0].canary.percent", says: ["100"]),
            MalformedTable(
                "a stickyKey that is neither header nor param",
                canary(#"{"percent": 10, "stickyKey": "cookie:x"}"#),
                at: "routes[0].canary.stickyKey"
            ),
            MalformedTable(
                "a stickyKey param the path lacks",
                canary(#"{"percent": 10, "stickyKey": "param:id"}"#),
                at: "routes[0].canary.stickyKey"
            ),
            MalformedTable(
                "an unknown key in canary",
                canary(#"{"percent": 10, "weight": 3}"#),
                at: "routes[0].canary.weight",
                says: ["unknown key"]
            ),
            MalformedTable("shadow is an array", good(adding: #""shadow": []"#), at: "routes[0].shadow", says: ["object"]),
            MalformedTable(
                "shadow.sampleRate 2",
                good(adding: #""shadow": {"sampleRate": 2}"#),
                at: "routes[0].shadow.sampleRate",
                says: ["between 0 and 1"]
            ),
            MalformedTable("an unknown shadow.writes", good(adding: #""shadow": {"writes": "always"}"#), at: "routes[0].shadow.writes"),
            MalformedTable("an unknown key in shadow", good(adding: #""shadow": {"rate": 1}"#), at: "routes[0].shadow.rate", says: ["unknown key"]),
            MalformedTable(
                "an unknown key in compare",
                good(adding: #""compare": {"ignored": ["/a"]}"#),
                at: "routes[0].compare.ignored",
                says: ["unknown key"]
            ),
            MalformedTable(
                "compare.ignore that is not a pointer",
                good(adding: #""compare": {"ignore": ["updatedAt"]}"#),
                at: "routes[0].compare.ignore[0]",
                says: ["pointer"]
            ),
            MalformedTable("compare.headers is a string", good(adding: #""compare": {"headers": "content-type"}"#), at: "routes[0].compare.headers"),
            MalformedTable(
                "a negative compare.numericTolerance",
                good(adding: #""compare": {"numericTolerance": -1}"#),
                at: "routes[0].compare.numericTolerance"
            ),
            MalformedTable(
                "an unknown key in gate",
                good(adding: #""gate": {"minSample": 5}"#),
                at: "routes[0].gate.minSample",
                says: ["unknown key"]
            ),
            MalformedTable("gate.minSamples 0", good(adding: #""gate": {"minSamples": 0}"#), at: "routes[0].gate.minSamples"),
            MalformedTable(
                "gate.maxMismatchRate 2",
                good(adding: #""gate": {"maxMismatchRate": 2}"#),
                at: "routes[0].gate.maxMismatchRate",
                says: ["between 0 and 1"]
            ),
        ]
    }

    /// 2,000 routes on the same path and method: every pair is ambiguous, which is millions of
    /// problems unless the validator stops keeping them.
    var hostile: MalformedTable {
        let routes = (0..<2000).map { #"{"id": "dup\#($0)", "path": "/dup/{x}", "methods": ["GET"], "mode": "legacy"}"# }
        return MalformedTable(
            "2,000 pairwise-ambiguous routes",
            document(routes: "[" + ([Self.goodRoute] + routes).joined(separator: ",\n") + "]"),
            at: "routes[2].path",
            says: ["ambiguous"]
        )
    }
}
