import Foundation
import StranglerCore
import Testing

@Suite("Route table validation")
struct RouteTableValidationTests {
    static let upstreams = """
        "upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "inventory": {"url": "http://127.0.0.1:9101", "timeoutMs": 2000}},
        "defaultUpstream": "legacy"
        """

    func parse(_ routes: String, upstreams: String = RouteTableValidationTests.upstreams) throws(RouteTableError) -> RouteTable {
        try RouteTable.parse(Data("{\(upstreams), \"routes\": \(routes)}".utf8))
    }

    func problems(_ routes: String, upstreams: String = RouteTableValidationTests.upstreams) -> [RouteTableError.Problem] {
        do {
            _ = try parse(routes, upstreams: upstreams)
            return []
        } catch {
            return error.problems
        }
    }

    @Test("the repository's routes.json is valid")
    func repositoryTable() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.json")
        let table = try RouteTable.parse(try Data(contentsOf: url))
        #expect(table.routes.contains { $0.id == "inventory-read" && $0.mode == .shadow })
        #expect(table.defaultUpstream == "legacy")
    }

    @Test("a valid table parses with defaults and settings")
    func valid() throws {
        let table = try parse(
            """
            [{"id": "inv", "methods": ["get"], "path": "/inventory/{sku}", "mode": "shadow", "service": "inventory",
              "shadow": {"sampleRate": 0.5, "writes": "dry-run"},
              "compare": {"ignore": ["/updatedAt", "/locations/*/lastCount"], "arrays": {"/locations": {"key": "location"}},
                          "numericTolerance": 0.005, "headers": ["Content-Type"]},
              "gate": {"minSamples": 500, "maxMismatchRate": 0.001}}]
            """
        )
        let route = try #require(table.routes.first)
        #expect(route.methods == ["GET"])
        #expect(route.legacy == "legacy")
        #expect(route.shadow?.writes == .dryRun)
        #expect(route.compare?.arrays["/locations"] == "location")
        #expect(route.compare?.headers == ["content-type"])
        #expect(route.gate?.minSamples == 500)
        #expect(table.upstreams["inventory"]?.timeoutMs == 2000)
        #expect(table.upstreams["legacy"]?.connectTimeoutMs == Upstream.defaultConnectTimeoutMs)
        #expect(table.version.count == 16)
    }

    @Test("an unknown upstream names the path and the known upstreams")
    func unknownUpstream() {
        let found = problems(
            """
            [{"id": "a", "path": "/a", "mode": "legacy"}, {"id": "b", "path": "/b", "mode": "legacy"},
             {"id": "c", "path": "/c", "mode": "legacy"}, {"id": "d", "path": "/d", "mode": "service", "service": "inventry"}]
            """
        )
        #expect(found == [.init(path: "routes[3].service", message: "unknown upstream \"inventry\"; known: inventory, legacy")])
    }

    @Test("duplicate ids are rejected, naming the first holder")
    func duplicateIDs() {
        let found = problems(#"[{"id": "a", "path": "/a", "mode": "legacy"}, {"id": "a", "path": "/b", "mode": "legacy"}]"#)
        #expect(found.map(\.path) == ["routes[1].id"])
        #expect(found.first?.message.contains("routes[0]") == true)
    }

    @Test("ambiguous routes are rejected; different methods or specificity are fine")
    func ambiguity() {
        let clash = problems(
            #"[{"id": "a", "path": "/orders/{id}", "mode": "legacy"}, {"id": "b", "methods": ["GET"], "path": "/orders/{orderId}", "mode": "legacy"}]"#
        )
        #expect(clash.map(\.path) == ["routes[1].path"])
        #expect(clash.first?.message.contains("ambiguous with routes[0]") == true)

        #expect(
            problems(
                #"[{"id": "a", "methods": ["POST"], "path": "/orders/{id}", "mode": "legacy"}, {"id": "b", "methods": ["GET"], "path": "/orders/{orderId}", "mode": "legacy"}, {"id": "c", "path": "/orders/export", "mode": "legacy"}, {"id": "d", "path": "/orders/**", "mode": "legacy"}]"#
            ).isEmpty
        )
    }

    @Test("unknown keys are errors at every level")
    func unknownKeys() {
        let found = problems(
            #"[{"id": "a", "path": "/a", "mode": "shadow", "service": "inventory", "shadw": {}, "shadow": {"rate": 1}}]"#,
            upstreams:
                #""upstreams": {"legacy": {"url": "http://127.0.0.1:1", "timeout": 5}, "inventory": {"url": "http://127.0.0.1:2"}}, "defaultUpstream": "legacy", "extra": true"#
        )
        #expect(Set(found.map(\.path)) == ["extra", "upstreams.legacy.timeout", "routes[0].shadw", "routes[0].shadow.rate"])
    }

    @Test("bad URLs, modes, paths and values each name their JSON path")
    func badValues() {
        let found = problems(
            """
            [{"id": "a", "path": "orders", "mode": "legacy"},
             {"id": "b", "path": "/x/**/y", "mode": "legacy"},
             {"id": "c", "path": "/c", "mode": "sideways"},
             {"id": "d", "path": "/d", "mode": "shadow"},
             {"id": "e f", "path": "/e", "mode": "legacy"},
             {"id": "g", "path": "/g", "mode": "canary", "service": "inventory"},
             {"id": "h", "path": "/h/{id}", "mode": "canary", "service": "inventory", "canary": {"percent": 120, "stickyKey": "param:sku"}},
             {"id": "i", "path": "/i", "mode": "shadow", "service": "inventory", "shadow": {"sampleRate": 2, "writes": "always"}},
             {"id": "j", "path": "/j", "mode": "service", "service": "legacy"},
             {"id": "k", "path": "/k", "mode": "legacy", "compare": {"ignore": ["updatedAt"]}, "gate": {"minSamples": -1}}]
            """,
            upstreams:
                #""upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "inventory": {"url": "https://inv.internal", "serverName": "10.0.0.1"}, "bad": {"url": "not a url"}}, "defaultUpstream": "legacy""#
        )
        let paths = Set(found.map(\.path))
        for expected in [
            "upstreams.inventory.serverName", "upstreams.bad.url", "routes[0].path", "routes[1].path", "routes[2].mode", "routes[3].service",
            "routes[4].id", "routes[5].canary", "routes[6].canary.percent", "routes[6].canary.stickyKey", "routes[7].shadow.sampleRate",
            "routes[7].shadow.writes", "routes[8].service", "routes[9].compare.ignore[0]", "routes[9].gate.minSamples",
        ] {
            #expect(paths.contains(expected), "expected a problem at \(expected); got \(found)")
        }
        #expect(found.first { $0.path == "upstreams.inventory.serverName" }?.message.contains("IP address") == true)
    }

    @Test("a canary sticky header with an underscore is refused: the proxy drops such request headers")
    func underscoredStickyHeader() {
        let found = problems(
            #"[{"id": "a", "path": "/a", "mode": "canary", "service": "inventory", "canary": {"percent": 10, "stickyKey": "header:X_Customer"}}]"#,
            upstreams:
                #""upstreams": {"legacy": {"url": "http://127.0.0.1:1"}, "inventory": {"url": "http://127.0.0.1:2"}}, "defaultUpstream": "legacy""#
        )
        #expect(found.map(\.path) == ["routes[0].canary.stickyKey"])
        #expect(found.first?.message.contains("\"X-Customer\"") == true, "\(found)")
        let fine = problems(
            #"[{"id": "a", "path": "/a", "mode": "canary", "service": "inventory", "canary": {"percent": 10, "stickyKey": "header:X-Customer"}}]"#,
            upstreams:
                #""upstreams": {"legacy": {"url": "http://127.0.0.1:1"}, "inventory": {"url": "http://127.0.0.1:2"}}, "defaultUpstream": "legacy""#
        )
        #expect(fine.isEmpty, "\(fine)")
    }

    @Test("invalid JSON and a missing structure are reported at $")
    func notJSON() {
        do {
            _ = try RouteTable.parse(Data("{\n  \"upstreams\": {},\n  \"routes\": [ x ]\n}".utf8))
            Issue.record("broken JSON was accepted")
        } catch {
            #expect(error.problems.first?.path == "$")
            #expect(error.problems.first?.message.contains("line 3, column 15") == true, "\(error)")
        }
        do {
            _ = try RouteTable.parse(Data("[]".utf8))
            Issue.record("an array was accepted as a table")
        } catch {
            #expect(error.problems.first?.path == "$")
        }
        do {
            _ = try RouteTable.parse(Data("{}".utf8))
            Issue.record("an empty object was accepted")
        } catch {
            #expect(Set(error.problems.map(\.path)) == ["upstreams", "defaultUpstream", "routes"])
        }
    }

    @Test("the version is a content hash: same bytes, same version")
    func version() throws {
        let a = try parse("[]")
        let b = try parse("[]")
        let c = try parse(#"[{"id": "x", "path": "/x", "mode": "legacy"}]"#)
        #expect(a.version == b.version)
        #expect(a.version != c.version)
    }
}
