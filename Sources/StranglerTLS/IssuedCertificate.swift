import X509

/// A certificate that a ``LocalCertificateAuthority`` issued, with its private key.
public struct IssuedCertificate: CertificateAndKey {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey
    public let certificatePEM: String
    public let privateKeyPEM: String

    /// Serializes the PEM text once, so that reading it never throws.
    init(certificate: Certificate, privateKey: Certificate.PrivateKey) throws {
        self.certificate = certificate
        self.privateKey = privateKey
        certificatePEM = try certificate.serializeAsPEM().pemString
        privateKeyPEM = try privateKey.serializeAsPEM().pemString
    }
}
