import Logging
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore
import UnixSignals

/// A whole running StranglerFig as one service group: the comparison pipeline, the data plane,
/// the admin listener and the control plane, started in the one order that works and stopped
/// in reverse.
///
/// `strangler serve` runs one; `strangler demo` runs one with the demo's upstreams and its
/// traffic generator. The service group starts every service at once; the order governs the
/// graceful shutdown, which runs in reverse: reloading and canary judging stop first, then the
/// admin listener, then the proxy drains (and the demo's upstreams after it), then the
/// comparison worker, and last the recorder flushes what is queued.
public struct StranglerApplication: Sendable {
    /// The data plane.
    public let server: ProxyServer
    /// Hot reload, the route controller and the canary monitor.
    public let control: ControlPlane
    private let recorder: DiffRecorder
    private let worker: ComparisonWorker
    private let admin: any Service
    private let leadership: PostgresLeadership?
    private let onProxyStarted: @Sendable (Int) -> Void
    /// The TLS listeners' certificates: the proxy's and the admin listener's.
    private let certificates: [ListenerTLSReloader]

    /// Builds the admin listener once the data plane and the controller exist. The control
    /// module cannot name the admin API (it sits above this module), so the caller supplies it:
    /// `StranglerAdmin`'s `AdminAPI.listener(host:port:access:)` makes one.
    public typealias AdminFactory = @Sendable (_ server: ProxyServer, _ controller: RouteController, _ logger: Logger) throws -> any Service

    /// Builds every part; nothing listens until ``run(before:after:logger:)``.
    /// - Parameters:
    ///   - leadership: with a shared store, the election of the instance that runs the cluster's
    ///     duties (it joins the service group, and the canary monitor judges from the store).
    ///   - transform: applied to every table before it goes live (the demo moves ports with it);
    ///     pure computation only (it runs in ``BackgroundWork``).
    ///   - logger: for the proxy and the control plane; `quietLogger` for the admin listener.
    ///   - adminTLS: the admin listener's certificate, when it serves TLS: reloaded with the
    ///     proxy's, when its files change and on SIGHUP.
    /// - Throws: what `admin` throws (an admin address its access does not allow).
    public init(
        configuration: ProxyConfiguration,
        table: RouteTable,
        routesPath: String,
        shared: ControlPlane.Shared? = nil,
        store: any DiffStore,
        leadership: PostgresLeadership? = nil,
        recorder: DiffRecorder,
        worker: ComparisonWorker,
        metrics: ProxyMetrics,
        admin: AdminFactory,
        controllerConfiguration: RouteController.Configuration = .init(),
        monitorConfiguration: CanaryMonitor.Configuration = .init(),
        transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 },
        logger: Logger,
        quietLogger: Logger? = nil,
        adminTLS: ListenerTLSReloader? = nil,
        onProxyStarted: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws {
        let server = ProxyServer(
            configuration: configuration,
            table: table,
            source: shared.map { "the route table in \($0.store.location)" } ?? routesPath,
            logger: logger,
            metrics: metrics,
            shadowSink: worker,
            // Relative certificate paths of https upstreams are read beside the routes file.
            upstreamFilesDirectory: RouteTableLoader.directory(of: routesPath)
        )
        let control = ControlPlane(
            server: server,
            routesPath: routesPath,
            shared: shared,
            store: store,
            worker: worker,
            logger: logger,
            controllerConfiguration: controllerConfiguration,
            monitorConfiguration: {
                // Traffic counts under the instance the recorder writes its rollups under.
                var monitor = monitorConfiguration
                monitor.instanceID = recorder.instanceID
                // With a shared store the leader alone judges canaries, from every instance's
                // answers in the store, and only it demotes.
                if let leadership { monitor.judging = .sharedStore(leadership) }
                return monitor
            }(),
            transform: transform
        )
        self.admin = try admin(server, control.controller, quietLogger ?? logger)
        self.server = server
        self.control = control
        self.recorder = recorder
        self.worker = worker
        self.leadership = leadership
        self.onProxyStarted = onProxyStarted
        self.certificates = [server.tls, adminTLS].compactMap { $0 }
    }

    /// Records the starting table in the audit trail, then runs every service until SIGTERM or
    /// SIGINT and a graceful shutdown.
    /// - Parameters:
    ///   - before: services to stop after the proxy has drained (a demo's upstreams).
    ///   - after: services to stop first (a demo's traffic).
    public func run(before: [any Service] = [], after: [any Service] = [], logger: Logger) async throws {
        await control.recordStartingTable()
        // The election starts first and stops last: the recorder and the monitor, which ask it
        // whether this instance leads, stop before it.
        let services: [any Service] =
            (leadership.map { [$0] } ?? []) + [recorder, worker] + before + [ProxyService(server: server, onStarted: onProxyStarted), admin]
            + control.services
            + (certificates.isEmpty ? [] : [CertificateReloads(reloaders: certificates)])
            + after
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

/// Reloads the TLS listeners' certificates when their files change and on SIGHUP, the signal
/// that also reloads the route table: an operator who renewed a certificate and edited the
/// routes sends one signal. Stops before the listeners do.
private struct CertificateReloads: Service {
    let reloaders: [ListenerTLSReloader]

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let reloaders = self.reloaders
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in signals {
                        // Each logs what became of it.
                        for reloader in reloaders { reloader.reload(reason: "SIGHUP") }
                    }
                }
                for reloader in reloaders {
                    group.addTask { await reloader.watch() }
                }
            }
        }
    }
}
