import Foundation
import NIOSSL
import StranglerTLS

/// Certificates for the TLS tests, made in-process by a ``LocalCertificateAuthority`` and
/// written as PEM files to a fresh temporary folder, so that tests need no checked-in keys that
/// expire, and routes.json, CLI flags and curl can name the files.
///
/// - ``ca``: the test CA, which clients trust.
/// - ``server``: `localhost`, `127.0.0.1` and `::1`, from the test CA.
/// - ``expired``: the same names, expired yesterday.
/// - ``wrongHost``: `wrong.example` only, so a client connecting to localhost sees a mismatch.
/// - ``client``: a client certificate from the test CA, for mutual TLS.
/// - ``otherCA`` and ``untrusted``: another CA, and a server certificate for localhost from it.
///
/// Make one per test with ``init()`` (and ``remove()`` it), or use ``shared``: P-256 keys take
/// a few milliseconds, so either is cheap.
package struct TLSFixtures: Sendable {
    /// A certificate with its key: files for configuration, values for NIOSSL.
    package struct Identity: Sendable {
        /// The certificate's PEM file.
        package let certificateFile: URL
        /// The private key's PEM file (mode 0600).
        package let keyFile: URL
        /// The certificate as PEM text.
        package let certificatePEM: String
        /// The private key as PEM text.
        package let privateKeyPEM: String
        /// The certificate as NIOSSL reads it.
        package let certificate: NIOSSLCertificate
        /// The private key as NIOSSL reads it.
        package let privateKey: NIOSSLPrivateKey

        init(_ issued: some CertificateAndKey, named name: String, in directory: URL) throws {
            certificateFile = directory.appendingPathComponent("\(name).pem")
            keyFile = directory.appendingPathComponent("\(name)-key.pem")
            try issued.write(certificateTo: certificateFile, keyTo: keyFile)
            certificatePEM = issued.certificatePEM
            privateKeyPEM = issued.privateKeyPEM
            certificate = try issued.nioSSLCertificate()
            privateKey = try issued.nioSSLPrivateKey()
        }
    }

    /// The folder holding every file.
    package let directory: URL
    /// The test CA, for issuing certificates beyond these.
    package let authority: LocalCertificateAuthority
    /// The test CA's certificate and key.
    package let ca: Identity
    /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
    package let server: Identity
    /// ``server``'s names, valid until yesterday.
    package let expired: Identity
    /// A server certificate for `wrong.example` only.
    package let wrongHost: Identity
    /// A client certificate (common name ``clientCommonName``) from the test CA.
    package let client: Identity
    /// A CA that clients do not trust.
    package let otherCA: Identity
    /// A server certificate for `localhost` and `127.0.0.1` from ``otherCA``.
    package let untrusted: Identity

    /// The common name of ``client``, which a server asking for client certificates sees.
    package static let clientCommonName = "strangler test client"

    /// One set for the whole test process, made on first use. Its folder is left behind (a few
    /// kilobytes in the temporary folder): tests running at the same time may still read it.
    package static let shared: TLSFixtures = {
        do {
            return try TLSFixtures()
        } catch {
            fatalError("could not make the TLS test certificates: \(error)")
        }
    }()

    /// Makes every certificate anew in a new temporary folder.
    package init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let now = Date()
        authority = try LocalCertificateAuthority.make(commonName: "StranglerFig test CA")
        ca = try Identity(authority, named: "ca", in: directory)
        server = try Identity(
            authority.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"]),
            named: "server",
            in: directory
        )
        // Valid for a month that ended yesterday: expired by a margin no clock skew covers.
        expired = try Identity(
            authority.issueServer(
                dnsNames: ["localhost"],
                ipAddresses: ["127.0.0.1", "::1"],
                notValidBefore: now.addingTimeInterval(-31 * 24 * 60 * 60),
                notValidAfter: now.addingTimeInterval(-24 * 60 * 60)
            ),
            named: "expired",
            in: directory
        )
        wrongHost = try Identity(authority.issueServer(dnsNames: ["wrong.example"]), named: "wrong-host", in: directory)
        client = try Identity(authority.issueClient(commonName: Self.clientCommonName), named: "client", in: directory)
        let other = try LocalCertificateAuthority.make(commonName: "StranglerFig other CA")
        otherCA = try Identity(other, named: "other-ca", in: directory)
        untrusted = try Identity(
            other.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"]),
            named: "untrusted",
            in: directory
        )
    }

    /// Deletes the folder and every file in it.
    package func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A server context presenting `identity`.
    /// - Parameter requireClientCertificate: refuse a handshake unless the client presents a
    ///   certificate issued by the test CA (mutual TLS).
    package func serverContext(_ identity: Identity, requireClientCertificate: Bool = false) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(identity.certificate)],
            privateKey: .privateKey(identity.privateKey)
        )
        if requireClientCertificate {
            // A client has no host name to check against: the issuer is what is verified.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates([ca.certificate])
            // Names the acceptable CA, so that a client holding several certificates (curl,
            // OpenSSL) picks the right one.
            configuration.sendCANameList = true
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// A client context that trusts the test CA only, verifies the host name, and requires
    /// TLS 1.2 or later.
    /// - Parameter presenting: a client certificate to present, usually ``client``.
    package func clientContext(presenting: Identity? = nil) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([ca.certificate])
        configuration.minimumTLSVersion = .tlsv12
        if let presenting {
            configuration.certificateChain = [.certificate(presenting.certificate)]
            configuration.privateKey = .privateKey(presenting.privateKey)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
