import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("Hot reload of routes.json")
struct HotReloadTests {
    static func routes(mode: String) -> String {
        #"[{"id": "svc", "path": "/svc/**", "mode": "\#(mode)", "service": "service"}]"#
    }

    /// Writes a routes file for the harness's upstreams.
    static func write(_ proxy: ProxyHarness, mode: String, to path: String) throws {
        let json = """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:\(proxy.legacy.port)"}, "service": {"url": "http://127.0.0.1:\(proxy.service.port)"}},
             "defaultUpstream": "legacy", "routes": \(routes(mode: mode))}
            """
        try Data(json.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func tempFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(UUID().uuidString).json").path
    }

    /// Runs `watcher` in a ServiceGroup around `body`, then shuts it down gracefully.
    static func running(_ watcher: RouteTableWatcher, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(services: [watcher], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "test.reload")
        logger.logLevel = .critical
        return logger
    }

    @Test("a valid change goes live; the admin state shows the new version")
    func validReload() async throws {
        try await withProxy(routes: Self.routes(mode: "legacy")) { proxy in
            let path = Self.tempFile()
            try Self.write(proxy, mode: "service", to: path)
            let watcher = RouteTableWatcher(path: path, server: proxy.server, logger: Self.logger)
            let before = proxy.server.state.status.table.version
            #expect(try await RawConnection.get(port: proxy.port, "/svc/1").header("x-strangler-upstream") == "legacy")
            #expect(await watcher.reloadIfChanged(force: false))
            #expect(try await RawConnection.get(port: proxy.port, "/svc/2").header("x-strangler-upstream") == "service")
            let status = proxy.server.state.status
            #expect(status.table.version != before)
            #expect(status.loads == 2)
            #expect(status.lastError == nil)
            #expect(await watcher.reloadIfChanged(force: false) == false, "unchanged content must not reload")
        }
    }

    @Test("an invalid table is rejected whole; the live one keeps serving and the error is recorded")
    func invalidReload() async throws {
        try await withProxy(routes: Self.routes(mode: "service")) { proxy in
            let path = Self.tempFile()
            let broken = """
                {"upstreams": {"legacy": {"url": "http://127.0.0.1:\(proxy.legacy.port)"}}, "defaultUpstream": "legacy",
                 "routes": [{"id": "svc", "path": "/svc/**", "mode": "service", "service": "inventry"}]}
                """
            try Data(broken.utf8).write(to: URL(fileURLWithPath: path))
            let watcher = RouteTableWatcher(path: path, server: proxy.server, logger: Self.logger)
            let live = proxy.server.state.status.table.version
            #expect(await watcher.reloadIfChanged(force: false) == false)
            let status = proxy.server.state.status
            #expect(status.table.version == live)
            let problem = try #require(status.lastError?.problems.first)
            #expect(problem.path == "routes[0].service")
            #expect(problem.message.contains("inventry"))
            let response = try await RawConnection.get(port: proxy.port, "/svc/still-here")
            #expect(response.status == 200)
            #expect(response.header("x-strangler-upstream") == "service")
        }
    }

    @Test("an in-flight request finishes on the table it started with")
    func inFlightKeepsItsTable() async throws {
        try await withProxy(routes: Self.routes(mode: "legacy")) { proxy in
            let path = Self.tempFile()
            try Self.write(proxy, mode: "service", to: path)
            let watcher = RouteTableWatcher(path: path, server: proxy.server, logger: Self.logger)
            let connection = try await RawConnection.connect(port: proxy.port)
            // Legacy holds its answer until the new table is live, however long the reload takes.
            try await connection.send("GET /svc/held HTTP/1.1\r\nHost: x\r\n\r\n")
            for _ in 0..<3000 where proxy.legacy.requests.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
            #expect(await watcher.reloadIfChanged(force: false))
            proxy.legacy.releaseHeld()
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(response.header("x-strangler-upstream") == "legacy")
            // The same connection's next request uses the new table.
            try await connection.send("GET /svc/next HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await connection.readResponse().header("x-strangler-upstream") == "service")
            await connection.close()
        }
    }

    @Test("no request fails while the table flips back and forth under load")
    func reloadUnderLoad() async throws {
        try await withProxy(routes: Self.routes(mode: "legacy")) { proxy in
            let legacyPath = Self.tempFile()
            let servicePath = Self.tempFile()
            try Self.write(proxy, mode: "legacy", to: legacyPath)
            try Self.write(proxy, mode: "service", to: servicePath)
            let tables = [
                try RouteTableLoader.load(path: legacyPath), try RouteTableLoader.load(path: servicePath),
            ]
            let failures = NIOLockedValueBox<[String]>([])
            let served = NIOLockedValueBox<[String: Int]>([:])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<4 {
                    group.addTask {
                        let connection = try await RawConnection.connect(port: proxy.port)
                        for index in 0..<150 {
                            try await connection.send("GET /svc/\(client)/\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
                            let response = try await connection.readResponse()
                            if response.status != 200 { failures.withLockedValue { $0.append("\(response.status) \(response.text)") } }
                            let upstream = response.header("x-strangler-upstream") ?? "?"
                            served.withLockedValue { $0[upstream, default: 0] += 1 }
                        }
                        await connection.close()
                    }
                }
                group.addTask {
                    for flip in 0..<40 {
                        try await proxy.server.apply(tables[flip % 2 == 0 ? 1 : 0])
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                try await group.waitForAll()
            }
            #expect(failures.withLockedValue { $0 }.isEmpty)
            let counts = served.withLockedValue { $0 }
            #expect(counts.values.reduce(0, +) == 600)
            #expect(Set(counts.keys).isSubset(of: ["legacy", "service"]))
        }
    }

    @Test("the running watcher picks up a file edit without a restart")
    func fileWatch() async throws {
        try await withProxy(routes: Self.routes(mode: "legacy")) { proxy in
            let path = Self.tempFile()
            try Self.write(proxy, mode: "legacy", to: path)
            let watcher = RouteTableWatcher(path: path, server: proxy.server, interval: .milliseconds(100), logger: Self.logger)
            try await Self.running(watcher) {
                try await Task.sleep(for: .milliseconds(300))
                try Self.write(proxy, mode: "service", to: path)
                var upstream = ""
                for _ in 0..<100 {
                    upstream = try await RawConnection.get(port: proxy.port, "/svc/x").header("x-strangler-upstream") ?? ""
                    if upstream == "service" { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(upstream == "service")
            }
        }
    }

    @Test("SIGHUP reloads the table")
    func sighup() async throws {
        try await withProxy(routes: Self.routes(mode: "legacy")) { proxy in
            let path = Self.tempFile()
            try Self.write(proxy, mode: "legacy", to: path)
            // Polling is effectively off here, so only the signal can trigger the reload.
            let watcher = RouteTableWatcher(path: path, server: proxy.server, interval: .seconds(3600), logger: Self.logger)
            signal(SIGHUP, SIG_IGN)  // a SIGHUP sent before the watcher traps it must not kill the test run
            try await Self.running(watcher) {
                try Self.write(proxy, mode: "service", to: path)
                for _ in 0..<100 where proxy.server.state.status.loads < 2 {
                    kill(getpid(), SIGHUP)
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(proxy.server.state.status.loads == 2)
                #expect(try await RawConnection.get(port: proxy.port, "/svc/x").header("x-strangler-upstream") == "service")
            }
        }
    }
}
