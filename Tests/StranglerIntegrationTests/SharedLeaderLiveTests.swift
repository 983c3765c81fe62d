import Foundation
import StranglerCore
import StranglerTestSupport
import Testing

/// Cluster duties with `strangler serve` processes sharing one PostgreSQL store: one leader,
/// chosen by an advisory lock, runs auto-demote; when it dies, another instance takes over and
/// demotes a canary that breaks its gate on traffic the dead leader never saw.
@Suite("cluster leader, live: strangler serve processes on one PostgreSQL store")
struct SharedLeaderLiveTests {
    /// One canary route under `/inv/**`: half the requests to the service, demoted when more
    /// than 10% of the service's answers fail.
    static let canaryInventory = """
        [{"id": "inv", "path": "/inv/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
          "gate": {"maxErrorRate": 0.1}}]
        """

    @Test("killing the leader hands auto-demote to the other instance, which demotes a failing canary from its own traffic")
    func leaderHandover() async throws {
        let store = try PostgresCluster.shared().makeDatabase().absoluteString
        try await SharedRouteTableLiveTests.withUpstreams { legacy, service in
            try await SharedRouteTableLiveTests.importTable(
                try SharedRouteTableLiveTests.tableFile(Self.canaryInventory, legacy: legacy.port, service: service.port),
                into: store
            )
            let judging = ["--canary-window", "60s", "--canary-min-requests", "5"]
            let a = try ServeProcess.start(name: "leader-a", store: store, arguments: judging)
            defer { a.stop() }
            try await a.waitUntilListening()
            #expect(try await a.waitForLog("this instance is now the cluster leader"), "\(a.logTail)")
            let b = try ServeProcess.start(name: "leader-b", store: store, arguments: judging)
            defer { b.stop() }
            try await b.waitUntilListening()
            // B competes but does not lead while A lives.
            #expect(try await b.waitForLog("listening for route table changes in the shared store"), "\(b.logTail)")
            #expect(!b.log.contains("this instance is now the cluster leader"), "only one leader: \(b.logTail)")

            a.crash()
            #expect(try await b.waitForLog("this instance is now the cluster leader"), "B never took over\n\(b.logTail)")

            // The service fails; only B serves. B, now the leader, judges every instance's
            // answers in the store and demotes the canary.
            service.forcedStatus.withLockedValue { $0 = 500 }
            let demoted = try await pollUntil(timeout: .seconds(90)) {
                for index in 0..<10 { _ = try? await b.get("/inv/item-\(index)") }
                return try await b.liveModes().modes["inv"] == "shadow"
            }
            #expect(demoted, "B never demoted the failing canary\n\(b.logTail)")
            let changes = try await SharedRouteTableLiveTests.changes(on: b)
            let demotion = changes.first { $0["actor"] as? String == "auto-demote" }
            #expect(demotion?["source"] as? String == "auto", "\(changes.prefix(3))")
            #expect(changes.filter { $0["actor"] as? String == "auto-demote" }.count == 1, "demoted once")
        }
    }
}
