import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import StranglerCore

/// The forwarding listener: a SwiftNIO HTTP/1.1 server whose connections forward to upstream
/// pools on their own event loop.
///
/// ```swift
/// let server = ProxyServer(configuration: .init(port: 0), table: table, logger: logger)
/// try await server.start()
/// print(server.localPort!)
/// server.apply(newTable)   // hot reload
/// await server.shutdown()
/// ```
public final class ProxyServer: Sendable {
    /// Listener settings.
    public let configuration: ProxyConfiguration
    /// The live table's status, shared with the admin API.
    public let state: RouteTableState
    /// Metrics, shared with the admin API.
    public let metrics: ProxyMetrics
    /// The listener's certificate, when it serves TLS (``ProxyConfiguration/tls``): reload it
    /// with ``ListenerTLSReloader/reload(reason:)`` or ``ListenerTLSReloader/poll()``.
    public let tls: ListenerTLSReloader?
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let loops: [ObjectIdentifier: NIOLoopBoundBox<LoopContext>]
    /// The bound listener, and whether shutdown has begun: one lock, so a start that finishes
    /// binding after shutdown began closes its listener instead of keeping it.
    private let listener = NIOLockedValueBox(Listener())

    private struct Listener {
        var channel: Channel?
        var stopping = false
    }
    /// Client connections open over all loops, against the cap.
    private let clientCount: ClientConnectionCount
    /// Where relative certificate paths of `https` upstreams are read from.
    private let upstreamFilesDirectory: String
    /// The live table's upstream TLS contexts; a reload reuses those of unchanged upstreams.
    private let upstreamTLS: NIOLockedValueBox<UpstreamTLSContexts>

    /// Creates the server and its event loops; nothing is bound until ``start()``.
    /// - Parameters:
    ///   - shadowSink: where shadow comparisons go; without one, shadow routes are served by
    ///     legacy and not compared.
    ///   - upstreamFilesDirectory: where relative certificate paths of `https` upstreams are
    ///     read from (the route table file's folder); the working directory when nil. An
    ///     upstream whose files cannot be loaded fails its requests closed (`upstream_tls`);
    ///     check them first with ``RouteTableLoader``'s serving load.
    public init(
        configuration: ProxyConfiguration,
        table: RouteTable,
        source: String? = nil,
        logger: Logger,
        metrics: ProxyMetrics = ProxyMetrics(),
        shadowSink: ShadowSink? = nil,
        upstreamFilesDirectory: String? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.state = RouteTableState(table: table, source: source)
        let directory = upstreamFilesDirectory ?? FileManager.default.currentDirectoryPath
        self.upstreamFilesDirectory = directory
        let upstreamTLS = UpstreamTLSContexts(for: table, relativeTo: directory)
        self.upstreamTLS = NIOLockedValueBox(upstreamTLS)
        Self.warn(about: upstreamTLS, logger)
        self.tls = configuration.tls.map { ListenerTLSReloader(tls: $0, listener: "proxy", logger: logger, metrics: metrics) }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        var cap = configuration.maxClientConnections
        if let descriptors = FileDescriptorLimit.raiseSoftLimit() {
            cap = FileDescriptorLimit.connectionCap(requested: configuration.maxClientConnections, descriptors: descriptors)
            if cap < configuration.maxClientConnections {
                logger.warning(
                    "the open-file limit allows fewer client connections than --max-client-connections; using the lower cap",
                    metadata: [
                        "requested": "\(configuration.maxClientConnections)", "cap": "\(cap)", "nofile": "\(descriptors)",
                        "fix":
                            "raise the nofile limit (ulimit -n, LimitNOFILE=) to at least \(2 * configuration.maxClientConnections + FileDescriptorLimit.reserved)",
                    ]
                )
            }
        }
        let clientCount = ClientConnectionCount(limit: cap)
        self.clientCount = clientCount
        var loops: [ObjectIdentifier: NIOLoopBoundBox<LoopContext>] = [:]
        for eventLoop in group.makeIterator() {
            // Built here, before the loop has run anything, and sent to it: from now on only that
            // loop touches it. Nothing waits on the loops, so an async caller's thread is not held
            // by them (building each loop's route structures still takes time here, on the
            // caller's thread, once per loop).
            let context = LoopContext(
                eventLoop: eventLoop,
                configuration: configuration,
                table: table,
                tls: upstreamTLS,
                logger: logger,
                metrics: metrics,
                shadowSink: shadowSink,
                clientCount: clientCount
            )
            loops[ObjectIdentifier(eventLoop)] = NIOLoopBoundBox.makeBoxSendingValue(context, eventLoop: eventLoop)
        }
        self.loops = loops
    }

    /// Reads the TLS files, if any, then binds the listener.
    /// - Throws: ``ListenerTLSError`` for an unusable certificate or key; what NIO throws when the
    ///   address is taken or invalid.
    public func start() async throws {
        try tls?.load()
        // Each loop opens its upstream pools (they schedule their sweeps there) and, as its own
        // thread, asks for its scheduling slice: a scheduling attribute belongs to a thread.
        var slices: [EventLoopSlice.Outcome] = []
        for bound in loops.values {
            guard !listener.withLockedValue({ $0.stopping }) else { return }
            let slice = configuration.eventLoopSlice
            let outcome = try await bound.eventLoop.submit {
                bound.value.openPools()
                return slice.map(EventLoopSlice.request)
            }.get()
            if let outcome { slices.append(outcome) }
        }
        Self.log(slices, requested: configuration.eventLoopSlice, logger)
        let loops = self.loops
        let configuration = self.configuration
        let clientCount = self.clientCount
        let metrics = self.metrics
        let tls = self.tls
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let loop = loops[ObjectIdentifier(channel.eventLoop)] else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    if !clientCount.tryOpen() {
                        // At the cap: make room by closing the connection that has waited longest
                        // for a request (a silent or idle one), or refuse this one at once.
                        guard loop.value.clients.evictLongestIdle() else {
                            metrics.addToCounter("strangler_client_connections_refused_total", 1)
                            channel.close(promise: nil)
                            return
                        }
                        clientCount.forceOpen()
                        metrics.addToCounter("strangler_client_connections_evicted_total", 1)
                    }
                    let sync = channel.pipeline.syncOperations
                    // ProxyHandler is the whole pipeline: it parses requests from the bytes
                    // (ClientRequestParser) and writes response bytes itself, copying both heads'
                    // lines from the bytes they came as, so no decoder, encoder or `HTTPHeaders`
                    // round trip sits in between. No pipelining or error handlers either: it
                    // orders pipelined requests and answers malformed ones itself. NIO's
                    // pipelining handler stops reading while each response is pending, which
                    // costs two epoll_ctl calls per request.
                    //
                    // With TLS, NIOSSL sits in front and ProxyHandler sees plaintext. The context
                    // is read once here: the connection keeps it for its life, and a reload only
                    // changes what later connections get.
                    do {
                        if let tls {
                            try sync.addHandler(NIOSSLServerHandler(context: tls.current.context))
                        }
                        try sync.addHandler(ProxyHandler(loop: loop.value, holdsConnectionPlace: true, overTLS: tls != nil))
                    } catch {
                        clientCount.closed()
                        throw error
                    }
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        let stopping = listener.withLockedValue { listener in
            if !listener.stopping { listener.channel = channel }
            return listener.stopping
        }
        if stopping {
            try? await channel.close()
            return
        }
        logger.info(
            "proxy listening",
            metadata: [
                "address": "\(configuration.host):\(channel.localAddress?.port ?? configuration.port)",
                "threads": "\(configuration.threads)", "routes_version": "\(state.status.table.version)",
                "tls": "\(tls.map { "on, certificate \($0.tls.certificateFile)" } ?? "off")",
            ]
        )
    }

    /// The bound port, once started.
    public var localPort: Int? {
        listener.withLockedValue { $0.channel?.localAddress?.port }
    }

    /// A table with each event loop's structures already built for it, ready for
    /// ``apply(_:)-(PreparedTable)``.
    public struct PreparedTable: Sendable {
        /// The table that goes live when this is applied.
        public let table: RouteTable
        fileprivate let tls: UpstreamTLSContexts
        fileprivate let installations: [ObjectIdentifier: LoopContext.Installation]
    }

    /// Builds what each event loop needs for `table`: work that grows with the table, done by
    /// the caller (the reloader does it on its idle-priority thread), so that no event loop and
    /// no concurrency-pool thread spends it. That includes reading the certificate files of
    /// new or changed `https` upstreams.
    /// - Throws: a ``RouteTableError`` naming each certificate file that is missing or broken,
    ///   at its JSON path: such a table is refused, and the live one stays.
    public func prepare(_ table: RouteTable) throws(RouteTableError) -> PreparedTable {
        let tls = UpstreamTLSContexts(for: table, relativeTo: upstreamFilesDirectory, reusing: upstreamTLS.withLockedValue { $0 })
        let problems = tls.problems
        if !problems.isEmpty { throw RouteTableError(problems: problems) }
        return PreparedTable(table: table, tls: tls, installations: loops.mapValues { _ in LoopContext.Installation(table, tls: tls) })
    }

    /// Makes `table` the live table on every event loop and returns once all of them have it.
    /// Requests already routed finish with the route and connection they have.
    /// - Throws: what ``prepare(_:)`` throws; the live table then stays.
    public func apply(_ table: RouteTable) async throws(RouteTableError) {
        await apply(try prepare(table))
    }

    /// Makes a prepared table live on every event loop and returns once all of them have it.
    /// Each loop only swaps it in; what it replaced is released on a background thread
    /// (``BackgroundWork``), since freeing a large table costs about as much as building it.
    public func apply(_ prepared: PreparedTable) async {
        let replaced = NIOLockedValueBox<[LoopContext.Installation]>([])
        for (key, bound) in loops {
            guard let installation = prepared.installations[key] else { continue }
            try? await bound.eventLoop.submit {
                let old = bound.value.install(installation)
                replaced.withLockedValue { $0.append(old) }
            }.get()
        }
        let previous = state.recordLoaded(prepared.table)
        upstreamTLS.withLockedValue { $0 = prepared.tls }
        Self.warn(about: prepared.tls, logger)
        metrics.reloadsOK.increment()
        let garbage = NIOLockedValueBox<(RouteTable, [LoopContext.Installation])?>((previous, replaced.withLockedValue { $0 }))
        replaced.withLockedValue { $0 = [] }
        BackgroundWork.start(named: "routes-release") { _ = garbage.withLockedValue { $0.take() } }
    }

    /// The loud warning for every upstream that skips certificate verification, at each load.
    private static func warn(about tls: UpstreamTLSContexts, _ logger: Logger) {
        for name in tls.unverifiedUpstreams {
            logger.warning(
                "TLS certificate verification is OFF for this upstream: anyone on the path can read and change its traffic",
                metadata: [
                    "upstream": "\(name)", "setting": "insecureSkipVerify",
                    "fix": "set caFile to the upstream's CA and remove insecureSkipVerify",
                ]
            )
        }
    }

    private static func log(_ slices: [EventLoopSlice.Outcome], requested: TimeAmount?, _ logger: Logger) {
        guard let requested, let outcome = slices.first else { return }
        switch outcome {
        case .granted(let nanoseconds):
            logger.info(
                "event loops run with short scheduling slices, so they preempt background work when they wake",
                metadata: ["requested_us": "\(requested.nanoseconds / 1000)", "granted_us": "\(nanoseconds / 1000)"]
            )
        case .ignored:
            logger.notice(
                "the kernel has no custom scheduling slices (they need Linux 6.12 or later); event loops use its default",
                metadata: ["requested_us": "\(requested.nanoseconds / 1000)"]
            )
        case .refused(let errno):
            logger.notice(
                "the kernel refused the event loops' scheduling slice; they use its default",
                metadata: [
                    "requested_us": "\(requested.nanoseconds / 1000)", "errno": "\(errno)",
                    "cause": "\(errno == EPERM ? "the proxy runs with a real-time or idle policy (chrt)" : "not supported here")",
                ]
            )
        }
    }

    /// Records a rejected table: the live one stays.
    public func reject(_ error: RouteTableError, version: String?) {
        state.recordRejected(error, version: version)
        metrics.reloadsFailed.increment()
    }

    /// Requests per route and side counted since the last call, summed over the event loops.
    public func drainTraffic() async -> [RouteTraffic] {
        var merged: [String: RouteTraffic] = [:]
        for bound in loops.values {
            let items = (try? await bound.eventLoop.submit { bound.value.traffic.drain() }.get()) ?? []
            for item in items {
                merged[item.routeID, default: RouteTraffic(routeID: item.routeID)].add(
                    legacy: item.legacy,
                    service: item.service,
                    serviceErrors: item.serviceErrors
                )
            }
        }
        return Array(merged.values)
    }

    #if DEBUG
    /// Live shadow exchanges and side calls over all loops (debug builds; for leak tests).
    func liveShadowObjects() async -> (exchanges: Int, sideCalls: Int) {
        var total = (exchanges: 0, sideCalls: 0)
        for bound in loops.values {
            let live =
                (try? await bound.eventLoop.submit {
                    (bound.value.live.shadowExchanges.load(ordering: .relaxed), bound.value.live.sideCalls.load(ordering: .relaxed))
                }.get()) ?? (0, 0)
            total.exchanges += live.0
            total.sideCalls += live.1
        }
        return total
    }
    #endif

    /// The client connection cap in force: `maxClientConnections`, or lower if the open-file
    /// limit does not allow it.
    public var clientConnectionCap: Int { clientCount.limit }

    #if DEBUG
    /// Client connection handlers not yet freed, over all loops (debug builds; for leak tests).
    func liveProxyHandlers() async -> Int {
        var total = 0
        for bound in loops.values {
            total += (try? await bound.eventLoop.submit { bound.value.live.proxyHandlers.load(ordering: .relaxed) }.get()) ?? 0
        }
        return total
    }
    #endif

    /// Number of open client connections, summed over the event loops.
    public func openConnections() async -> Int {
        var total = 0
        for bound in loops.values {
            total += (try? await bound.eventLoop.submit { bound.value.clients.count }.get()) ?? 0
        }
        return total
    }

    /// Stops accepting, lets in-flight exchanges finish (up to the grace period), then closes
    /// everything and stops the event loops.
    public func shutdown() async {
        let channel = listener.withLockedValue { listener in
            listener.stopping = true
            return listener.channel
        }
        if let channel {
            try? await channel.close()
        }
        for bound in loops.values {
            bound.eventLoop.execute { bound.value.quiesce() }
        }
        let deadline = NIODeadline.now() + configuration.shutdownGracePeriod
        while NIODeadline.now() < deadline, await openConnections() > 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for bound in loops.values {
            try? await bound.eventLoop.submit {
                bound.value.clients.closeAll()
                bound.value.closePools()
            }.get()
        }
        try? await group.shutdownGracefully()
        logger.info("proxy stopped")
    }
}
