import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore
import StranglerTestSupport
import Testing

/// The route table in a shared PostgreSQL store: compare-and-set commits with their audit rows,
/// notifications, and instances that follow the table (a real database in the tests' cluster,
/// real proxies on port 0).
@Suite("shared route table")
struct SharedRouteTableTests {
    static var logger: Logger {
        var logger = Logger(label: "test.shared-routes")
        logger.logLevel = .critical
        return logger
    }

    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").path

    static func openStore() async throws -> PostgresDiffStore {
        try await PostgresDiffStore.open(
            url: try PostgresStoreURL(try PostgresCluster.shared().makeDatabase().absoluteString),
            migrations: try PostgresMigrationRunner.load(directory: migrations),
            logger: logger,
            operationTimeout: PostgresCluster.operationTimeout
        )
    }

    static func table(_ modes: [String: String]) throws -> Data {
        let routes = modes.keys.sorted().map { #"{"id": "\#($0)", "path": "/\#($0)/**", "mode": "\#(modes[$0]!)", "service": "service"}"# }
        return try ControlledProxy.routesFile(legacyPort: 9, servicePort: 10, routes: "[" + routes.joined(separator: ", ") + "]")
    }

    static let ops = RouteController.Requester(actor: "ops", source: .admin, reason: "test")

    @Test("an empty store has no table; the first import is audited route by route, a second identical one changes nothing")
    func importIntoEmptyStore() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let controller = RouteController(authority: SharedRouteAuthority(store: store), store: store)
        await #expect(throws: RouteOperationError.self) { try await controller.document() }
        do {
            _ = try await controller.document()
        } catch {
            #expect(error.code == .noTable)
            #expect(error.message.contains("strangler routes import routes.json --store URL"), "\(error.message)")
        }
        let first = try Self.table(["a": "legacy", "b": "shadow"])
        let result = try await controller.importTable(first, by: Self.ops)
        #expect(result.changed && result.tableVersionBefore == "none")
        #expect(Set(result.changes.compactMap(\.routeID)) == ["a", "b"])
        let head = try #require(try await store.routeTableHead())
        #expect(head.revision == 1 && head.version == ContentHash.hex(of: first))
        #expect(try await controller.currentTable() == first, "the table is kept byte for byte")

        let again = try await controller.importTable(first, by: Self.ops)
        #expect(!again.changed)
        #expect(try await store.routeTableHead()?.revision == 1)
        await store.close()
    }

    @Test("of two changes made against one version, one commits and the other is refused with the winner's version; nothing of the loser is kept")
    func compareAndSet() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let controller = RouteController(authority: SharedRouteAuthority(store: store), store: store)
        let base = try Self.table(["a": "legacy", "b": "legacy", "c": "legacy"])
        _ = try await controller.importTable(base, by: Self.ops)
        let version = ContentHash.hex(of: base)

        // Both commits race from the same version: the row lock lets one in, the other sees it.
        async let left = Self.outcome {
            try await controller.change(routeID: "a", .set(.shadow, percent: nil), by: Self.ops, expecting: version)
        }
        async let right = Self.outcome {
            try await controller.change(routeID: "b", .set(.shadow, percent: nil), by: Self.ops, expecting: version)
        }
        let outcomes = await [left, right]
        let winners = outcomes.compactMap { try? $0.get() }
        let losers = outcomes.compactMap { outcome -> RouteOperationError? in
            if case .failure(let error) = outcome { return error as? RouteOperationError } else { return nil }
        }
        #expect(winners.count == 1 && losers.count == 1)
        let winner = try #require(winners.first)
        let loser = try #require(losers.first)
        #expect(loser.code == .versionConflict)
        #expect(loser.currentVersion == winner.tableVersionAfter, "the refusal names the version that won")
        let trail = try await store.changes(routeID: nil, limit: 10)
        #expect(trail.filter { $0.tableVersionBefore == version }.count == 1, "only the winner is in the audit trail")
        #expect(try await store.routeTableHead()?.version == winner.tableVersionAfter)

        // Without an expected version a change applies to whatever is current.
        let next = try await controller.change(routeID: "c", .set(.shadow, percent: nil), by: Self.ops)
        #expect(next.changed && next.tableVersionBefore == winner.tableVersionAfter)
        await store.close()
    }

    @Test("two first imports into an empty store at once: one is the table, the other is refused")
    func firstImportRace() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let one = try Self.table(["a": "legacy"])
        let other = try Self.table(["a": "shadow"])
        async let left = Self.outcome { try await store.commitRouteTable(one, expecting: nil, changes: []) }
        async let right = Self.outcome { try await store.commitRouteTable(other, expecting: nil, changes: []) }
        let outcomes = await [left, right]
        let committed = outcomes.compactMap { try? $0.get() }
        #expect(committed.count == 1)
        let head = try #require(try await store.routeTableHead())
        #expect(head.revision == 1 && head.version == committed.first?.head.version)
        for case .failure(let error) in outcomes {
            let conflict = try #require(error as? SharedRouteTableConflict)
            #expect(conflict.current?.version == head.version)
        }
        await store.close()
    }

    @Test("a commit is announced to listeners, which learn of it without polling")
    func notification() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let calls = CallCounter()
        let listening = Task { try await store.listenForRouteTableChanges { calls.add() } }
        // The first call comes once listening has begun.
        try await untilTrue { calls.value >= 1 }
        let before = calls.value
        _ = try await store.commitRouteTable(try Self.table(["a": "legacy"]), expecting: nil, changes: [])
        try await untilTrue { calls.value > before }
        listening.cancel()
        _ = try? await listening.value
        await store.close()
    }

    @Test("two proxies follow the table: a flip through A's controller is served by B by notification (B's poll is an hour), and B keeps a snapshot")
    func instancesFollow() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shared-routes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let base = try Self.table(["inv": "legacy"])
        _ = try await RouteController(authority: SharedRouteAuthority(store: store), store: store).importTable(base, by: Self.ops)

        try await FollowingInstance.run(store: store, folder: folder, name: "a", poll: .seconds(2)) { a in
            try await FollowingInstance.run(store: store, folder: folder, name: "b", poll: .seconds(3600)) { b in
                try await untilTrue { b.liveMode("inv") == .legacy }
                let result = try await a.control.controller.change(routeID: "inv", .set(.shadow, percent: nil), by: Self.ops)
                #expect(a.liveMode("inv") == .shadow, "the instance that made the change serves it before it answers")
                try await untilTrue { b.liveMode("inv") == .shadow }
                #expect(b.server.state.status.table.version == result.tableVersionAfter)
                try await untilTrue { FileManager.default.contents(atPath: b.snapshot) == (try? await store.routeTable()?.content) }
                #expect(try RouteTableLoader.load(path: b.snapshot).version == result.tableVersionAfter)
            }
        }
        await store.close()
    }

    @Test(
        "with a routes file, each new valid content is pushed once, audited as a file change; an invalid file is not pushed; a restart does not push the same file over a later flip"
    )
    func filePublishing() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shared-file-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let routes = folder.appendingPathComponent("routes.json").path
        try Self.table(["inv": "legacy"]).write(to: URL(fileURLWithPath: routes))
        let snapshot = folder.appendingPathComponent("snapshot.json").path

        var start = try await SharedRouteStart.load(store: store, routesFile: routes, snapshotPath: snapshot, logger: Self.logger)
        #expect(start.revision == 1 && start.table.routes.first?.mode == .legacy)
        let pushed = try await store.changes(routeID: nil, limit: 5)
        #expect(pushed.map(\.source) == [.file] && pushed.first?.actor == "file")

        // A flip through the API, then a restart with the same file: the flip stays.
        let controller = RouteController(authority: SharedRouteAuthority(store: store), store: store)
        _ = try await controller.change(routeID: "inv", .set(.shadow, percent: nil), by: Self.ops)
        start = try await SharedRouteStart.load(store: store, routesFile: routes, snapshotPath: snapshot, logger: Self.logger)
        #expect(start.revision == 2 && start.table.routes.first?.mode == .shadow)

        // The file changes: it wins.
        let publisher = RouteFilePublisher(path: routes, store: store, controller: controller, logger: Self.logger)
        try Self.table(["inv": "legacy", "orders": "shadow"]).write(to: URL(fileURLWithPath: routes))
        guard case .done = await publisher.publish() else {
            Issue.record("a valid new file is pushed")
            return
        }
        let head = try #require(try await store.routeTableHead())
        let fileVersion = ContentHash.hex(of: try Data(contentsOf: URL(fileURLWithPath: routes)))
        #expect(head.revision == 3 && head.fileVersion == fileVersion)
        #expect(try await store.changes(routeID: "orders", limit: 1).first?.source == .file)

        // An invalid file changes nothing.
        try Data(#"{"upstreams": {}, "routes": [{"id": 1}]}"#.utf8).write(to: URL(fileURLWithPath: routes))
        guard case .refused = await publisher.publish() else {
            Issue.record("an invalid file is refused, not retried")
            return
        }
        #expect(try await store.routeTableHead()?.revision == 3)
        await store.close()
    }

    @Test(
        "a file imported by hand and then served with --routes counts as pushed: a restart with it does not undo a later flip; an import expecting a version into an empty store is refused"
    )
    func importedFileCountsAsPushed() async throws {
        let store = try await Self.openStore()
        defer { Task { await store.close() } }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shared-imported-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let routes = folder.appendingPathComponent("routes.json").path
        let file = try Self.table(["inv": "legacy"])
        try file.write(to: URL(fileURLWithPath: routes))
        let snapshot = folder.appendingPathComponent("snapshot.json").path
        let controller = RouteController(authority: SharedRouteAuthority(store: store), store: store)

        do {
            _ = try await controller.importTable(file, by: Self.ops, expecting: "0123456789abcdef")
            Issue.record("an expected version can't match an empty store")
        } catch {
            #expect(error.code == .versionConflict && error.currentVersion == nil)
        }
        _ = try await controller.importTable(file, by: Self.ops)
        _ = try await SharedRouteStart.load(store: store, routesFile: routes, snapshotPath: snapshot, logger: Self.logger)
        #expect(try await store.routeTableHead()?.fileVersion == ContentHash.hex(of: file))
        _ = try await controller.change(routeID: "inv", .set(.shadow, percent: nil), by: Self.ops)
        let start = try await SharedRouteStart.load(store: store, routesFile: routes, snapshotPath: snapshot, logger: Self.logger)
        #expect(start.table.routes.first?.mode == .shadow, "the flip made after the file was served stays")
        await store.close()
    }

    @Test("a start against a store that can't be read serves the snapshot; with neither it refuses, saying what to do")
    func startWithoutTheStore() async throws {
        let store = try await Self.openStore()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shared-start-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let snapshot = folder.appendingPathComponent("snapshot.json").path
        do {
            _ = try await SharedRouteStart.load(store: store, routesFile: nil, snapshotPath: snapshot, logger: Self.logger)
            Issue.record("an empty store with no routes file must refuse")
        } catch {
            #expect(error.description.contains("holds no route table yet; load one with `strangler routes import routes.json --store URL`"))
        }
        // A closed pool can't read the store, as an unreachable database can't.
        await store.close()
        do {
            _ = try await SharedRouteStart.load(store: store, routesFile: nil, snapshotPath: snapshot, logger: Self.logger)
            Issue.record("no store and no snapshot must refuse")
        } catch {
            #expect(error.description.contains("there is no snapshot at \(snapshot)"), "\(error.description)")
        }
        let kept = try Self.table(["inv": "shadow"])
        try kept.write(to: URL(fileURLWithPath: snapshot))
        let start = try await SharedRouteStart.load(store: store, routesFile: nil, snapshotPath: snapshot, logger: Self.logger)
        #expect(start.revision == nil && start.table.version == ContentHash.hex(of: kept) && start.origin == snapshot)
    }

    // MARK: - Helpers

    static func outcome<T: Sendable>(_ body: @Sendable () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }
}

/// A thread-safe count.
final class CallCounter: Sendable {
    private let count = NIOLockedValueBox(0)
    func add() { count.withLockedValue { $0 += 1 } }
    var value: Int { count.withLockedValue { $0 } }
}

/// Waits for `condition`, up to 30 s (a generous deadline, not a measurement).
func untilTrue(_ condition: @Sendable () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within 30 s", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// One proxy instance following the shared table: a server on port 0 and its control plane's
/// services, until `body` returns.
struct FollowingInstance {
    let server: ProxyServer
    let control: ControlPlane
    let snapshot: String

    func liveMode(_ id: String) -> RouteMode? {
        server.state.status.table.routes.first { $0.id == id }?.mode
    }

    static func run(
        store: PostgresDiffStore,
        folder: URL,
        name: String,
        poll: Duration,
        _ body: (FollowingInstance) async throws -> Void
    ) async throws {
        let logger = SharedRouteTableTests.logger
        let snapshot = folder.appendingPathComponent("\(name).snapshot.json").path
        let start = try await SharedRouteStart.load(store: store, routesFile: nil, snapshotPath: snapshot, logger: logger)
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1, shutdownGracePeriod: .seconds(2), accessLog: false),
            table: start.table,
            source: store.location,
            logger: logger
        )
        let control = ControlPlane(
            server: server,
            routesPath: folder.appendingPathComponent("routes.json").path,
            shared: .init(store: store, routesFile: nil, follower: .init(snapshotPath: snapshot, pollInterval: poll)),
            store: store,
            worker: nil,
            logger: logger
        )
        let started = PendingValue<Void>()
        try await whileRunning([ProxyService(server: server) { _ in started.fulfill(()) }] + control.services, logger: logger) {
            try await started.value()
            try await body(FollowingInstance(server: server, control: control, snapshot: snapshot))
        }
    }
}
