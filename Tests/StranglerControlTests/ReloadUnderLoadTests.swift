import Foundation
import Logging
import ServiceLifecycle
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("Hot reload of large tables, overlapping edits and shutdown mid-reload")
struct ReloadUnderLoadTests {
    /// Writes a routes file for the harness's upstreams; returns its version.
    @discardableResult
    static func write(_ proxy: ProxyHarness, mode: String, to path: String) throws -> String {
        try HotReloadTests.write(proxy, mode: mode, to: path)
        return ContentHash.hex(of: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func served(_ proxy: ProxyHarness) async throws -> String? {
        try await RawConnection.get(port: proxy.port, "/svc/x").header("x-strangler-upstream")
    }

    @Test("an edit made while an older one is still validated goes live; the older one never does")
    func newerEditSupersedesOlder() async throws {
        try await withProxy(routes: HotReloadTests.routes(mode: "legacy")) { proxy in
            let path = HotReloadTests.tempFile()
            let hold = ReloadHold()
            let watcher = RouteTableWatcher(path: path, server: proxy.server, logger: HotReloadTests.logger, hooks: hold.hooks)
            let older = try Self.write(proxy, mode: "service", to: path)
            hold.holdValidation(of: older)
            defer { hold.releaseValidation(of: older) }
            let olderReload = Task { await watcher.reloadIfChanged(force: false) }
            await hold.validationReached(older)

            // The newer edit does not wait for the older one's validation.
            let newer = try Self.write(proxy, mode: "legacy", to: path)
            #expect(try await finishes(within: .seconds(120)) { await watcher.reloadIfChanged(force: false) })
            #expect(proxy.server.state.status.table.version == newer)

            hold.releaseValidation(of: older)
            #expect(try await finishes(within: .seconds(120)) { await olderReload.value } == false)
            let status = proxy.server.state.status
            #expect(status.table.version == newer)
            #expect(status.loads == 2, "only the newer edit went live after the first load")
            #expect(try await Self.served(proxy) == "legacy")
            #expect(proxy.server.metrics.render().contains(#"strangler_route_reloads_total{result="superseded"} 1"#))
        }
    }

    @Test("graceful shutdown returns while a table is held mid-validation; the validation goes on and can still go live")
    func shutdownMidValidation() async throws {
        try await withProxy(routes: HotReloadTests.routes(mode: "legacy")) { proxy in
            let path = HotReloadTests.tempFile()
            let hold = ReloadHold()
            let version = try Self.write(proxy, mode: "service", to: path)
            hold.holdValidation(of: version)
            defer { hold.releaseValidation(of: version) }
            let watcher = RouteTableWatcher(
                path: path,
                server: proxy.server,
                interval: .seconds(3600),
                logger: HotReloadTests.logger,
                hooks: hold.hooks
            )
            let group = ServiceGroup(services: [watcher], logger: HotReloadTests.logger)
            let running = Task { try await group.run() }
            // The watcher's first look finds the file differs from the live table.
            await hold.validationReached(version)

            await group.triggerGracefulShutdown()
            try await finishes(within: .seconds(120)) { try await running.value }
            #expect(proxy.server.state.status.loads == 1, "the service returned before the held table went live")

            hold.releaseValidation(of: version)
            // The released validation goes live by itself. This look either joins it and waits,
            // or, if the machine let the validation finish first, finds it live already.
            _ = try await finishes(within: .seconds(120)) { await watcher.reloadIfChanged(force: false) }
            #expect(proxy.server.state.status.table.version == version)
            #expect(try await Self.served(proxy) == "service")
        }
    }

    @Test("graceful shutdown returns while an audit is held; the audit is still recorded afterwards")
    func shutdownMidAudit() async throws {
        try await withProxy(routes: HotReloadTests.routes(mode: "legacy")) { proxy in
            let store = try makeTestStore("audit-hold")
            let auditor = RouteFileAuditor(store: store, logger: HotReloadTests.logger)
            let path = HotReloadTests.tempFile()
            let hold = ReloadHold()
            let watcher = RouteTableWatcher(
                path: path,
                server: proxy.server,
                interval: .seconds(3600),
                logger: HotReloadTests.logger,
                auditor: auditor,
                hooks: hold.hooks
            )
            let start = try Self.write(proxy, mode: "legacy", to: path)
            #expect(await watcher.reloadIfChanged(force: false))
            await watcher.auditsSettled()
            #expect(try await store.latestTableVersion() == start)

            let edited = try Self.write(proxy, mode: "service", to: path)
            hold.holdAudit(of: edited)
            defer { hold.releaseAudit(of: edited) }
            let group = ServiceGroup(services: [watcher], logger: HotReloadTests.logger)
            let running = Task { try await group.run() }
            await hold.auditReached(edited)
            #expect(proxy.server.state.status.table.version == edited, "a table goes live before its audit")

            await group.triggerGracefulShutdown()
            try await finishes(within: .seconds(120)) { try await running.value }
            #expect(try await store.changes().isEmpty, "the service returned before the held audit was recorded")

            hold.releaseAudit(of: edited)
            try await finishes(within: .seconds(120)) { await watcher.auditsSettled() }
            let change = try #require(try await store.changes().first)
            #expect(change.source == .file && change.tableVersionBefore == start && change.tableVersionAfter == edited)
            #expect(change.modes.before == "legacy" && change.modes.after == "service")
        }
    }

    /// `count` routes on distinct paths, all legacy but `r0`, which is in `firstMode`.
    static func manyRoutes(_ count: Int, firstMode: String) -> String {
        let routes = (0..<count).map { index in
            #"{"id": "r\#(index)", "methods": ["GET"], "path": "/area\#(index % 50)/r\#(index)/{id}", "mode": "\#(index == 0 ? firstMode : "legacy")", "service": "service"}"#
        }
        return "[" + routes.joined(separator: ",\n") + "]"
    }

    @Test("a 20,000-route table edited by hand goes live and is audited, and the edit right after it goes live too, under traffic")
    func largeTable() async throws {
        let legacy = try await TestUpstream(name: "legacy")
        let service = try await TestUpstream(name: "service")
        let store = try makeTestStore("large")
        let routesPath = routesFilePath(beside: store)
        let upstreams = #"{"legacy": {"url": "http://127.0.0.1:\#(legacy.port)"}, "service": {"url": "http://127.0.0.1:\#(service.port)"}}"#
        // r0 is the only route not in legacy; two hand edits take it shadow → service → legacy.
        let texts = try await offPool {
            let original = #"{"upstreams": \#(upstreams), "defaultUpstream": "legacy", "routes": \#(Self.manyRoutes(20_000, firstMode: "shadow"))}"#
            let toService = original.replacingOccurrences(of: #""mode": "shadow""#, with: #""mode": "service""#)
            return [original, toService, toService.replacingOccurrences(of: #""mode": "service""#, with: #""mode": "legacy""#)]
        }
        let versions = try await offPool { texts.map { ContentHash.hex(of: Data($0.utf8)) } }
        try texts[0].write(toFile: routesPath, atomically: true, encoding: .utf8)
        try await ServeRun.run(routesPath: routesPath, store: store) { proxy in
            let traffic = TrafficLoop(port: proxy.port, target: "/area1/r1/echo", connections: 1, pause: .milliseconds(20))
            let watcher = proxy.control.watcher!
            for (text, mode) in zip(texts.dropFirst(), [RouteMode.service, .legacy]) {
                try text.write(toFile: routesPath, atomically: true, encoding: .utf8)
                // Returns once the file's content is live (a poll may have started the reload).
                try await finishes(within: .seconds(120)) { await watcher.reloadIfChanged(force: false) }
                #expect(proxy.liveMode("r0") == mode)
            }
            #expect(proxy.server.state.status.table.version == versions[2])
            #expect(proxy.server.state.status.table.routes.count == 20_000)
            try await finishes(within: .seconds(120)) { await watcher.auditsSettled() }

            // One row per reload, naming the one route that changed.
            let changes = try await store.changes()
            #expect(changes.map(\.routeID) == ["r0", "r0"])
            #expect(changes.map(\.modes.after) == ["legacy", "service"])
            #expect(changes.map(\.modes.before) == ["service", "shadow"])
            #expect(changes.map(\.tableVersionAfter) == [versions[2], versions[1]])
            #expect(changes.map(\.tableVersionBefore) == [versions[1], versions[0]])
            #expect(changes.allSatisfy { $0.source == .file })

            let result = await traffic.stop()
            #expect(result.ok > 0)
            #expect(result.failures.isEmpty, "failed requests: \(result.failures.prefix(5))")
            let metrics = proxy.server.metrics.render()
            for phase in ["validate", "apply", "live", "audit"] {
                #expect(metrics.contains(#"strangler_route_table_reload_seconds_count{phase="\#(phase)"} 2"#), "phase \(phase)")
            }
        }
        await legacy.stop()
        await service.stop()
    }
}
