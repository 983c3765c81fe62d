import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import StranglerAdmin
import StranglerCore
import StranglerProxy
import StranglerTLS
import StranglerTestSupport
import Testing

/// The admin listener over HTTPS: client certificates when a client CA is given, the
/// certificate reloaded through HummingbirdTLS's context callback, and the warning when tokens
/// would travel in clear.
@Suite("Admin listener over TLS")
struct AdminTLSTests {
    private static func table() throws -> RouteTable {
        try RouteTable.parse(Data(#"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9"}}, "defaultUpstream": "legacy", "routes": []}"#.utf8))
    }

    /// Runs the admin listener on port 0 with `tls` while `body` runs.
    private static func withAdmin(tls: ListenerTLS, _ body: (_ port: Int, _ reloader: ListenerTLSReloader) async throws -> Void) async throws {
        var logger = Logger(label: "test.admin.tls")
        logger.logLevel = .warning
        let server = ProxyServer(configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1), table: try table(), logger: logger)
        let reloader = ListenerTLSReloader(tls: tls, listener: "admin", logger: logger, metrics: server.metrics)
        let port = NIOLockedValueBox<Int?>(nil)
        let admin = try AdminAPI.makeApplication(server: server, host: "127.0.0.1", port: 0, tls: reloader, logger: logger) { bound in
            port.withLockedValue { $0 = bound }
        }
        try await whileRunning([admin], logger: logger) {
            for _ in 0..<3000 where port.withLockedValue({ $0 }) == nil {
                try await Task.sleep(for: .milliseconds(10))
            }
            try await body(try #require(port.withLockedValue { $0 }), reloader)
        }
    }

    private static let health = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"

    @Test("with a client CA: no client certificate fails the handshake; the test client's certificate gets 200")
    func clientCertificateRequired() async throws {
        let fixtures = TLSFixtures.shared
        let tls = ListenerTLS(
            certificateFile: fixtures.server.certificateFile.path,
            keyFile: fixtures.server.keyFile.path,
            clientCAFile: fixtures.ca.certificateFile.path
        )
        try await Self.withAdmin(tls: tls) { port, _ in
            // With TLS 1.3 the client may finish its side of the handshake before the server
            // refuses it: the refusal then ends the connection before any answer.
            await #expect(throws: (any Error).self) {
                let connection = try await TLSClientConnection.connect(port: port, context: fixtures.clientContext())
                defer { Task { await connection.close() } }
                _ = try await connection.exchange(Self.health)
            }
            let connection = try await TLSClientConnection.connect(port: port, context: fixtures.clientContext(presenting: fixtures.client))
            let response = try await connection.exchange(Self.health)
            #expect(response.status == 200)
            await connection.close()

            // curl, as an operator calls it.
            let url = "https://localhost:\(port)/healthz"
            let ca = fixtures.ca.certificateFile.path
            let refused = try await Curl.run(["--cacert", ca, "--write-out", "%{http_code}", "--output", "/dev/null", url])
            #expect(refused.status != 0)
            let accepted = try await Curl.run(
                ["--cacert", ca, "--cert", fixtures.client.certificateFile.path, "--key", fixtures.client.keyFile.path]
                    + ["--write-out", "%{http_code}", "--output", "/dev/null", url]
            )
            #expect(accepted.status == 0, "\(accepted.errors)")
            #expect(accepted.output == "200")
        }
    }

    @Test("a reloaded certificate reaches new admin connections")
    func reload() async throws {
        let fixtures = TLSFixtures.shared
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("admin-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificateFile = folder.appendingPathComponent("admin.pem")
        let keyFile = folder.appendingPathComponent("admin-key.pem")
        try FileManager.default.copyItem(at: fixtures.server.certificateFile, to: certificateFile)
        try FileManager.default.copyItem(at: fixtures.server.keyFile, to: keyFile)
        let tls = ListenerTLS(certificateFile: certificateFile.path, keyFile: keyFile.path, pollInterval: .seconds(3600))
        try await Self.withAdmin(tls: tls) { port, reloader in
            let before = try await TLSClientConnection.connect(port: port, context: fixtures.clientContext())
            #expect(try await before.peerCertificate()?.serialNumber == fixtures.server.certificate.serialNumber)

            let rotated = try fixtures.authority.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try FileManager.default.removeItem(at: certificateFile)
            try FileManager.default.removeItem(at: keyFile)
            try rotated.write(certificateTo: certificateFile, keyTo: keyFile)
            #expect(reloader.reload(reason: "test"))

            let after = try await TLSClientConnection.connect(port: port, context: fixtures.clientContext())
            #expect(try await after.peerCertificate()?.serialNumber == (try rotated.nioSSLCertificate()).serialNumber)
            #expect(try await after.exchange(Self.health).status == 200)
            // The connection made before the reload goes on with its certificate.
            #expect(try await before.exchange(Self.health).status == 200)
            await before.close()
            await after.close()
        }
    }

    @Test("tokens on a plain listener off loopback: a warning that they travel in clear; none on loopback or with TLS")
    func clearTokenWarning() throws {
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1),
            table: try Self.table(),
            logger: Logger(label: "t")
        )
        let access = AdminAccess(tokens: [AdminAccess.Token(name: "ops", secret: String(repeating: "s", count: 32))])
        func warnings(host: String, tls: ListenerTLSReloader? = nil) throws -> [String] {
            let recorder = RecordingLogHandler()
            let logger = Logger(label: "test.admin") { _ in recorder }
            _ = try AdminAPI.makeApplication(server: server, access: access, host: host, port: 0, tls: tls, logger: logger)
            return recorder.messages
        }
        let offLoopback = try warnings(host: "0.0.0.0")
        #expect(offLoopback.contains { $0.contains("tokens travel in clear") })
        #expect(try warnings(host: "127.0.0.1").allSatisfy { !$0.contains("in clear") })
        let fixtures = TLSFixtures.shared
        let tls = ListenerTLSReloader(
            tls: ListenerTLS(certificateFile: fixtures.server.certificateFile.path, keyFile: fixtures.server.keyFile.path),
            listener: "admin",
            logger: Logger(label: "t"),
            metrics: server.metrics
        )
        #expect(try warnings(host: "0.0.0.0", tls: tls).allSatisfy { !$0.contains("in clear") })
    }

    @Test("a bad admin certificate refuses to build the listener, naming the file")
    func badCertificate() throws {
        let fixtures = TLSFixtures.shared
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1),
            table: try Self.table(),
            logger: Logger(label: "t")
        )
        let tls = ListenerTLSReloader(
            tls: ListenerTLS(certificateFile: fixtures.server.certificateFile.path, keyFile: fixtures.client.keyFile.path),
            listener: "admin",
            logger: Logger(label: "t"),
            metrics: server.metrics
        )
        #expect(
            throws: ListenerTLSError(
                .key,
                path: fixtures.client.keyFile.path,
                cause: .keyMismatch(certificateFile: fixtures.server.certificateFile.path)
            )
        ) {
            _ = try AdminAPI.makeApplication(server: server, host: "127.0.0.1", port: 0, tls: tls, logger: Logger(label: "t"))
        }
    }
}

/// Keeps every message logged through it.
private final class RecordingLogHandler: LogHandler, Sendable {
    private let recorded = NIOLockedValueBox<[String]>([])
    var messages: [String] { recorded.withLockedValue { $0 } }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        recorded.withLockedValue { $0.append("\(event.message)") }
    }
}
