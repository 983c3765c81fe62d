import Foundation
import NIOSSL
import StranglerCore

/// The client TLS contexts of a route table's `https` upstreams: built off the event loops
/// (they read certificate files), then shared by every loop's pool of that upstream.
///
/// An upstream whose settings did not change keeps its context across reloads, and with it
/// BoringSSL's state; one whose files are missing or broken has the failure instead, which
/// refuses the table on reload and fails that upstream's requests closed at start.
public struct UpstreamTLSContexts: Sendable {
    private struct Entry: Sendable {
        var upstream: Upstream
        var directory: String
        /// The files as they were when read: a file replaced under the same path (a rotated
        /// client certificate or CA) is read again at the next reload.
        var stamp: FileStamp
        var context: Result<NIOSSLContext, UpstreamTLSFailure>
        var problems: [RouteTableError.Problem]
    }

    private var entries: [String: Entry] = [:]

    /// No TLS upstreams.
    public init() {}

    /// The contexts for `table`'s `https` upstreams; relative file paths resolve against
    /// `directory` (the route table file's folder). Entries of `previous` built from the same
    /// upstream, folder and files (inode, size, time) are reused as they are; a failed one is
    /// always tried again.
    public init(for table: RouteTable, relativeTo directory: String, reusing previous: UpstreamTLSContexts? = nil) {
        for (name, upstream) in table.upstreams {
            guard let tls = upstream.tls else { continue }
            let stamp = FileStamp(paths: tls.files.map { Self.resolve($0.path, relativeTo: directory) })
            if let kept = previous?.entries[name], kept.upstream == upstream, kept.directory == directory, kept.stamp == stamp,
                case .success = kept.context
            {
                entries[name] = kept
                continue
            }
            var problems: [RouteTableError.Problem] = []
            let context: Result<NIOSSLContext, UpstreamTLSFailure>
            do {
                context = .success(try Self.makeContext(tls, directory: directory, upstream: name, problems: &problems))
            } catch {
                context = .failure(error)
            }
            entries[name] = Entry(upstream: upstream, directory: directory, stamp: stamp, context: context, problems: problems)
        }
    }

    /// The context of upstream `name`, or why there is none; nil for a plain-http upstream.
    func context(for name: String) -> Result<NIOSSLContext, UpstreamTLSFailure>? {
        entries[name]?.context
    }

    /// Every missing or broken file, at the JSON path that names it.
    public var problems: [RouteTableError.Problem] {
        entries.keys.sorted().flatMap { entries[$0]!.problems }
    }

    /// The upstreams that skip verification, for the warning at every load.
    public var unverifiedUpstreams: [String] {
        entries.keys.sorted().filter { entries[$0]!.upstream.tls?.insecureSkipVerify == true }
    }

    /// `path` as the proxy reads it: absolute as written, or under `directory`.
    public static func resolve(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
    }

    /// Verified TLS 1.2 or later against the system roots plus `caFile`, offering HTTP/1.1.
    private static func makeContext(
        _ tls: UpstreamTLS,
        directory: String,
        upstream name: String,
        problems: inout [RouteTableError.Problem]
    ) throws(UpstreamTLSFailure) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // swift-nio-ssl's client default still allows TLS 1.0.
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if tls.insecureSkipVerify { configuration.certificateVerification = .none }
        let base = "upstreams.\(name)"
        func fail(_ key: String, _ message: String) -> UpstreamTLSFailure {
            problems.append(.init(path: "\(base).\(key)", message: message))
            return UpstreamTLSFailure(.configuration, "\(key): \(message)")
        }
        if let caFile = tls.caFile {
            let certificates = try loadCertificates(caFile, key: "caFile", directory: directory, fail: fail)
            configuration.additionalTrustRoots = [.certificates(certificates)]
        }
        if let certFile = tls.clientCertFile, let keyFile = tls.clientKeyFile {
            let chain = try loadCertificates(certFile, key: "clientCertFile", directory: directory, fail: fail)
            let path = resolve(keyFile, relativeTo: directory)
            guard FileManager.default.fileExists(atPath: path) else {
                throw fail("clientKeyFile", "\(path) does not exist\(shownBase(keyFile, directory))")
            }
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(file: path, format: .pem)
            } catch {
                throw fail("clientKeyFile", "\(path) holds no PEM private key (\(error)); it must be the key of clientCertFile")
            }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            let key = tls.clientKeyFile != nil ? "clientKeyFile" : "caFile"
            throw fail(key, "the TLS settings were refused (\(error)); check that the key belongs to clientCertFile")
        }
    }

    private static func loadCertificates(
        _ written: String,
        key: String,
        directory: String,
        fail: (String, String) -> UpstreamTLSFailure
    ) throws(UpstreamTLSFailure) -> [NIOSSLCertificate] {
        let path = resolve(written, relativeTo: directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw fail(key, "\(path) does not exist\(shownBase(written, directory))")
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw fail(key, "\(path) could not be read as PEM certificates (\(error))")
        }
        guard !certificates.isEmpty else { throw fail(key, "\(path) holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")") }
        return certificates
    }

    private static func shownBase(_ written: String, _ directory: String) -> String {
        written.hasPrefix("/") ? "" : " (relative paths are read from the route table's folder, \(directory))"
    }
}
