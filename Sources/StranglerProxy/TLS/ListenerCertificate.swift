import Foundation
import NIOSSL

/// A listener's certificate, key and client CA as read from their files, and the TLS context
/// new connections are accepted with.
///
/// Loading checks everything a handshake would trip over later: that each file exists and is
/// PEM, and that the key is the certificate's. A context is immutable, so a reload makes a new
/// one and connections accepted before keep theirs.
public struct ListenerCertificate: Sendable {
    /// The certificate chain, leaf first.
    public let chain: [NIOSSLCertificate]
    /// The leaf's private key.
    public let key: NIOSSLPrivateKey
    /// The server configuration the context was made from: TLS 1.2 at least, ALPN `http/1.1`,
    /// and client certificates required when there is a client CA.
    public let configuration: TLSConfiguration
    /// The context new connections are accepted with.
    public let context: NIOSSLContext

    /// The leaf certificate.
    public var leaf: NIOSSLCertificate { chain[0] }

    /// Reads and checks the files of `tls`.
    /// - Throws: ``ListenerTLSError`` naming the first file at fault and why.
    public init(loading tls: ListenerTLS) throws(ListenerTLSError) {
        let chain = try Self.certificates(.certificate, at: tls.certificateFile)
        let keyBytes = try Self.read(.key, at: tls.keyFile)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw ListenerTLSError(.key, path: tls.keyFile, cause: .noPrivateKey)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        // swift-nio-ssl's server default still accepts TLS 1.0 and 1.1.
        configuration.minimumTLSVersion = .tlsv12
        // Both listeners speak HTTP/1.1 only; a client that offers h2 alone fails the handshake
        // instead of sending frames the listener can't read.
        configuration.applicationProtocols = ["http/1.1"]
        if let clientCAFile = tls.clientCAFile {
            configuration.trustRoots = .certificates(try Self.certificates(.clientCA, at: clientCAFile))
            // A client certificate is checked against the CA; a client has no host name to match.
            configuration.certificateVerification = .noHostnameVerification
            // Lets a client holding several certificates pick the one this CA signed.
            configuration.sendCANameList = true
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // BoringSSL refuses a key that does not match the certificate set before it; the key
            // itself parsed above.
            throw ListenerTLSError(.key, path: tls.keyFile, cause: .keyMismatch(certificateFile: tls.certificateFile))
        } catch {
            throw ListenerTLSError(.certificate, path: tls.certificateFile, cause: .rejected("\(error)"))
        }
        self.chain = chain
        self.key = key
        self.configuration = configuration
        self.context = context
    }

    /// The PEM certificates in the file at `path`, at least one.
    private static func certificates(_ file: ListenerTLSError.File, at path: String) throws(ListenerTLSError) -> [NIOSSLCertificate] {
        let bytes = try read(file, at: path)
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(bytes), !certificates.isEmpty else {
            throw ListenerTLSError(file, path: path, cause: .noCertificate)
        }
        return certificates
    }

    private static func read(_ file: ListenerTLSError.File, at path: String) throws(ListenerTLSError) -> [UInt8] {
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ListenerTLSError(file, path: path, cause: .missing)
            }
            throw ListenerTLSError(file, path: path, cause: .unreadable((error as NSError).localizedDescription))
        }
    }
}
