import Foundation
import Logging
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerAdmin

@Suite("Admin API: tokens and the OpenAPI document")
struct AdminAPITests {
    @Test("writes answer 401 without a token and 403 with a wrong one; the right one passes")
    func writesNeedAToken() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let missing = try await proxy.admin("POST", "/api/routes/walk/promote", token: nil, body: [:])
            #expect(missing.status == 401)
            #expect(missing.headers["www-authenticate"] == #"Bearer realm="strangler-admin""#)
            #expect((missing.json as? [String: Any])?["error"] as? String == "unauthorized")
            let wrong = try await proxy.admin("POST", "/api/routes/walk/promote", token: "not-the-token-at-all-0000", body: [:])
            #expect(wrong.status == 403)
            #expect((wrong.json as? [String: Any])?["error"] as? String == "forbidden")
            for path in ["/api/rollback", "/api/routes/walk/demote", "/api/routes/walk/mode"] {
                #expect(try await proxy.admin("POST", path, token: nil, body: [:]).status == 401, "\(path)")
                #expect(try await proxy.admin("POST", path, token: "wrong-wrong-wrong-wrong", body: [:]).status == 403, "\(path)")
            }
            #expect(proxy.liveMode("walk") == .legacy, "nothing changed")
            #expect(try await proxy.store.changes().isEmpty)

            // With tokens configured, reads need one too; health, metrics and the document don't.
            #expect(try await proxy.admin("GET", "/api/routes", token: nil).status == 401)
            #expect(try await proxy.admin("GET", "/api/changes", token: "wrong-wrong-wrong-wrong").status == 403)
            #expect(try await proxy.admin("GET", "/api/routes").status == 200)
            for open in ["/healthz", "/metrics", "/openapi.json"] {
                #expect(try await proxy.admin("GET", open, token: nil).status == 200, "\(open)")
            }
            // The store's state is said beside the proxy's.
            let ready = try await proxy.admin("GET", "/readyz", token: nil).json as? [String: Any]
            #expect(ready?["status"] as? String == "ready")
            #expect((ready?["store"] as? [String: Any])?["state"] as? String == "ok")
            let ok = try await proxy.admin("POST", "/api/routes/walk/promote", body: ["reason": "token works"])
            #expect(ok.status == 200)
            #expect(proxy.liveMode("walk") == .shadow)

            // `*` names no version: any current table.
            let any = try await proxy.admin("POST", "/api/routes/walk/mode", body: ["mode": "legacy"], headers: ["If-Match": "*"])
            #expect(any.status == 200)
            #expect(proxy.liveMode("walk") == .legacy)
        }
    }

    @Test("a write made against another table version is refused with 409 and the current version; If-Match and expectedVersion name it")
    func expectedVersion() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let live = proxy.server.state.status.table.version
            let stale = try await proxy.admin("POST", "/api/routes/walk/promote", body: ["reason": "r", "expectedVersion": "0123456789abcdef"])
            #expect(stale.status == 409)
            let document = stale.json as? [String: Any]
            #expect(document?["error"] as? String == "version_conflict")
            #expect(document?["currentVersion"] as? String == live)
            #expect(proxy.liveMode("walk") == .legacy, "nothing changed")
            #expect(try await proxy.store.changes().isEmpty)

            let tagged = try await proxy.admin("POST", "/api/routes/walk/mode", body: ["mode": "shadow"], headers: ["If-Match": #""00""#])
            #expect(tagged.status == 409)
            let disagree = try await proxy.admin(
                "POST",
                "/api/routes/walk/mode",
                body: ["mode": "shadow", "expectedVersion": live],
                headers: ["If-Match": #""00""#]
            )
            #expect(disagree.status == 400)
            for malformed in [#"W/"\#(live)""#, #""a", "b""#, "unquoted"] {
                let refused = try await proxy.admin("POST", "/api/routes/walk/mode", body: ["mode": "shadow"], headers: ["If-Match": malformed])
                #expect(refused.status == 400, "\(malformed)")
                #expect((refused.json as? [String: Any])?["error"] as? String == "bad_request")
            }
            #expect(proxy.liveMode("walk") == .legacy, "nothing changed")

            let current = try await proxy.admin("POST", "/api/routes/walk/mode", body: ["mode": "shadow"], headers: ["If-Match": "\"\(live)\""])
            #expect(current.status == 200)
            #expect((current.json as? [String: Any])?["tableVersionBefore"] as? String == live)
            #expect(proxy.liveMode("walk") == .shadow)
        }
    }

    @Test("an admin connection that sends nothing, or stops part-way through a head, is closed after the idle timeout")
    func idleAdminConnectionsClosed() async throws {
        try await ControlledProxy.run(routes: "[]", adminIdleTimeout: .milliseconds(300)) { proxy in
            let silent = try await RawConnection.connect(port: proxy.adminPort)
            let partial = try await RawConnection.connect(port: proxy.adminPort)
            try await partial.send("GET /healthz HTTP/1.1\r\nHo")
            #expect(await silent.waitUntilClosed(seconds: 30))
            #expect(await partial.waitUntilClosed(seconds: 30))
            // The listener still answers.
            #expect(try await proxy.admin("GET", "/healthz", token: nil).status == 200)
        }
    }

    @Test("--admin-open-reads opens reads only; writes still need the token")
    func openReads() async throws {
        try await ControlledProxy.run(
            routes: ControlledProxy.walkRoute,
            access: AdminAccess(tokens: [ControlledProxy.token], openReads: true)
        ) { (proxy: ControlledProxy) async throws in
            #expect(try await proxy.admin("GET", "/api/stats", token: nil).status == 200)
            #expect(try await proxy.admin("POST", "/api/routes/walk/promote", token: nil, body: [:]).status == 401)
        }
    }

    @Test("an admin listener off loopback without a token is refused at start, saying what to do")
    func nonLoopbackNeedsToken() async throws {
        let table = try RouteTable.parse(
            Data(#"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9"}}, "defaultUpstream": "legacy", "routes": []}"#.utf8)
        )
        let server = ProxyServer(configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1), table: table, logger: Logger(label: "t"))
        #expect {
            _ = try AdminAPI.makeApplication(server: server, host: "0.0.0.0", port: 0, logger: Logger(label: "t"))
        } throws: { error in
            "\(error)".contains("refusing to bind the admin listener to 0.0.0.0 without a token") && "\(error)".contains("--admin-token-file")
        }
        _ = try AdminAPI.makeApplication(
            server: server,
            access: AdminAccess(tokens: [ControlledProxy.token]),
            host: "0.0.0.0",
            port: 0,
            logger: Logger(label: "t")
        )
        _ = try AdminAPI.makeApplication(server: server, host: "127.0.0.1", port: 0, logger: Logger(label: "t"))
    }

    @Test("token files: named and bare tokens, comments; short or missing tokens are refused with the fix")
    func tokenFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString)").path
        try "# ops tokens\nalice:0123456789abcdef0123\n\n  fedcba9876543210fedc  \n".write(toFile: path, atomically: true, encoding: .utf8)
        let tokens = try AdminAccess.load(file: path, environment: ["STRANGLER_ADMIN_TOKEN": "ci:ffffffffffffffffffff"])
        #expect(
            tokens == [
                .init(name: "alice", secret: "0123456789abcdef0123"), .init(name: "admin", secret: "fedcba9876543210fedc"),
                .init(name: "ci", secret: "ffffffffffffffffffff"),
            ]
        )
        try "bob:short\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            _ = try AdminAccess.load(file: path, environment: [:])
        } throws: { error in
            "\(error)".contains(":1: the token for \"bob\" is 5 characters; use at least 16")
        }
        #expect(throws: AdminAccessError.self) { _ = try AdminAccess.load(file: path + ".missing", environment: [:]) }
        let access = AdminAccess(tokens: tokens)
        #expect(access.decide(authorization: "Bearer 0123456789abcdef0123", write: true) == .allowed(tokenName: "alice"))
        #expect(access.decide(authorization: "bearer ffffffffffffffffffff", write: true) == .allowed(tokenName: "ci"))
        #expect(access.decide(authorization: "Basic abc", write: true) == .missing("this endpoint needs `Authorization: Bearer <token>`"))
        #expect(access.decide(authorization: "Bearer 0123456789abcdef012", write: true) == .wrong("the bearer token is not one this proxy accepts"))
    }

    @Test("each endpoint is defined once: the router's path, the client's path and the document's come from it")
    func endpointsDefinedOnce() throws {
        #expect(Set(AdminEndpoint.all).count == AdminEndpoint.all.count)
        for endpoint in AdminEndpoint.all {
            #expect(AdminOpenAPI.operations[endpoint] != nil, "\(endpoint.method) \(endpoint.template) has no operation in the document")
        }
        #expect(AdminOpenAPI.operations.count == AdminEndpoint.all.count)
        #expect(AdminEndpoint.routeChanges.routerPath == "/api/routes/:id/changes")
        // An id is one path segment whatever it holds; query values are encoded.
        #expect(AdminEndpoint.routeStats.path(id: "orders/by id") == "/api/routes/orders%2Fby%20id/stats")
        #expect(AdminEndpoint.changes.path(query: [("limit", "5"), ("q", "a&b=c")]) == "/api/changes?limit=5&q=a%26b%3Dc")
        let document = try JSONSerialization.jsonObject(with: Data(AdminOpenAPI.document.utf8)) as? [String: Any]
        let paths = try #require(document?["paths"] as? [String: Any])
        #expect(Set(paths.keys) == Set(AdminEndpoint.all.map(\.template) + DashboardAssets.all.map(\.path)))
    }

    @Test("every answer of every documented endpoint matches its schema in /openapi.json")
    func openAPIDocumentMatchesAnswers() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let document = try #require(try await proxy.admin("GET", "/openapi.json", token: nil).data)
            let spec = try JSONDocument.parse(document)
            let validator = SchemaValidator(spec: spec)
            _ = try await RawConnection.get(port: proxy.port, "/walk/echo")

            var checked = Set<String>()
            func check(
                _ method: String,
                _ template: String,
                _ path: String,
                token: String? = ControlledProxy.token.secret,
                body: [String: Any]? = nil,
                expect status: Int
            ) async throws {
                let answer = try await proxy.admin(method, path, token: token, body: body)
                #expect(answer.status == status, "\(method) \(path): \(String(decoding: answer.data, as: UTF8.self))")
                let problems = validator.validate(
                    answer: answer.data,
                    contentType: answer.headers["content-type"] ?? "",
                    method: method,
                    path: template,
                    status: answer.status
                )
                #expect(problems.isEmpty, "\(method) \(path) \(answer.status): \(problems)")
                checked.insert("\(method) \(template)")
            }
            try await check("GET", "/healthz", "/healthz", token: nil, expect: 200)
            try await check("GET", "/readyz", "/readyz", token: nil, expect: 200)
            try await check("GET", "/metrics", "/metrics", token: nil, expect: 200)
            try await check("GET", "/openapi.json", "/openapi.json", token: nil, expect: 200)
            try await check("GET", "/api/routes", "/api/routes", expect: 200)
            try await check("GET", "/api/routes", "/api/routes", token: nil, expect: 401)
            try await check("GET", "/api/routes/{id}", "/api/routes/walk", expect: 200)
            try await check("GET", "/api/routes/{id}", "/api/routes/nope", expect: 404)
            try await check("POST", "/api/routes/{id}/promote", "/api/routes/walk/promote", body: ["reason": "r"], expect: 200)
            try await check("POST", "/api/routes/{id}/promote", "/api/routes/walk/promote", body: [:], expect: 409)
            try await check("POST", "/api/routes/{id}/promote", "/api/routes/walk/promote", body: ["force": true], expect: 400)
            try await check("POST", "/api/routes/{id}/promote", "/api/routes/walk/promote", token: "wrong-wrong-wrong-wrong", body: [:], expect: 403)
            try await check(
                "POST",
                "/api/routes/{id}/mode",
                "/api/routes/walk/mode",
                body: ["mode": "canary", "percent": 20, "force": true, "reason": "r"],
                expect: 200
            )
            try await check("POST", "/api/routes/{id}/mode", "/api/routes/walk/mode", body: ["mode": "sideways"], expect: 400)
            try await check("POST", "/api/routes/{id}/demote", "/api/routes/walk/demote", body: [:], expect: 200)
            try await check("POST", "/api/routes/{id}/demote", "/api/routes/nope/demote", body: [:], expect: 404)
            try await check("GET", "/api/stats", "/api/stats", expect: 200)
            try await check("GET", "/api/routes/{id}/stats", "/api/routes/walk/stats", expect: 200)
            try await check("GET", "/api/changes", "/api/changes?limit=10", expect: 200)
            try await check("GET", "/api/routes/{id}/changes", "/api/routes/walk/changes", expect: 200)
            // SQLite reads a negative LIMIT as none: such a page would be the whole trail.
            try await check("GET", "/api/changes", "/api/changes?limit=-1", expect: 400)
            try await check("GET", "/api/routes/{id}/changes", "/api/routes/walk/changes?limit=1001", expect: 400)
            let refused = try await proxy.admin("GET", "/api/changes?limit=many")
            #expect(refused.status == 400)
            #expect((refused.json as? [String: Any])?["error"] as? String == "bad_limit")
            try await check("POST", "/api/rollback", "/api/rollback", body: ["reason": "drill"], expect: 200)
            try await check("POST", "/api/rollback", "/api/rollback", body: ["to": "0000000000"], expect: 404)
            // Give the report comparisons, differences, examples and an accepted difference to show.
            for index in 0..<8 { _ = try await RawConnection.get(port: proxy.port, "/walk/echo?n=\(index)") }
            for _ in 0..<400 where try await proxy.store.comparisonsCounted(route: "walk") < 8 {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await proxy.store.accept(routeID: "walk", pointer: "/upstream", reason: "names differ on purpose", owner: "test", until: nil)
            let report = try #require(try await proxy.admin("GET", "/api/report?route=walk").json as? [String: Any])
            let walk = try #require((report["routes"] as? [[String: Any]])?.first)
            #expect((walk["topDifferences"] as? [Any])?.isEmpty == false)
            #expect((walk["accepted"] as? [Any])?.count == 1)
            try await check("GET", "/api/report", "/api/report?since=1h", expect: 200)
            try await check("GET", "/api/report", "/api/report?route=walk&examples=1", expect: 200)
            try await check("GET", "/api/report", "/api/report?since=yesterday-ish", expect: 400)
            try await check("GET", "/api/report", "/api/report", token: nil, expect: 401)
            try await check("GET", "/", "/", token: nil, expect: 200)
            try await check("GET", "/dashboard.css", "/dashboard.css", token: nil, expect: 200)
            try await check("GET", "/dashboard.js", "/dashboard.js", token: nil, expect: 200)

            // Every documented operation was exercised.
            let documented = validator.operations()
            #expect(documented == checked, "not exercised: \(documented.subtracting(checked)); undocumented: \(checked.subtracting(documented))")
        }
    }

    static let predicatedRoutes = """
        [{"id": "walk", "path": "/walk/**", "mode": "legacy", "service": "service", "shadow": {"sampleRate": 1.0}},
         {"id": "walk-web", "methods": ["GET"], "path": "/walk/**", "mode": "shadow", "service": "service",
          "match": {"host": "Shop.Example.com.", "headers": {"X-Channel": "web"}, "query": {"tenant": ["t-17", "t-42"]},
                    "cookies": {"beta": {"present": true}}}}]
        """

    @Test("/api/routes carries a route's predicates as routes.json spells them, none for a plain route; the answers match the schema")
    func routesCarryPredicates() async throws {
        try await ControlledProxy.run(routes: Self.predicatedRoutes) { proxy in
            let spec = try JSONDocument.parse(try #require(try await proxy.admin("GET", "/openapi.json", token: nil).data))
            let validator = SchemaValidator(spec: spec)

            let table = try await proxy.admin("GET", "/api/routes")
            #expect(table.status == 200)
            let problems = validator.validate(
                answer: table.data,
                contentType: table.headers["content-type"] ?? "",
                method: "GET",
                path: "/api/routes",
                status: 200
            )
            #expect(problems.isEmpty, "\(problems)")
            let routes = try #require((table.json as? [String: Any])?["routes"] as? [[String: Any]])
            #expect(routes.count == 2)
            #expect(routes[0]["id"] as? String == "walk")
            #expect(routes[0].keys.contains("match") == false, "a route without predicates has no match member")
            let match = try #require(routes[1]["match"] as? [String: Any])
            #expect(match["host"] as? String == "shop.example.com")
            #expect(match["headers"] as? [String: String] == ["x-channel": "web"], "header names in lower case")
            #expect((match["query"] as? [String: Any])?["tenant"] as? [String] == ["t-17", "t-42"])
            #expect((match["cookies"] as? [String: Any])?["beta"] as? [String: Bool] == ["present": true])

            // As the CLI reads it (`routes list --admin`): the same predicates as the live table's.
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let document = try decoder.decode(LiveTableDocument.self, from: table.data)
            let live = proxy.server.state.status.table.routes
            #expect(document.routes[0].match == nil)
            #expect(RouteMatch(json: try #require(document.routes[1].match)) == live[1].match)
            #expect(live[1].match.isEmpty == false)

            for (path, template) in [("/api/routes/walk-web", "/api/routes/{id}"), ("/api/routes/walk-web/stats", "/api/routes/{id}/stats")] {
                let answer = try await proxy.admin("GET", path)
                #expect(answer.status == 200, "\(path)")
                let problems = validator.validate(
                    answer: answer.data,
                    contentType: answer.headers["content-type"] ?? "",
                    method: "GET",
                    path: template,
                    status: 200
                )
                #expect(problems.isEmpty, "\(path): \(problems)")
                #expect(String(decoding: answer.data, as: UTF8.self).contains(#""x-channel" : "web""#), "\(path)")
            }

            // The schema describes match closely enough to catch a member it does not have.
            let wrong = String(decoding: table.data, as: UTF8.self).replacingOccurrences(of: #""host" : "#, with: #""regex" : "#)
            #expect(wrong != String(decoding: table.data, as: UTF8.self))
            let refused = validator.validate(
                answer: Data(wrong.utf8),
                contentType: "application/json",
                method: "GET",
                path: "/api/routes",
                status: 200
            )
            #expect(refused.contains { $0.contains("match") && $0.contains("regex") }, "\(refused)")
        }
    }
}
