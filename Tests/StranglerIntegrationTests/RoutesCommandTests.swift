import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// `strangler routes ...` as a user runs it: the built executable, its output and exit codes.
@Suite("strangler routes commands")
struct RoutesCommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the built executable and waits for it on a thread of its own: a test that calls a
    /// proxy in this process through the CLI must not hold one of the concurrency pool's few
    /// threads while that proxy needs them to answer.
    static func strangler(_ arguments: [String], environment: [String: String] = [:]) async throws -> Run {
        try await offPool { try stranglerBlocking(arguments, environment: environment) }
    }

    private static func stranglerBlocking(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let binary = root.appendingPathComponent(".build/debug/strangler")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the package first (swift build --build-tests)")
        var env = ProcessInfo.processInfo.environment
        env["STRANGLER_ADMIN_TOKEN"] = nil
        env.merge(environment) { $1 }
        let run = try ChildProcess.run(binary.path, arguments, environment: env)
        return Run(
            status: run.status,
            stdout: String(decoding: run.output, as: UTF8.self),
            stderr: String(decoding: run.errors, as: UTF8.self)
        )
    }

    /// A test store beside a routes file with one shadowed route `inv` gated at 10 samples, and
    /// the options that point the CLI at both.
    static func gatedInventoryStore(_ name: String) throws -> (store: SQLiteDiffStore, routes: String, common: [String]) {
        let store = try makeTestStore(name)
        let routes = URL(fileURLWithPath: store.path).deletingLastPathComponent().appendingPathComponent("routes.json").path
        try ControlledProxy.routesFile(
            legacyPort: 9,
            servicePort: 10,
            routes: #"[{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service", "gate": {"minSamples": 10}}]"#
        ).write(to: URL(fileURLWithPath: routes))
        return (store, routes, ["--routes", routes, "--store", store.path, "--migrations", root.appendingPathComponent("migrations").path])
    }

    @Test("a store written before rollups is folded by the first command that opens it: routes show counts its rows, once")
    func foldOnFirstOpen() async throws {
        let (store, _, common) = try Self.gatedInventoryStore("fold")
        // Rows as an older version recorded them: no rollups, no example reason.
        try await store.insert((0..<7).map { RouteHistoryFixtures.match("old\($0)") })
        for _ in 0..<2 {
            let run = try await Self.strangler(["routes", "show", "inv"] + common)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("  samples            7"), "\(run.stdout)")
        }
        #expect(try await store.comparisonsCounted(route: "inv") == 7, "folded once, not once per command")
    }

    @Test("promote is refused with the figures, --force needs a reason, the override is recorded, rollback undoes it")
    func localGateAndForce() async throws {
        let (store, routes, common) = try Self.gatedInventoryStore("cli")
        let original = try Data(contentsOf: URL(fileURLWithPath: routes))
        try await store.insertCounted((0..<4).map { RouteHistoryFixtures.match("m\($0)") })

        var run = try await Self.strangler(["routes", "promote", "inv"] + common)
        #expect(run.status == 1)
        #expect(run.stderr.contains("refused: inv shadow → canary needs its gate to hold"))
        #expect(run.stderr.contains("FAIL minSamples: 4 (gate ≥ 10)"))
        #expect(run.stderr.contains("ok   statusMismatches: 0 (gate = 0)"))
        #expect(run.stderr.contains("To override: --force --reason TEXT"), "the CLI, not the controller, names its flags")
        #expect(try Data(contentsOf: URL(fileURLWithPath: routes)) == original)

        run = try await Self.strangler(["routes", "promote", "inv", "--force"] + common)
        #expect(run.status == 64, "a usage error")
        #expect(run.stderr.contains("--force needs --reason TEXT"))
        run = try await Self.strangler(["routes", "set", "inv", "--mode", "shadow", "--percent", "5"] + common)
        #expect(run.status == 64, "a usage error")
        #expect(run.stderr.contains("--percent applies to --mode canary only"))

        run = try await Self.strangler(["routes", "promote", "inv", "--force", "--reason", "signed off by J. Doe", "--actor", "jane"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("inv: shadow → canary 5% (forced)"))
        #expect(run.stdout.contains("FAIL minSamples: 4 (gate ≥ 10)"))
        #expect(try RouteTableDocument(data: Data(contentsOf: URL(fileURLWithPath: routes))).table.routes[0].mode == .canary)

        run = try await Self.strangler(["routes", "history"] + common)
        #expect(run.status == 0)
        #expect(run.stdout.contains("jane"))
        #expect(run.stdout.contains("shadow → canary 5%"))
        #expect(run.stdout.contains("FORCED past gate (minSamples 4 vs ≥ 10"))

        run = try await Self.strangler(["routes", "list"] + common)
        #expect(run.status == 0)
        #expect(run.stdout.contains("canary 5%"))

        run = try await Self.strangler(["routes", "rollback", "--reason", "too early"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: routes)) == original)

        run = try await Self.strangler(["routes", "set", "inv", "--mode", "canary", "--percent", "150"] + common)
        #expect(run.status == 64, "a usage error; got \(run.status)")
        #expect(run.stderr.contains("--percent must be between 0 and 100"))
    }

    @Test("diffs accept, list and revoke; the report shows the acceptance and stops counting it as a mismatch")
    func acceptedDifferences() async throws {
        let store = try makeTestStore("diffs")
        let folder = URL(fileURLWithPath: store.path).deletingLastPathComponent()
        let routes = folder.appendingPathComponent("routes.json").path
        try ControlledProxy.routesFile(
            legacyPort: 9,
            servicePort: 10,
            routes: #"[{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service"}]"#
        ).write(to: URL(fileURLWithPath: routes))
        try await store.insertCounted(
            (0..<4).map { index in
                var record = RouteHistoryFixtures.match("d\(index)")
                record.outcome = .mismatch
                record.differences = [Difference(kind: .added, pointer: "/available", primary: nil, candidate: "\(index)")]
                return record
            }
        )
        let common = ["--routes", routes, "--store", store.path, "--migrations", Self.root.appendingPathComponent("migrations").path]

        var run = try await Self.strangler(["diffs", "accept", "inv", "available", "--reason", "x"] + common)
        #expect(run.status != 0)
        #expect(run.stderr.contains("is not a JSON pointer"))
        run = try await Self.strangler(["diffs", "accept", "nope", "/available", "--reason", "x"] + common)
        #expect(run.status == 1)
        #expect(run.stderr.contains("no route \"nope\""))

        run = try await Self.strangler(
            ["diffs", "accept", "inv", "/available", "--reason", "new field", "--owner", "rita", "--until", "2099-01-01"] + common
        )
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("accepted #1: inv /available — covers 4 differences"))
        run = try await Self.strangler(["diffs", "list"] + common)
        #expect(run.stdout.contains("rita") && run.stdout.contains("active") && run.stdout.contains("new field"))

        run = try await Self.strangler(["report", "--format", "json"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let route = try #require((report?["routes"] as? [[String: Any]])?.first)
        #expect(route["mismatches"] as? Int == 0)
        #expect(route["acceptedOnly"] as? Int == 4)
        #expect(((route["accepted"] as? [[String: Any]])?.first?["owner"]) as? String == "rita")
        #expect((route["topDifferences"] as? [Any])?.isEmpty == true)

        run = try await Self.strangler(["diffs", "revoke", "1", "--owner", "sam"] + common)
        #expect(run.status == 0)
        run = try await Self.strangler(["diffs", "revoke", "1"] + common)
        #expect(run.status == 1)
        run = try await Self.strangler(["report", "--format", "markdown"] + common)
        #expect(run.stdout.contains("| inv | shadow | 4 | 0.0% |"))
        let html = folder.appendingPathComponent("report.html").path
        run = try await Self.strangler(["report", "--format", "html", "--output", html] + common)
        #expect(run.status == 0)
        #expect(try String(contentsOfFile: html, encoding: .utf8).contains("<svg"))
    }

    /// Routes of one path shape: a plain one, one for a channel and tenants, and one (for other
    /// methods, so the two are not ambiguous) whose predicate value holds an ESC and a
    /// right-to-left override.
    static let predicatedRoutes = #"""
        [{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service"},
         {"id": "inv-web", "methods": ["GET"], "path": "/inv/**", "mode": "shadow", "service": "service",
          "match": {"headers": {"X-Channel": "web"}, "query": {"tenant": ["t-17", "t-42"]}, "cookies": {"beta": {"present": true}}}},
         {"id": "inv-odd", "methods": ["POST"], "path": "/inv/**", "mode": "legacy", "service": "service",
          "match": {"host": "*.Example.com", "query": {"q": "a b\u001b[2J\u202E"}}}]
        """#

    @Test("routes list, show and validate print each route's predicates in WHEN, escaped; MATCH stays the match rate")
    func predicatesPrinted() async throws {
        let store = try makeTestStore("predicates")
        let routes = URL(fileURLWithPath: store.path).deletingLastPathComponent().appendingPathComponent("routes.json").path
        try ControlledProxy.routesFile(legacyPort: 9, servicePort: 10, routes: Self.predicatedRoutes).write(to: URL(fileURLWithPath: routes))
        let common = ["--routes", routes, "--store", store.path, "--migrations", Self.root.appendingPathComponent("migrations").path]
        let web = "header x-channel: web · query tenant: t-17|t-42 · cookie beta present"
        let odd = #"host *.example.com · query q: "a b\u{1B}[2J\u{202E}""#

        var run = try await Self.strangler(["routes", "list"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        let columns = header.split(separator: " ").map(String.init)
        #expect(columns == ["ID", "METHODS", "PATH", "WHEN", "MODE", "SERVICE", "MATCH", "SAMPLES", "GATE"], "\(run.stdout)")
        let whenColumn = try #require(header.range(of: "WHEN")).lowerBound.utf16Offset(in: header)
        func row(_ id: String) throws -> String { try #require(lines.first { $0.hasPrefix(id + " ") }, "\(id) in \(run.stdout)") }
        #expect(try row("inv-web").contains("/inv/**  \(web)  shadow"), "\(run.stdout)")
        #expect(try row("inv-odd").contains(odd), "\(run.stdout)")
        #expect(try row("inv").utf16.dropFirst(whenColumn).starts(with: "- ".utf16), "a plain route's WHEN is -: \(run.stdout)")
        #expect(TerminalEscapingTests.rawControls(in: run.stdout).isEmpty, "\(TerminalEscapingTests.rawControls(in: run.stdout))")

        run = try await Self.strangler(["routes", "show", "inv-web"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("inv-web: GET /inv/**\n  when        \(web)\n  mode        shadow"), "\(run.stdout)")
        run = try await Self.strangler(["routes", "show", "inv-odd"] + common)
        #expect(run.stdout.contains("  when        \(odd)\n"), "\(run.stdout)")
        #expect(TerminalEscapingTests.rawControls(in: run.stdout).isEmpty)
        run = try await Self.strangler(["routes", "show", "inv"] + common)
        #expect(run.stdout.contains("  when        every request on its path\n"), "\(run.stdout)")

        run = try await Self.strangler(["routes", "validate", routes])
        #expect(run.status == 0, "\(run.stdout)")
        #expect(run.stdout.contains("  WHEN  "), "\(run.stdout)")
        #expect(run.stdout.contains("/inv/**  \(web)  shadow"), "\(run.stdout)")
        #expect(TerminalEscapingTests.rawControls(in: run.stdout).isEmpty)
    }

    @Test("routes list and show through the admin API print the predicates the proxy serves with")
    func predicatesThroughAdmin() async throws {
        try await ControlledProxy.run(routes: Self.predicatedRoutes) { proxy in
            let admin = ["--admin", "http://127.0.0.1:\(proxy.adminPort)"]
            let token = ["STRANGLER_ADMIN_TOKEN": ControlledProxy.token.secret]
            var run = try await Self.strangler(["routes", "list"] + admin, environment: token)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("header x-channel: web · query tenant: t-17|t-42 · cookie beta present"), "\(run.stdout)")
            #expect(run.stdout.contains(#"host *.example.com · query q: "a b\u{1B}[2J\u{202E}""#), "\(run.stdout)")
            #expect(TerminalEscapingTests.rawControls(in: run.stdout).isEmpty)
            run = try await Self.strangler(["routes", "show", "inv-web"] + admin, environment: token)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("  when        header x-channel: web · query tenant: t-17|t-42 · cookie beta present\n"), "\(run.stdout)")
        }
    }

    @Test("with --admin the commands act through a running proxy, with the token from --token-file or the environment")
    func throughAdmin() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let admin = ["--admin", "http://127.0.0.1:\(proxy.adminPort)"]
            var run = try await Self.strangler(["routes", "promote", "walk"] + admin)
            #expect(run.status == 1)
            #expect(run.stderr.contains("pass --token-file FILE or set STRANGLER_ADMIN_TOKEN"))

            let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)").path
            try "ops-bot:\(ControlledProxy.token.secret)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            run = try await Self.strangler(["routes", "promote", "walk", "--reason", "via admin", "--token-file", tokenFile] + admin)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("walk: legacy → shadow"))
            #expect(proxy.liveMode("walk") == .shadow)

            run = try await Self.strangler(["routes", "show", "walk"] + admin, environment: ["STRANGLER_ADMIN_TOKEN": ControlledProxy.token.secret])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("mode        shadow"))
            #expect(run.stdout.contains("ops-bot"))
            #expect(try await proxy.store.changes(routeID: "walk").first?.actor == "ops-bot")
        }
    }
}

enum RouteHistoryFixtures {
    static func match(_ id: String) -> ComparisonRecord {
        ComparisonRecord(
            routeID: "inv",
            requestID: id,
            method: "GET",
            path: "/inv/1",
            tableVersion: "v1",
            primaryUpstream: "legacy",
            candidateUpstream: "service",
            primaryStatus: 200,
            candidateStatus: 200,
            primaryMilliseconds: 1,
            candidateMilliseconds: 1,
            outcome: .match
        )
    }
}
