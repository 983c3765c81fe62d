/// TLS on a listener: where its certificate and key are, and whether clients must present a
/// certificate of their own.
///
/// The files are read at start, and again when they change or on request (SIGHUP): see
/// ``ListenerTLSReloader``. Connections accepted after a reload get the new certificate;
/// connections already open keep the one they were accepted with.
public struct ListenerTLS: Sendable, Equatable {
    /// PEM file with the server certificate first, then any intermediates.
    public var certificateFile: String
    /// PEM file with the certificate's private key, unencrypted.
    public var keyFile: String
    /// PEM file of the CA (or CAs) a client certificate must be signed by; nil accepts clients
    /// without a certificate. Read at start only.
    public var clientCAFile: String?
    /// How often the files are checked for a change.
    public var pollInterval: Duration

    /// - Parameters:
    ///   - certificateFile: the certificate chain, leaf first (PEM).
    ///   - keyFile: the leaf's private key (PEM).
    ///   - clientCAFile: the CA that signs client certificates, to require them (PEM).
    ///   - pollInterval: how often the files are checked for a change (2 s by default).
    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil, pollInterval: Duration = .seconds(2)) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
        self.pollInterval = pollInterval
    }

    /// The files whose change makes a reload: the certificate and the key.
    var watchedFiles: [String] { [certificateFile, keyFile] }
}
