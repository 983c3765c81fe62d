import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore
import UnixSignals

/// Keeps this instance serving the route table of the shared PostgreSQL store.
///
/// Two paths bring a change, because one alone is not enough:
/// - the fast path: `LISTEN strangler_route_table` on a connection of its own; every commit
///   sends `NOTIFY` with its revision, and the instance fetches the table at once;
/// - the correct path: a poll of the head's revision every ``Configuration/pollInterval``
///   (2 s), because a notification sent while the listening connection was down is lost.
///
/// A new table is validated and installed by the same ``RouteTableReloader`` as a routes file,
/// and once live it is written to the snapshot file, so that a restart while the database is
/// away serves the last good table. While the database is away the live table stays, and the
/// proxy keeps serving; the log says when the follower loses and regains the database, once each.
public final class SharedRouteTableFollower: Service, Sendable {
    /// How the follower watches the store.
    public struct Configuration: Sendable {
        /// How often the head's revision is read, whatever the notifications say.
        public var pollInterval: Duration
        /// Where the last table that went live is kept for a start without the database.
        public var snapshotPath: String

        /// A configuration; the poll runs every 2 s unless told otherwise.
        public init(snapshotPath: String, pollInterval: Duration = .seconds(2)) {
            self.snapshotPath = snapshotPath
            self.pollInterval = pollInterval
        }
    }

    private struct State {
        /// The revision this instance serves (or rejected); nil before the first look.
        var applied: Int64?
        /// The content last fetched, which the reloader reads.
        var latest: Data?
        /// Whether the last look at the store failed, and since when: logged once per change.
        var storeFailingSince: ContinuousClock.Instant?
        /// Whether notifications were last known to be flowing.
        var listening: Bool?
    }

    private let store: PostgresDiffStore
    private let server: ProxyServer
    private let configuration: Configuration
    private let logger: Logger
    private let reloader: RouteTableReloader
    private let state: NIOLockedValueBox<State>
    /// One look at the store at a time, so revisions are applied in order.
    private let checking = AsyncSerial()

    /// The first look fetches the store's table even when the server started with it, so the
    /// snapshot is written at start too.
    /// - Parameters:
    ///   - transform: applied to every table before it goes live (the demo's ports); pure
    ///     computation only.
    public init(
        store: PostgresDiffStore,
        server: ProxyServer,
        configuration: Configuration,
        logger: Logger,
        transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 }
    ) {
        self.store = store
        self.server = server
        self.configuration = configuration
        self.logger = logger
        let state = NIOLockedValueBox(State())
        self.state = state
        reloader = RouteTableReloader(
            name: store.location,
            source: { () throws(RouteTableError) -> Data in
                guard let data = state.withLockedValue({ $0.latest }) else {
                    throw RouteTableError(problems: [.init(path: "$", message: "no route table fetched from the store yet")])
                }
                return data
            },
            server: server,
            logger: logger,
            auditor: nil,
            hooks: ReloadHooks(),
            transform: transform
        )
    }

    /// The revision this instance serves; nil before it applied one from the store.
    public var appliedRevision: Int64? {
        state.withLockedValue { $0.applied }
    }

    /// Listens and polls until graceful shutdown; SIGHUP reads the store at once, as it reloads
    /// a routes file without a shared store.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in signals {
                        self.logger.info("SIGHUP: reading the shared route table", metadata: ["store": "\(self.store.location)"])
                        await self.refresh()
                    }
                }
                group.addTask { await self.listen() }
                group.addTask {
                    while !Task.isCancelled {
                        await self.refresh()
                        do { try await Task.sleep(for: self.configuration.pollInterval) } catch { return }
                    }
                }
            }
        }
    }

    /// Reads the head's revision and, if it is not the one served, fetches the table and
    /// applies it. The route controller calls it after a commit, so the instance that made a
    /// change serves it before it answers.
    /// - Returns: whether this instance now serves the store's current revision.
    @discardableResult
    public func refresh() async -> Bool {
        await checking.acquire()
        let result = await refreshNow()
        await checking.release()
        return result
    }

    private func refreshNow() async -> Bool {
        do {
            guard let head = try await store.routeTableHead() else {
                storeAnswered()
                return false
            }
            storeAnswered()
            if head.revision == appliedRevision { return true }
            guard let (fetched, content) = try await store.routeTable() else { return false }
            state.withLockedValue { $0.latest = content }
            let wentLive = await apply()
            // Marked applied even when the table was rejected: the reloader keeps the live one
            // and says why (GET /api/routes), and validating the same content again every poll
            // would change nothing.
            state.withLockedValue { $0.applied = fetched.revision }
            if wentLive || ContentHash.hex(of: content) == server.state.status.table.version {
                writeSnapshot(content)
                logger.notice(
                    "route table applied from the shared store",
                    metadata: ["revision": "\(fetched.revision)", "version": "\(fetched.version)"]
                )
            }
            return true
        } catch {
            storeFailed(error)
            return false
        }
    }

    // MARK: - Internals

    private func apply() async -> Bool {
        do {
            guard case .reload(let outcome) = try await reloader.look(force: false).value() else { return false }
            return try await outcome.value()
        } catch {
            return false
        }
    }

    /// Listens for notifications on a connection of its own, reconnecting with backoff.
    private func listen() async {
        var backoff = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                try await store.listenForRouteTableChanges { [self] in
                    listeningChanged(to: true, error: nil)
                    await refresh()
                }
                return
            } catch {
                if Task.isCancelled { return }
                // A connection that was listening starts the backoff over.
                if state.withLockedValue({ $0.listening }) == true { backoff = .milliseconds(250) }
                listeningChanged(to: false, error: error)
            }
            do { try await Task.sleep(for: backoff) } catch { return }
            backoff = min(backoff * 2, .seconds(10))
        }
    }

    private func listeningChanged(to listening: Bool, error: (any Error)?) {
        let was = state.withLockedValue { state -> Bool? in
            defer { state.listening = listening }
            return state.listening
        }
        guard was != listening else { return }
        if listening {
            logger.info("listening for route table changes in the shared store", metadata: ["store": "\(store.location)"])
        } else {
            logger.warning(
                "route table notifications from the shared store stopped; the poll still applies changes within its interval",
                metadata: [
                    "store": "\(store.location)", "poll_interval": "\(configuration.pollInterval)",
                    "error": "\(error.map { "\($0)" } ?? "closed")",
                ]
            )
        }
    }

    private func storeAnswered() {
        guard
            let since = state.withLockedValue({ state -> ContinuousClock.Instant? in
                defer { state.storeFailingSince = nil }
                return state.storeFailingSince
            })
        else { return }
        logger.notice("the shared route table can be read again", metadata: ["unreadable_for": "\(ContinuousClock.now - since)"])
    }

    private func storeFailed(_ error: any Error) {
        let first = state.withLockedValue { state -> Bool in
            defer { if state.storeFailingSince == nil { state.storeFailingSince = .now } }
            return state.storeFailingSince == nil
        }
        guard first else { return }
        logger.error(
            "cannot read the shared route table; serving the live table until the store answers again",
            metadata: ["store": "\(store.location)", "version": "\(server.state.status.table.version)", "error": "\(error)"]
        )
    }

    /// Keeps the table that went live for a restart without the database, replacing the file
    /// atomically; a failure is logged and serving goes on.
    private func writeSnapshot(_ content: Data) {
        let path = configuration.snapshotPath
        if FileManager.default.contents(atPath: path) == content { return }
        do {
            try RouteFile(path: path).stage(content).commit()
        } catch {
            logger.error(
                "cannot write the route table snapshot; a restart while the database is away would have no table to serve",
                metadata: ["path": "\(path)", "error": "\(error)"]
            )
        }
    }
}
