import Foundation
import Testing

@testable import StranglerCore

@Suite("Revalidating only the routes that changed")
struct RouteTableBasisTests {
    static let upstreams = #"{"legacy": {"url": "http://127.0.0.1:9000"}, "svc": {"url": "http://127.0.0.1:9101"}}"#

    /// A table of `count` routes; `edit` may change any route's JSON text by index.
    static func table(_ count: Int, upstreams: String = upstreams, edit: (Int, String) -> String = { $1 }) -> Data {
        let routes = (0..<count).map { index in
            edit(index, #"{"id": "r\#(index)", "methods": ["GET"], "path": "/r\#(index)/{id}", "mode": "legacy", "service": "svc"}"#)
        }
        return Data((#"{"upstreams": \#(upstreams), "defaultUpstream": "legacy", "routes": [\#n"# + routes.joined(separator: ",\n") + "\n]}").utf8)
    }

    static func validation(_ data: Data, after earlier: Data) throws -> RouteTable.Validation {
        let basis = try #require(try RouteTable.parse(earlier, reusing: nil).basis)
        return try RouteTable.parse(data, reusing: basis)
    }

    /// The paths of the problems that refuse `data` validated after `earlier`; nil if accepted.
    static func refusal(_ data: Data, after earlier: Data) throws -> [String]? {
        do {
            _ = try validation(data, after: earlier)
            return nil
        } catch let error as RouteTableError {
            return error.problems.map(\.path)
        }
    }

    /// The table built with a basis must be the one built without.
    static func expectSameTable(_ validation: RouteTable.Validation, as data: Data) throws {
        let fresh = try RouteTable.parse(data)
        #expect(validation.table.routes == fresh.routes)
        #expect(validation.table.upstreams == fresh.upstreams)
        #expect(validation.table.version == fresh.version)
    }

    @Test("one route flipped in 1,000: only it is validated, and the table equals one validated whole")
    func oneFlip() throws {
        let before = Self.table(1000)
        let after = Self.table(1000) { index, text in index == 500 ? text.replacingOccurrences(of: "legacy", with: "shadow") : text }
        let validation = try Self.validation(after, after: before)
        #expect(validation.validatedRoutes == 1)
        #expect(validation.table.routes[500].mode == .shadow)
        try Self.expectSameTable(validation, as: after)
    }

    @Test("without a basis, or with the upstreams changed, every route is validated")
    func contextChanges() throws {
        let before = Self.table(50)
        #expect(try RouteTable.parse(before, reusing: nil).validatedRoutes == 50)
        let moved = Self.table(50, upstreams: #"{"legacy": {"url": "http://127.0.0.1:9000"}, "svc": {"url": "http://127.0.0.1:9102"}}"#)
        let validation = try Self.validation(moved, after: before)
        #expect(validation.validatedRoutes == 50)
        #expect(validation.table.upstreams["svc"]?.port == 9102)
        try Self.expectSameTable(validation, as: moved)
    }

    @Test("routes reordered, inserted and removed are found by their bytes")
    func movedRoutes() throws {
        let before = Self.table(100)
        // Reversed, with route 0 dropped and a new route inserted at the front.
        var routes = (1..<100).reversed().map {
            #"{"id": "r\#($0)", "methods": ["GET"], "path": "/r\#($0)/{id}", "mode": "legacy", "service": "svc"}"#
        }
        routes.insert(#"{"id": "new", "path": "/new", "mode": "legacy"}"#, at: 0)
        let after = Data((#"{"upstreams": \#(Self.upstreams), "defaultUpstream": "legacy", "routes": ["# + routes.joined(separator: ",") + "]}").utf8)
        let validation = try Self.validation(after, after: before)
        #expect(validation.validatedRoutes == 1)
        #expect(validation.table.routes.map(\.id).prefix(3) == ["new", "r99", "r98"])
        try Self.expectSameTable(validation, as: after)
    }

    @Test("problems between a changed route and reused ones are still found")
    func crossRouteChecks() throws {
        let before = Self.table(20)
        // Route 7 takes route 3's id: a duplicate id with a reused route.
        let duplicate = Self.table(20) { index, text in index == 7 ? text.replacingOccurrences(of: "\"r7\"", with: "\"r3\"") : text }
        #expect(try Self.refusal(duplicate, after: before) == ["routes[7].id"])
        // Route 9 takes route 2's path: ambiguous with a reused route.
        let ambiguous = Self.table(20) { index, text in index == 9 ? text.replacingOccurrences(of: "/r9/", with: "/r2/") : text }
        #expect(try Self.refusal(ambiguous, after: before)?.first == "routes[9].path")
        // A changed route that is invalid on its own.
        let invalid = Self.table(20) { index, text in index == 4 ? text.replacingOccurrences(of: "legacy", with: "sideways") : text }
        #expect(try Self.refusal(invalid, after: before) == ["routes[4].mode"])
    }

    @Test("a route made identical to a valid one is reused only under the same upstreams")
    func upstreamRemoved() throws {
        let before = Self.table(10)
        // "svc" is gone: every route naming it must be refused, none taken from the basis.
        let after = Self.table(10, upstreams: #"{"legacy": {"url": "http://127.0.0.1:9000"}}"#)
        let paths = try #require(try Self.refusal(after, after: before), "routes naming a removed upstream were accepted")
        #expect(paths.count == 10)
        #expect(paths.allSatisfy { $0.hasSuffix(".service") })
    }

    @Test("a duplicate key inside a changed route is refused though the route's other copy was valid")
    func duplicateKeyInChangedRoute() throws {
        let before = Self.table(5)
        let after = Self.table(5) { index, text in
            index == 2 ? text.replacingOccurrences(of: #""mode": "legacy""#, with: #""mode": "legacy", "mode": "shadow""#) : text
        }
        #expect(try Self.refusal(after, after: before) == ["routes[2].mode"])
    }

    @Test("a routes member spelled with an escape is validated whole, not reused")
    func escapedRoutesKey() throws {
        let before = Self.table(5)
        let text = String(decoding: Self.table(5), as: UTF8.self).replacingOccurrences(of: #""routes""#, with: #""rout\u0065s""#)
        let validation = try Self.validation(Data(text.utf8), after: before)
        #expect(validation.validatedRoutes == 5)
        #expect(validation.table.routes.count == 5)
    }

    @Test("route ranges hold exactly each route's bytes, strings with brackets, quotes and escapes included")
    func ranges() throws {
        let routes = [
            #"{"id": "a", "path": "/a", "mode": "legacy", "description": "brackets ] } [ { inside"}"#,
            #"{"id": "b", "path": "/b", "mode": "legacy", "description": "a \"quoted\" word and a \\"}"#,
            #"{"id":"c","path":"/c","mode":"legacy","compare":{"ignore":["/x"],"arrays":{"/items":{"key":"sku"}}}}"#,
            #"{"id": "d", "path": "/d", "mode": "legacy", "description": "\u005d\u007d"}"#,
        ]
        let text =
            #"{"defaultUpstream": "legacy", "upstreams": {"legacy": {"url": "http://127.0.0.1:9000", "timeoutMs": 2000}},"#
            + "\n \"routes\" : [ " + routes.joined(separator: " ,\n\t") + " ] }"
        let data = Data(text.utf8)
        let found = try #require(data.withUnsafeBytes { JSONRouteRanges.find(in: $0) })
        #expect(found.map { String(decoding: data[$0], as: UTF8.self) } == routes)
        #expect(try RouteTable.parse(data, reusing: nil).basis != nil)
        let empty = Data(#"{"routes": [ ], "upstreams": {}}"#.utf8)
        #expect(empty.withUnsafeBytes { JSONRouteRanges.find(in: $0) } == [])
        let none = Data(#"{"upstreams": {"routes": [1]}}"#.utf8)
        #expect(none.withUnsafeBytes { JSONRouteRanges.find(in: $0) } == nil, "only a top-level member counts")
    }

    @Test("route ranges agree with the parser on 200 generated tables")
    func rangesAgreeWithParser() throws {
        var random = SeededRandom(state: 19)
        let pieces = [#""plain""#, #""with \"quote\"""#, #""]}""#, "12.5e-3", "true", "null", "[1, [2, {\"k\": \"]\"}]]", #"{"a": {}}"#]
        for _ in 0..<200 {
            let routes = (0..<random.below(6)).map { _ in
                "{"
                    + (0..<random.below(4)).map { field in
                        "\"f\(field)\":" + String(repeating: " ", count: random.below(3)) + pieces[random.below(pieces.count)]
                    }
                    .joined(separator: ",") + "}"
            }
            let before = random.below(2) == 0 ? #""upstreams": {"x": ["]"]}, "# : ""
            let data = Data(("{" + before + #""routes":["# + routes.joined(separator: random.below(2) == 0 ? "," : " ,\n ") + "]}").utf8)
            let document = try JSONDocument.parse(data)
            guard case .object(let members) = document, case .array(let items)? = members.first(where: { $0.key == "routes" })?.value else {
                Issue.record("generated table has no routes")
                continue
            }
            let found = try #require(data.withUnsafeBytes { JSONRouteRanges.find(in: $0) })
            #expect(found.count == items.count)
            for (range, item) in zip(found, items) {
                #expect(try JSONDocument.parse(data[range]) == item)
            }
        }
    }
}
