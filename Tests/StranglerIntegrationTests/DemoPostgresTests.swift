import Foundation
import StranglerTestSupport
import Testing

/// `strangler demo --postgres URL`, the built executable: two proxy instances sharing one
/// database in the tests' own PostgreSQL cluster.
@Suite("strangler demo --postgres")
struct DemoPostgresTests {
    /// Starts `strangler demo --postgres DATABASE`: two proxies (`port`, `port-b`) with their
    /// admin listeners (`admin-port`, `admin-port-b`).
    static func demo(database: String, dataDirectory: URL) throws -> DemoProcess {
        try DemoProcess(
            arguments: ["--postgres", database],
            portFlags: ["port", "admin-port", "port-b", "admin-port-b", "legacy-port", "inventory-port", "tracking-port", "orders-port"],
            dataDirectory: dataDirectory
        )
    }

    @Test("two instances share the database's table: a flip through A's admin API is served by B; a restart keeps the table")
    func twoInstancesShareTheTable() async throws {
        let database = try PostgresCluster.shared().makeDatabase().absoluteString
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-postgres-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        let demo = try Self.demo(database: database, dataDirectory: directory)
        let adminA = demo.ports["admin-port"]!
        let adminB = demo.ports["admin-port-b"]!
        let tableA = try await demo.liveTable(adminPort: adminA)
        let tableB = try await demo.liveTable(adminPort: adminB)
        let version = try #require(tableA["version"] as? String)
        #expect(tableB["version"] as? String == version, "both instances serve the table imported into the empty database")
        #expect((tableA["source"] as? String)?.contains("postgres://") == true, "\(tableA["source"] ?? "none")")
        #expect((tableB["source"] as? String)?.contains("postgres://") == true, "\(tableB["source"] ?? "none")")
        for proxy in [demo.ports["port"]!, demo.ports["port-b"]!] {
            let order = try await RawConnection.get(port: proxy, "/orders/ORD-100001")
            #expect(order.status == 200)
            #expect(order.json()["orderId"] as? String == "ORD-100001")
            #expect(try await RawConnection.get(port: proxy, "/tracking/UP900007919").header("x-strangler-upstream") == "tracking")
        }

        // The demo's token, made in its data folder.
        let tokenLine = try String(contentsOf: directory.appendingPathComponent("admin-token"), encoding: .utf8)
        let token = String(tokenLine.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":", maxSplits: 1).last ?? "")
        let body = #"{"mode": "legacy", "reason": "demo test: flip through A"}"#
        let flip = try await RawConnection.exchange(
            port: adminA,
            "POST /api/routes/tracking-by-number/mode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        )
        #expect(flip.status == 200, "\(flip.text)")
        let flipped = try #require(flip.json()["tableVersionAfter"] as? String)
        #expect(flipped != version)

        // B applies it on its own, from the database.
        var seen = ""
        for _ in 0..<300 {
            seen = try await demo.liveTable(adminPort: adminB)["version"] as? String ?? ""
            if seen == flipped { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(seen == flipped, "B serves the table A committed")
        #expect(try await RawConnection.get(port: demo.ports["port-b"]!, "/tracking/UP900007919").header("x-strangler-upstream") == "legacy")
        #expect(demo.text.contains("two proxies sharing PostgreSQL"), "\(demo.text)")
        #expect(demo.text.contains("loaded from"), "the first start imports routes.json: \(demo.text)")
        #expect(try await demo.stop() == 0, "\(demo.text)")
        #expect(demo.text.contains("demo stopped"))

        // A second demo on the same database serves the table there, not routes.json again.
        let again = try Self.demo(database: database, dataDirectory: directory)
        #expect(try await again.liveTable(adminPort: again.ports["admin-port"]!)["version"] as? String == flipped)
        #expect(try await again.liveTable(adminPort: again.ports["admin-port-b"]!)["version"] as? String == flipped)
        #expect(again.text.contains("the one already in the database"), "\(again.text)")
        #expect(try await again.stop() == 0, "\(again.text)")
    }

    @Test("--postgres refuses a URL that is not postgres:// and a --store beside it")
    func refusesBadOptions() async throws {
        var run = try await RoutesCommandTests.strangler(["demo", "--postgres", "demo.sqlite"])
        #expect(run.status == 64, "\(run.stderr)")
        #expect(run.stderr.contains("--postgres takes a postgres://"), "\(run.stderr)")
        run = try await RoutesCommandTests.strangler(["demo", "--postgres", "postgres://u@127.0.0.1/db", "--store", "x.sqlite"])
        #expect(run.stderr.contains("drop --store"), "\(run.stderr)")
    }
}

extension DemoProcess {
    /// The live table of the admin listener on `port`, once it answers.
    func liveTable(adminPort: Int) async throws -> [String: Any] {
        for _ in 0..<600 {
            try #require(isRunning, "the demo exited early:\n\(text)")
            if let response = try? await RawConnection.get(port: adminPort, "/api/routes"), response.status == 200 {
                return response.json()
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the admin listener on \(adminPort) did not answer:\n\(text)")
        throw CancellationError()
    }
}
