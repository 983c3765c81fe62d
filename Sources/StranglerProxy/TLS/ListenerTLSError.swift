/// Why a listener's certificate, key or client CA could not be used, naming the file.
///
/// At start it stops the server; on a reload the listener keeps its certificate and the error is
/// logged. ``description`` says which file and what is wrong with it in plain words; the command
/// line adds the flag that named the file.
public struct ListenerTLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which of the listener's files is at fault.
    public enum File: String, Sendable, Equatable {
        /// ``ListenerTLS/certificateFile``.
        case certificate
        /// ``ListenerTLS/keyFile``.
        case key
        /// ``ListenerTLS/clientCAFile``.
        case clientCA = "client CA"
    }

    /// What is wrong with the file.
    public enum Cause: Sendable, Equatable {
        /// No file at the path.
        case missing
        /// The file exists but could not be read (permissions, a directory).
        case unreadable(String)
        /// The file holds no PEM certificate.
        case noCertificate
        /// The file holds no unencrypted PEM private key.
        case noPrivateKey
        /// The key is not that of the first certificate in the certificate file.
        case keyMismatch(certificateFile: String)
        /// TLS refused the files together, for a reason BoringSSL gave.
        case rejected(String)
    }

    /// The file at fault.
    public var file: File
    /// Its path, as given.
    public var path: String
    /// What is wrong with it.
    public var cause: Cause

    /// An error for `path`.
    public init(_ file: File, path: String, cause: Cause) {
        self.file = file
        self.path = path
        self.cause = cause
    }

    /// What is wrong, in words: "the certificate file cert.pem holds no PEM certificate".
    public var description: String {
        "the \(file.rawValue) file \(path) \(reason)"
    }

    /// The cause as the end of a sentence about the file.
    public var reason: String {
        switch cause {
        case .missing: "does not exist"
        case .unreadable(let why): "cannot be read: \(why)"
        case .noCertificate: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        case .noPrivateKey: "holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, or an RSA or EC key)"
        case .keyMismatch(let certificateFile): "is not the private key of the certificate in \(certificateFile)"
        case .rejected(let why): "was refused by TLS: \(why)"
        }
    }

    /// What to do about it.
    public var remedy: String {
        switch (file, cause) {
        case (_, .missing), (_, .unreadable):
            "check the path, and that the file is readable by the user the proxy runs as"
        case (.key, .keyMismatch):
            "give the key the certificate was issued for: both files come from the same issue (the same certbot or cert-manager renewal)"
        case (.clientCA, _):
            "give the PEM certificate of the CA that signs the clients' certificates"
        case (.certificate, _):
            "give a PEM file with the server certificate first, then its intermediates"
        case (.key, _):
            "give the certificate's private key as unencrypted PEM (openssl pkey -in key.pem -out plain.pem decrypts one)"
        }
    }
}
