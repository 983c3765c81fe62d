import Foundation
import Logging
import StranglerCore
import StranglerProxy
import StranglerTestSupport
import Testing

/// https upstreams against nginx, a TLS stack independent of ours: what it saw of our client
/// side (SNI, protocol version, client certificate) comes back in its answers.
@Suite("https upstreams against nginx")
struct UpstreamTLSNginxTests {
    /// nginx on two loopback ports: `port` serves TLS with the test server certificate, and
    /// `mutualPort` also requires a client certificate from the test CA. Each answers a JSON
    /// object of what it saw.
    final class NginxTLS {
        let directory: URL
        let process: ChildProcess
        let port: Int
        let mutualPort: Int

        init() throws {
            let fixtures = TLSFixtures.shared
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-tls-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            port = try LoopbackPorts.reserve()
            mutualPort = try LoopbackPorts.reserve()
            let saw = #"'{"sni":"$ssl_server_name","protocol":"$ssl_protocol","uri":"$request_uri","client":"$ssl_client_s_dn"}'"#
            let dir = directory.path
            let config = """
                daemon off;
                master_process off;
                worker_processes 1;
                pid \(dir)/nginx.pid;
                error_log \(dir)/error.log warn;
                events { worker_connections 64; }
                http {
                    access_log off;
                    client_body_temp_path \(dir)/body;
                    proxy_temp_path \(dir)/proxy;
                    fastcgi_temp_path \(dir)/fastcgi;
                    uwsgi_temp_path \(dir)/uwsgi;
                    scgi_temp_path \(dir)/scgi;
                    ssl_certificate \(fixtures.server.certificateFile.path);
                    ssl_certificate_key \(fixtures.server.keyFile.path);
                    ssl_protocols TLSv1.2 TLSv1.3;
                    server {
                        listen 127.0.0.1:\(port) ssl;
                        location / { default_type application/json; return 200 \(saw); }
                    }
                    server {
                        listen 127.0.0.1:\(mutualPort) ssl;
                        ssl_client_certificate \(fixtures.ca.certificateFile.path);
                        ssl_verify_client on;
                        location / { default_type application/json; return 200 \(saw); }
                    }
                }
                """
            let configFile = directory.appendingPathComponent("nginx.conf")
            try Data(config.utf8).write(to: configFile)
            process = try ChildProcess.spawn(
                "/usr/sbin/nginx",
                ["-e", "\(dir)/error.log", "-c", configFile.path, "-p", dir],
                environment: ProcessInfo.processInfo.environment,
                output: .file("\(dir)/stdout.log")
            )
        }

        /// Waits until both ports accept connections; throws with nginx's log if it exited.
        func waitUntilListening() async throws {
            for port in [port, mutualPort] {
                var connected = false
                for _ in 0..<200 where !connected {
                    guard process.isRunning else { throw ChildProcessError("nginx exited: \(log)") }
                    if let connection = try? await RawConnection.connect(port: port) {
                        await connection.close()
                        connected = true
                    } else {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                if !connected { throw ChildProcessError("nginx did not listen on \(port): \(log)") }
            }
        }

        var log: String {
            (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        }

        func stop() {
            process.send(SIGTERM)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static var nginxInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") }

    @Test(
        "nginx sees SNI for a host name and none for an IP literal, TLS 1.2 or later, and the client certificate on mutual TLS",
        .enabled(if: nginxInstalled, "nginx is installed by .ci/setup")
    )
    func againstNginx() async throws {
        let nginx = try NginxTLS()
        defer { nginx.stop() }
        try await nginx.waitUntilListening()
        let fixtures = TLSFixtures.shared
        let json = """
            {"upstreams": {
               "legacy": {"url": "https://localhost:\(nginx.port)", "caFile": "\(fixtures.ca.certificateFile.path)"},
               "byip": {"url": "https://127.0.0.1:\(nginx.port)", "caFile": "\(fixtures.ca.certificateFile.path)"},
               "mutual": {"url": "https://127.0.0.1:\(nginx.mutualPort)", "caFile": "\(fixtures.ca.certificateFile.path)",
                          "clientCertFile": "\(fixtures.client.certificateFile.path)", "clientKeyFile": "\(fixtures.client.keyFile.path)"},
               "refused": {"url": "https://127.0.0.1:\(nginx.mutualPort)", "caFile": "\(fixtures.ca.certificateFile.path)"}},
             "defaultUpstream": "legacy",
             "routes": [
               {"id": "ip", "path": "/ip/**", "mode": "service", "service": "byip"},
               {"id": "m", "path": "/mutual/**", "mode": "service", "service": "mutual"},
               {"id": "r", "path": "/refused/**", "mode": "service", "service": "refused"}]}
            """
        let table = try RouteTable.parse(Data(json.utf8))
        var logger = Logger(label: "test.nginx-tls")
        logger.logLevel = .critical
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 1, shutdownGracePeriod: .seconds(2), accessLog: false),
            table: table,
            logger: logger
        )
        try await server.start()
        do {
            let port = try #require(server.localPort)
            let byName = try await RawConnection.get(port: port, "/orders/1")
            #expect(byName.status == 200, "\(byName.text)\n\(nginx.log)")
            #expect(byName.json()["sni"] as? String == "localhost")
            #expect(["TLSv1.2", "TLSv1.3"].contains(byName.json()["protocol"] as? String ?? ""), "\(byName.text)")
            #expect(byName.json()["uri"] as? String == "/orders/1")

            let byIP = try await RawConnection.get(port: port, "/ip/orders/2")
            #expect(byIP.status == 200, "\(byIP.text)")
            #expect(byIP.json()["sni"] as? String == "", "no SNI for an IP literal: \(byIP.text)")

            let mutual = try await RawConnection.get(port: port, "/mutual/orders/3")
            #expect(mutual.status == 200, "\(mutual.text)")
            #expect((mutual.json()["client"] as? String ?? "").contains(TLSFixtures.clientCommonName), "\(mutual.text)")

            // nginx answers a missing client certificate with a 400 over TLS, not an alert: the
            // answer is relayed as nginx gave it.
            let refused = try await RawConnection.get(port: port, "/refused/orders/4")
            #expect(refused.status == 400, "\(refused.text)")
            #expect(refused.header("x-strangler-upstream") == "refused")
        }
        await server.shutdown()
    }
}
