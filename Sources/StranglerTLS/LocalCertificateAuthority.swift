import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate authority made in-process, which issues TLS server and client certificates.
///
/// It serves `strangler demo --tls` and the tests, where a real CA is not at hand: trust its
/// ``certificatePEM`` (curl's `--cacert`, a route's `caFile`) and the certificates it issues are
/// verified as any others would be. Keys are ECDSA P-256: fast to make, and accepted by every
/// TLS stack in use (BoringSSL, OpenSSL, Security.framework).
public struct LocalCertificateAuthority: CertificateAndKey {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey
    public let certificatePEM: String
    public let privateKeyPEM: String
    /// The CA's subject key identifier, repeated in what it issues as the authority key
    /// identifier, so that a verifier finds the issuer by key rather than by name alone.
    private let keyIdentifier: ArraySlice<UInt8>

    private init(certificate: Certificate, privateKey: Certificate.PrivateKey, keyIdentifier: ArraySlice<UInt8>) throws {
        let issued = try IssuedCertificate(certificate: certificate, privateKey: privateKey)
        self.certificate = certificate
        self.privateKey = privateKey
        certificatePEM = issued.certificatePEM
        privateKeyPEM = issued.privateKeyPEM
        self.keyIdentifier = keyIdentifier
    }

    /// Makes a self-signed CA with a new key.
    /// - Parameters:
    ///   - commonName: the CA's subject and issuer name, as a browser or `openssl x509` shows it.
    ///   - validity: when the CA is valid; what it issues is verified only within this period.
    public static func make(
        commonName: String,
        validity: CertificateValidity = .standard()
    ) throws -> LocalCertificateAuthority {
        guard validity.notValidAfter >= validity.notValidBefore else { throw LocalCertificateAuthorityError.emptyValidity }
        let privateKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName { CommonName(commonName) }
        let keyIdentifier = SubjectKeyIdentifier(hash: privateKey.publicKey)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: validity.notValidBefore,
            notValidAfter: validity.notValidAfter,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // Critical, as RFC 5280 requires of a CA: a verifier that does not understand
                // it must reject the chain rather than guess.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                keyIdentifier
            },
            issuerPrivateKey: privateKey
        )
        return try LocalCertificateAuthority(
            certificate: certificate,
            privateKey: privateKey,
            keyIdentifier: keyIdentifier.keyIdentifier
        )
    }

    /// Issues a TLS server certificate for `dnsNames` and `ipAddresses`, with a new key.
    ///
    /// Clients verify the host they connect to against these subject alternative names only;
    /// the common name is the first of them, for people reading the certificate.
    /// - Parameters:
    ///   - dnsNames: host names (`localhost`, `legacy.internal`).
    ///   - ipAddresses: IPv4 or IPv6 literals (`127.0.0.1`, `::1`), for clients that connect by
    ///     address.
    public func issueServer(
        dnsNames: [String],
        ipAddresses: [String] = [],
        notValidBefore: Date = CertificateValidity.standard().notValidBefore,
        notValidAfter: Date = CertificateValidity.standard().notValidAfter
    ) throws -> IssuedCertificate {
        let addresses = try ipAddresses.map { text in
            guard let bytes = IPAddressBytes.parse(text) else { throw LocalCertificateAuthorityError.invalidIPAddress(text) }
            return GeneralName.ipAddress(ASN1OctetString(contentBytes: bytes[...]))
        }
        guard let first = dnsNames.first ?? ipAddresses.first else { throw LocalCertificateAuthorityError.noServerNames }
        let names = dnsNames.map(GeneralName.dnsName) + addresses
        return try issue(
            commonName: first,
            usage: .serverAuth,
            alternativeNames: names,
            validity: CertificateValidity(notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        )
    }

    /// Issues a TLS client certificate, with a new key, for mutual TLS.
    /// - Parameter commonName: the client's name, which a server may log or authorize by.
    public func issueClient(
        commonName: String,
        notValidBefore: Date = CertificateValidity.standard().notValidBefore,
        notValidAfter: Date = CertificateValidity.standard().notValidAfter
    ) throws -> IssuedCertificate {
        try issue(
            commonName: commonName,
            usage: .clientAuth,
            alternativeNames: [],
            validity: CertificateValidity(notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        )
    }

    private func issue(
        commonName: String,
        usage: ExtendedKeyUsage.Usage,
        alternativeNames: [GeneralName],
        validity: CertificateValidity
    ) throws -> IssuedCertificate {
        guard validity.notValidAfter >= validity.notValidBefore else { throw LocalCertificateAuthorityError.emptyValidity }
        let privateKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let authorityKeyIdentifier = AuthorityKeyIdentifier(keyIdentifier: keyIdentifier)
        let certificate = try Certificate(
            version: .v3,
            // Random, so that two certificates from one CA never share a serial number: a
            // verifier that caches by issuer and serial would confuse them.
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: validity.notValidBefore,
            notValidAfter: validity.notValidAfter,
            issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                // An ECDSA key signs the handshake; it never enciphers keys.
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage])
                if !alternativeNames.isEmpty {
                    SubjectAlternativeNames(alternativeNames)
                }
                SubjectKeyIdentifier(hash: privateKey.publicKey)
                authorityKeyIdentifier
            },
            issuerPrivateKey: self.privateKey
        )
        return try IssuedCertificate(certificate: certificate, privateKey: privateKey)
    }
}
