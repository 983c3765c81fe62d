import Foundation
import NIOSSL
import StranglerProxy
import StranglerTLS
import SwiftASN1
import X509

/// `strangler demo --tls`: a local certificate authority and the proxy's certificate, kept in
/// the demo's data folder.
///
/// They are made on the first run and reused while they stay good, so a browser or curl told
/// once to trust `demo-ca.pem` keeps trusting the demo. The CA's private key is never written:
/// it signs the one server certificate and is dropped, so trusting `demo-ca.pem` trusts that
/// certificate and nothing else anyone could make later.
struct DemoTLS {
    /// The CA certificate to trust (`curl --cacert`).
    static let caFileName = "demo-ca.pem"
    /// The proxy's certificate.
    static let certificateFileName = "demo-server.pem"
    /// The proxy certificate's private key (mode 0600).
    static let keyFileName = "demo-server-key.pem"

    /// The CA certificate's path, absolute, as the banner prints it.
    let caPath: String
    /// The proxy listener's TLS, as `serve --tls-cert --tls-key` configures it.
    let listener: ListenerTLS
    /// The CA as the demo's own traffic trusts it.
    let trustRoot: NIOSSLCertificate
    /// Whether the files of an earlier run were reused.
    let reused: Bool
    /// When the proxy's certificate expires.
    let notValidAfter: Date

    /// The names the certificate covers: the loopback names, and the host the demo binds when
    /// it is a specific one.
    static func names(host: String) -> (dns: [String], ip: [String]) {
        var dns = ["localhost"]
        var ip = ["127.0.0.1", "::1"]
        if !isWildcard(host) {
            if IPAddressBytes.parse(host) != nil {
                if !ip.contains(host) { ip.append(host) }
            } else if !dns.contains(host.lowercased()) {
                dns.append(host.lowercased())
            }
        }
        return (dns, ip)
    }

    /// The host clients name in URLs: `localhost` for a loopback or wildcard bind, else the host.
    static func urlHost(for host: String) -> String {
        isWildcard(host) || ["127.0.0.1", "::1", "localhost"].contains(host.lowercased()) ? "localhost" : host
    }

    /// The address the demo's own traffic connects to: a wildcard bind is reached on loopback.
    static func connectHost(for host: String) -> String {
        switch host {
        case "0.0.0.0": "127.0.0.1"
        case "::": "::1"
        default: host
        }
    }

    private static func isWildcard(_ host: String) -> Bool {
        host == "0.0.0.0" || host == "::"
    }

    /// The CA and the proxy's certificate in `dataDirectory`: the ones there when they are still
    /// good, else new ones.
    ///
    /// Good means: the three files parse, the key is the certificate's, the certificate is
    /// signed by the CA and covers every name of ``names(host:)``, and both are valid for at
    /// least another day.
    static func prepare(dataDirectory: String, host: String, now: Date = Date()) throws(DemoFailure) -> DemoTLS {
        let folder = URL(fileURLWithPath: dataDirectory).standardizedFileURL
        let caURL = folder.appendingPathComponent(caFileName)
        let certificateURL = folder.appendingPathComponent(certificateFileName)
        let keyURL = folder.appendingPathComponent(keyFileName)
        let listener = ListenerTLS(certificateFile: certificateURL.path, keyFile: keyURL.path)
        let names = names(host: host)

        if let notValidAfter = reusable(ca: caURL, listener: listener, names: names, now: now) {
            return try DemoTLS(caURL: caURL, listener: listener, reused: true, notValidAfter: notValidAfter)
        }
        let issued: IssuedCertificate
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let authority = try LocalCertificateAuthority.make(commonName: "StranglerFig demo CA (\(ProcessInfo.processInfo.hostName))")
            issued = try authority.issueServer(dnsNames: names.dns, ipAddresses: names.ip)
            // The server's files first: a run stopped between the writes leaves a CA that did
            // not sign them, which the next run finds and replaces.
            try issued.write(certificateTo: certificateURL, keyTo: keyURL)
            try Data(authority.certificatePEM.utf8).write(to: caURL, options: .atomic)
        } catch {
            throw DemoFailure(description: "cannot make the demo's TLS certificates in \(folder.path): \(error)")
        }
        return try DemoTLS(caURL: caURL, listener: listener, reused: false, notValidAfter: issued.certificate.notValidAfter)
    }

    private init(caURL: URL, listener: ListenerTLS, reused: Bool, notValidAfter: Date) throws(DemoFailure) {
        do {
            _ = try ListenerCertificate(loading: listener)
        } catch {
            throw DemoFailure(description: "cannot serve the demo over TLS: \(error)")
        }
        guard let bytes = try? Data(contentsOf: caURL), let root = try? NIOSSLCertificate(bytes: Array(bytes), format: .pem) else {
            throw DemoFailure(description: "cannot read the demo's CA certificate \(caURL.path)")
        }
        caPath = caURL.path
        self.listener = listener
        trustRoot = root
        self.reused = reused
        self.notValidAfter = notValidAfter
    }

    /// The certificate's expiry when the files of an earlier run are still good, else nil.
    private static func reusable(ca caURL: URL, listener: ListenerTLS, names: (dns: [String], ip: [String]), now: Date) -> Date? {
        guard let caText = try? String(contentsOf: caURL, encoding: .utf8),
            let certificateText = try? String(contentsOf: URL(fileURLWithPath: listener.certificateFile), encoding: .utf8),
            let ca = try? Certificate(pemEncoded: caText),
            let server = try? Certificate(pemEncoded: certificateText),
            (try? ListenerCertificate(loading: listener)) != nil
        else { return nil }
        let margin = now.addingTimeInterval(24 * 60 * 60)
        for certificate in [ca, server] where certificate.notValidBefore > now || certificate.notValidAfter < margin {
            return nil
        }
        guard server.issuer == ca.subject, ca.publicKey.isValidSignature(server.signature, for: server),
            let alternativeNames = try? server.extensions.subjectAlternativeNames
        else { return nil }
        var dns: Set<String> = []
        var ip: Set<[UInt8]> = []
        for name in alternativeNames {
            switch name {
            case .dnsName(let value): dns.insert(value.lowercased())
            case .ipAddress(let octets): ip.insert(Array(octets.bytes))
            default: break
            }
        }
        guard names.dns.allSatisfy(dns.contains), names.ip.allSatisfy({ IPAddressBytes.parse($0).map(ip.contains) ?? false }) else {
            return nil
        }
        return server.notValidAfter
    }
}

extension DemoTLS {
    /// How the demo's own traffic talks to the proxy: trusting the demo's CA alone.
    var clientConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([trustRoot])
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// The start of a curl command that trusts the demo's CA.
    var curl: String { "curl --cacert \(caPath)" }

    /// The banner's line about the CA: where it is, whether it is new, how long it lasts.
    var caLine: String {
        let until = ISO8601DateFormatter.string(from: notValidAfter, timeZone: .current, formatOptions: [.withFullDate])
        let origin = reused ? "reused from an earlier run" : "made now"
        return "\(caPath)   (\(origin), the proxy's certificate is good until \(until); trust the CA once in curl or a browser)"
    }

    /// The base URL of a proxy on `port`, as the demo's traffic calls it.
    static func trafficURL(host: String, port: Int, tls: Bool) -> String {
        let connect = tls ? connectHost(for: host) : host
        let shown = connect.contains(":") ? "[\(connect)]" : connect
        return "\(tls ? "https" : "http")://\(shown):\(port)"
    }

    /// The base URL of a proxy on `port`, as the banner shows it.
    static func bannerURL(host: String, port: Int, tls: Bool) -> String {
        tls ? "https://\(urlHost(for: host)):\(port)" : "http://\(host):\(port)"
    }
}
