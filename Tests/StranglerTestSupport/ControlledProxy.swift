import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A proxy as `strangler serve` runs it: a routes file on disk, hot reload with the file audit,
/// a real diff store with the comparison pipeline, the route controller, the canary monitor and
/// the admin API, all in one ServiceGroup, in front of two test upstreams.
package struct ControlledProxy {
    package let legacy: TestUpstream
    package let service: TestUpstream
    package let server: ProxyServer
    package let store: SQLiteDiffStore
    package let control: ControlPlane
    package let routesPath: String
    package let adminPort: Int
    package var port: Int { server.localPort! }
    package var controller: RouteController { control.controller }

    package static let token = AdminAccess.Token(name: "ops-bot", secret: "s3cret-token-for-tests-0123456789")

    /// One route under `/walk/**`, legacy, shadowing every request, with a gate that five
    /// samples pass: enough to walk it through every mode.
    package static let walkRoute = """
        [{"id": "walk", "path": "/walk/**", "mode": "legacy", "service": "service", "shadow": {"sampleRate": 1.0},
          "gate": {"minSamples": 5, "maxMismatchRate": 1.0}}]
        """

    /// The routes file for the two upstreams, in the canonical layout.
    package static func routesFile(legacyPort: Int, servicePort: Int, routes: String) throws -> Data {
        let json = """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:\(legacyPort)"}, "service": {"url": "http://127.0.0.1:\(servicePort)"}},
             "defaultUpstream": "legacy", "routes": \(routes)}
            """
        return try RouteTableDocument(data: Data(json.utf8)).formatted
    }

    /// Runs `body` with everything started, then shuts it all down gracefully.
    package static func run(
        routes: String,
        access: AdminAccess = AdminAccess(tokens: [token]),
        monitor: CanaryMonitor.Configuration = .init(tick: .milliseconds(50), flushEvery: .milliseconds(200), window: .seconds(3), minRequests: 10),
        rules: RouteController.Configuration = .init(),
        adminIdleTimeout: TimeAmount = .seconds(60),
        _ body: (ControlledProxy) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test.control")
        logger.logLevel = .critical
        let legacy = try await TestUpstream(name: "legacy")
        let service = try await TestUpstream(name: "service")
        let store = try makeTestStore("control")
        let routesPath = routesFilePath(beside: store)
        try routesFile(legacyPort: legacy.port, servicePort: service.port, routes: routes).write(to: URL(fileURLWithPath: routesPath))
        let table = try RouteTableLoader.load(path: routesPath)

        let metrics = ProxyMetrics()
        let recorder = DiffRecorder(store: store, interval: .milliseconds(20), rollupInterval: .zero, logger: logger)
        let worker = ComparisonWorker(recorder: recorder, metrics: metrics, logger: logger)
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 2, shutdownGracePeriod: .seconds(2), accessLog: false),
            table: table,
            source: routesPath,
            logger: logger,
            metrics: metrics,
            shadowSink: worker
        )
        let control = ControlPlane(
            server: server,
            routesPath: routesPath,
            store: store,
            worker: worker,
            logger: logger,
            controllerConfiguration: rules,
            monitorConfiguration: monitor
        )
        let adminPort = NIOLockedValueBox<Int?>(nil)
        let admin = try AdminAPI.makeApplication(
            server: server,
            controller: control.controller,
            access: access,
            host: "127.0.0.1",
            port: 0,
            idleTimeout: adminIdleTimeout,
            logger: logger
        ) { port in adminPort.withLockedValue { $0 = port } }
        await control.recordStartingTable()
        do {
            try await whileRunning([recorder, worker, ProxyService(server: server), admin] + control.services, logger: logger) {
                for _ in 0..<500 where server.localPort == nil || adminPort.withLockedValue({ $0 }) == nil {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let fixture = ControlledProxy(
                    legacy: legacy,
                    service: service,
                    server: server,
                    store: store,
                    control: control,
                    routesPath: routesPath,
                    adminPort: try #require(adminPort.withLockedValue { $0 })
                )
                try await body(fixture)
            }
        } catch {
            await legacy.stop()
            await service.stop()
            throw error
        }
        await legacy.stop()
        await service.stop()
    }

    /// An admin API call through URLSession (libcurl on Linux): a second HTTP stack.
    package func admin(
        _ method: String,
        _ path: String,
        token: String? = ControlledProxy.token.secret,
        body: [String: Any]? = nil,
        headers extra: [String: String] = [:]
    ) async throws
        -> (status: Int, json: Any?, headers: [String: String], data: Data)
    {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(adminPort)\(path)")!)
        request.httpMethod = method
        for (name, value) in extra { request.setValue(value, forHTTPHeaderField: name) }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers["\(name)".lowercased()] = "\(value)" }
        return (http.statusCode, try? JSONSerialization.jsonObject(with: data), headers, data)
    }

    /// Who served a GET: the `X-Strangler-Upstream` header (a test failure if the request failed).
    package func servedBy(_ target: String, headers: [String] = []) async throws -> String? {
        let response = try await RawConnection.get(port: port, target, headers: headers)
        #expect(response.status == 200, "GET \(target) answered \(response.status)")
        return response.header("x-strangler-upstream")
    }

    /// The live mode of a route.
    package func liveMode(_ id: String) -> RouteMode? {
        server.state.status.table.routes.first { $0.id == id }?.mode
    }
}

/// Sends GETs on keep-alive connections until stopped, counting answers that were not 200 (or
/// did not come), so a test can show that changes happened under traffic with no failure. With
/// a `pause` between requests it stays light, leaving the cores to the work under test.
package final class TrafficLoop: Sendable {
    private let counts = NIOLockedValueBox((ok: 0, failed: 0, failures: [String]()))
    private let stopped = NIOLockedValueBox(false)
    private let task: Task<Void, Never>

    package init(port: Int, target: String, connections: Int = 2, pause: Duration? = nil) {
        let counts = self.counts
        let stopped = self.stopped
        task = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<connections {
                    group.addTask {
                        var connection: RawConnection?
                        while !stopped.withLockedValue({ $0 }) {
                            do {
                                if connection == nil { connection = try await RawConnection.connect(port: port) }
                                try await connection!.send("GET \(target) HTTP/1.1\r\nHost: shop.example\r\n\r\n")
                                let response = try await connection!.readResponse()
                                counts.withLockedValue {
                                    if response.status == 200 {
                                        $0.ok += 1
                                    } else {
                                        $0.failed += 1
                                        $0.failures.append("status \(response.status)")
                                    }
                                }
                            } catch {
                                counts.withLockedValue {
                                    $0.failed += 1
                                    $0.failures.append("\(error)")
                                }
                                await connection?.close()
                                connection = nil
                            }
                            if let pause { try? await Task.sleep(for: pause) }
                        }
                        await connection?.close()
                    }
                }
            }
        }
    }

    var ok: Int { counts.withLockedValue { $0.ok } }

    /// Stops the loop and returns what it counted.
    package func stop() async -> (ok: Int, failed: Int, failures: [String]) {
        stopped.withLockedValue { $0 = true }
        await task.value
        return counts.withLockedValue { ($0.ok, $0.failed, $0.failures) }
    }

    /// Waits until at least `count` more answers arrived than when called.
    package func waitForMore(_ count: Int) async throws {
        let start = ok
        for _ in 0..<1000 where ok < start + count {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
