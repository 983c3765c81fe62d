import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import StranglerTLS
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The proxy listener over TLS with real peers: curl and a NIOSSL client through the proxy to a
/// plain upstream, the HTTP checklist's basics, the staged close, and certificate rotation under
/// keep-alive load. URLSession is not a client here: on Linux it takes no private CA per session.
@Suite("Listener TLS: the proxy listener")
struct ListenerTLSTests {
    /// A proxy whose certificate files sit in a folder of their own, so a test can replace them.
    private struct TLSProxy {
        let harness: ProxyHarness
        let certificateFile: URL
        let keyFile: URL
        var port: Int { harness.port }
        var reloader: ListenerTLSReloader { harness.server.tls! }

        /// Puts `identity`'s certificate and key in place as a deploy tool does: written beside
        /// the live files, then renamed over them.
        func install(_ identity: some CertificateAndKey) throws {
            let folder = certificateFile.deletingLastPathComponent()
            let newCertificate = folder.appendingPathComponent("incoming.pem")
            let newKey = folder.appendingPathComponent("incoming-key.pem")
            try identity.write(certificateTo: newCertificate, keyTo: newKey)
            try renameFile(newCertificate, over: certificateFile)
            try renameFile(newKey, over: keyFile)
        }
    }

    private static func withTLSProxy(
        configure: @escaping (inout ProxyConfiguration) -> Void = { _ in },
        _ body: (TLSProxy) async throws -> Void
    ) async throws {
        let fixtures = TLSFixtures.shared
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("listener-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificateFile = folder.appendingPathComponent("cert.pem")
        let keyFile = folder.appendingPathComponent("key.pem")
        try FileManager.default.copyItem(at: fixtures.server.certificateFile, to: certificateFile)
        try FileManager.default.copyItem(at: fixtures.server.keyFile, to: keyFile)
        // The poll is driven by the tests (poll(), reload(reason:)), never by a timer.
        let tls = ListenerTLS(certificateFile: certificateFile.path, keyFile: keyFile.path, pollInterval: .seconds(3600))
        try await withProxy(configure: {
            $0.tls = tls
            configure(&$0)
        }) { harness in
            try await body(TLSProxy(harness: harness, certificateFile: certificateFile, keyFile: keyFile))
        }
    }

    private static func connect(_ port: Int) async throws -> TLSClientConnection {
        try await TLSClientConnection.connect(port: port, context: TLSFixtures.shared.clientContext())
    }

    private static func serial(_ port: Int) async throws -> [UInt8] {
        let connection = try await connect(port)
        defer { Task { await connection.close() } }
        return try #require(try await connection.peerCertificate()).serialNumber
    }

    // MARK: - Clients

    @Test("curl with --cacert: status and body byte for byte, keep-alive reuse, and the upstream sees X-Forwarded-Proto: https")
    func curlThroughTheListener() async throws {
        try await Self.withTLSProxy { proxy in
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: output) }
            let count = 300_000
            let url = "https://localhost:\(proxy.port)/big?bytes=\(count)"
            // Two transfers in one run: curl reuses the connection for the second.
            let run = try await Curl.run(
                ["--cacert", TLSFixtures.shared.ca.certificateFile.path, "--write-out", "%{http_code} %{num_connects} %{http_version}\\n"]
                    + ["--output", output.path + ".1", url, "--output", output.path + ".2", url]
            )
            defer {
                try? FileManager.default.removeItem(atPath: output.path + ".1")
                try? FileManager.default.removeItem(atPath: output.path + ".2")
            }
            #expect(run.status == 0, "\(run.errors)")
            #expect(run.output.split(separator: "\n") == ["200 1 1.1", "200 0 1.1"])
            let expected = Data(TestUpstream.patternBytes(count: count))
            #expect(FileManager.default.contents(atPath: output.path + ".1") == expected)
            #expect(FileManager.default.contents(atPath: output.path + ".2") == expected)
            let seen = try #require(proxy.harness.legacy.requests.last)
            #expect(seen.header("X-Forwarded-Proto") == "https")
        }
    }

    @Test("a NIOSSL client: ALPN picks http/1.1, and TLS 1.1 is refused")
    func alpnAndMinimumVersion() async throws {
        let fixtures = TLSFixtures.shared
        try await Self.withTLSProxy { proxy in
            var offering = TLSConfiguration.makeClientConfiguration()
            offering.trustRoots = .certificates([fixtures.ca.certificate])
            offering.applicationProtocols = ["h2", "http/1.1"]
            let connection = try await TLSClientConnection.connect(port: proxy.port, context: NIOSSLContext(configuration: offering))
            #expect(connection.negotiatedProtocol == "http/1.1")
            let response = try await connection.exchange("GET /echo HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            #expect(response.status == 200)
            #expect(response.echoedHeader("X-Forwarded-Proto") == "https")
            await connection.close()

            var old = offering
            old.minimumTLSVersion = .tlsv1
            old.maximumTLSVersion = .tlsv11
            await #expect(throws: (any Error).self) {
                try await TLSClientConnection.connect(port: proxy.port, context: NIOSSLContext(configuration: old))
            }
        }
    }

    // MARK: - The HTTP checklist over TLS

    @Test("keep-alive reuse, a chunked response, a POST body and a 400 for a malformed request, over TLS")
    func checklistBasics() async throws {
        try await Self.withTLSProxy { proxy in
            let connection = try await Self.connect(proxy.port)
            for _ in 0..<3 {
                let response = try await connection.exchange("GET /echo HTTP/1.1\r\nHost: shop.example\r\n\r\n")
                #expect(response.status == 200)
            }
            let chunked = try await connection.exchange("GET /chunked HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            #expect(chunked.status == 200)
            #expect(chunked.header("Transfer-Encoding")?.lowercased() == "chunked")
            #expect(chunked.text == "hello world")

            let body = "order=42&note=" + String(repeating: "x", count: 20_000)
            let posted = try await connection.exchange(
                "POST /echo HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
            #expect(posted.status == 200)
            #expect(proxy.harness.legacy.requests.last?.body == Array(body.utf8))
            #expect(!connection.isClosed)

            let malformed = try await connection.exchange(
                "POST /echo HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
            )
            #expect(malformed.status == 400)
            #expect(await connection.waitUntilClosed())
            await connection.close()
        }
    }

    @Test("a staged close over TLS: the client that is still sending reads the whole 413, then the connection ends")
    func stagedCloseOverTLS() async throws {
        try await Self.withTLSProxy(configure: { $0.maxBodyBytes = 1000 }) { proxy in
            let connection = try await Self.connect(proxy.port)
            // The body is refused from its declared length; the client goes on sending part of it.
            // Its sends may find the connection closed: the proxy's close_notify, once the answer
            // is out, makes NIOSSL's client end the connection.
            try await connection.send("POST /echo HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 200000\r\n\r\n")
            try? await connection.send(String(repeating: "y", count: 64 * 1024))
            let response = try await connection.readResponse()
            #expect(response.status == 413)
            #expect(response.header("Connection")?.lowercased() == "close")
            try? await connection.send(String(repeating: "y", count: 16 * 1024))
            #expect(await connection.waitUntilClosed())
            await connection.close()
        }
    }

    @Test("a client that never completes the handshake is closed by the header timeout")
    func silentHandshakeTimesOut() async throws {
        try await Self.withTLSProxy(configure: { $0.clientHeaderTimeout = .milliseconds(300) }) { proxy in
            // Plain TCP to the TLS port, and not a byte sent: a slowloris before the handshake.
            let silent = try await RawConnection.connect(port: proxy.port)
            #expect(await silent.waitUntilClosed(seconds: 30))
            await silent.close()
        }
    }

    // MARK: - Certificate reload

    @Test("rotation under keep-alive load loses no request; new connections get the new certificate")
    func rotationUnderLoad() async throws {
        let fixtures = TLSFixtures.shared
        try await Self.withTLSProxy { proxy in
            let oldSerial = fixtures.server.certificate.serialNumber
            #expect(try await Self.serial(proxy.port) == oldSerial)

            let loops = (0..<4).map { _ in KeepAliveLoop() }
            let tasks = loops.map { loop in Task { await loop.run(port: proxy.port) } }
            for loop in loops { #expect(await loop.waitFor(succeeded: 5)) }

            let rotated = try fixtures.authority.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try proxy.install(rotated)
            #expect(proxy.reloader.reload(reason: "test rotation"))
            let newSerial = try #require(try await Self.serial(proxy.port))
            #expect(newSerial == (try rotated.nioSSLCertificate()).serialNumber)
            #expect(newSerial != oldSerial)

            // Every loop goes on over the connection it had, with the certificate it started with.
            let before = loops.map(\.succeeded)
            for (loop, count) in zip(loops, before) { #expect(await loop.waitFor(succeeded: count + 5)) }
            for loop in loops { loop.stop() }
            for task in tasks { await task.value }
            for loop in loops {
                #expect(loop.failures == [])
                #expect(loop.serials == [oldSerial])
            }
            #expect(proxy.harness.server.metrics.render().contains(#"strangler_tls_reloads_total{listener="proxy",result="ok"} 1"#))
        }
    }

    @Test("a change of the files is reloaded by the poll once they settle")
    func pollReloadsChangedFiles() async throws {
        let fixtures = TLSFixtures.shared
        try await Self.withTLSProxy { proxy in
            let rotated = try fixtures.authority.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            let rotatedSerial = try rotated.nioSSLCertificate().serialNumber
            try proxy.install(rotated)
            proxy.reloader.poll()
            #expect(try await Self.serial(proxy.port) == fixtures.server.certificate.serialNumber)
            proxy.reloader.poll()
            #expect(try await Self.serial(proxy.port) == rotatedSerial)
            proxy.reloader.poll()
            #expect(proxy.harness.server.metrics.render().contains(#"strangler_tls_reloads_total{listener="proxy",result="ok"} 1"#))
        }
    }

    @Test("a reload that fails keeps the certificate in use and is counted; a later good one goes through")
    func failedReloadKeepsTheCertificate() async throws {
        let fixtures = TLSFixtures.shared
        try await Self.withTLSProxy { proxy in
            let open = try await Self.connect(proxy.port)
            // A key that is not the certificate's.
            _ = try FileManager.default.removeItem(at: proxy.keyFile)
            try FileManager.default.copyItem(at: fixtures.client.keyFile, to: proxy.keyFile)
            #expect(!proxy.reloader.reload(reason: "test"))
            #expect(try await Self.serial(proxy.port) == fixtures.server.certificate.serialNumber)
            // A missing certificate.
            try FileManager.default.removeItem(at: proxy.certificateFile)
            #expect(!proxy.reloader.reload(reason: "test"))
            #expect(try await Self.serial(proxy.port) == fixtures.server.certificate.serialNumber)
            let response = try await open.exchange("GET /echo HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            #expect(response.status == 200)
            await open.close()
            #expect(proxy.harness.server.metrics.render().contains(#"strangler_tls_reloads_total{listener="proxy",result="failed"} 2"#))

            let rotated = try fixtures.authority.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            try proxy.install(rotated)
            #expect(proxy.reloader.reload(reason: "test"))
            #expect(try await Self.serial(proxy.port) == (try rotated.nioSSLCertificate()).serialNumber)
        }
    }

    @Test("a client that refuses the certificate fails the handshake, and the listener counts it")
    func refusedHandshakeIsCounted() async throws {
        let fixtures = TLSFixtures.shared
        try await Self.withTLSProxy { proxy in
            var distrustful = TLSConfiguration.makeClientConfiguration()
            distrustful.trustRoots = .certificates([fixtures.otherCA.certificate])
            await #expect(throws: (any Error).self) {
                try await TLSClientConnection.connect(port: proxy.port, context: NIOSSLContext(configuration: distrustful))
            }
            let sample = #"strangler_tls_handshake_failures_total{listener="proxy"} 1"#
            // The server learns of the refusal from the client's alert, after the client gave up.
            for _ in 0..<200 where !proxy.harness.server.metrics.render().contains(sample) {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(proxy.harness.server.metrics.render().contains(sample))
            #expect(try await Self.serial(proxy.port) == fixtures.server.certificate.serialNumber, "the listener still serves")
        }
    }

    @Test("a bad certificate file stops the listener from starting, naming the file")
    func badFileAtStart() async throws {
        let fixtures = TLSFixtures.shared
        let missing = fixtures.directory.appendingPathComponent("absent.pem").path
        let table = try ProxyHarness.table(legacyPort: 9, servicePort: 9, routes: "[]")
        let server = ProxyServer(
            configuration: ProxyConfiguration(
                port: 0,
                threads: 1,
                tls: ListenerTLS(certificateFile: missing, keyFile: fixtures.server.keyFile.path)
            ),
            table: table,
            logger: .init(label: "test.tls")
        )
        await #expect(throws: ListenerTLSError(.certificate, path: missing, cause: .missing)) { try await server.start() }
        #expect(server.localPort == nil)
        await server.shutdown()
    }
}

/// rename(2), which replaces `destination` in one step, as certbot and deploy tools do.
func renameFile(_ source: URL, over destination: URL) throws {
    guard rename(source.path, destination.path) == 0 else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: destination.path])
    }
}

/// One client that sends requests over a single keep-alive TLS connection until stopped,
/// recording every failure and the certificate the connection saw.
private final class KeepAliveLoop: Sendable {
    private struct State {
        var succeeded = 0
        var failures: [String] = []
        var serials: [[UInt8]] = []
        var stopping = false
    }

    private let state = NIOLockedValueBox(State())

    var succeeded: Int { state.withLockedValue { $0.succeeded } }
    var failures: [String] { state.withLockedValue { $0.failures } }
    var serials: [[UInt8]] { state.withLockedValue { $0.serials } }

    func stop() { state.withLockedValue { $0.stopping = true } }

    func run(port: Int) async {
        do {
            let connection = try await TLSClientConnection.connect(port: port, context: TLSFixtures.shared.clientContext())
            let serial = try await connection.peerCertificate()?.serialNumber ?? []
            state.withLockedValue { $0.serials.append(serial) }
            var sent = 0
            while !state.withLockedValue({ $0.stopping }) {
                sent += 1
                let response = try await connection.exchange("GET /echo?n=\(sent) HTTP/1.1\r\nHost: shop.example\r\n\r\n")
                state.withLockedValue { state in
                    if response.status == 200 {
                        state.succeeded += 1
                    } else {
                        state.failures.append("request \(sent): status \(response.status)")
                    }
                }
            }
            await connection.close()
        } catch {
            state.withLockedValue { $0.failures.append("\(error)") }
        }
    }

    /// Waits until `count` requests succeeded (or the loop failed, or a long time passed).
    func waitFor(succeeded count: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let (done, failed) = state.withLockedValue { ($0.succeeded >= count, !$0.failures.isEmpty) }
            if done { return true }
            if failed { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
