import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import StranglerCore

/// The keep-alive connections to one upstream that belong to one event loop.
///
/// Everything here runs on `eventLoop`: no locks, no thread hops. A client connection on this
/// loop only ever borrows upstream connections from this loop's pools, so a request never
/// changes threads (docs/architecture.md, "Upstream connections").
final class UpstreamPool {
    let upstream: Upstream
    let eventLoop: EventLoop
    private let bootstrap: ClientBootstrap
    private var idle: [UpstreamConnection] = []
    private var waiters = CircularBuffer<(UpstreamConnection?, ProxyError?) -> Void>()
    /// Open plus opening connections.
    private(set) var total = 0
    /// Set when a reload removed or changed this upstream: connections are closed as they free up.
    private(set) var isRetired = false
    private let maxWaiters = 4096
    private var sweepTask: Scheduled<Void>?
    /// An `https` upstream's TLS context, or why it could not be built (every connect then
    /// fails closed with it); nil for plain http.
    private let tls: Result<NIOSSLContext, UpstreamTLSFailure>?
    /// The name sent as SNI and verified against the certificate; nil for an IP literal host.
    private let serverHostname: String?
    /// The last named cause of a failed verification, reused for a while instead of connecting
    /// again to look at the chain after every failure.
    private var lastDiagnosis: (at: NIODeadline, failure: UpstreamTLSFailure)?
    /// Requests waiting for the diagnosis in flight; nil when none is: failures that come
    /// together share one look at the chain.
    private var diagnosisWaiters: [(UpstreamTLSFailure) -> Void]?
    /// The TLS context this pool's connections use, to tell a reload that changed it.
    var tlsContext: NIOSSLContext? { try? tls?.get() }
    /// How long a diagnosis is reused.
    static let diagnosisInterval = TimeAmount.seconds(10)

    /// - Parameter tls: an `https` upstream's context, or why there is none. Required for an
    ///   `https` upstream: without it every connect fails closed, never in plain TCP.
    init(upstream: Upstream, eventLoop: EventLoop, tls: Result<NIOSSLContext, UpstreamTLSFailure>?) {
        self.upstream = upstream
        self.eventLoop = eventLoop
        if upstream.isTLS, tls == nil {
            self.tls = .failure(UpstreamTLSFailure(.configuration, "no TLS context was built for this https upstream"))
        } else {
            self.tls = tls
        }
        let tls = self.tls
        let serverHostname = upstream.tls?.serverHostname(for: upstream.host)
        self.serverHostname = serverHostname
        let context = try? tls?.get()
        self.bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(upstream.connectTimeoutMs)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // An https upstream: TLS below, then the same single handler as plain http.
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                    }
                    // One handler: UpstreamConnection writes requests as bytes and reads the
                    // responses itself, so no `HTTPHeaders` are built either way.
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection())
                }
            }
        scheduleSweep()
    }

    /// An idle connection, if one is ready. The common case under load: the caller skips
    /// ``acquire(_:)`` and the callback it would allocate per request.
    func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Hands a connection to `callback`: an idle one if there is one, else a new one, else waits.
    func acquire(_ callback: @escaping (UpstreamConnection?, ProxyError?) -> Void) {
        if let connection = takeIdle() {
            callback(connection, nil)
            return
        }
        if total < upstream.maxConnectionsPerLoop {
            connect(callback)
        } else if waiters.count < maxWaiters {
            waiters.append(callback)
        } else {
            callback(
                nil,
                .poolExhausted(
                    "upstream \"\(upstream.name)\" (\(upstream.authority)) has \(total) busy connections on this thread and \(waiters.count) requests waiting; raise maxConnectionsPerLoop or add capacity"
                )
            )
        }
    }

    /// Opens a fresh connection, bypassing idle ones: used to retry after a stale keep-alive.
    func acquireFresh(_ callback: @escaping (UpstreamConnection?, ProxyError?) -> Void) {
        connect(callback)
    }

    private func connect(_ callback: @escaping (UpstreamConnection?, ProxyError?) -> Void) {
        if case .failure(let failure)? = tls {
            // Settings that could not be loaded: fail closed, never fall back to plain TCP.
            callback(nil, .upstreamTLS(failure, upstream: upstream))
            return
        }
        total += 1
        let upstream = self.upstream
        bootstrap.connect(host: upstream.host, port: upstream.port).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) else {
                    self.total -= 1
                    channel.close(promise: nil)
                    callback(nil, .connectFailed("upstream \"\(upstream.name)\" (\(upstream.authority)): pipeline setup failed"))
                    return
                }
                connection.pool = self
                if self.tls == nil {
                    callback(connection, nil)
                } else {
                    self.awaitHandshake(of: connection, callback)
                }
            case .failure(let error):
                self.total -= 1
                callback(nil, Self.describe(error, upstream: upstream))
                self.serveWaiter()
            }
        }
    }

    /// Hands `connection` to `callback` once its TLS handshake has completed, or the failure,
    /// named, once it has not. The handshake is bounded by the connect timeout as well.
    private func awaitHandshake(of connection: UpstreamConnection, _ callback: @escaping (UpstreamConnection?, ProxyError?) -> Void) {
        let upstream = self.upstream
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(upstream.connectTimeoutMs))) {
            connection.abandonHandshake(
                ProxyError.connectTimeout(
                    "upstream \"\(upstream.name)\" (\(upstream.authority)) did not finish the TLS handshake within \(upstream.connectTimeoutMs) ms"
                )
            )
        }
        connection.awaitHandshake { error in
            timeout.cancel()
            guard let error else {
                callback(connection, nil)
                return
            }
            // The connection closes; `connectionClosed` gives its place back.
            if let proxyError = error as? ProxyError {
                callback(nil, proxyError)
                return
            }
            let failure = UpstreamTLSFailure.classify(error, expectedName: self.serverHostname)
            guard failure.needsDiagnosis else {
                callback(nil, .upstreamTLS(failure, upstream: upstream))
                return
            }
            if let last = self.lastDiagnosis, last.at + Self.diagnosisInterval > .now() {
                callback(nil, .upstreamTLS(last.failure, upstream: upstream))
                return
            }
            let answer: (UpstreamTLSFailure) -> Void = { callback(nil, .upstreamTLS($0, upstream: upstream)) }
            if self.diagnosisWaiters != nil {
                self.diagnosisWaiters?.append(answer)
                return
            }
            self.diagnosisWaiters = [answer]
            // Always completes (it recovers to `failure`, and is bounded by the connect timeout).
            UpstreamTLSDiagnosis.diagnose(failure, upstream: upstream, serverHostname: self.serverHostname, on: self.eventLoop)
                .assumeIsolated()
                .whenSuccess { named in
                    self.lastDiagnosis = (.now(), named)
                    let waiters = self.diagnosisWaiters ?? []
                    self.diagnosisWaiters = nil
                    for waiter in waiters { waiter(named) }
                }
        }
    }

    /// Returns a connection after an exchange. `reusable` is false when the exchange did not end
    /// cleanly or either side asked to close.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.delegate = nil
        connection.exchanges += 1
        // Backpressure may have paused its reads while the last parts of a response were
        // already decoded; a pooled connection must read again, or the next exchange on it
        // (and the close of an idle one) would never be seen. Resuming here, and only here,
        // covers every borrower (the proxy handler and side calls alike).
        connection.resumeReads()
        if reusable, connection.isActive, connection.isBetweenExchanges, !isRetired {
            if let waiter = waiters.popFirst() {
                waiter(connection, nil)
                return
            }
            connection.idleSince = .now()
            idle.append(connection)
        } else {
            connection.close()
        }
    }

    /// Called by a connection whose channel went inactive.
    func connectionClosed(_ connection: UpstreamConnection) {
        total -= 1
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
        }
        serveWaiter()
    }

    private func serveWaiter() {
        guard !waiters.isEmpty, total < upstream.maxConnectionsPerLoop else { return }
        let waiter = waiters.removeFirst()
        connect(waiter)
    }

    /// Stops handing out connections and closes the idle ones.
    func retire() {
        isRetired = true
        sweepTask?.cancel()
        let closing = idle
        idle.removeAll()
        for connection in closing { connection.close() }
        while let waiter = waiters.popFirst() {
            waiter(nil, .connectFailed("upstream \"\(upstream.name)\" was removed by a route table reload"))
        }
    }

    /// Closes connections idle for longer than the upstream's idle timeout, once a second.
    private func scheduleSweep() {
        sweepTask = eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            let cutoff = NIODeadline.now() - .milliseconds(Int64(self.upstream.idleTimeoutMs))
            let expired = self.idle.filter { $0.idleSince < cutoff }
            if !expired.isEmpty {
                self.idle.removeAll { $0.idleSince < cutoff }
                for connection in expired { connection.close() }
            }
            if !self.isRetired { self.scheduleSweep() }
        }
    }

    static func describe(_ error: Error, upstream: Upstream) -> ProxyError {
        let target = "upstream \"\(upstream.name)\" (\(upstream.authority))"
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return .connectTimeout("\(target) did not accept a connection within \(upstream.connectTimeoutMs) ms")
        }
        if let ioError = error as? IOError {
            return .connectFailed("\(target) is unreachable: \(ioError.description)")
        }
        if let connectionError = error as? NIOConnectionError {
            if connectionError.connectionErrors.contains(where: {
                if let channelError = $0.error as? ChannelError, case .connectTimeout = channelError { return true }
                return false
            }) {
                return .connectTimeout("\(target) did not accept a connection within \(upstream.connectTimeoutMs) ms")
            }
            let reasons = connectionError.connectionErrors.map { "\($0.error)" }
            let dns = connectionError.dnsAError.map { " (\($0))" } ?? ""
            return .connectFailed("\(target) is unreachable: \(reasons.isEmpty ? "no address resolved\(dns)" : reasons.joined(separator: "; "))")
        }
        return .connectFailed("\(target) is unreachable: \(error)")
    }
}
