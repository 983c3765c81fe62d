import Foundation
import NIOSSL
import X509

/// A certificate with its private key, in the forms its users need: PEM text for files and
/// configuration, and NIOSSL values for a TLS context in the same process.
public protocol CertificateAndKey: Sendable {
    /// The certificate.
    var certificate: Certificate { get }
    /// The certificate's private key.
    var privateKey: Certificate.PrivateKey { get }
    /// The certificate as one PEM block (`-----BEGIN CERTIFICATE-----`).
    var certificatePEM: String { get }
    /// The private key as one PKCS#8 PEM block (`-----BEGIN PRIVATE KEY-----`).
    var privateKeyPEM: String { get }
}

extension CertificateAndKey {
    /// Writes the certificate and the key as PEM files, each replaced in one step.
    ///
    /// The key file is readable by its owner only (mode 0600), as servers such as nginx and
    /// PostgreSQL expect of a private key; the certificate file is 0644.
    public func write(certificateTo certificateURL: URL, keyTo keyURL: URL) throws {
        try PEMFile.write(certificatePEM, to: certificateURL, mode: 0o644)
        try PEMFile.write(privateKeyPEM, to: keyURL, mode: 0o600)
    }

    /// The certificate as NIOSSL reads it, for a `TLSConfiguration`'s chain or trust roots.
    public func nioSSLCertificate() throws -> NIOSSLCertificate {
        try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
    }

    /// The private key as NIOSSL reads it, for a `TLSConfiguration`.
    public func nioSSLPrivateKey() throws -> NIOSSLPrivateKey {
        try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
    }
}
