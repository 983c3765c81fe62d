import Logging
import NIOCore
import NIOHTTP1
import StranglerCore

/// Everything one event loop needs to forward requests: the live route table and the upstream
/// pools. It is only ever touched on its own loop, so the hot path takes no locks; a reload
/// installs a new table on each loop with `submit`.
final class LoopContext {
    let eventLoop: EventLoop
    let configuration: ProxyConfiguration
    let logger: Logger
    var metrics: LoopMetrics
    private(set) var table: RouteTable
    /// The TLS contexts of the table's `https` upstreams, shared by every loop.
    private var tls: UpstreamTLSContexts
    /// `table.routes`, each in a shared box: an exchange holds its route by reference.
    private(set) var routes: [RouteEntry] = []
    private var pools: [String: UpstreamPool] = [:]
    /// The last two pools `pool(named:)` found, older first; cleared when the pools change.
    private var recentPools: (older: (name: String, pool: UpstreamPool)?, newer: (name: String, pool: UpstreamPool)?)
    var requestIDs = RequestIDGenerator()
    /// Where finished shadow exchanges go; nil when shadowing is off (no store).
    let shadowSink: ShadowSink?
    /// Shadow calls in flight on this loop, against `configuration.maxShadowsPerLoop`.
    var shadowsInFlight = 0
    /// Sampling without a syscall per request (SystemRandomNumberGenerator reads the kernel).
    var sampler = Xorshift(seed: UInt64.random(in: 1...UInt64.max))
    /// Requests per route and side, drained by the traffic collector.
    var traffic = LoopTraffic()
    /// Upstream timeouts of this loop's exchanges.
    let deadlines: UpstreamDeadlines
    #if DEBUG
    /// Live shadow objects, for leak tests.
    let live = LiveObjects()
    #endif
    /// Open client connections on this loop: graceful shutdown, client timeouts, the cap.
    let clients: ClientConnections
    /// Open client connections over all loops, against `configuration.maxClientConnections`.
    let clientCount: ClientConnectionCount

    init(
        eventLoop: EventLoop,
        configuration: ProxyConfiguration,
        table: RouteTable,
        tls: UpstreamTLSContexts,
        logger: Logger,
        metrics: ProxyMetrics,
        shadowSink: ShadowSink?,
        clientCount: ClientConnectionCount
    ) {
        self.clients = ClientConnections(
            eventLoop: eventLoop,
            resolution: ClientConnections.resolution(for: configuration.clientTimeoutLimits)
        )
        self.clientCount = clientCount
        self.eventLoop = eventLoop
        self.shadowSink = shadowSink
        self.configuration = configuration
        self.logger = logger
        self.metrics = LoopMetrics(metrics: metrics)
        self.table = table
        self.tls = tls
        self.deadlines = UpstreamDeadlines(eventLoop: eventLoop)
        // Built off its loop, before the loop runs anything: the pools, which schedule on the
        // loop, wait for ``openPools()``.
        let installation = Installation(table, tls: tls)
        self.routes = installation.routes
        _ = traffic.install(installation.traffic)
    }

    /// Swaps in a table whose per-loop structures were built off the loop, so a reload costs
    /// the loop a few assignments however many routes the table has. Requests already routed keep
    /// their route and their connection; pools whose upstream changed or vanished are retired
    /// (idle connections close, busy ones close when their exchange ends).
    /// - Returns: what was installed before, for the caller to release off the loop.
    func install(_ installation: Installation) -> Installation {
        eventLoop.assertInEventLoop()
        let replaced = Installation(table: table, tls: tls, routes: routes, traffic: traffic.install(installation.traffic))
        table = installation.table
        tls = installation.tls
        routes = installation.routes
        recentPools = (nil, nil)
        // A pool goes when its upstream changed or vanished, or when its TLS context was rebuilt
        // (a certificate file changed under the same settings).
        for (name, pool) in pools
        where installation.table.upstreams[name] != pool.upstream
            || installation.tls.context(for: name).flatMap({ try? $0.get() }) !== pool.tlsContext
        {
            pool.retire()
            pools[name] = nil
        }
        openPools()
        return replaced
    }

    /// Opens a pool for every upstream of the live table that has none; on the loop, before
    /// the listener accepts, and after each install.
    func openPools() {
        eventLoop.assertInEventLoop()
        for (name, upstream) in table.upstreams where pools[name] == nil {
            pools[name] = UpstreamPool(upstream: upstream, eventLoop: eventLoop, tls: tls.context(for: name))
        }
    }

    /// A route table with the structures one event loop serves it from.
    ///
    /// Built off the loop: for a table of 90,000 routes, making them on the loop stalled its
    /// connections, and releasing the old ones there did again.
    struct Installation: Sendable {
        let table: RouteTable
        /// The TLS contexts of `table`'s `https` upstreams.
        let tls: UpstreamTLSContexts
        /// `table.routes`, boxed for one loop.
        let routes: [RouteEntry]
        /// Zeroed request counters for `table.routes`.
        let traffic: LoopTraffic.Counters

        init(_ table: RouteTable, tls: UpstreamTLSContexts) {
            self.init(table: table, tls: tls, routes: table.routes.map(RouteEntry.init), traffic: LoopTraffic.Counters(table))
        }

        init(table: RouteTable, tls: UpstreamTLSContexts, routes: [RouteEntry], traffic: LoopTraffic.Counters) {
            self.table = table
            self.tls = tls
            self.routes = routes
            self.traffic = traffic
        }
    }

    /// One route of the live table, shared by the exchanges routed by it. Each loop has its
    /// own, so an exchange retains and releases a box no other core touches.
    final class RouteEntry: Sendable {
        let route: Route

        init(_ route: Route) {
            self.route = route
        }
    }

    func pool(named name: String) -> UpstreamPool? {
        // Requests go to one or two upstreams in turn (legacy, and the candidate of a shadowed
        // route), whose names share their storage from request to request: comparing with the
        // last two names is cheaper than hashing the name.
        if let newer = recentPools.newer, newer.name == name { return newer.pool }
        if let older = recentPools.older, older.name == name { return older.pool }
        let pool = pools[name]
        if let pool { recentPools = (recentPools.newer, (name, pool)) }
        return pool
    }

    /// Asks every client connection to finish its current response and close.
    func quiesce() {
        clients.quiesceAll()
    }

    /// Closes all pools, at the end of shutdown.
    func closePools() {
        for pool in pools.values { pool.retire() }
        pools.removeAll()
        recentPools = (nil, nil)
        deadlines.stop()
        clients.stop()
    }
}

/// A small, fast pseudo-random generator for sampling decisions (not for anything secret).
struct Xorshift: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    /// A uniform value in 0..<1.
    mutating func unit() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}
