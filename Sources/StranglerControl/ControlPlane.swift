import Foundation
import Logging
import NIOConcurrencyHelpers
import StranglerCore
import StranglerProxy
import StranglerStore

/// The pieces around a running proxy that change its routes, wired together: hot reload with
/// the file audit, the route controller, and the canary monitor.
///
/// ``StranglerApplication`` builds one, puts ``watcher`` and ``monitor`` in its service group,
/// and hands ``controller`` to the admin API.
public struct ControlPlane: Sendable {
    /// Hot reload: watches the routes file and applies each valid edit to the proxy.
    public let watcher: RouteTableWatcher
    /// Makes route changes (mode changes, promotions) by rewriting the routes file.
    public let controller: RouteController
    /// Records traffic and demotes canaries that break their gate.
    public let monitor: CanaryMonitor
    private let auditor: RouteFileAuditor
    private let routesPath: String

    /// - Parameter transform: applied to every table before it goes live (the demo's ports).
    public init(
        server: ProxyServer,
        routesPath: String,
        store: any DiffStore,
        worker: ComparisonWorker?,
        logger: Logger,
        controllerConfiguration: RouteController.Configuration = .init(),
        monitorConfiguration: CanaryMonitor.Configuration = .init(),
        transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 }
    ) {
        self.routesPath = routesPath
        auditor = RouteFileAuditor(store: store, metrics: server.metrics, logger: logger)
        let watcher = RouteTableWatcher(path: routesPath, server: server, logger: logger, auditor: auditor, transform: transform)
        self.watcher = watcher
        // The controller asks the monitor to store pending traffic, and the monitor demotes
        // through the controller: the monitor is bound once both exist.
        let monitorSlot = NIOLockedValueBox<CanaryMonitor?>(nil)
        let metrics = server.metrics
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
            pendingTraffic: {
                await monitorSlot.withLockedValue { $0 }?.flushNow()
            },
            changed: { source in metrics.recordRouteChange(source: source) }
        )
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
    /// ran is recorded now, as a file change).
    public func recordStartingTable() async {
        if let data = FileManager.default.contents(atPath: routesPath) {
            await auditor.tableWentLive(data)
        }
    }
}
