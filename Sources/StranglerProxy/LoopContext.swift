import Logging
import NIOCore
import NIOHTTP1
import StranglerCore

/// Everything one event loop needs to forward requests: the live route table and the upstream
/// pools. It is only ever touched on its own loop, so the hot path takes no locks; a reload
/// installs a new table on each loop with `execute`.
final class LoopContext {
    let eventLoop: EventLoop
    let configuration: ProxyConfiguration
    let logger: Logger
    var metrics: LoopMetrics
    private(set) var table: RouteTable
    private var pools: [String: UpstreamPool] = [:]
    var requestIDs = RequestIDGenerator()
    /// Open client connections on this loop, for graceful shutdown.
    private(set) var connections: [ObjectIdentifier: Channel] = [:]

    init(eventLoop: EventLoop, configuration: ProxyConfiguration, table: RouteTable, logger: Logger, metrics: ProxyMetrics) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
        self.metrics = LoopMetrics(metrics: metrics)
        self.table = table
        install(table)
    }

    /// Swaps in a new table. Requests already routed keep their route and their connection;
    /// pools whose upstream changed or vanished are retired (idle connections close, busy ones
    /// close when their exchange ends).
    func install(_ newTable: RouteTable) {
        eventLoop.assertInEventLoop()
        table = newTable
        for (name, pool) in pools where newTable.upstreams[name] != pool.upstream {
            pool.retire()
            pools[name] = nil
        }
        for (name, upstream) in newTable.upstreams where pools[name] == nil {
            pools[name] = UpstreamPool(upstream: upstream, eventLoop: eventLoop)
        }
    }

    func pool(named name: String) -> UpstreamPool? {
        pools[name]
    }

    func register(_ channel: Channel) {
        connections[ObjectIdentifier(channel)] = channel
    }

    func unregister(_ channel: Channel) {
        connections[ObjectIdentifier(channel)] = nil
    }

    /// Asks every client connection to finish its current response and close.
    func quiesce() {
        for channel in connections.values {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Closes all pools, at the end of shutdown.
    func closePools() {
        for pool in pools.values { pool.retire() }
        pools.removeAll()
    }

    /// Idle connections per upstream, for tests.
    func idleConnectionCounts() -> [String: Int] {
        pools.mapValues(\.idleCount)
    }
}
