import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore

/// The pieces around a running proxy that change its routes, wired together: hot reload with
/// the file audit (or, with a shared store, the follower of the shared table and the routes
/// file's publisher), the route controller, and the canary monitor.
///
/// ``StranglerApplication`` builds one, puts ``services`` in its service group, and hands
/// ``controller`` to the admin API.
public struct ControlPlane: Sendable {
    /// Where a shared table is kept, for an instance whose store is PostgreSQL.
    public struct Shared: Sendable {
        /// The shared store, holding the table.
        public var store: PostgresDiffStore
        /// The routes file pushed into the shared table when it changes; nil when the table is
        /// changed only through the CLI and the admin API.
        public var routesFile: String?
        /// How the shared table is followed: the poll interval and the snapshot file.
        public var follower: SharedRouteTableFollower.Configuration

        /// A shared setup.
        public init(store: PostgresDiffStore, routesFile: String?, follower: SharedRouteTableFollower.Configuration) {
            self.store = store
            self.routesFile = routesFile
            self.follower = follower
        }
    }

    /// Hot reload of the routes file; nil with a shared store.
    public let watcher: RouteTableWatcher?
    /// Applies the shared table's changes; nil without a shared store.
    public let follower: SharedRouteTableFollower?
    /// Pushes the routes file into the shared table; nil unless both are given.
    public let publisher: RouteFilePublisher?
    /// Makes route changes (mode changes, promotions): rewrites the routes file, or commits to
    /// the shared table.
    public let controller: RouteController
    /// Records traffic and demotes canaries that break their gate.
    public let monitor: CanaryMonitor
    private let auditor: RouteFileAuditor?
    private let routesPath: String?

    /// The services to run beside the proxy.
    public var services: [any Service] {
        [monitor] + ([watcher, follower, publisher] as [(any Service)?]).compactMap { $0 }
    }

    /// - Parameters:
    ///   - shared: with a PostgreSQL store, where the shared table is; the routes file (if any)
    ///     is then pushed into it instead of being served directly.
    ///   - transform: applied to every table before it goes live (the demo's ports).
    public init(
        server: ProxyServer,
        routesPath: String,
        shared: Shared? = nil,
        store: any DiffStore,
        worker: ComparisonWorker?,
        logger: Logger,
        controllerConfiguration: RouteController.Configuration = .init(),
        monitorConfiguration: CanaryMonitor.Configuration = .init(),
        transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 }
    ) {
        // The controller asks the monitor to store pending traffic, and the monitor demotes
        // through the controller: the monitor is bound once both exist.
        let monitorSlot = NIOLockedValueBox<CanaryMonitor?>(nil)
        let metrics = server.metrics
        let pendingTraffic: @Sendable () async -> Void = { await monitorSlot.withLockedValue { $0 }?.flushNow() }
        let changed: @Sendable (RouteChange.Source) -> Void = { source in metrics.recordRouteChange(source: source) }
        if let shared {
            let follower = SharedRouteTableFollower(
                store: shared.store,
                server: server,
                configuration: shared.follower,
                logger: logger,
                transform: transform
            )
            let controller = RouteController(
                authority: SharedRouteAuthority(store: shared.store),
                store: store,
                configuration: controllerConfiguration,
                afterWrite: { await follower.refresh() },
                pendingTraffic: pendingTraffic,
                changed: changed
            )
            self.controller = controller
            self.follower = follower
            publisher = shared.routesFile.map { RouteFilePublisher(path: $0, store: shared.store, controller: controller, logger: logger) }
            watcher = nil
            auditor = nil
            self.routesPath = nil
        } else {
            let auditor = RouteFileAuditor(store: store, metrics: server.metrics, logger: logger)
            let watcher = RouteTableWatcher(path: routesPath, server: server, logger: logger, auditor: auditor, transform: transform)
            controller = RouteController(
                routesPath: routesPath,
                store: store,
                configuration: controllerConfiguration,
                beforeChange: {
                    await watcher.auditsSettled()
                },
                afterWrite: {
                    await watcher.reloadIfChanged(force: false)
                },
                pendingTraffic: pendingTraffic,
                changed: changed
            )
            self.watcher = watcher
            self.auditor = auditor
            follower = nil
            publisher = nil
            self.routesPath = routesPath
        }
        monitor = CanaryMonitor(
            server: server,
            store: store,
            controller: controller,
            worker: worker,
            configuration: monitorConfiguration,
            logger: logger
        )
        monitorSlot.withLockedValue { $0 = monitor }
    }

    /// Records the table the proxy starts with in the audit trail (an edit made while no proxy
    /// ran is recorded now, as a file change). A shared table's changes are audited when they
    /// are committed, so there is nothing to record for one.
    public func recordStartingTable() async {
        if let auditor, let routesPath, let data = FileManager.default.contents(atPath: routesPath) {
            await auditor.tableWentLive(data)
        }
    }
}
