import Foundation
import StranglerCore
import StranglerTestSupport
import Testing

/// Several `strangler serve` processes sharing one PostgreSQL store, as they run in production:
/// the built executable, each instance in a working folder of its own, the table in the
/// database, and test upstreams in this process. What one instance changes, the others serve;
/// what one records, the others' gates count; and a database outage never reaches a client.
///
/// Every test but the outage one takes a database of its own in the shared test cluster; the
/// outage test stops PostgreSQL, so it has a cluster of its own.
@Suite("shared route table, live: strangler serve processes on one PostgreSQL store")
struct SharedRouteTableLiveTests {
    /// One route under `/inv/**` that legacy serves, with a service to move it to.
    static let inventory = #"[{"id": "inv", "path": "/inv/**", "mode": "legacy", "service": "service"}]"#

    /// One route under `/inv/**` in shadow mode, every request shadowed to the service.
    static let shadowedInventory = """
        [{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service", "shadow": {"sampleRate": 1.0},
          "gate": {"minSamples": 20, "maxMismatchRate": 0.0}}]
        """

    /// `strangler_diff_records_total` for comparisons the recorder counted in its rollups.
    static let countedMetric = #"strangler_diff_records_total{result="counted"}"#

    /// Writes a routes file for the two upstreams in `directory` (a fresh one when nil).
    static func tableFile(_ routes: String, legacy: Int, service: Int, in directory: URL? = nil) throws -> URL {
        let directory = try directory ?? ServeProcess.makeDirectory("table")
        let file = directory.appendingPathComponent("routes.json")
        try ControlledProxy.routesFile(legacyPort: legacy, servicePort: service, routes: routes).write(to: file)
        return file
    }

    /// `strangler routes import FILE --store STORE`.
    static func importTable(_ file: URL, into store: String) async throws {
        let run = try await RoutesCommandTests.strangler(["routes", "import", file.path, "--store", store, "--migrations", ServeProcess.migrations])
        try #require(run.status == 0, "routes import failed: \(run.stderr)")
    }

    /// Runs `body` with a legacy and a service upstream, and stops them on every path.
    static func withUpstreams(_ body: (TestUpstream, TestUpstream) async throws -> Void) async throws {
        let legacy = try await TestUpstream(name: "legacy")
        let service = try await TestUpstream(name: "service")
        do {
            try await body(legacy, service)
        } catch {
            await legacy.stop()
            await service.stop()
            throw error
        }
        await legacy.stop()
        await service.stop()
    }

    /// The route's evidence as `GET /api/routes/{id}/stats` on `instance` shows it; nil when
    /// the call fails (the store away).
    static func evidence(_ route: String, on instance: ServeProcess) async -> [String: Any]? {
        guard let answer = try? await instance.admin("GET", "/api/routes/\(route)/stats"), answer.status == 200 else { return nil }
        return answer.object["evidence"] as? [String: Any]
    }

    /// Comparisons the gate counts for `route`, as `instance` reads them from the store.
    static func samples(_ route: String, on instance: ServeProcess) async -> Int? {
        await evidence(route, on: instance)?["samples"] as? Int
    }

    /// The audit trail through `instance`'s admin API, newest first.
    static func changes(on instance: ServeProcess) async throws -> [[String: Any]] {
        let answer = try await instance.admin("GET", "/api/changes?limit=1000")
        try #require(answer.status == 200, "GET /api/changes answered \(answer.status): \(answer.text)")
        return answer.object["changes"] as? [[String: Any]] ?? []
    }

    /// Replaces `file` the way an editor or a git checkout does: a new file renamed over it.
    static func replaceAtomically(_ file: URL, with data: Data) throws {
        let temporary = file.deletingLastPathComponent().appendingPathComponent(".routes.json.\(UUID().uuidString.prefix(8)).tmp")
        try data.write(to: temporary)
        try #require(rename(temporary.path, file.path) == 0, "rename failed: errno \(errno)")
    }

    // MARK: - One change, every instance

    @Test("a mode flip through A's admin API reaches B by notification alone: B's live table, the upstream B routes to, B's snapshot")
    func flipReachesOtherInstance() async throws {
        let store = try PostgresCluster.shared().makeDatabase().absoluteString
        try await Self.withUpstreams { legacy, service in
            try await Self.importTable(try Self.tableFile(Self.inventory, legacy: legacy.port, service: service.port), into: store)
            let a = try ServeProcess.start(name: "flip-a", store: store)
            defer { a.stop() }
            // B polls less often than the test waits: only the notification can bring the flip in time.
            let b = try ServeProcess.start(name: "flip-b", store: store, arguments: ["--route-poll-interval", "60s"])
            defer { b.stop() }
            try await a.waitUntilListening()
            try await b.waitUntilListening()
            #expect(try await b.waitForLog("listening for route table changes in the shared store"), "\(b.logTail)")
            let first = try await b.get("/inv/before-flip")
            #expect(first.status == 200 && first.upstream == "legacy")

            let before = try await a.liveModes().version
            // Forced: legacy → service passes the gate only on evidence, and there is none here.
            let flip = try await a.admin(
                "POST",
                "/api/routes/inv/mode",
                body: ["mode": "service", "reason": "service is ready", "expectedVersion": before, "force": true]
            )
            try #require(flip.status == 200, "\(flip.text)")
            let after = try #require(flip.object["tableVersionAfter"] as? String)
            #expect(after != before)
            // The instance that made the change serves it before it answers.
            let onA = try await a.liveModes()
            #expect(onA.version == after && onA.modes["inv"] == "service", "\(onA)")

            let reached = try await pollUntil { try await b.liveModes().version == after }
            #expect(reached, "B never applied version \(after)\n\(b.logTail)")
            #expect(try await b.liveModes().modes["inv"] == "service")
            let served = try await b.get("/inv/after-flip")
            #expect(served.status == 200 && served.upstream == "service", "\(served)")
            #expect(service.requests.contains { $0.uri == "/inv/after-flip" })
            #expect(!legacy.requests.contains { $0.uri == "/inv/after-flip" })
            // B keeps what it serves for a restart without the database.
            let snapshot = b.directory.appendingPathComponent("strangler-routes.snapshot.json")
            let kept = await pollUntil { FileManager.default.contents(atPath: snapshot.path).map { ContentHash.hex(of: $0) } == after }
            #expect(kept, "B's snapshot \(snapshot.path) does not hold version \(after)")
        }
    }

    @Test(
        "two flips made against the same version at once on A and B: one commits, the other gets 409 with the winner's version; the audit trail holds only winners"
    )
    func concurrentCompareAndSet() async throws {
        let store = try PostgresCluster.shared().makeDatabase().absoluteString
        let routes = """
            [{"id": "r1", "path": "/r1/**", "mode": "legacy", "service": "service"},
             {"id": "r2", "path": "/r2/**", "mode": "legacy", "service": "service"}]
            """
        try await Self.importTable(try Self.tableFile(routes, legacy: 9, service: 10), into: store)
        let a = try ServeProcess.start(name: "cas-a", store: store)
        defer { a.stop() }
        let b = try ServeProcess.start(name: "cas-b", store: store)
        defer { b.stop() }
        try await a.waitUntilListening()
        try await b.waitUntilListening()

        var winners: [String] = []
        var losers: [String] = []
        for round in 1...3 {
            let (version, modes) = try await a.liveModes()
            // Each flip changes its route, so each would commit on its own.
            let target1 = modes["r1"] == "legacy" ? "shadow" : "legacy"
            let target2 = modes["r2"] == "legacy" ? "shadow" : "legacy"
            let reasonA = "round \(round) through A"
            let reasonB = "round \(round) through B"
            async let viaA = a.admin("POST", "/api/routes/r1/mode", body: ["mode": target1, "reason": reasonA, "expectedVersion": version])
            async let viaB = b.admin(
                "POST",
                "/api/routes/r2/mode",
                body: ["mode": target2, "reason": reasonB],
                headers: ["If-Match": "\"\(version)\""]
            )
            let answers = try await [(reasonA, viaA), (reasonB, viaB)]
            let won = answers.filter { $0.1.status == 200 }
            let lost = answers.filter { $0.1.status == 409 }
            try #require(won.count == 1 && lost.count == 1, "round \(round): \(answers.map { "\($0.1.status) \($0.1.text)" })")
            let winnerVersion = try #require(won[0].1.object["tableVersionAfter"] as? String)
            #expect(winnerVersion != version)
            #expect(lost[0].1.object["error"] as? String == "version_conflict", "\(lost[0].1.text)")
            #expect(lost[0].1.object["currentVersion"] as? String == winnerVersion, "\(lost[0].1.text)")
            winners.append(won[0].0)
            losers.append(lost[0].0)
        }

        let history = try await RoutesCommandTests.strangler(["routes", "history", "--store", store, "--migrations", ServeProcess.migrations])
        #expect(history.status == 0, "\(history.stderr)")
        for reason in winners { #expect(history.stdout.contains(reason), "\(reason) missing from\n\(history.stdout)") }
        for reason in losers { #expect(!history.stdout.contains(reason), "\(reason) recorded although refused\n\(history.stdout)") }
        let adminRows = try await Self.changes(on: b).filter { $0["source"] as? String == "admin" }
        #expect(adminRows.compactMap { $0["reason"] as? String } == winners.reversed(), "\(adminRows)")
    }

    // MARK: - Shared evidence

    @Test("a gate read on A counts the comparisons B recorded: shadow traffic sent only to B")
    func gateOnOneInstanceCountsAnother() async throws {
        let store = try PostgresCluster.shared().makeDatabase().absoluteString
        try await Self.withUpstreams { legacy, service in
            try await Self.importTable(try Self.tableFile(Self.shadowedInventory, legacy: legacy.port, service: service.port), into: store)
            let a = try ServeProcess.start(name: "gate-a", store: store)
            defer { a.stop() }
            let b = try ServeProcess.start(name: "gate-b", store: store)
            defer { b.stop() }
            try await a.waitUntilListening()
            try await b.waitUntilListening()

            // Both upstreams answer /status/200 alike: every comparison matches.
            for index in 0..<20 {
                let answer = try await b.get("/inv/\(index)/status/200")
                #expect(answer.status == 200 && answer.upstream == "legacy", "\(answer)")
            }
            let counted = await pollUntil(timeout: .seconds(60)) { await Self.samples("inv", on: a) ?? 0 >= 20 }
            let seen = await Self.evidence("inv", on: a) ?? [:]
            #expect(counted, "A's gate never saw B's 20 comparisons: \(seen)\n\(b.logTail)")

            let stats = try await a.admin("GET", "/api/routes/inv/stats")
            let evidence = stats.object["evidence"] as? [String: Any] ?? [:]
            #expect(evidence["samples"] as? Int == 20, "\(stats.text)")
            #expect(evidence["mismatches"] as? Int == 0, "\(stats.text)")
            let checks = (stats.object["gate"] as? [String: Any])?["checks"] as? [[String: Any]] ?? []
            let minSamples = checks.first { $0["name"] as? String == "minSamples" }
            #expect(minSamples?["passed"] as? Bool == true, "\(stats.text)")
            // A compared nothing itself: the samples are B's.
            #expect(try await a.metric(Self.countedMetric) ?? 0 == 0)
            #expect(try await b.metric(Self.countedMetric) == 20)

            // The CLI through A's admin API says the same.
            let show = try await RoutesCommandTests.strangler(
                ["routes", "show", "inv", "--admin", "http://127.0.0.1:\(a.adminPort)"],
                environment: ["STRANGLER_ADMIN_TOKEN": "\(ServeProcess.token.name):\(ServeProcess.token.secret)"]
            )
            #expect(show.status == 0, "\(show.stderr)")
            #expect(show.stdout.contains("  samples            20"), "\(show.stdout)")
        }
    }

    // MARK: - Database outage

    @Test(
        "PostgreSQL stopped under shadow traffic: every client answer is normal, counts are kept and retried, and recording resumes after the restart"
    )
    func databaseOutageUnderLoad() async throws {
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let store = try cluster.makeDatabase().absoluteString
        try await Self.withUpstreams { legacy, service in
            try await Self.importTable(try Self.tableFile(Self.shadowedInventory, legacy: legacy.port, service: service.port), into: store)
            let a = try ServeProcess.start(name: "outage-a", store: store)
            defer { a.stop() }
            try await a.waitUntilListening()

            let traffic = TrafficLoop(port: a.port, target: "/inv/outage/status/200", connections: 2, pause: .milliseconds(10))
            var result: (ok: Int, failed: Int, failures: [String])?
            var before = 0
            do {
                let recording = await pollUntil(timeout: .seconds(60)) { await Self.samples("inv", on: a) ?? 0 > 0 }
                try #require(recording, "nothing recorded before the outage\n\(a.logTail)")
                before = await Self.samples("inv", on: a) ?? 0

                try cluster.stop()
                let servedAtStop = legacy.requests.count
                // The recorder's writes fail, and it keeps their counts for the next write.
                // Generous deadlines: a write fails only after the store's 5 s timeout, and a loaded
                // machine stretches that; these guard against a hang, they measure nothing.
                let failing = await pollUntil(timeout: .seconds(120)) {
                    (try? await a.metric("strangler_diff_rollup_write_failures_total")) ?? 0 > 0
                }
                #expect(failing, "no failed store write counted while the database was stopped\n\(a.logTail)")
                try await traffic.waitForMore(100)
                // A few more seconds of outage under traffic (not a measurement).
                try await Task.sleep(for: .seconds(3))
                #expect(legacy.requests.count > servedAtStop, "no request was served while the database was stopped")
                try cluster.start()
                try await traffic.waitForMore(100)
                result = await traffic.stop()
            } catch {
                _ = await traffic.stop()
                throw error
            }
            let served = try #require(result)
            #expect(served.failed == 0, "client requests failed: \(served.failures.prefix(5))")
            #expect(served.ok > 200)

            // Every comparison A counted reaches the database once it is back: none was lost.
            var last = (counted: 0.0, samples: 0)
            // The pool reconnects with a backoff of up to a minute after a long outage.
            let caughtUp = await pollUntil(timeout: .seconds(240)) {
                let counted = (try? await a.metric(Self.countedMetric)) ?? 0
                let samples = await Self.samples("inv", on: a) ?? 0
                last = (counted, samples)
                return samples > before && Double(samples) == counted
            }
            #expect(
                caughtUp,
                "after the restart the store holds \(last.samples) comparisons (\(before) before the outage) of the \(Int(last.counted)) A counted\n\(a.logTail)"
            )
            #expect(try await a.metric(#"strangler_diff_records_total{result="dropped_unwritten"}"#) ?? 0 == 0)
        }
    }

    @Test("an instance restarted while PostgreSQL is down serves the snapshot of the table it served, and follows the database once it is back")
    func restartWhileDatabaseDownServesSnapshot() async throws {
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let store = try cluster.makeDatabase().absoluteString
        try await Self.withUpstreams { legacy, service in
            let table = try Self.tableFile(Self.inventory, legacy: legacy.port, service: service.port)
            try await Self.importTable(table, into: store)
            let version = ContentHash.hex(of: try Data(contentsOf: table))
            let folder = try ServeProcess.makeDirectory("snapshot-a")
            let snapshot = folder.appendingPathComponent("strangler-routes.snapshot.json")
            var a = try ServeProcess.start(name: "snapshot-a", store: store, directory: folder)
            defer { a.stop() }
            try await a.waitUntilListening()
            let kept = await pollUntil { FileManager.default.contents(atPath: snapshot.path).map { ContentHash.hex(of: $0) } == version }
            try #require(kept, "no snapshot of version \(version) at \(snapshot.path)\n\(a.logTail)")
            #expect(a.stop() == 0, "\(a.logTail)")
            try cluster.stop()

            // Restarted while the database is away: it serves the table it served last.
            a = try ServeProcess.start(name: "snapshot-a", store: store, directory: folder)
            try await a.waitUntilListening()
            #expect(a.log.contains("starting with the snapshot of the last table served"), "\(a.logTail)")
            let live = try await a.liveModes()
            #expect(live.version == version, "\(a.logTail)")
            #expect(live.modes == ["inv": "legacy"])
            let served = try await a.get("/inv/while-down")
            #expect(served.status == 200 && served.upstream == "legacy", "\(served)")

            // The database is back, with a change made meanwhile through the CLI: the instance follows.
            try cluster.start()
            let next = try Self.tableFile(
                Self.inventory.replacingOccurrences(of: #""mode": "legacy""#, with: #""mode": "service""#),
                legacy: legacy.port,
                service: service.port
            )
            try await Self.importTable(next, into: store)
            let nextVersion = ContentHash.hex(of: try Data(contentsOf: next))
            let followed = try await pollUntil(timeout: .seconds(60)) { try await a.liveModes().version == nextVersion }
            #expect(followed, "\(a.logTail)")
            let moved = try await a.get("/inv/database-back")
            #expect(moved.status == 200 && moved.upstream == "service", "\(moved)")
        }
    }

    // MARK: - Starting

    @Test("serve refuses to start against a database with no table and no --routes, and says how to load one")
    func refusesEmptyDatabase() async throws {
        let store = try PostgresCluster.shared().makeDatabase().absoluteString
        let serve = try ServeProcess.start(name: "empty", store: store)
        defer { serve.stop() }
        let status = try await serve.waitForExit()
        #expect(status == 1, "\(serve.logTail)")
        #expect(serve.log.contains("holds no route table yet; load one with `strangler routes import routes.json --store URL`"), "\(serve.logTail)")
        #expect(!serve.log.contains("proxy listening"))
    }

    @Test(
        "--routes with the store: the file is pushed, an edit reaches A and B audited as a file change, and a restart with the same file keeps a flip made meanwhile"
    )
    func routesFilePushedAndKept() async throws {
        let store = try PostgresCluster.shared().makeDatabase().absoluteString
        try await Self.withUpstreams { legacy, service in
            let routes = """
                [{"id": "inv", "path": "/inv/**", "mode": "legacy", "service": "service"},
                 {"id": "other", "path": "/other/**", "mode": "legacy", "service": "service"}]
                """
            let folderA = try ServeProcess.makeDirectory("file-a")
            let file = try Self.tableFile(routes, legacy: legacy.port, service: service.port, in: folderA)
            let firstVersion = ContentHash.hex(of: try Data(contentsOf: file))
            var a = try ServeProcess.start(name: "file-a", store: store, arguments: ["--routes", file.path], directory: folderA)
            defer { a.stop() }
            try await a.waitUntilListening()
            // The database held nothing: A's start pushed the file, so B can start from it.
            let b = try ServeProcess.start(name: "file-b", store: store)
            defer { b.stop() }
            try await b.waitUntilListening()
            #expect(try await a.liveModes().version == firstVersion)
            #expect(try await b.liveModes().version == firstVersion)

            // An edit of the file, replaced whole as git does it.
            let edited = try ControlledProxy.routesFile(
                legacyPort: legacy.port,
                servicePort: service.port,
                routes: routes.replacingOccurrences(of: #""/inv/**", "mode": "legacy""#, with: #""/inv/**", "mode": "service""#)
            )
            let editedVersion = ContentHash.hex(of: edited)
            try Self.replaceAtomically(file, with: edited)
            for instance in [a, b] {
                let applied = try await pollUntil { try await instance.liveModes().version == editedVersion }
                #expect(applied, "\(instance.name) never served the edited file\n\(instance.logTail)")
                #expect(try await instance.liveModes().modes == ["inv": "service", "other": "legacy"])
                let served = try await instance.get("/inv/edited")
                #expect(served.status == 200 && served.upstream == "service", "\(instance.name): \(served)")
            }
            let fileRow = try await Self.changes(on: b).first
            #expect(fileRow?["source"] as? String == "file", "\(String(describing: fileRow))")
            #expect(fileRow?["actor"] as? String == "file")
            #expect(fileRow?["routeId"] as? String == "inv")
            #expect(fileRow?["modeBefore"] as? String == "legacy" && fileRow?["modeAfter"] as? String == "service")
            #expect(fileRow?["tableVersionAfter"] as? String == editedVersion)

            // A flip through B's admin API, then A restarts with the same, unchanged file.
            let flip = try await b.admin(
                "POST",
                "/api/routes/other/mode",
                body: ["mode": "shadow", "reason": "start comparing", "expectedVersion": editedVersion]
            )
            try #require(flip.status == 200, "\(flip.text)")
            let flipped = try #require(flip.object["tableVersionAfter"] as? String)
            let reachedA = try await pollUntil { try await a.liveModes().version == flipped }
            #expect(reachedA, "\(a.logTail)")
            let trailBefore = try await Self.changes(on: b).count

            #expect(a.stop() == 0, "\(a.logTail)")
            a = try ServeProcess.start(name: "file-a", store: store, arguments: ["--routes", file.path], directory: folderA)
            try await a.waitUntilListening()
            #expect(try await a.waitForLog("route table applied from the shared store"), "\(a.logTail)")
            let restarted = try await a.liveModes()
            #expect(restarted.version == flipped, "the restart pushed the file again over the flip\n\(a.logTail)")
            #expect(restarted.modes == ["inv": "service", "other": "shadow"])
            #expect(try await b.liveModes().version == flipped)
            #expect(try await Self.changes(on: b).count == trailBefore, "the restart recorded changes")
        }
    }
}
