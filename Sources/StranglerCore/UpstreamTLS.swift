/// How the proxy speaks TLS to an `https://` upstream, as declared beside its `url` in
/// `routes.json`.
///
/// Secure by default: the peer's certificate must chain to the system trust store (plus
/// `caFile`) and name the host, TLS 1.2 is the minimum, and SNI carries the host name. An IP
/// literal host sends no SNI and is verified against the certificate's IP addresses.
public struct UpstreamTLS: Sendable, Hashable {
    /// A private CA (PEM) trusted in addition to the system's roots, as written in the table.
    public var caFile: String?
    /// The name sent as SNI and verified against the certificate, instead of the URL's host.
    public var serverName: String?
    /// The client certificate chain (PEM) presented to an upstream that asks for one (mutual TLS).
    public var clientCertFile: String?
    /// The private key (PEM) of `clientCertFile`.
    public var clientKeyFile: String?
    /// Skips certificate and host name verification. Loud on purpose: a warning at every load
    /// and on `/api/routes`.
    public var insecureSkipVerify: Bool

    /// Verified TLS against the system trust store, with no client certificate.
    public init(
        caFile: String? = nil,
        serverName: String? = nil,
        clientCertFile: String? = nil,
        clientKeyFile: String? = nil,
        insecureSkipVerify: Bool = false
    ) {
        self.caFile = caFile
        self.serverName = serverName
        self.clientCertFile = clientCertFile
        self.clientKeyFile = clientKeyFile
        self.insecureSkipVerify = insecureSkipVerify
    }

    /// The certificate files the settings name, with the key each sits under, in table order.
    public var files: [(key: String, path: String)] {
        [("caFile", caFile), ("clientCertFile", clientCertFile), ("clientKeyFile", clientKeyFile)].compactMap { key, path in
            path.map { (key, $0) }
        }
    }

    /// The name to verify the certificate against and send as SNI for `host`: `serverName`
    /// when set; otherwise the host, unless it is an IP address, which SNI cannot carry (RFC
    /// 6066 §3) and which is verified against the certificate's IP addresses instead.
    public func serverHostname(for host: String) -> String? {
        if let serverName { return serverName }
        return Self.isIPAddress(host) ? nil : host
    }

    /// Whether `text` is an IPv4 or IPv6 literal (an IPv6 host is kept without its brackets).
    public static func isIPAddress(_ text: String) -> Bool {
        if text.contains(":") { return true }
        // "10.0.0.7." is still an address to a resolver, and SNI must not carry it.
        let text = text.hasSuffix(".") ? String(text.dropLast()) : text
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && UInt8(part) != nil }
    }
}
