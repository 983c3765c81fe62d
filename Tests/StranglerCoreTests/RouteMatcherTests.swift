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
}
