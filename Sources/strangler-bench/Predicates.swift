import Foundation
import StranglerCore

// `strangler-bench predicates [--paths 2500] [--lookups 1000000]`: route matching with route
// predicates (`match`), run by bench/micro.
//
// The table has `--paths` path shapes (the shapes of `table(routes:)`: /svcN/items,
// /svcN/items/{id}, /svcN/items/{id}/history, /svcN/export, /svcN/admin/**), each with four
// routes, so 2,500 paths make 10,000 routes, every one of them in a candidate list:
//
//   tenant   "match": {"headers": {"X-Channel": "web"}, "query": {"tenant": ["t-17", "t-42"]}}
//   host     "match": {"host": "m.example.com", "headers": {"X-Channel": {"present": false}}}
//   channel  "match": {"headers": {"X-Channel": "web"}}
//   plain    no match: the rest of the path's traffic
//
// (tenant narrows channel; host excludes both, so the table is free of ambiguity), which the
// matcher tries in that order, their precedence. Lookups go through the raw-bytes matcher the
// proxy calls, with a `RequestDetails` per request made before the timed loop, for requests
// that each route takes: the first candidate (tenant), the second (host), the third (channel),
// and none of them (falling through to the plain route). For comparison, the same requests
// against the same paths with only their plain routes (2,500 routes, no predicates): the
// matcher then never reads the request.
//
// Each request is timed twice: as a `RequestDetails` (strings: what `strangler routes test` and
// the admin API match with; it lowercases each header name it looks at), and as `HeadBytes`, the
// head's bytes with the ranges of its header names and values, read in place as the proxy's
// parsed head is (StranglerProxy's ClientRequestHead, not visible from here).
func runPredicatesBenchmark(paths: Int, lookups: Int) throws {
    let services = max(1, (paths + 4) / 5)
    func path(_ index: Int) -> (path: String, methods: String) {
        let service = index / 5
        switch index % 5 {
        case 0: return ("/svc\(service)/items", #""methods": ["GET"], "#)
        case 1: return ("/svc\(service)/items/{id}", #""methods": ["GET"], "#)
        case 2: return ("/svc\(service)/items/{id}/history", "")
        case 3: return ("/svc\(service)/export", "")
        default: return ("/svc\(service)/admin/**", "")
        }
    }
    var predicated: [String] = []
    var plain: [String] = []
    for index in 0..<paths {
        let (path, methods) = path(index)
        let route = { (id: String, match: String) in
            #"{"id": "\#(id)\#(index)", \#(methods)"path": "\#(path)", "mode": "legacy"\#(match)}"#
        }
        predicated += [
            route("tenant", #", "match": {"headers": {"X-Channel": "web"}, "query": {"tenant": ["t-17", "t-42"]}}"#),
            route("host", #", "match": {"host": "m.example.com", "headers": {"X-Channel": {"present": false}}}"#),
            route("channel", #", "match": {"headers": {"X-Channel": "web"}}"#),
            route("plain", ""),
        ]
        plain.append(route("plain", ""))
    }
    func document(_ routes: [String]) -> Data {
        Data(
            #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "legacy", "routes": [\#(routes.joined(separator: ","))]}"#
                .utf8
        )
    }
    func build(_ routes: [String], _ what: String) throws -> RouteTable {
        let json = document(routes)
        let start = ContinuousClock.now
        let table = try RouteTable.parse(json)
        print("built and validated a table of \(routes.count) routes (\(what), \(json.count) bytes of JSON) in \(ContinuousClock.now - start)")
        return table
    }
    let withPredicates = try build(predicated, "\(paths) paths, 4 routes each, \(paths * 3) with predicates")
    let withoutPredicates = try build(plain, "the same \(paths) paths, no predicates")

    // 4096 request targets over the paths, each path's shape spelled as a client would.
    let targets = (0..<4096).map { index -> String in
        let pathIndex = ((index &* 7919) % services) * 5 + index % 5
        let service = min(pathIndex, paths - 1) / 5
        switch min(pathIndex, paths - 1) % 5 {
        case 0: return "/svc\(service)/items"
        case 1: return "/svc\(service)/items/ORD-\(index)"
        case 2: return "/svc\(service)/items/ORD-\(index)/history"
        case 3: return "/svc\(service)/export"
        default: return "/svc\(service)/admin/a/b"
        }
    }
    /// One kind of request: its query and header lines, and the route (by id prefix) it must
    /// reach, checked for every target before timing.
    struct Variant {
        var name: String
        var expected: String
        var query: String
        var headers: [(name: String, value: String)]
    }
    let variants = [
        Variant(
            name: "tenant (1st candidate: query and header)",
            expected: "tenant",
            query: "?page=2&tenant=t-42",
            headers: [("Host", "shop.example.com"), ("Accept", "application/json"), ("X-Channel", "web")]
        ),
        Variant(
            name: "host (2nd candidate: host, header absent)",
            expected: "host",
            query: "?page=2",
            headers: [("Host", "m.example.com"), ("Accept", "application/json")]
        ),
        Variant(
            name: "channel (3rd candidate: header)",
            expected: "channel",
            query: "?page=2",
            headers: [("Host", "shop.example.com"), ("Accept", "application/json"), ("X-Channel", "web")]
        ),
        Variant(
            name: "none holds (falls through to plain)",
            expected: "plain",
            query: "?page=2",
            headers: [("Host", "shop.example.com"), ("Accept", "application/json"), ("X-Channel", "mobile")]
        ),
    ]

    /// Times lookups of `variant`'s requests in `table`: the targets' bytes end to end and one
    /// request (`RequestDetails` or `HeadBytes`) per target, all made before the clock starts.
    func run<Request: RouteMatchRequest>(_ label: String, _ table: RouteTable, _ variant: Variant, _ make: (String) -> Request) {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        var requests: [Request] = []
        for target in targets {
            let full = target + variant.query
            let start = bytes.count
            bytes += Array(full.utf8)
            ranges.append(start..<bytes.count)
            requests.append(make(full))
        }
        // Every request reaches the route it is meant to: a wrong table would time something else.
        for index in targets.indices {
            guard let found = table.matcher.matchIndex(method: "GET", uri: targets[index] + variant.query, request: requests[index]),
                table.routes[found].id.hasPrefix(variant.expected)
            else {
                FileHandle.standardError.write(Data("predicates: \(targets[index])\(variant.query) did not reach a \(variant.expected) route\n".utf8))
                exit(1)
            }
        }
        let result = bytes.withUnsafeBytes { raw in
            requests.withUnsafeBufferPointer { requests in
                measure(operations: lookups) {
                    var found = 0
                    for index in 0..<lookups {
                        let slot = index & 4095
                        let target = UnsafeRawBufferPointer(rebasing: raw[ranges[slot]])
                        if let route = table.matcher.matchIndex(method: "GET", target: target, request: requests[slot]) { found &+= route }
                    }
                    return found
                }
            }
        }
        print(
            String(
                format: "predicates: %@, %@: %.0f ns per lookup (median of 7 rounds of %d; checksum %d)",
                label,
                variant.name,
                result.nanoseconds,
                lookups,
                result.checksum
            )
        )
    }
    // Without predicates every request takes the plain route; the request's details are never read.
    var plainVariant = variants[3]
    plainVariant.name = "same requests, no predicates"
    for (kind, asHead) in [("RequestDetails", false), ("head bytes", true)] {
        for (routes, variant) in variants.map({ (withPredicates, $0) }) + [(withoutPredicates, plainVariant)] {
            let label = "\(routes.routes.count) routes, \(kind)"
            if asHead {
                run(label, routes, variant) { HeadBytes(target: $0, headers: variant.headers) }
            } else {
                run(label, routes, variant) { RequestDetails(target: $0, headers: variant.headers) }
            }
        }
    }
}

/// A request as its head's bytes, the way the proxy's parsed head holds it: the request line and
/// header lines in one buffer, with the ranges of the target and of each header's name and value.
/// Header names compare without case, byte by byte; nothing is allocated while matching.
struct HeadBytes: RouteMatchRequest {
    let bytes: [UInt8]
    let target: Range<Int>
    let fields: [(name: Range<Int>, value: Range<Int>)]

    init(target: String, headers: [(name: String, value: String)]) {
        var bytes = Array("GET ".utf8)
        let start = bytes.count
        bytes += Array(target.utf8)
        self.target = start..<bytes.count
        bytes += Array(" HTTP/1.1\r\n".utf8)
        var fields: [(name: Range<Int>, value: Range<Int>)] = []
        for header in headers {
            let name = bytes.count
            bytes += Array(header.name.utf8)
            let nameEnd = bytes.count
            bytes += Array(": ".utf8)
            let value = bytes.count
            bytes += Array(header.value.utf8)
            fields.append((name..<nameEnd, value..<bytes.count))
            bytes += Array("\r\n".utf8)
        }
        bytes += Array("\r\n".utf8)
        self.bytes = bytes
        self.fields = fields
    }

    private static func name<Name: Collection<UInt8>>(_ bytes: UnsafeRawBufferPointer, is lowercase: Name) -> Bool {
        bytes.count == lowercase.count
            && zip(bytes, lowercase).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
    }

    func withHost<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        bytes.withUnsafeBytes { raw in
            for field in fields where Self.name(UnsafeRawBufferPointer(rebasing: raw[field.name]), is: "host".utf8) {
                return body(UnsafeRawBufferPointer(rebasing: raw[field.value]))
            }
            return body(nil)
        }
    }

    func firstHeaderValue(named name: UnsafeRawBufferPointer, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        bytes.withUnsafeBytes { raw in
            for field in fields where Self.name(UnsafeRawBufferPointer(rebasing: raw[field.name]), is: name) {
                if body(UnsafeRawBufferPointer(rebasing: raw[field.value])) { return true }
            }
            return false
        }
    }

    func withQuery<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        bytes.withUnsafeBytes { raw in body(RequestKeyValues.query(of: UnsafeRawBufferPointer(rebasing: raw[target]))) }
    }
}
