import Foundation
import Logging
import NIOSSL
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

#if canImport(Glibc)
import Glibc
#endif

/// A listener whose connections the kernel completes and nobody reads: a TLS client's hello
/// gets no answer, as from an upstream that accepts and then hangs.
final class SilentListener {
    let port: Int
    private let descriptor: Int32

    init() throws {
        (descriptor, port) = try LoopbackSocket.bound(listen: 64)
    }

    deinit { close(descriptor) }
}

/// `https://` upstreams against real TLS servers (NIOSSL) with certificates made for the test:
/// verified by default, failing closed with named causes, mutual TLS, and every mode.
@Suite("https upstreams")
struct UpstreamTLSTests {
    /// A proxy whose table is written to a folder of its own, as a routes.json is, with the test
    /// CA beside it as `ca.pem` (so relative `caFile` paths are exercised).
    struct Setup {
        let directory: URL
        let server: ProxyServer
        let metrics: ProxyMetrics
        var port: Int { server.localPort! }

        static func start(
            upstreams: [String: String],
            routes: String = "[]",
            shadowSink: ShadowSink? = nil
        ) async throws -> Setup {
            let fixtures = TLSFixtures.shared
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-tls-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: fixtures.ca.certificateFile, to: directory.appendingPathComponent("ca.pem"))
            let entries = upstreams.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ",\n")
            let json = #"{"upstreams": {\#(entries)}, "defaultUpstream": "legacy", "routes": \#(routes)}"#
            let file = directory.appendingPathComponent("routes.json")
            try Data(json.utf8).write(to: file)
            let table = try RouteTable.parse(Data(json.utf8))
            let problems = UpstreamTLSContexts(for: table, relativeTo: directory.path).problems
            try #require(problems.isEmpty, "\(problems)")
            var logger = Logger(label: "test.upstream-tls")
            logger.logLevel = .critical
            let metrics = ProxyMetrics()
            let server = ProxyServer(
                configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1, shutdownGracePeriod: .seconds(2), accessLog: false),
                table: table,
                logger: logger,
                metrics: metrics,
                shadowSink: shadowSink,
                upstreamFilesDirectory: directory.path
            )
            try await server.start()
            return Setup(directory: directory, server: server, metrics: metrics)
        }

        func stop() async {
            await server.shutdown()
            try? FileManager.default.removeItem(at: directory)
        }

        /// The value of one sample of the metrics page, or 0.
        func metric(_ sample: String) -> Double {
            for line in metrics.render().split(separator: "\n") where line.hasPrefix(sample + " ") {
                return Double(line.split(separator: " ").last ?? "") ?? 0
            }
            return 0
        }
    }

    static func tlsUpstream(_ name: String, _ identity: KeyPath<TLSFixtures, TLSFixtures.Identity>, requireClient: Bool = false) async throws -> TestUpstream {
        let fixtures = TLSFixtures.shared
        return try await TestUpstream(name: name, tls: fixtures.serverContext(fixtures[keyPath: identity], requireClientCertificate: requireClient))
    }

    @Test("an https upstream verified against a private CA (relative caFile) serves GET and POST byte-exact; one pooled connection carries them all")
    func happyPathAndPooling() async throws {
        let legacy = try await Self.tlsUpstream("legacy", \.server)
        defer { Task { await legacy.stop() } }
        let setup = try await Setup.start(upstreams: ["legacy": #"{"url": "https://127.0.0.1:\#(legacy.port)", "caFile": "ca.pem"}"#])
        do {
            let connection = try await RawConnection.connect(port: setup.port)
            for index in 0..<5 {
                try await connection.send("GET /echo?n=\(index) HTTP/1.1\r\nHost: shop.example\r\n\r\n")
                let response = try await connection.readResponse()
                #expect(response.status == 200, "\(response.text)")
                #expect(response.json()["uri"] as? String == "/echo?n=\(index)")
            }
            let body = String(repeating: "0123456789", count: 3000)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: shop.example\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let post = try await connection.readResponse()
            #expect(post.status == 200)
            #expect(post.json()["body"] as? String == body)
            await connection.close()
            #expect(legacy.requests.count == 6)
            #expect(legacy.acceptedConnections == 1, "the handshake is paid once per pooled connection")
            #expect(legacy.requests.first?.headers.first { $0.0.lowercased() == "host" }?.1 == "shop.example")
        }
        await setup.stop()
    }

    @Test("every mode reaches https upstreams: legacy, shadow (the copy is compared), canary and service")
    func everyMode() async throws {
        let legacy = try await Self.tlsUpstream("legacy", \.server)
        let service = try await Self.tlsUpstream("service", \.server)
        defer {
            Task {
                await legacy.stop()
                await service.stop()
            }
        }
        let routes = """
            [{"id": "old", "path": "/old/**", "mode": "legacy"},
             {"id": "shadowed", "path": "/shadowed/**", "mode": "shadow", "service": "service", "compare": {"ignore": ["/upstream"]}},
             {"id": "canaried", "path": "/canaried/**", "mode": "canary", "service": "service", "canary": {"percent": 100}},
             {"id": "moved", "path": "/moved/**", "mode": "service", "service": "service"}]
            """
        try await ShadowPipeline.run { pipeline in
            let setup = try await Setup.start(
                upstreams: [
                    "legacy": #"{"url": "https://127.0.0.1:\#(legacy.port)", "caFile": "ca.pem"}"#,
                    "service": #"{"url": "https://localhost:\#(service.port)", "caFile": "ca.pem"}"#,
                ],
                routes: routes,
                shadowSink: pipeline.worker
            )
            do {
                for (path, upstream) in [("/old/a", "legacy"), ("/shadowed/b", "legacy"), ("/canaried/c", "service"), ("/moved/d", "service")] {
                    let response = try await RawConnection.get(port: setup.port, path)
                    #expect(response.status == 200, "\(path): \(response.text)")
                    #expect(response.header("x-strangler-upstream") == upstream, "\(path)")
                }
                #expect(try await pipeline.waitForComparisons(1) >= 1, "the shadow copy went to the https service and was compared")
                #expect(service.requests.contains { $0.uri == "/shadowed/b" })
            }
            await setup.stop()
        }
    }

    @Test("an untrusted CA, a hostname mismatch (by name, and by IP address) and an expired certificate each fail closed with 502 upstream_tls and their cause")
    func namedFailures() async throws {
        let untrusted = try await Self.tlsUpstream("untrusted", \.untrusted)
        let wrongHost = try await Self.tlsUpstream("wrong", \.wrongHost)
        let expired = try await Self.tlsUpstream("expired", \.expired)
        defer {
            Task {
                await untrusted.stop()
                await wrongHost.stop()
                await expired.stop()
            }
        }
        let setup = try await Setup.start(
            upstreams: [
                "legacy": #"{"url": "https://127.0.0.1:\#(untrusted.port)", "caFile": "ca.pem"}"#,
                "wrong": #"{"url": "https://127.0.0.1:\#(wrongHost.port)", "caFile": "ca.pem", "serverName": "localhost"}"#,
                "wrongip": #"{"url": "https://127.0.0.1:\#(wrongHost.port)", "caFile": "ca.pem"}"#,
                "expired": #"{"url": "https://127.0.0.1:\#(expired.port)", "caFile": "ca.pem"}"#,
            ],
            routes: """
                [{"id": "w", "path": "/wrong/**", "mode": "service", "service": "wrong"},
                 {"id": "wi", "path": "/wrongip/**", "mode": "service", "service": "wrongip"},
                 {"id": "e", "path": "/expired/**", "mode": "service", "service": "expired"}]
                """
        )
        do {
            for (path, upstream, cause, kind) in [
                ("/any", "legacy", "untrusted issuer", "tls_untrusted_issuer"),
                ("/wrong/x", "wrong", "hostname mismatch", "tls_hostname_mismatch"),
                ("/wrongip/x", "wrongip", "not valid for the upstream's IP address", "tls_hostname_mismatch"),
                ("/expired/x", "expired", "certificate expired", "tls_certificate_expired"),
            ] {
                let response = try await RawConnection.get(port: setup.port, path)
                #expect(response.status == 502, "\(path): \(response.text)")
                #expect(response.json()["error"] as? String == "upstream_tls", "\(path): \(response.text)")
                let message = response.json()["message"] as? String ?? ""
                #expect(message.contains(cause), "\(path): \(message)")
                #expect(message.contains("upstream \"\(upstream)\""), "\(path): \(message)")
                #expect(setup.metric(#"strangler_upstream_errors_total{upstream="\#(upstream)",error="\#(kind)"}"#) >= 1, "\(setup.metrics.render())")
            }
            #expect(untrusted.requests.isEmpty && wrongHost.requests.isEmpty && expired.requests.isEmpty, "no request crossed a failed handshake")
        }
        await setup.stop()
    }

    @Test("mutual TLS: an upstream that requires a client certificate refuses the proxy without one, and gets the test client's with clientCertFile")
    func mutualTLS() async throws {
        let strict = try await Self.tlsUpstream("strict", \.server, requireClient: true)
        defer { Task { await strict.stop() } }
        let fixtures = TLSFixtures.shared
        let setup = try await Setup.start(
            upstreams: [
                "legacy": #"{"url": "https://127.0.0.1:\#(strict.port)", "caFile": "ca.pem"}"#,
                "service": """
                    {"url": "https://127.0.0.1:\(strict.port)", "caFile": "ca.pem",
                     "clientCertFile": "\(fixtures.client.certificateFile.path)", "clientKeyFile": "\(fixtures.client.keyFile.path)"}
                    """,
            ],
            routes: #"[{"id": "m", "path": "/mtls/**", "mode": "service", "service": "service"}]"#
        )
        do {
            let refused = try await RawConnection.get(port: setup.port, "/plain")
            #expect(refused.status == 502, "\(refused.text)")
            #expect(refused.json()["error"] as? String == "upstream_tls", "\(refused.text)")
            #expect((refused.json()["message"] as? String ?? "").contains("client certificate"), "\(refused.text)")
            let served = try await RawConnection.get(port: setup.port, "/mtls/orders")
            #expect(served.status == 200, "\(served.text)")
            #expect(strict.requests.count == 1)
            #expect(strict.requests.first?.clientCertificateCommonName == TLSFixtures.clientCommonName)
        }
        await setup.stop()
    }

    @Test("a service failing TLS is a connect failure: a service route with fallback serves the request from legacy")
    func tlsFailureFallsBack() async throws {
        let legacy = try await TestUpstream(name: "legacy")
        let untrusted = try await Self.tlsUpstream("service", \.untrusted)
        defer {
            Task {
                await legacy.stop()
                await untrusted.stop()
            }
        }
        let setup = try await Setup.start(
            upstreams: [
                "legacy": #"{"url": "http://127.0.0.1:\#(legacy.port)"}"#,
                "service": #"{"url": "https://127.0.0.1:\#(untrusted.port)"}"#,
            ],
            routes: #"[{"id": "s", "path": "/svc/**", "mode": "service", "service": "service", "fallback": true}]"#
        )
        do {
            let response = try await RawConnection.get(port: setup.port, "/svc/orders")
            #expect(response.status == 200, "\(response.text)")
            #expect(response.header("x-strangler-upstream") == "legacy")
            #expect(untrusted.requests.isEmpty)
        }
        await setup.stop()
    }

    @Test("an upstream that accepts and never answers the handshake gives 504 within the connect timeout")
    func handshakeTimeout() async throws {
        let silent = try SilentListener()
        let setup = try await Setup.start(upstreams: ["legacy": #"{"url": "https://127.0.0.1:\#(silent.port)", "connectTimeoutMs": 300}"#])
        do {
            let response = try await RawConnection.get(port: setup.port, "/orders/1")
            #expect(response.status == 504, "\(response.text)")
            #expect(response.json()["error"] as? String == "upstream_connect_timeout", "\(response.text)")
            #expect((response.json()["message"] as? String ?? "").contains("TLS handshake"), "\(response.text)")
        }
        await setup.stop()
        withExtendedLifetime(silent) {}
    }

    @Test("a CA file replaced under the same path is read again at the next reload: the pool uses the new context")
    func rotatedCAFile() async throws {
        let upstream = try await Self.tlsUpstream("legacy", \.server)
        defer { Task { await upstream.stop() } }
        let setup = try await Setup.start(upstreams: ["legacy": #"{"url": "https://127.0.0.1:\#(upstream.port)", "caFile": "ca.pem"}"#])
        do {
            #expect(try await RawConnection.get(port: setup.port, "/echo").status == 200)
            // The file now holds another CA (written beside and renamed, as deploy tools do).
            let caFile = setup.directory.appendingPathComponent("ca.pem")
            let staged = setup.directory.appendingPathComponent("ca.pem.new")
            try Data(TLSFixtures.shared.otherCA.certificatePEM.utf8).write(to: staged)
            #expect(rename(staged.path, caFile.path) == 0)
            try await setup.server.apply(setup.server.state.status.table)
            let refused = try await RawConnection.get(port: setup.port, "/echo")
            #expect(refused.status == 502, "the rotated CA does not trust the upstream: \(refused.text)")
            #expect(refused.json()["error"] as? String == "upstream_tls")
        }
        await setup.stop()
    }

    @Test("a body framed by the close comes through whole over TLS when the upstream closes with close_notify")
    func closeDelimitedBody() async throws {
        let upstream = try await Self.tlsUpstream("legacy", \.server)
        defer { Task { await upstream.stop() } }
        let setup = try await Setup.start(upstreams: ["legacy": #"{"url": "https://127.0.0.1:\#(upstream.port)", "caFile": "ca.pem"}"#])
        do {
            let response = try await RawConnection.get(port: setup.port, "/nolength")
            #expect(response.status == 200, "\(response.text)")
            #expect(response.body == Array("until-close body".utf8))
        }
        await setup.stop()
    }

    @Test("a TLS failure during the handshake is a connect failure; one after it (the request may be out) is not")
    func connectFailureOnlyBeforeTheRequest() {
        let upstream = Upstream(name: "svc", url: "https://127.0.0.1:9443", host: "127.0.0.1", port: 9443, tls: UpstreamTLS())
        let failure = UpstreamTLSFailure(.handshake, "the upstream sent the alert \"certificate required\"")
        #expect(ProxyError.upstreamTLS(failure, upstream: upstream).isConnectFailure)
        let late = ProxyError.upstreamTLS(failure, upstream: upstream, afterHandshake: true)
        #expect(!late.isConnectFailure)
        #expect(late.name == "upstream_tls" && late.metricKind == "tls_handshake")
    }

    @Test("insecureSkipVerify talks to an untrusted upstream, and the table says so")
    func insecureSkipVerify() async throws {
        let untrusted = try await Self.tlsUpstream("legacy", \.untrusted)
        defer { Task { await untrusted.stop() } }
        let setup = try await Setup.start(upstreams: ["legacy": #"{"url": "https://127.0.0.1:\#(untrusted.port)", "insecureSkipVerify": true}"#])
        do {
            let response = try await RawConnection.get(port: setup.port, "/echo")
            #expect(response.status == 200, "\(response.text)")
            #expect(setup.server.state.status.table.upstreams["legacy"]?.tls?.insecureSkipVerify == true)
        }
        await setup.stop()
    }

    @Test("certificate files that are missing or broken refuse the table with their JSON path; a reload keeps the live table")
    func brokenFiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-tls-files-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("not a certificate\n".utf8).write(to: directory.appendingPathComponent("junk.pem"))
        let json = """
            {"upstreams": {
               "legacy": {"url": "https://127.0.0.1:9443", "caFile": "missing-ca.pem"},
               "service": {"url": "https://127.0.0.1:9444", "clientCertFile": "junk.pem", "clientKeyFile": "junk.pem"}},
             "defaultUpstream": "legacy", "routes": []}
            """
        let problems = UpstreamTLSContexts(for: try RouteTable.parse(Data(json.utf8)), relativeTo: directory.path).problems
        let paths = problems.map(\.path)
        #expect(paths.contains("upstreams.legacy.caFile"), "\(problems)")
        #expect(paths.contains("upstreams.service.clientCertFile"), "\(problems)")
        let missing = problems.first { $0.path == "upstreams.legacy.caFile" }?.message ?? ""
        #expect(missing.contains(directory.appendingPathComponent("missing-ca.pem").path) && missing.contains("does not exist"), "\(missing)")
        // The same table as a reload of a running proxy: refused, the live table stays.
        let legacy = try await TestUpstream(name: "legacy")
        defer { Task { await legacy.stop() } }
        let setup = try await Setup.start(upstreams: ["legacy": #"{"url": "http://127.0.0.1:\#(legacy.port)"}"#])
        do {
            let broken = try RouteTable.parse(Data(json.utf8))
            #expect(throws: RouteTableError.self) { _ = try setup.server.prepare(broken) }
            #expect(try await RawConnection.get(port: setup.port, "/echo").status == 200)
        }
        await setup.stop()
    }
}

/// The route table's TLS settings, validated without sockets.
@Suite("https upstream settings")
struct UpstreamTLSSettingsTests {
    static func problems(_ upstreams: String, routes: String = "[]") -> [String] {
        let json = #"{"upstreams": \#(upstreams), "defaultUpstream": "legacy", "routes": \#(routes)}"#
        do {
            _ = try RouteTable.parse(Data(json.utf8))
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("https parses with port 443 by default and verification on; SNI is the host, and none for an IP literal")
    func defaults() throws {
        let table = try RouteTable.parse(
            Data(#"{"upstreams": {"legacy": {"url": "https://oms.internal/api"}, "ip": {"url": "https://10.0.0.7:8443"}}, "defaultUpstream": "legacy", "routes": []}"#.utf8)
        )
        let legacy = try #require(table.upstreams["legacy"])
        #expect(legacy.port == 443)
        #expect(legacy.basePath == "/api")
        #expect(legacy.tls == UpstreamTLS())
        #expect(legacy.tls?.serverHostname(for: legacy.host) == "oms.internal")
        let ip = try #require(table.upstreams["ip"])
        #expect(ip.tls?.serverHostname(for: ip.host) == nil)
        #expect(UpstreamTLS(serverName: "oms.example").serverHostname(for: "10.0.0.7") == "oms.example")
        #expect(UpstreamTLS.isIPAddress("::1") && UpstreamTLS.isIPAddress("127.0.0.1") && !UpstreamTLS.isIPAddress("127.0.0.1.nip.io"))
    }

    @Test("TLS settings are refused where they cannot apply, with their JSON path")
    func refusals() {
        #expect(Self.problems(#"{"legacy": {"url": "http://127.0.0.1:9000", "caFile": "ca.pem"}}"#).contains {
            $0.hasPrefix("upstreams.legacy.caFile") && $0.contains("https upstreams only")
        })
        #expect(Self.problems(#"{"legacy": {"url": "https://127.0.0.1:9000", "serverName": "10.1.2.3"}}"#).contains {
            $0.hasPrefix("upstreams.legacy.serverName") && $0.contains("IP address")
        })
        #expect(Self.problems(#"{"legacy": {"url": "https://127.0.0.1:9000", "clientCertFile": "c.pem"}}"#).contains {
            $0.hasPrefix("upstreams.legacy.clientKeyFile")
        })
        #expect(Self.problems(#"{"legacy": {"url": "https://127.0.0.1:9000", "insecureSkipVerify": "yes"}}"#).contains {
            $0.hasPrefix("upstreams.legacy.insecureSkipVerify")
        })
        #expect(Self.problems(#"{"legacy": {"url": "ftp://127.0.0.1:9000"}}"#).contains { $0.contains("use http:// or https://") })
    }

    @Test("insecureSkipVerify is refused on an upstream that only gets shadow copies, and allowed once it serves clients")
    func unverifiedShadowTarget() {
        let upstreams = #"{"legacy": {"url": "http://127.0.0.1:9000"}, "svc": {"url": "https://127.0.0.1:9443", "insecureSkipVerify": true}}"#
        let shadowOnly = Self.problems(upstreams, routes: #"[{"id": "r", "path": "/r/**", "mode": "shadow", "service": "svc"}]"#)
        #expect(shadowOnly.contains { $0.hasPrefix("upstreams.svc.insecureSkipVerify") && $0.contains("routes[0]") }, "\(shadowOnly)")
        #expect(Self.problems(upstreams, routes: #"[{"id": "r", "path": "/r/**", "mode": "canary", "service": "svc", "canary": {"percent": 5}}]"#).isEmpty)
        #expect(Self.problems(upstreams, routes: #"[{"id": "r", "path": "/r/**", "mode": "legacy", "service": "svc"}]"#).isEmpty, "a legacy route sends nothing to its service")
        // In service mode with shadow, legacy gets the copies (a reverse shadow).
        let reverse = #"{"legacy": {"url": "http://127.0.0.1:9000"}, "old": {"url": "https://127.0.0.1:9443", "insecureSkipVerify": true}, "svc": {"url": "http://127.0.0.1:9001"}}"#
        let copiesOnly = Self.problems(reverse, routes: #"[{"id": "r", "path": "/r/**", "mode": "service", "legacy": "old", "service": "svc", "shadow": {}}]"#)
        #expect(copiesOnly.contains { $0.hasPrefix("upstreams.old.insecureSkipVerify") }, "\(copiesOnly)")
        #expect(Self.problems(reverse, routes: #"[{"id": "r", "path": "/r/**", "mode": "service", "legacy": "old", "service": "svc", "shadow": {}, "fallback": true}]"#).isEmpty)
        #expect(UpstreamTLS.isIPAddress("10.0.0.7."))
    }
}
