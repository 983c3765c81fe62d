/// One backend the proxy can forward to, as declared under `upstreams` in `routes.json`.
public struct Upstream: Sendable, Hashable {
    /// The name routes use to refer to this upstream (`legacy`, `inventory`).
    public var name: String
    /// The original URL string, kept for display.
    public var url: String
    /// Host name or address to connect to.
    public var host: String
    /// TCP port to connect to.
    public var port: Int
    /// Path prefix from the URL (without a trailing slash), prepended to forwarded paths. Usually empty.
    public var basePath: String
    /// How long a TCP connect may take before the request fails with 504.
    public var connectTimeoutMs: Int
    /// How long the upstream may stay silent while the proxy waits on it (to take request bytes,
    /// for its response head, or for its next body bytes) before the request fails with 504, or
    /// is aborted once the response has started.
    public var timeoutMs: Int
    /// Most connections this upstream gets from one event loop's pool.
    public var maxConnectionsPerLoop: Int
    /// How long an idle pooled connection is kept before it is closed.
    public var idleTimeoutMs: Int
    /// TLS settings of an `https://` upstream; nil for `http://`.
    public var tls: UpstreamTLS?

    /// Default connect timeout when `routes.json` does not set one.
    public static let defaultConnectTimeoutMs = 1_000
    /// Default upstream silence timeout when `routes.json` does not set one.
    public static let defaultTimeoutMs = 30_000
    /// Default pool size per event loop.
    public static let defaultMaxConnectionsPerLoop = 256
    /// Default idle time before a pooled connection is closed.
    public static let defaultIdleTimeoutMs = 60_000

    /// An upstream from its parsed URL and settings; the settings default as in `routes.json`.
    /// The validator parses and checks the URL before this.
    public init(
        name: String,
        url: String,
        host: String,
        port: Int,
        basePath: String = "",
        connectTimeoutMs: Int = Upstream.defaultConnectTimeoutMs,
        timeoutMs: Int = Upstream.defaultTimeoutMs,
        maxConnectionsPerLoop: Int = Upstream.defaultMaxConnectionsPerLoop,
        idleTimeoutMs: Int = Upstream.defaultIdleTimeoutMs,
        tls: UpstreamTLS? = nil
    ) {
        self.name = name
        self.url = url
        self.host = host
        self.port = port
        self.basePath = basePath
        self.connectTimeoutMs = connectTimeoutMs
        self.timeoutMs = timeoutMs
        self.maxConnectionsPerLoop = maxConnectionsPerLoop
        self.idleTimeoutMs = idleTimeoutMs
        self.tls = tls
    }

    /// Whether the proxy speaks TLS to this upstream (an `https://` URL).
    public var isTLS: Bool { tls != nil }

    /// `host:port`: used in error messages, and as `Host` when the client sent none.
    public var authority: String {
        // An IPv6 address goes in brackets (RFC 3986 §3.2.2), or its colons read as a port.
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
