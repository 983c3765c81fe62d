import Foundation
import Logging
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("Audit trail: hand reverts to a version seen before")
struct AuditTrailRevertTests {
    static let route = #"[{"id": "rev", "path": "/rev/**", "mode": "shadow", "service": "service"}]"#

    @Test("demote through the admin API, revert the file by hand, three times: every revert is recorded and the newest row matches the live mode")
    func revertsWhileRunning() async throws {
        try await ControlledProxy.run(routes: Self.route) { proxy in
            let shadowFile = try Data(contentsOf: URL(fileURLWithPath: proxy.routesPath))
            let watcher = proxy.control.watcher!
            for cycle in 1...3 {
                let demote = try await proxy.admin("POST", "/api/routes/rev/demote", body: ["reason": "cycle \(cycle)"])
                #expect(demote.status == 200, "\(String(decoding: demote.data, as: UTF8.self))")
                #expect(proxy.liveMode("rev") == .legacy)

                try shadowFile.write(to: URL(fileURLWithPath: proxy.routesPath), options: .atomic)
                // Returns once the file's content is live (a poll may have got there first).
                await watcher.reloadIfChanged(force: false)
                #expect(proxy.liveMode("rev") == .shadow)
                await watcher.auditsSettled()

                let newest = try #require(try await proxy.store.changes(routeID: "rev", limit: 1).first, "cycle \(cycle)")
                #expect(newest.source == .file, "cycle \(cycle): the revert is recorded")
                #expect(newest.modes.before == "legacy" && newest.modes.after == "shadow", "cycle \(cycle)")
                #expect(newest.modes.after == proxy.liveMode("rev")?.rawValue, "cycle \(cycle)")
            }
            let changes = try await proxy.store.changes(routeID: "rev")
            #expect(changes.map(\.source) == [.file, .admin, .file, .admin, .file, .admin])
            #expect(changes.map(\.modes.after) == ["shadow", "legacy", "shadow", "legacy", "shadow", "legacy"])
        }
    }

    @Test("demote, stop, revert the file by hand, start again, three times: each start records the revert and the newest row matches the live mode")
    func revertsAcrossRestarts() async throws {
        let legacy = try await TestUpstream(name: "legacy")
        let service = try await TestUpstream(name: "service")
        let store = try makeTestStore("revert")
        let routesPath = routesFilePath(beside: store)
        let shadowFile = try ControlledProxy.routesFile(legacyPort: legacy.port, servicePort: service.port, routes: Self.route)
        try shadowFile.write(to: URL(fileURLWithPath: routesPath))

        for cycle in 1...3 {
            try await ServeRun.run(routesPath: routesPath, store: store) { run in
                if cycle > 1 {
                    // The revert made while no proxy ran is recorded as this one starts.
                    #expect(run.liveMode("rev") == .shadow)
                    let newest = try #require(try await store.changes(routeID: "rev", limit: 1).first, "cycle \(cycle)")
                    #expect(newest.source == .file, "cycle \(cycle): the revert is recorded")
                    #expect(newest.modes.before == "legacy" && newest.modes.after == "shadow", "cycle \(cycle)")
                    #expect(newest.modes.after == run.liveMode("rev")?.rawValue, "cycle \(cycle)")
                }
                let result = try await run.control.controller.change(
                    routeID: "rev",
                    .demote,
                    by: .init(actor: "ops", source: .admin, reason: "cycle \(cycle)")
                )
                #expect(result.changed)
                #expect(run.liveMode("rev") == .legacy)
            }
            try shadowFile.write(to: URL(fileURLWithPath: routesPath), options: .atomic)
        }
        try await ServeRun.run(routesPath: routesPath, store: store) { run in
            #expect(run.liveMode("rev") == .shadow)
            let changes = try await store.changes(routeID: "rev")
            #expect(changes.map(\.source) == [.file, .admin, .file, .admin, .file, .admin], "every revert is recorded")
            #expect(changes.first?.modes.after == run.liveMode("rev")?.rawValue)
        }
        // A start on an unchanged file records nothing more.
        try await ServeRun.run(routesPath: routesPath, store: store) { _ in }
        #expect(try await store.changes(routeID: "rev").count == 6)
        await legacy.stop()
        await service.stop()
    }
}
