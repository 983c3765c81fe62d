import Foundation
import StranglerCore
import Testing

@Suite("Route matching")
struct RouteMatcherTests {
    func table(_ routes: [(id: String, methods: [String], path: String)]) throws -> RouteTable {
        let entries = routes.map { route in
            let methods = route.methods.isEmpty ? "" : ", \"methods\": [\(route.methods.map { "\"\($0)\"" }.joined(separator: ","))]"
            return "{\"id\": \"\(route.id)\", \"path\": \"\(route.path)\", \"mode\": \"legacy\"\(methods)}"
        }
        let json = """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "legacy", "routes": [\(entries.joined(separator: ","))]}
            """
        return try RouteTable.parse(Data(json.utf8))
    }

    @Test("literal beats {param} beats /**, with backtracking")
    func specificity() throws {
        let routes = try table([
            ("orders-any", [], "/orders/**"), ("order", ["GET"], "/orders/{id}"), ("export", [], "/orders/export"),
            ("tracking", ["GET"], "/orders/{id}/tracking"), ("items", [], "/orders/{id}/items/**"), ("root", [], "/"),
            ("everything", [], "/**"),
        ])
        #expect(routes.match(method: "GET", uri: "/orders/export")?.id == "export")
        #expect(routes.match(method: "GET", uri: "/orders/ORD-1")?.id == "order")
        #expect(routes.match(method: "POST", uri: "/orders/ORD-1")?.id == "orders-any")
        #expect(routes.match(method: "GET", uri: "/orders/ORD-1/tracking")?.id == "tracking")
        #expect(routes.match(method: "GET", uri: "/orders/export/tracking")?.id == "tracking")
        #expect(routes.match(method: "GET", uri: "/orders/ORD-1/items")?.id == "items")
        #expect(routes.match(method: "GET", uri: "/orders/ORD-1/items/3/notes")?.id == "items")
        #expect(routes.match(method: "GET", uri: "/orders")?.id == "orders-any")
        #expect(routes.match(method: "GET", uri: "/")?.id == "root")
        #expect(routes.match(method: "GET", uri: "/customers/1")?.id == "everything")
    }

    @Test("the query is not part of the path; methods filter; HEAD follows GET")
    func queryAndMethods() throws {
        let routes = try table([("order", ["GET"], "/orders/{id}"), ("cancel", ["POST"], "/orders/{id}/cancel")])
        #expect(routes.match(method: "GET", uri: "/orders/1?expand=items")?.id == "order")
        #expect(routes.match(method: "HEAD", uri: "/orders/1")?.id == "order")
        #expect(routes.match(method: "DELETE", uri: "/orders/1") == nil)
        #expect(routes.match(method: "GET", uri: "/orders/1/cancel") == nil)
        #expect(routes.match(method: "POST", uri: "/orders/1/cancel")?.id == "cancel")
        #expect(routes.match(method: "GET", uri: "/orders/") == nil)
        #expect(routes.match(method: "GET", uri: "*") == nil)
    }

    @Test("parameters are extracted by name, still percent-encoded")
    func parameters() throws {
        let routes = try table([("tracking", ["GET"], "/orders/{id}/tracking")])
        let route = try #require(routes.match(method: "GET", uri: "/orders/ORD%2F1/tracking?x=1"))
        #expect(RouteMatcher.parameters(of: route, uri: "/orders/ORD%2F1/tracking?x=1") == ["id": "ORD%2F1"])
    }

    @Test("ten thousand routes build and match correctly")
    func manyRoutes() throws {
        var routes: [(id: String, methods: [String], path: String)] = []
        for index in 0..<10_000 {
            routes.append(("r\(index)", ["GET"], "/api/v\(index % 10)/resource\(index)/{id}"))
        }
        let big = try table(routes)
        #expect(big.match(method: "GET", uri: "/api/v7/resource9997/42")?.id == "r9997")
        #expect(big.match(method: "GET", uri: "/api/v3/resource3/x")?.id == "r3")
        #expect(big.match(method: "GET", uri: "/api/v3/resource4/x") == nil)
    }

    @Test("random tables and paths: the flattened matcher picks what the dictionary trie picked (seeded)")
    func agreesWithReference() throws {
        var random = SeededRandom(state: 0x2026_1123)
        // Few distinct segments, so paths often fit several routes and the choice matters; more
        // than `linearLimit` at the root, so the hashed lookup is exercised too.
        let words = ["orders", "items", "a", "b", "export", "v1", "x-1", "%2F", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]
        let methodSets = [[], ["GET"], ["POST"], ["GET", "PUT"], ["DELETE"]]
        var checked = 0
        var matched = 0
        for _ in 0..<150 {
            var routes: [(id: String, methods: [String], path: String)] = []
            var seen = Set<String>()
            for index in 0..<(1 + random.below(30)) {
                let depth = random.below(4)
                var parts: [String] = []
                for position in 0..<depth {
                    parts.append(random.below(4) == 0 ? "{p\(position)}" : words[random.below(words.count)])
                }
                var path = "/" + parts.joined(separator: "/")
                if random.below(4) == 0 { path += path == "/" ? "**" : "/**" }
                let methods = methodSets[random.below(methodSets.count)]
                // Skip a route that would be ambiguous with an earlier one (the table refuses it).
                let shape = path.replacingOccurrences(of: #"\{p\d\}"#, with: "{}", options: .regularExpression)
                let keys = methods.isEmpty ? [shape + " *"] : methods.map { shape + " " + $0 } + [shape + " *"]
                if keys.contains(where: seen.contains) || (methods.isEmpty && seen.contains(where: { $0.hasPrefix(shape + " ") })) { continue }
                keys.forEach { seen.insert($0) }
                routes.append(("r\(index)", methods, path))
            }
            let table = try table(routes)
            let reference = ReferenceRouteMatcher(routes: table.routes)
            for _ in 0..<40 {
                var parts: [String] = []
                for _ in 0..<random.below(5) {
                    parts.append(random.below(5) == 0 ? "zz\(random.below(3))" : random.below(6) == 0 ? "" : words[random.below(words.count)])
                }
                let query = ["", "?q=1", "#f", "?a/b"][random.below(4)]
                let uri = "/" + parts.joined(separator: "/") + query
                let method = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"][random.below(6)]
                let found = table.matcher.matchIndex(method: method, uri: uri)
                #expect(found == reference.matchIndex(method: method, uri: uri), "\(method) \(uri)")
                checked += 1
                if found != nil { matched += 1 }
            }
        }
        #expect(checked == 6000)
        // Enough of the paths fit some route for the agreement to mean something.
        #expect(matched > 600, "only \(matched) of 6000 paths matched a route")
    }
}
