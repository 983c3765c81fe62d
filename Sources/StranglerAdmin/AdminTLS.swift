import NIOSSL
import StranglerProxy

/// HTTPS on the admin listener, with the certificate reloaded without a restart.
///
/// HummingbirdTLS makes one TLS context at start. The reload goes through that context's
/// `sslContextCallback`: each handshake takes the certificate and key the reloader holds at
/// that moment, and keeps the context's own while they are the ones it started with. The
/// client CA, when there is one, is read at start only.
enum AdminTLS {
    /// The configuration for HummingbirdTLS's `.tls(_:tlsConfiguration:)`: `reloader`'s
    /// certificate as it is now, and whatever it holds at each later handshake.
    /// - Throws: ``ListenerTLSError`` for an unusable certificate, key or client CA.
    static func configuration(_ reloader: ListenerTLSReloader) throws -> TLSConfiguration {
        try reloader.load()
        let started = reloader.current
        var configuration = started.configuration
        configuration.sslContextCallback = { _, promise in
            let current = reloader.current
            // The admin listener is not on the forwarding path, but most handshakes still find
            // the starting certificate: no need to set it again.
            guard current.context !== started.context else {
                promise.succeed(.noChanges)
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = current.chain.map { .certificate($0) }
            override.privateKey = .privateKey(current.key)
            promise.succeed(override)
        }
        return configuration
    }
}
