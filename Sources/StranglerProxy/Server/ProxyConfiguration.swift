import NIOCore
import StranglerCore

/// Settings of the forwarding listener that do not live in `routes.json`.
public struct ProxyConfiguration: Sendable {
    /// Host to bind.
    public var host: String
    /// Port to bind; 0 picks a free one (see ``ProxyServer/localPort``).
    public var port: Int
    /// Event-loop threads; each has its own upstream pools.
    public var threads: Int
    /// Largest request head (all header names and values) before the client gets 431.
    public var maxHeaderBytes: Int
    /// Largest request body before the client gets 413.
    public var maxBodyBytes: Int
    /// Largest request body kept in memory so a failed service call can be replayed on legacy.
    public var maxReplayBytes: Int
    /// Peers whose `X-Forwarded-*` headers are trusted and extended; from anyone else they are replaced.
    public var trustedProxies: Set<String>
    /// How long a graceful shutdown waits for in-flight requests.
    public var shutdownGracePeriod: TimeAmount
    /// Writes one access-log line per request at `info` level.
    public var accessLog: Bool
    /// Largest request or response body captured for a shadow comparison; above it the
    /// comparison is skipped and counted (`body_too_large`).
    public var maxCaptureBytes: Int
    /// Most shadow calls in flight per event loop; above it shadows are skipped and counted.
    public var maxShadowsPerLoop: Int
    /// Share of shadowed safe requests on `learnNoise` routes that also go to legacy a second time.
    public var noiseSampleRate: Double
    /// The whole request head must arrive within this, counted from the connection's start or
    /// from the first byte of a later request (nginx `client_header_timeout`); 408 on expiry.
    public var clientHeaderTimeout: TimeAmount
    /// The longest a client may send no request body bytes while the proxy reads them
    /// (nginx `client_body_timeout`); 408 on expiry, or an abort if the response started.
    public var clientBodyTimeout: TimeAmount
    /// The longest a client may take no response bytes while some wait to be written
    /// (nginx `send_timeout`); the connection and its upstream call are closed on expiry.
    public var clientSendTimeout: TimeAmount
    /// How long an idle client connection stays open between requests (nginx `keepalive_timeout`).
    public var keepAliveTimeout: TimeAmount
    /// After a response that ends the connection while the client may still be sending, the
    /// longest the proxy reads and discards in all (nginx `lingering_time`)...
    public var lingerTime: TimeAmount
    /// ...and the longest it waits for the client's next byte meanwhile (nginx `lingering_timeout`).
    public var lingerTimeout: TimeAmount
    /// The most bytes a staged close reads and discards before it closes anyway.
    public var lingerMaxBytes: Int
    /// Most client connections open at once over all loops. At the cap, a new connection closes
    /// the connection that has waited longest for a request, or is itself closed at once.
    public var maxClientConnections: Int

    /// The client-side bounds as one value.
    var clientTimeoutLimits: ClientTimeouts.Limits {
        .init(
            header: clientHeaderTimeout,
            body: clientBodyTimeout,
            send: clientSendTimeout,
            keepAlive: keepAliveTimeout,
            lingerTotal: lingerTime,
            lingerIdle: lingerTimeout
        )
    }
    /// What happens to a request path that upstreams read in different ways (an encoded `/`, a
    /// `\`, a `%2E` dot segment, `//..`, a `;` parameter): refused with 400 by default, or
    /// forwarded only when every reading routes it the same way (``AmbiguousPathPolicy``).
    public var ambiguousPaths: AmbiguousPathPolicy
    /// The scheduling slice each event loop asks the kernel for (``EventLoopSlice``), or nil to
    /// keep the kernel's default.
    public var eventLoopSlice: TimeAmount?
    /// Serve TLS with this certificate, reloaded when its files change; nil for plain HTTP.
    /// Upstreams see `X-Forwarded-Proto: https` for requests that came over it.
    public var tls: ListenerTLS?

    /// Creates a configuration; every setting has a default suited to one host serving its
    /// cores (127.0.0.1:8080, one event loop per core, 32 KiB heads, 10 MiB bodies, nginx-like
    /// client timeouts, ambiguous paths refused).
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        threads: Int = System.coreCount,
        maxHeaderBytes: Int = 32 * 1024,
        maxBodyBytes: Int = 10 * 1024 * 1024,
        maxReplayBytes: Int = 64 * 1024,
        trustedProxies: Set<String> = [],
        shutdownGracePeriod: TimeAmount = .seconds(10),
        accessLog: Bool = true,
        maxCaptureBytes: Int = 1024 * 1024,
        maxShadowsPerLoop: Int = 128,
        noiseSampleRate: Double = 0.1,
        clientHeaderTimeout: TimeAmount = .seconds(60),
        clientBodyTimeout: TimeAmount = .seconds(60),
        clientSendTimeout: TimeAmount = .seconds(60),
        keepAliveTimeout: TimeAmount = .seconds(75),
        lingerTime: TimeAmount = .seconds(30),
        lingerTimeout: TimeAmount = .seconds(5),
        lingerMaxBytes: Int = 64 * 1024 * 1024,
        maxClientConnections: Int = 10_000,
        ambiguousPaths: AmbiguousPathPolicy = .reject,
        eventLoopSlice: TimeAmount? = EventLoopSlice.standard,
        tls: ListenerTLS? = nil
    ) {
        self.host = host
        self.port = port
        self.threads = threads
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxReplayBytes = maxReplayBytes
        self.trustedProxies = trustedProxies
        self.shutdownGracePeriod = shutdownGracePeriod
        self.accessLog = accessLog
        self.maxCaptureBytes = maxCaptureBytes
        self.maxShadowsPerLoop = maxShadowsPerLoop
        self.noiseSampleRate = noiseSampleRate
        self.clientHeaderTimeout = clientHeaderTimeout
        self.clientBodyTimeout = clientBodyTimeout
        self.clientSendTimeout = clientSendTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.lingerTime = lingerTime
        self.lingerTimeout = lingerTimeout
        self.lingerMaxBytes = lingerMaxBytes
        self.maxClientConnections = maxClientConnections
        self.ambiguousPaths = ambiguousPaths
        self.eventLoopSlice = eventLoopSlice
        self.tls = tls
    }
}
