import Foundation
import GRDB
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("Route controls: promote, canary, auto-demote, rollback, audit")
struct RouteControlTests {
    @Test("a route walks legacy → retired through the admin API and back by rollback, under traffic, with no failed request")
    func walkAndRollBack() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let startVersion = proxy.server.state.status.table.version
            let startContent = try Data(contentsOf: URL(fileURLWithPath: proxy.routesPath))
            let traffic = TrafficLoop(port: proxy.port, target: "/walk/echo")
            try await traffic.waitForMore(20)
            #expect(try await proxy.servedBy("/walk/echo") == "legacy")

            func promote(_ body: [String: Any] = [:]) async throws -> (status: Int, json: [String: Any]) {
                let answer = try await proxy.admin("POST", "/api/routes/walk/promote", body: body)
                return (answer.status, answer.json as? [String: Any] ?? [:])
            }

            // legacy → shadow: no gate.
            var step = try await promote(["reason": "start comparing"])
            #expect(step.status == 200)
            #expect(proxy.liveMode("walk") == .shadow)
            #expect(try await proxy.servedBy("/walk/echo") == "legacy")
            // Evidence accumulates from the shadow copies.
            for _ in 0..<400 where try await proxy.store.comparisonsCounted(route: "walk") < 10 {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await traffic.waitForMore(20)

            // shadow → canary: the gate holds (5 samples, no status mismatch).
            step = try await promote(["reason": "gate holds"])
            #expect(step.status == 200, "\(step.json)")
            #expect((step.json["gate"] as? [String: Any])?["holds"] as? Bool == true)
            #expect(proxy.liveMode("walk") == .canary)
            try await traffic.waitForMore(50)

            // canary → service.
            step = try await promote(["reason": "canary clean"])
            #expect(step.status == 200, "\(step.json)")
            #expect(proxy.liveMode("walk") == .service)
            #expect(try await proxy.servedBy("/walk/echo") == "service")
            try await traffic.waitForMore(20)

            // service → retired: legacy served this route minutes ago, so it is refused...
            step = try await promote()
            #expect(step.status == 409)
            #expect(step.json["error"] as? String == "legacy_still_serving")
            #expect((step.json["message"] as? String)?.contains("retired only after legacy has served it nothing for 24h") == true)
            #expect(proxy.liveMode("walk") == .service)
            // ...until forced, with a reason.
            step = try await promote(["force": true, "reason": "legacy endpoint switched off by hand"])
            #expect(step.status == 200, "\(step.json)")
            #expect(step.json["forced"] as? Bool == true)
            #expect(proxy.liveMode("walk") == .retired)
            #expect(try await proxy.servedBy("/walk/echo") == "service")
            try await traffic.waitForMore(20)

            // One command back to where we started, byte for byte.
            let rollback = try await proxy.admin("POST", "/api/rollback", body: ["to": String(startVersion.prefix(10)), "reason": "drill"])
            #expect(rollback.status == 200, "\(String(decoding: rollback.data, as: UTF8.self))")
            #expect(proxy.liveMode("walk") == .legacy)
            #expect(proxy.server.state.status.table.version == startVersion)
            #expect(try Data(contentsOf: URL(fileURLWithPath: proxy.routesPath)) == startContent)
            try await traffic.waitForMore(20)
            #expect(try await proxy.servedBy("/walk/echo") == "legacy")

            let result = await traffic.stop()
            #expect(result.failed == 0, "failed requests: \(result.failures.prefix(5))")
            #expect(result.ok > 150)

            // The audit trail has every step with its actor, reason and versions.
            let changes = try await proxy.store.changes(routeID: "walk")
            #expect(changes.map(\.modes.after) == ["legacy", "retired", "service", "canary 5%", "shadow"])
            #expect(changes.allSatisfy { $0.actor == "ops-bot" && $0.source == .admin })
            #expect(changes[1].reason?.hasPrefix("FORCED past legacy traffic at") == true)
            #expect(changes[1].reason?.hasSuffix("reason: legacy endpoint switched off by hand") == true)
            #expect(changes[0].reason == "rollback to \(startVersion): drill")
            #expect(changes.last?.tableVersionBefore == startVersion)
            // Legacy traffic was recorded per route, which is what the retirement rule read.
            #expect(try await proxy.store.lastLegacyTraffic(routeID: "walk") != nil)
        }
    }

    @Test("a gate refuses a promotion with its figures; --force needs a reason and is recorded")
    func gateRefusalAndForce() async throws {
        let routes = """
            [{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service",
              "gate": {"minSamples": 1000, "maxMismatchRate": 0.001}}]
            """
        try await ControlledProxy.run(routes: routes) { proxy in
            for index in 0..<12 {
                _ = try await RawConnection.get(port: proxy.port, "/inv/echo?n=\(index)")
            }
            for _ in 0..<400 where try await proxy.store.comparisonsCounted(route: "inv") < 12 {
                try await Task.sleep(for: .milliseconds(20))
            }
            let refused = try await proxy.admin("POST", "/api/routes/inv/promote", body: ["reason": "looks fine"])
            #expect(refused.status == 409)
            let json = try #require(refused.json as? [String: Any])
            #expect(json["error"] as? String == "gate_refused")
            let checks = try #require((json["gate"] as? [String: Any])?["checks"] as? [[String: Any]])
            let minSamples = try #require(checks.first { $0["name"] as? String == "minSamples" })
            #expect(minSamples["actual"] as? String == "12")
            #expect(minSamples["limit"] as? String == "≥ 1000")
            #expect(minSamples["passed"] as? Bool == false)
            // The echo answers differ (each names its upstream), so the mismatch check fails too, with the count.
            let mismatch = try #require(checks.first { $0["name"] as? String == "maxMismatchRate" })
            #expect((mismatch["actual"] as? String)?.contains("12 of 12") == true)
            #expect(proxy.liveMode("inv") == .shadow)

            let noReason = try await proxy.admin("POST", "/api/routes/inv/promote", body: ["force": true])
            #expect(noReason.status == 400)
            #expect((noReason.json as? [String: Any])?["error"] as? String == "force_needs_reason")

            let forced = try await proxy.admin(
                "POST",
                "/api/routes/inv/promote",
                body: ["force": true, "reason": "differences reviewed in PR 42", "actor": "jane"]
            )
            #expect(forced.status == 200)
            #expect(proxy.liveMode("inv") == .canary)
            let change = try #require(try await proxy.store.changes(routeID: "inv").first)
            #expect(change.actor == "jane (token ops-bot)")
            #expect(change.reason?.contains("FORCED past gate (minSamples 12 vs ≥ 1000") == true)
            #expect(change.reason?.hasSuffix("reason: differences reviewed in PR 42") == true)
        }
    }

    @Test("a sticky canary splits 10,000 callers within 3 points of its percent, and one key always lands on one side")
    func stickyCanary() async throws {
        let routes = """
            [{"id": "cust", "path": "/cust/**", "mode": "canary", "service": "service",
              "canary": {"percent": 30, "stickyKey": "header:X-Customer-Id"}},
             {"id": "ord", "path": "/ord/{id}/items", "mode": "canary", "service": "service",
              "canary": {"percent": 50, "stickyKey": "param:id"}}]
            """
        try await ControlledProxy.run(routes: routes) { proxy in
            let total = 10_000
            let lanes = 4
            let serviceCount = try await withThrowingTaskGroup(of: Int.self) { group in
                for lane in 0..<lanes {
                    group.addTask {
                        let connection = try await RawConnection.connect(port: proxy.port)
                        var served = 0
                        for index in stride(from: lane, to: total, by: lanes) {
                            try await connection.send("GET /cust/echo HTTP/1.1\r\nHost: shop.example\r\nX-Customer-Id: customer-\(index)\r\n\r\n")
                            let response = try await connection.readResponse()
                            #expect(response.status == 200)
                            if response.header("x-strangler-upstream") == "service" { served += 1 }
                        }
                        await connection.close()
                        return served
                    }
                }
                return try await group.reduce(0, +)
            }
            let share = Double(serviceCount) / Double(total) * 100
            #expect(abs(share - 30) <= 3, "service served \(share)% of callers")

            // Stickiness: every key answers from the same side every time, by header and by path parameter.
            for index in 0..<60 {
                let first = try await proxy.servedBy("/cust/echo", headers: ["X-Customer-Id: repeat-\(index)"])
                for _ in 0..<3 {
                    #expect(try await proxy.servedBy("/cust/echo", headers: ["X-Customer-Id: repeat-\(index)"]) == first)
                }
                let order = try await proxy.servedBy("/ord/ORD-\(index)/items")
                #expect(try await proxy.servedBy("/ord/ORD-\(index)/items?page=2") == order)
            }
        }
    }

    @Test("a canary whose service starts failing is demoted to shadow by the proxy, recorded and counted; clients never see it")
    func autoDemote() async throws {
        let routes = """
            [{"id": "risky", "path": "/risky/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
              "gate": {"maxErrorRate": 0.05}}]
            """
        try await ControlledProxy.run(routes: routes) { proxy in
            let traffic = TrafficLoop(port: proxy.port, target: "/risky/echo")
            try await traffic.waitForMore(40)
            #expect(proxy.liveMode("risky") == .canary, "a healthy canary stays")
            proxy.service.forcedStatus.withLockedValue { $0 = 503 }
            // The monitor counts its demotion once the controller's change has gone live.
            for _ in 0..<750 where await proxy.control.monitor.demotions.isEmpty {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(proxy.liveMode("risky") == .shadow)
            let result = await traffic.stop()
            // GETs on the failing service fell back to legacy: the client saw no error.
            #expect(result.failed == 0, "\(result.failures.prefix(3))")

            let change = try #require(try await proxy.store.changes(routeID: "risky").first)
            #expect(change.source == .auto)
            #expect(change.actor == "auto-demote")
            #expect(change.modes.before == "canary 50%" && change.modes.after == "shadow")
            #expect(change.reason?.contains("service error rate") == true)
            #expect(change.reason?.contains("breaks gate maxErrorRate 5.00%") == true)
            let file = try RouteTableDocument(data: Data(contentsOf: URL(fileURLWithPath: proxy.routesPath)))
            #expect(file.table.routes.first?.mode == .shadow, "the file says shadow, so a restart keeps the demotion")
            #expect(proxy.server.metrics.render().contains(#"strangler_auto_demotions_total{route="risky"} 1"#))
            #expect(await proxy.control.monitor.demotions == ["risky"])
        }
    }

    @Test("a history page holds 1 to 1000 changes: the store would read a negative limit as none")
    func historyLimit() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            for limit in [-1, 0, 1001] {
                do {
                    _ = try await proxy.controller.history(limit: limit)
                    Issue.record("limit \(limit) was accepted")
                } catch {
                    #expect((error as? RouteOperationError)?.code == .badLimit)
                }
            }
            // The largest page is a page.
            _ = try await proxy.controller.history(limit: RouteController.maxHistoryLimit)
        }
    }

    @Test("counts a flush takes between ticks (before a retirement check) still reach the canary's window")
    func flushKeepsCanaryEvidence() async throws {
        let routes = """
            [{"id": "risky", "path": "/risky/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
              "gate": {"maxErrorRate": 0.05}}]
            """
        // Ticks far apart: this test drives the monitor itself.
        let monitor = CanaryMonitor.Configuration(tick: .seconds(3600), flushEvery: .seconds(3600), window: .seconds(7200), minRequests: 10)
        try await ControlledProxy.run(routes: routes, monitor: monitor) { proxy in
            proxy.service.forcedStatus.withLockedValue { $0 = 503 }
            // Half go to the failing service and fall back to legacy; enough for minRequests.
            for index in 0..<60 { _ = try await RawConnection.get(port: proxy.port, "/risky/\(index)") }
            await proxy.control.monitor.flushNow()
            await proxy.control.monitor.tick()
            #expect(await proxy.control.monitor.demotions == ["risky"], "the flushed service errors were judged")
        }
    }

    @Test("a canary whose only differences are accepted stays; revoking the acceptance demotes it")
    func acceptedDifferencesKeepACanary() async throws {
        let routes = """
            [{"id": "acc", "path": "/acc/**", "mode": "canary", "service": "service", "canary": {"percent": 50},
              "shadow": {"sampleRate": 1.0}, "gate": {"maxMismatchRate": 0.05}}]
            """
        try await ControlledProxy.run(routes: routes) { proxy in
            // The echo answers differ in the upstream's name and in the headers each side saw.
            let first = try await proxy.store.accept(routeID: "acc", pointer: "/upstream", reason: "names differ", owner: "t", until: nil)
            try await proxy.store.accept(routeID: "acc", pointer: "/headers", reason: "shadow headers", owner: "t", until: nil)
            // The monitor rereads acceptances every 5 s; its first read may have come before these.
            await proxy.control.monitor.refreshExcuses()
            let traffic = TrafficLoop(port: proxy.port, target: "/acc/echo")
            for _ in 0..<750 where try await proxy.store.comparisonsCounted(route: "acc") < 60 {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await proxy.store.comparisonsCounted(route: "acc") >= 60)
            #expect(proxy.liveMode("acc") == .canary, "accepted differences are not mismatches")
            #expect(await proxy.control.monitor.demotions.isEmpty)

            try await proxy.store.revokeAccepted(id: first, by: "t")
            for _ in 0..<750 where await proxy.control.monitor.demotions.isEmpty {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(await proxy.control.monitor.demotions == ["acc"])
            #expect(try await proxy.store.changes(routeID: "acc").first?.reason?.contains("mismatch rate") == true)
            let result = await traffic.stop()
            #expect(result.failed == 0)
        }
    }

    @Test("an edit made to the file by hand is loaded and recorded with the actor \"file\"")
    func handEditIsAudited() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let before = proxy.server.state.status.table.version
            var text = try String(contentsOfFile: proxy.routesPath, encoding: .utf8)
            text = text.replacingOccurrences(of: #""mode": "legacy""#, with: #""mode": "shadow""#)
            try text.write(toFile: proxy.routesPath, atomically: true, encoding: .utf8)
            for _ in 0..<500 where proxy.liveMode("walk") != .shadow {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(proxy.liveMode("walk") == .shadow)
            var change: RouteChange?
            for _ in 0..<200 {
                change = try await proxy.store.changes(routeID: "walk").first
                if change != nil { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let recorded = try #require(change)
            #expect(recorded.actor == "file" && recorded.source == .file)
            #expect(recorded.modes.before == "legacy" && recorded.modes.after == "shadow")
            #expect(recorded.tableVersionBefore == before)
            #expect(try await proxy.store.tableContent(version: recorded.tableVersionAfter) == Data(text.utf8))
        }
    }

    @Test("an operation on an unknown route or with an invalid result names the problem and changes nothing")
    func invalidOperations() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let content = try Data(contentsOf: URL(fileURLWithPath: proxy.routesPath))
            let unknown = try await proxy.admin("POST", "/api/routes/nope/promote", body: [:])
            #expect(unknown.status == 404)
            #expect(((unknown.json as? [String: Any])?["message"] as? String)?.contains("known: walk") == true)
            let badMode = try await proxy.admin("POST", "/api/routes/walk/mode", body: ["mode": "sideways"])
            #expect(badMode.status == 400)
            let demote = try await proxy.admin("POST", "/api/routes/walk/demote", body: [:])
            #expect(demote.status == 409)
            #expect(((demote.json as? [String: Any])?["error"] as? String) == "no_step")
            #expect(try Data(contentsOf: URL(fileURLWithPath: proxy.routesPath)) == content)
            #expect(try await proxy.store.changes().isEmpty)
        }
    }

    @Test("callers match a refusal on its public code, not on its text; a forced change without a reason is refused in the controller's own words")
    func errorCodes() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            func refusal(_ routeID: String, _ operation: RouteController.Operation, force: Bool = false) async -> RouteOperationError? {
                do {
                    _ = try await proxy.controller.change(routeID: routeID, operation, by: .init(actor: "test", source: .cli, force: force))
                    return nil
                } catch {
                    return error
                }
            }
            #expect(await refusal("nope", .promote)?.code == .unknownRoute)
            #expect(await refusal("walk", .demote)?.code == .noStep)
            let forced = await refusal("walk", .promote, force: true)
            #expect(forced?.code == .forceNeedsReason)
            #expect(forced?.name == "force_needs_reason")
            #expect(forced?.message.contains("--") == false, "the library names no CLI flag: \(forced?.message ?? "")")
        }
    }

    @Test(
        "a gate does not pass on evidence with gaps: retention removed part of the window, so promotion is refused with the coverage stated, unless forced"
    )
    func coverageGap() async throws {
        let routes = """
            [{"id": "cov", "path": "/cov/**", "mode": "shadow", "service": "service", "gate": {"minSamples": 5, "maxMismatchRate": 0.01}}]
            """
        try await ControlledProxy.run(routes: routes) { proxy in
            func match(_ id: String, at date: Date) -> ComparisonRecord {
                ComparisonRecord(
                    routeID: "cov",
                    requestID: id,
                    method: "GET",
                    path: "/cov/\(id)",
                    recordedAt: date,
                    tableVersion: "t",
                    primaryUpstream: "legacy",
                    candidateUpstream: "service",
                    primaryStatus: 200,
                    candidateStatus: 200,
                    outcome: .match
                )
            }
            let now = Date()
            // Compared for three days, but retention has removed all but the last two hours.
            try await proxy.store.insertCounted((0..<5).map { match("old\($0)", at: now.addingTimeInterval(-3 * 86_400)) })
            try await proxy.store.insertCounted((0..<20).map { match("new\($0)", at: now.addingTimeInterval(-600)) })
            _ = try await proxy.store.pruneRollups(before: now.addingTimeInterval(-2 * 3600))

            let refused = try await proxy.admin("POST", "/api/routes/cov/promote", body: ["reason": "enough samples"])
            #expect(refused.status == 409)
            let checks = try #require(((refused.json as? [String: Any])?["gate"] as? [String: Any])?["checks"] as? [[String: Any]])
            let coverage = try #require(checks.first { $0["name"] as? String == "coverage" })
            #expect(coverage["passed"] as? Bool == false)
            let stated = coverage["actual"] as? String ?? ""
            // Two hours kept plus the part of an hour retention rounds to (three hours when the
            // request lands just past the next hour), of a 24-hour window.
            #expect(
                (stated.hasPrefix("evidence covers 2h") || stated.hasPrefix("evidence covers 3h")) && stated.contains(" of 24h (2")
                    && stated.hasSuffix("before retention)"),
                "\(stated)"
            )
            #expect(checks.filter { $0["name"] as? String != "coverage" }.allSatisfy { $0["passed"] as? Bool == true }, "only coverage fails")

            let stats = try await proxy.admin("GET", "/api/routes/cov/stats")
            let document = try #require((stats.json as? [String: Any])?["coverage"] as? [String: Any])
            #expect(document["complete"] as? Bool == false)
            let gaps = try #require(document["gaps"] as? [[String: Any]])
            #expect(gaps.map { $0["reason"] as? String } == ["retention"])

            let forced = try await proxy.admin("POST", "/api/routes/cov/promote", body: ["reason": "reviewed the last two hours", "force": true])
            #expect(forced.status == 200)
            #expect(proxy.liveMode("cov") == .canary)
        }
    }

    @Test("a young route is not blocked for a whole window: coverage starts at its first comparison")
    func youngRouteCoverage() async throws {
        let routes = """
            [{"id": "young", "path": "/young/**", "mode": "shadow", "service": "service", "gate": {"minSamples": 5, "maxMismatchRate": 1.0}}]
            """
        try await ControlledProxy.run(routes: routes) { proxy in
            for index in 0..<6 {
                _ = try await RawConnection.get(port: proxy.port, "/young/echo?n=\(index)")
            }
            for _ in 0..<400 where try await proxy.store.comparisonsCounted(route: "young") < 6 {
                try await Task.sleep(for: .milliseconds(20))
            }
            let stats = try await proxy.admin("GET", "/api/routes/young/stats")
            let coverage = try #require((stats.json as? [String: Any])?["coverage"] as? [String: Any])
            #expect(coverage["complete"] as? Bool == true)
            #expect((coverage["windowSeconds"] as? Double ?? 0) == 86_400)
            #expect((coverage["coveredSeconds"] as? Double ?? .infinity) < 3600, "only the minutes since its first comparison must be covered")
            let promoted = try await proxy.admin("POST", "/api/routes/young/promote", body: ["reason": "young and clean"])
            #expect(promoted.status == 200)
        }
    }
}
