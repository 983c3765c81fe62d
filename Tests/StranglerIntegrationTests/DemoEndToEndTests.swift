import DemoOMS
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The demo's pieces on port 0 behind the proxy, routed by the repository's own routes.json.
@Suite("Demo end to end")
struct DemoEndToEndTests {
    static let repositoryRoutes = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../routes.json").standardizedFileURL.path

    static var logger: Logger {
        var logger = Logger(label: "test.demo")
        logger.logLevel = .critical
        return logger
    }

    /// The demo's legacy OMS and extracted services on port 0, with one database, while `body` runs.
    /// `body` gets the database, its folder, and a transform that points routes.json's upstreams
    /// at the bound ports.
    static func withDemoUpstreams(
        _ body: (OMSDatabase, URL, @escaping @Sendable (RouteTable) -> RouteTable) async throws -> Void
    ) async throws {
        let logger = Self.logger
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)")
        let database = try OMSDatabase(path: directory.appendingPathComponent("oms.sqlite").path)
        let ports = NIOLockedValueBox<[String: Int]>([:])
        let legacy = LegacyOMS.makeApplication(database: database, host: "127.0.0.1", port: 0, logger: logger) { port in
            ports.withLockedValue { $0["legacy"] = port }
        }
        let routers = [
            ("inventory", ExtractedServices.inventoryRouter(database: database)),
            ("tracking", ExtractedServices.trackingRouter(database: database)),
            ("orders", ExtractedServices.ordersRouter(database: database)),
        ]
        let services = routers.map { name, router in
            ExtractedServices.makeApplication(name: name, router: router, host: "127.0.0.1", port: 0, logger: logger) { port in
                ports.withLockedValue { $0[name] = port }
            }
        }
        let upstreams = ServiceGroup(services: [legacy] + services.map { $0 as any Service }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await upstreams.run() }
            for _ in 0..<500 where ports.withLockedValue({ $0.count }) < 4 { try await Task.sleep(for: .milliseconds(10)) }
            let addresses: [String: (host: String, port: Int)] = ports.withLockedValue { $0 }.mapValues { ("127.0.0.1", $0) }
            do {
                try await body(database, directory) { $0.replacingUpstreamAddresses(addresses) }
            } catch {
                await upstreams.triggerGracefulShutdown()
                throw error
            }
            await upstreams.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test("a seeded order comes through the proxy; a route moved to service is served by the service; admin shows it")
    func demoLoop() async throws {
        let logger = Self.logger
        try await Self.withDemoUpstreams { database, directory, transform in
            try await withThrowingTaskGroup(of: Void.self) { tasks in

                // A working copy of the repository's table, so the test can edit it.
                let routesPath = directory.appendingPathComponent("routes.json").path
                try FileManager.default.copyItem(atPath: Self.repositoryRoutes, toPath: routesPath)
                let table = transform(try RouteTableLoader.load(path: routesPath))
                let server = ProxyServer(
                    configuration: .init(port: 0, threads: 2, accessLog: false),
                    table: table,
                    source: routesPath,
                    logger: logger
                )
                try await server.start()
                let adminPort = NIOLockedValueBox<Int?>(nil)
                let admin = try AdminAPI.makeApplication(server: server, host: "127.0.0.1", port: 0, logger: logger) { port in
                    adminPort.withLockedValue { $0 = port }
                }
                let watcher = RouteTableWatcher(path: routesPath, server: server, interval: .milliseconds(100), logger: logger, transform: transform)
                let control = ServiceGroup(services: [admin, watcher], logger: logger)
                tasks.addTask { try await control.run() }
                let proxy = server.localPort!

                let order = try await RawConnection.get(port: proxy, "/orders/ORD-100001")
                #expect(order.status == 200)
                #expect(order.json()["orderId"] as? String == "ORD-100001")
                #expect(order.header("x-strangler-upstream") == "legacy")

                let before = try await RawConnection.get(port: proxy, "/inventory/SKU-1001")
                #expect(before.header("x-strangler-upstream") == "legacy")
                #expect(before.json()["sysFlags"] as? String == "0x00")

                // Move inventory-read to service by editing the file, as an ops engineer would.
                var text = try String(contentsOfFile: routesPath, encoding: .utf8)
                let range = try #require(text.range(of: "\"mode\": \"shadow\""))
                text.replaceSubrange(range, with: "\"mode\": \"service\"")
                try text.write(toFile: routesPath, atomically: true, encoding: .utf8)
                var servedBy = ""
                for _ in 0..<100 {
                    servedBy = try await RawConnection.get(port: proxy, "/inventory/SKU-1001").header("x-strangler-upstream") ?? ""
                    if servedBy == "inventory" { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(servedBy == "inventory")
                let after = try await RawConnection.get(port: proxy, "/inventory/SKU-1001")
                #expect(after.json()["available"] is Int)

                for _ in 0..<500 where adminPort.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
                let adminResponse = try await RawConnection.get(port: try #require(adminPort.withLockedValue { $0 }), "/api/routes")
                #expect(adminResponse.status == 200)
                let document = adminResponse.json()
                #expect(document["version"] as? String == server.state.status.table.version)
                #expect(document["loads"] as? Int == 2)
                let routes = document["routes"] as? [[String: Any]] ?? []
                #expect(routes.first { $0["id"] as? String == "inventory-read" }?["servedBy"] as? String == "inventory")
                // The channel-scoped order placement carries its predicate; the catch-all has none.
                let web = try #require(routes.first { $0["id"] as? String == "order-place-web" })
                #expect((web["match"] as? [String: Any])?["headers"] as? [String: String] == ["x-channel": "web"])
                #expect(web["mode"] as? String == "shadow")
                let others = try #require(routes.first { $0["id"] as? String == "order-place" })
                #expect(others["match"] == nil)
                #expect(others["mode"] as? String == "legacy")
                let metrics = try await RawConnection.get(port: try #require(adminPort.withLockedValue { $0 }), "/metrics")
                #expect(metrics.text.contains("strangler_requests_total"))
                #expect(metrics.text.contains("route=\"inventory-read\""))

                await control.triggerGracefulShutdown()
                await server.shutdown()
                try await tasks.waitForAll()
            }
        }
    }

    @Test("a web POST /orders is shadowed by order-place-web: legacy commits, the orders service answers a dry run; a store order stays on legacy")
    func dryRunShadowCreatesNothing() async throws {
        try await Self.withDemoUpstreams { database, _, transform in
            try await ShadowPipeline.run { pipeline in
                // Generous timeouts: this test is about dry-run semantics, and a loaded CI machine
                // must not turn the shadow call into a candidate_timeout.
                let loaded = transform(try RouteTableLoader.load(path: Self.repositoryRoutes))
                let table = try RouteTable(
                    upstreams: loaded.upstreams.mapValues {
                        var upstream = $0
                        upstream.timeoutMs = 30_000
                        return upstream
                    },
                    defaultUpstream: loaded.defaultUpstream,
                    routes: loaded.routes,
                    version: loaded.version
                )
                let server = ProxyServer(
                    configuration: .init(port: 0, threads: 2, accessLog: false),
                    table: table,
                    logger: Self.logger,
                    shadowSink: pipeline.worker
                )
                try await server.start()
                let count = { try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM orders") ?? 0 } }
                let before = try await count()
                let body = #"{"customerId": "CUST-0003", "items": [{"sku": "SKU-1004", "qty": 1}]}"#
                func place(_ requestID: String, channel: String) async throws -> RawConnection.Response {
                    try await RawConnection.exchange(
                        port: server.localPort!,
                        "POST /orders HTTP/1.1\r\nHost: x\r\nX-Request-Id: \(requestID)\r\nX-Channel: \(channel)\r\n"
                            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                    )
                }
                // The store's order first: were it shadowed, its comparison would be queued
                // ahead of the web order's.
                let store = try await place("place-store", channel: "store")
                #expect(store.status == 201)
                #expect(store.header("x-strangler-upstream") == "legacy")
                let web = try await place("place-web", channel: "web")
                #expect(web.status == 201)
                #expect(web.header("x-strangler-upstream") == "legacy")
                #expect(try await pipeline.waitForComparisons(1) == 1)
                let row = try #require(try await pipeline.row(requestID: "place-web"))
                #expect(row["route_id"] as String == "order-place-web")
                #expect(row["candidate_status"] as Int? == 201)
                #expect(try await pipeline.row(requestID: "place-store") == nil, "order-place is in legacy mode: nothing to compare")
                #expect(try await count() == before + 2, "legacy placed both orders; the dry run placed none")
                await server.shutdown()
            }
        }
    }
}
