import Foundation
import Logging
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

/// The CLI against the shared PostgreSQL store, as ops run it from any instance's machine: the
/// built executable, a database in the tests' own PostgreSQL cluster, and comparisons recorded
/// under two instance names, as two proxies sharing the store record them.
@Suite("strangler commands on a postgres:// store")
struct SharedStoreCommandTests {
    static var logger: Logger {
        var logger = Logger(label: "test.shared-store")
        logger.logLevel = .critical
        return logger
    }

    @Test(
        "migrate, then routes show, report and promote count both instances' comparisons; the audit trail and accepted differences are in the database"
    )
    func commandsSeeEveryInstance() async throws {
        let url = try PostgresCluster.shared().makeDatabase().absoluteString
        let migrations = RoutesCommandTests.root.appendingPathComponent("migrations").path
        var run = try await RoutesCommandTests.strangler(["migrate", "--store", url, "--migrations", migrations])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.stdout.contains("applied 0001_store.sql") && run.stdout.contains("schema up to date (4 migrations, 4 applied now)"),
            "\(run.stdout)"
        )
        run = try await RoutesCommandTests.strangler(["migrate", "--store", url, "--migrations", migrations])
        #expect(run.stdout.contains("0 applied now"), "\(run.stdout)")

        let store = try await PostgresDiffStore.open(
            url: try PostgresStoreURL(url),
            migrations: try PostgresMigrationRunner.load(directory: migrations),
            logger: Self.logger,
            operationTimeout: PostgresCluster.operationTimeout
        )
        // Proxy A recorded 4 comparisons and proxy B 7: the gate (10 samples) holds only on both.
        try await store.insertCounted((0..<4).map { RouteHistoryFixtures.match("a\($0)") }, instanceID: "proxy-a")
        try await store.insertCounted((0..<7).map { RouteHistoryFixtures.match("b\($0)") }, instanceID: "proxy-b")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shared-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let routes = folder.appendingPathComponent("routes.json").path
        try ControlledProxy.routesFile(
            legacyPort: 9,
            servicePort: 10,
            routes: #"[{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service", "gate": {"minSamples": 10}}]"#
        ).write(to: URL(fileURLWithPath: routes))
        let common = ["--store", url, "--migrations", migrations]
        // The table lives in the database: until one is imported, there is none.
        run = try await RoutesCommandTests.strangler(["routes", "show", "inv"] + common)
        #expect(run.status == 1)
        #expect(run.stderr.contains("no table was imported yet; load one with `strangler routes import routes.json --store URL`"), "\(run.stderr)")
        run = try await RoutesCommandTests.strangler(["routes", "import", routes, "--reason", "first table"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("changed: inv"), "\(run.stdout)")

        run = try await RoutesCommandTests.strangler(["routes", "show", "inv"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("  samples            11"), "\(run.stdout)")
        run = try await RoutesCommandTests.strangler(["report", "--format", "json"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        let routeReport = (report?["routes"] as? [[String: Any]])?.first { $0["id"] as? String == "inv" }
        #expect(routeReport?["samples"] as? Int == 11)

        run = try await RoutesCommandTests.strangler(["routes", "promote", "inv", "--reason", "both proxies agree", "--actor", "jane"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("ok   minSamples: 11 (gate ≥ 10)"), "\(run.stdout)")
        let changes = try await store.changes(routeID: "inv", limit: 5)
        #expect(changes.first?.actor == "jane" && changes.first?.reason == "both proxies agree", "the audit trail is the database's")
        #expect(changes.last?.reason == "first table" && changes.last?.source == .cli, "the import is audited route by route")
        // The promotion changed the database's table, not the file it was imported from.
        let exported = try await RoutesCommandTests.strangler(["routes", "export"] + common)
        #expect(exported.status == 0, "\(exported.stderr)")
        let table = try RouteTable.parse(Data(exported.stdout.utf8))
        #expect(table.routes.first?.mode == .canary, "\(exported.stdout)")
        #expect(try RouteTable.parse(Data(contentsOf: URL(fileURLWithPath: routes))).routes.first?.mode == .shadow)
        #expect(exported.stderr.contains("table version \(table.version)"), "\(exported.stderr)")

        run = try await RoutesCommandTests.strangler(["diffs", "accept", "inv", "/available", "--reason", "new field", "--owner", "rita"] + common)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await store.acceptedDifferences().map(\.pointer) == ["/available"])
        await store.close()
    }

    @Test("a store URL with a missing part is refused before anything starts, naming the part and the form to use")
    func badURL() async throws {
        let run = try await RoutesCommandTests.strangler(["migrate", "--store", "postgres://127.0.0.1/strangler"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("has no user; write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"), "\(run.stderr)")
    }
}
