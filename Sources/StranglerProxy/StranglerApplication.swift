import Logging
import ServiceLifecycle
import StranglerCore
import StranglerStore

/// A whole running StranglerFig as one service group: the comparison pipeline, the data plane,
/// the admin listener and the control plane, started in the one order that works and stopped
/// in reverse.
///
/// `strangler serve` runs one; `strangler demo` runs one with the demo's upstreams before the
/// proxy and its traffic generator after. The order matters both ways. On the way up, the
/// recorder and the comparison worker must take shadows before the proxy sends any, and the
/// upstreams a demo serves must listen before the proxy forwards. On the way down (the reverse),
/// reloading and canary judging stop first, then the admin listener, then the proxy drains, then
/// the worker, and last the recorder flushes what is queued.
public struct StranglerApplication: Sendable {
    /// The data plane.
    public let server: ProxyServer
    /// Hot reload, the route controller and the canary monitor.
    public let control: ControlPlane
    private let recorder: DiffRecorder
    private let worker: ComparisonWorker
    private let admin: any Service
    private let onProxyStarted: @Sendable (Int) -> Void

    /// Where the admin listener listens, and who may use it.
    public struct Admin: Sendable {
        public var host: String
        public var port: Int
        public var access: AdminAccess
        /// Called with the port once the admin listener is up.
        public var onStarted: @Sendable (Int) async -> Void

        public init(host: String, port: Int, access: AdminAccess, onStarted: @escaping @Sendable (Int) async -> Void = { _ in }) {
            self.host = host
            self.port = port
            self.access = access
            self.onStarted = onStarted
        }
    }

    /// Builds every part; nothing listens until ``run(before:after:logger:)``.
    /// - Parameters:
    ///   - transform: applied to every table before it goes live (the demo moves ports with it);
    ///     pure computation only (it runs in ``BackgroundWork``).
    ///   - logger: for the proxy and the control plane; `quietLogger` for the admin listener.
    /// - Throws: when the admin listener's address is not allowed for its access (see
    ///   ``AdminAccess``).
    public init(
        configuration: ProxyConfiguration, table: RouteTable, routesPath: String, store: SQLiteDiffStore, recorder: DiffRecorder,
        worker: ComparisonWorker, metrics: ProxyMetrics, admin: Admin, controllerConfiguration: RouteController.Configuration = .init(),
        monitorConfiguration: CanaryMonitor.Configuration = .init(), transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 },
        logger: Logger, quietLogger: Logger? = nil, onProxyStarted: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws {
        let server = ProxyServer(
            configuration: configuration, table: table, source: routesPath, logger: logger, metrics: metrics, shadowSink: worker)
        let control = ControlPlane(
            server: server, routesPath: routesPath, store: store, worker: worker, logger: logger,
            controllerConfiguration: controllerConfiguration, monitorConfiguration: monitorConfiguration, transform: transform
        )
        self.admin = try AdminAPI.makeApplication(
            server: server, controller: control.controller, access: admin.access, host: admin.host, port: admin.port,
            logger: quietLogger ?? logger, onRunning: admin.onStarted)
        self.server = server
        self.control = control
        self.recorder = recorder
        self.worker = worker
        self.onProxyStarted = onProxyStarted
    }

    /// Records the starting table in the audit trail, then runs every service until SIGTERM or
    /// SIGINT and a graceful shutdown.
    /// - Parameters:
    ///   - before: services that must run before the proxy forwards (a demo's upstreams).
    ///   - after: services that need everything else up (a demo's traffic).
    public func run(before: [any Service] = [], after: [any Service] = [], logger: Logger) async throws {
        await control.recordStartingTable()
        let services: [any Service] =
            [recorder, worker] + before + [ProxyService(server: server, onStarted: onProxyStarted), admin, control.monitor, control.watcher]
            + after
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
