import Foundation
import Logging
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerControl

/// Canaries judged from a shared PostgreSQL store: every instance records, only the leader
/// judges, from what all of them recorded.
@Suite("Auto-demote from a shared store: judged on every instance's answers, by the leader only")
struct SharedCanaryJudgingTests {
    /// Silent: demotions log at critical, which the tests expect and need not print.
    static let logger = Logger(label: "test.shared-canary") { _ in SwiftLogNoOpLogHandler() }

    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").path

    /// A fresh shared store in the test PostgreSQL cluster.
    static func store() async throws -> PostgresDiffStore {
        try await PostgresDiffStore.open(
            url: try PostgresStoreURL(try PostgresCluster.shared().makeDatabase().absoluteString),
            migrations: try PostgresMigrationRunner.load(directory: migrations),
            logger: logger,
            operationTimeout: PostgresCluster.operationTimeout
        )
    }

    /// A canary that fails more than 5% of its answers breaks its gate.
    static let riskyRoute = """
        [{"id": "risky", "path": "/risky/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
          "gate": {"maxErrorRate": 0.05}}]
        """

    @Test(
        "traffic is flushed every 10 s judging locally and every 2 s from a shared store, also when judging is set after init; a chosen interval stays"
    )
    func flushIntervalFollowsJudging() {
        var configuration = CanaryMonitor.Configuration()
        #expect(configuration.flushEvery == .seconds(10))
        configuration.judging = .sharedStore(FixedLeadership(isLeader: false))
        #expect(configuration.flushEvery == .seconds(2))
        #expect(CanaryMonitor.Configuration(judging: .sharedStore(FixedLeadership(isLeader: true))).flushEvery == .seconds(2))
        configuration.flushEvery = .milliseconds(500)
        configuration.judging = .local
        #expect(configuration.flushEvery == .milliseconds(500))
    }

    @Test("the shared window starts at the minute `window` ago, or at the minute the route became canary if later")
    func windowStart() throws {
        let now = try #require(ISO8601DateFormatter().date(from: "2025-03-04T12:03:30Z"))
        let minute = { (text: String) in try #require(ISO8601DateFormatter().date(from: text)) }
        #expect(CanaryMonitor.sharedWindowStart(now: now, window: .seconds(60), canarySince: nil) == (try minute("2025-03-04T12:02:00Z")))
        #expect(CanaryMonitor.sharedWindowStart(now: now, window: .seconds(300), canarySince: nil) == (try minute("2025-03-04T11:58:00Z")))
        // A canary since 12:03:10 is judged from 12:03, the minute it became one.
        let since = now.addingTimeInterval(-20)
        #expect(CanaryMonitor.sharedWindowStart(now: now, window: .seconds(300), canarySince: since) == (try minute("2025-03-04T12:03:00Z")))
        // A canary for longer than the window is judged over the window.
        let long = now.addingTimeInterval(-3600)
        #expect(CanaryMonitor.sharedWindowStart(now: now, window: .seconds(60), canarySince: long) == (try minute("2025-03-04T12:02:00Z")))
    }

    @Test("the store's figures count as the local window's: service answers and failures, comparisons and unexcused mismatches")
    func countsFromStore() {
        let counts = CanaryMonitor.counts(
            traffic: RouteTraffic(routeID: "r", legacy: 500, service: 40, serviceErrors: 3),
            evidence: RouteEvidence(samples: 90, mismatches: 7, noiseOnly: 4, acceptedOnly: 2, uncomparable: 5)
        )
        #expect(counts == CanaryCounts(service: 40, serviceErrors: 3, compared: 90, mismatched: 7))
    }

    @Test("failures another instance recorded make the leader's monitor demote; a follower's monitor never demotes")
    func leaderDemotesOnAnotherInstancesFailures() async throws {
        let store = try await Self.store()
        defer { Task { await store.close() } }
        // Instance b served the canary's answers: a quarter of them failed.
        try await store.recordTraffic([RouteTraffic(routeID: "risky", service: 40, serviceErrors: 10)], instanceID: "b")

        try await SharedInstance.with(store: store, routes: Self.riskyRoute, leadership: FixedLeadership(isLeader: false)) { follower in
            for _ in 0..<3 { await follower.monitor.tick() }
            #expect(await follower.monitor.demotions.isEmpty, "a follower never demotes")
            #expect(follower.liveMode("risky") == .canary)
            let changes = try await store.changes(routeID: "risky")
            #expect(changes.isEmpty)
        }
        try await SharedInstance.with(store: store, routes: Self.riskyRoute, leadership: FixedLeadership(isLeader: true)) { leader in
            await leader.monitor.tick()
            #expect(await leader.monitor.demotions == ["risky"])
            #expect(leader.liveMode("risky") == .shadow)
            let change = try #require(try await store.changes(routeID: "risky").first)
            #expect(change.source == .auto)
            #expect(change.actor == "auto-demote")
            #expect(change.reason?.contains("service error rate 25.0% (10 of 40 answers in the last") == true, "\(change.reason ?? "")")
            #expect(change.reason?.contains("breaks gate maxErrorRate 5.00%") == true)
        }
    }

    @Test("another instance's mismatches are judged with the store's excuses: accepted differences keep the canary, revoking them demotes it")
    func mismatchesWithExcuses() async throws {
        let store = try await Self.store()
        defer { Task { await store.close() } }
        let routes = """
            [{"id": "acc", "path": "/acc/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
              "gate": {"maxMismatchRate": 0.05}}]
            """
        let records = (0..<30).map { index in
            ComparisonRecord(
                routeID: "acc",
                requestID: "r\(index)",
                method: "GET",
                path: "/acc/\(index)",
                tableVersion: "v1",
                primaryUpstream: "legacy",
                candidateUpstream: "service",
                primaryStatus: 200,
                candidateStatus: 200,
                outcome: .mismatch,
                differences: [Difference(kind: .changed, pointer: "/price", primary: "1", candidate: "2")]
            )
        }
        try await store.insertCounted(records, instanceID: "b")
        let accepted = try await store.accept(routeID: "acc", pointer: "/price", reason: "rounding", owner: "t", until: nil)

        try await SharedInstance.with(store: store, routes: routes, leadership: FixedLeadership(isLeader: true)) { leader in
            await leader.monitor.tick()
            #expect(await leader.monitor.demotions.isEmpty, "accepted differences are not mismatches")
            #expect(leader.liveMode("acc") == .canary)

            _ = try await store.revokeAccepted(id: accepted, by: "t")
            await leader.monitor.tick()
            #expect(await leader.monitor.demotions == ["acc"])
            let change = try #require(try await store.changes(routeID: "acc").first)
            #expect(change.reason?.contains("mismatch rate 100.0% (30 of 30 comparisons") == true, "\(change.reason ?? "")")
        }
    }

    @Test("a route seen becoming canary is judged from that minute on, not on failures from before it")
    func canaryJudgedFromItsStart() async throws {
        let store = try await Self.store()
        defer { Task { await store.close() } }
        let shadow = """
            [{"id": "late", "path": "/late/**", "mode": "shadow", "service": "service", "gate": {"maxErrorRate": 0.05}}]
            """
        let canary = """
            [{"id": "late", "path": "/late/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
              "gate": {"maxErrorRate": 0.05}}]
            """
        // Failures five minutes ago, well inside a 10-minute window, before the route was canary.
        try await store.recordTraffic(
            [RouteTraffic(routeID: "late", service: 40, serviceErrors: 40)],
            at: Date().addingTimeInterval(-300),
            instanceID: "b"
        )

        try await SharedInstance.with(store: store, routes: shadow, leadership: FixedLeadership(isLeader: true), window: .seconds(600)) { leader in
            await leader.monitor.tick()
            try await leader.setRoutes(canary)
            #expect(leader.liveMode("late") == .canary)
            await leader.monitor.tick()
            #expect(await leader.monitor.demotions.isEmpty, "the failures came before the route was canary")
        }
        // A monitor that finds the route canary already can't tell since when: the whole window counts.
        try await SharedInstance.with(store: store, routes: canary, leadership: FixedLeadership(isLeader: true), window: .seconds(600)) { leader in
            await leader.monitor.tick()
            #expect(await leader.monitor.demotions == ["late"])
        }
    }

    @Test("two instances elect a leader on the shared store: only the leader's monitor demotes, on the other's failures")
    func electedLeaderDemotes() async throws {
        let store = try await Self.store()
        defer { Task { await store.close() } }
        let url = store.url
        let a = PostgresLeadership(url: url, instance: "a", interval: .milliseconds(50), logger: Self.logger)
        let b = PostgresLeadership(url: url, instance: "b", interval: .milliseconds(50), logger: Self.logger)
        let elections = ServiceGroup(services: [a, b], logger: Self.logger)
        let running = Task { try await elections.run() }
        defer { running.cancel() }

        let leader = try await firstLeader(of: [a, b])
        let follower = leader === a ? b : a
        try await store.recordTraffic([RouteTraffic(routeID: "risky", service: 40, serviceErrors: 10)], instanceID: follower.instance)

        try await SharedInstance.with(store: store, routes: Self.riskyRoute, leadership: follower, instanceID: follower.instance) { other in
            try await SharedInstance.with(store: store, routes: Self.riskyRoute, leadership: leader, instanceID: leader.instance) { elected in
                await other.monitor.tick()
                #expect(await other.monitor.demotions.isEmpty)
                await elected.monitor.tick()
                #expect(await elected.monitor.demotions == ["risky"])
                #expect(elected.liveMode("risky") == .shadow)
                await other.monitor.tick()
                #expect(await other.monitor.demotions.isEmpty, "the follower never demotes, however often it looks")
                #expect(other.liveMode("risky") == .canary)
            }
        }
        await elections.triggerGracefulShutdown()
        try await running.value
    }
}

/// A leadership that is what the test says.
private struct FixedLeadership: Leadership {
    var isLeader: Bool
}

/// One proxy instance on the shared store, as far as judging canaries goes: its live table, its
/// own routes file, and a control plane whose monitor judges from the store. Nothing listens:
/// the tests record the traffic in the store and drive the monitor's ticks themselves.
private struct SharedInstance {
    let server: ProxyServer
    let control: ControlPlane
    let routesPath: String
    var monitor: CanaryMonitor { control.monitor }

    static func with(
        store: PostgresDiffStore,
        routes: String,
        leadership: any Leadership,
        instanceID: String = "a",
        window: Duration = .seconds(120),
        _ body: (SharedInstance) async throws -> Void
    ) async throws {
        let logger = SharedCanaryJudgingTests.logger
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shared-canary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let routesPath = directory.appendingPathComponent("routes.json").path
        try ControlledProxy.routesFile(legacyPort: 9, servicePort: 9, routes: routes).write(to: URL(fileURLWithPath: routesPath))
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1, shutdownGracePeriod: .seconds(1), accessLog: false),
            table: try RouteTableLoader.load(path: routesPath),
            source: routesPath,
            logger: logger
        )
        // Ticks far apart: the tests drive the monitor; every tick writes and judges.
        let configuration = CanaryMonitor.Configuration(
            tick: .seconds(3600),
            flushEvery: .zero,
            window: window,
            minRequests: 10,
            instanceID: instanceID,
            judging: .sharedStore(leadership)
        )
        let control = ControlPlane(
            server: server,
            routesPath: routesPath,
            store: store,
            worker: nil,
            logger: logger,
            monitorConfiguration: configuration
        )
        let instance = SharedInstance(server: server, control: control, routesPath: routesPath)
        do {
            try await body(instance)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The live mode of a route.
    func liveMode(_ id: String) -> RouteMode? {
        server.state.status.table.routes.first { $0.id == id }?.mode
    }

    /// Rewrites the routes file and puts it live, as a hot reload would.
    func setRoutes(_ routes: String) async throws {
        try ControlledProxy.routesFile(legacyPort: 9, servicePort: 9, routes: routes).write(to: URL(fileURLWithPath: routesPath))
        try await server.apply(try RouteTableLoader.load(path: routesPath))
    }
}
