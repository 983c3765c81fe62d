import Foundation
import NIOSSL
import StranglerTLS
import StranglerTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `strangler serve` with TLS on both listeners, as an operator runs it: curl through them, a
/// certificate rotated by SIGHUP, and a bad file refused at start with the flag that named it.
@Suite("serve over TLS (the built binary)")
struct ServeTLSTests {
    /// A working folder with routes.json for `upstreamPort` and copies of the fixtures' server
    /// certificate and key.
    private static func folder(upstreamPort: Int) throws -> URL {
        let directory = try ServeProcess.makeDirectory("tls")
        let routes = #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:\#(upstreamPort)"}}, "defaultUpstream": "legacy", "routes": []}"#
        try Data(routes.utf8).write(to: directory.appendingPathComponent("routes.json"))
        let fixtures = TLSFixtures.shared
        try FileManager.default.copyItem(at: fixtures.server.certificateFile, to: directory.appendingPathComponent("cert.pem"))
        try FileManager.default.copyItem(at: fixtures.server.keyFile, to: directory.appendingPathComponent("key.pem"))
        return directory
    }

    @Test("both listeners over TLS; SIGHUP rotates the proxy's certificate for new connections and reloads the routes too")
    func servesAndRotates() async throws {
        let fixtures = TLSFixtures.shared
        let upstream = try await TestUpstream(name: "legacy")
        let directory = try Self.folder(upstreamPort: upstream.port)
        defer { try? FileManager.default.removeItem(at: directory) }
        let serve = try ServeProcess.start(
            name: "tls",
            store: directory.appendingPathComponent("store.sqlite").path,
            arguments: [
                "--routes", "routes.json", "--tls-cert", "cert.pem", "--tls-key", "key.pem",
                "--admin-tls-cert", "cert.pem", "--admin-tls-key", "key.pem",
            ],
            directory: directory
        )
        defer {
            serve.stop()
            Task { await upstream.stop() }
        }
        try await serve.waitUntilListening()
        let ca = fixtures.ca.certificateFile.path

        let proxied = try await Curl.run(["--cacert", ca, "--write-out", "\n%{http_code}", "https://localhost:\(serve.port)/echo"])
        #expect(proxied.status == 0, "\(proxied.errors)\n\(serve.logTail)")
        #expect(proxied.output.hasSuffix("\n200"))
        #expect(upstream.requests.last?.header("X-Forwarded-Proto") == "https")
        let health = try await Curl.run([
            "--cacert", ca, "--write-out", "%{http_code}", "--output", "/dev/null", "https://localhost:\(serve.adminPort)/healthz",
        ])
        #expect(health.output == "200", "\(health.errors)")

        let rotated = try fixtures.authority.issueServer(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        let rotatedSerial = try rotated.nioSSLCertificate().serialNumber
        try rotated.write(
            certificateTo: directory.appendingPathComponent("incoming.pem"),
            keyTo: directory.appendingPathComponent("incoming-key.pem")
        )
        #expect(rename(directory.appendingPathComponent("incoming.pem").path, directory.appendingPathComponent("cert.pem").path) == 0)
        #expect(rename(directory.appendingPathComponent("incoming-key.pem").path, directory.appendingPathComponent("key.pem").path) == 0)
        kill(serve.pid, SIGHUP)
        #expect(try await serve.waitForLog("trigger=SIGHUP"), "\(serve.logTail)")
        #expect(try await serve.waitForLog("SIGHUP: reloading route table"), "\(serve.logTail)")

        let context = try fixtures.clientContext()
        for port in [serve.port, serve.adminPort] {
            let seen = try await pollUntil {
                let connection = try await TLSClientConnection.connect(port: port, context: context)
                defer { Task { await connection.close() } }
                return try await connection.peerCertificate()?.serialNumber == rotatedSerial
            }
            #expect(seen, "port \(port) still presents the old certificate\n\(serve.logTail)")
        }
        #expect(!serve.log.contains("TLS certificate reload failed"), "\(serve.logTail)")
    }

    @Test("a bad certificate or key stops serve at start, naming the flag, the file and what to do")
    func badFilesAtStart() async throws {
        let fixtures = TLSFixtures.shared
        let directory = try Self.folder(upstreamPort: 9)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(arguments: [String], says: String)] = [
            (["--tls-cert", "absent.pem", "--tls-key", "key.pem"], "--tls-cert absent.pem does not exist"),
            (["--tls-cert", "key.pem", "--tls-key", "key.pem"], "--tls-cert key.pem holds no PEM certificate"),
            (
                ["--admin-tls-cert", "cert.pem", "--admin-tls-key", fixtures.client.keyFile.path],
                "--admin-tls-key \(fixtures.client.keyFile.path) is not the private key of the certificate in cert.pem"
            ),
        ]
        for (arguments, says) in cases {
            let serve = try ServeProcess.start(
                name: "tls-bad",
                store: directory.appendingPathComponent("store.sqlite").path,
                arguments: ["--routes", "routes.json"] + arguments,
                directory: directory
            )
            let status = try await serve.waitForExit()
            #expect(status == 1, "\(serve.logTail)")
            #expect(serve.log.contains(says), "\(serve.logTail)")
            #expect(serve.log.contains("To fix: "), "\(serve.logTail)")
            #expect(!serve.log.contains("proxy listening"))
        }
    }
}
