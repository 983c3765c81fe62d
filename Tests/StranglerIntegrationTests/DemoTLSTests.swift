import Foundation
import StranglerTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `strangler demo --tls`, the built executable: the proxy over https with a certificate from
/// the local CA the demo makes in its data folder, checked by curl as a second TLS stack.
@Suite("strangler demo --tls")
struct DemoTLSTests {
    /// A running `strangler demo --tls`, with its ports and output.
    final class RunningDemo {
        let process: ChildProcess
        let output: URL
        let ports: [String: Int]

        init(dataDirectory: URL, extra: [String] = []) throws {
            var ports: [String: Int] = [:]
            for name in ["port", "admin-port", "legacy-port", "inventory-port", "tracking-port", "orders-port"] {
                var port = try PostgresCluster.freeLoopbackPort()
                while ports.values.contains(port) { port = try PostgresCluster.freeLoopbackPort() }
                ports[name] = port
            }
            self.ports = ports
            output = dataDirectory.appendingPathComponent("demo-\(UUID().uuidString.prefix(8)).log")
            try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let root = RoutesCommandTests.root
            let binary = root.appendingPathComponent(".build/debug/strangler")
            try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the package first (swift build --build-tests)")
            let arguments =
                [
                    "demo", "--tls", "--data-dir", dataDirectory.path,
                    "--routes", root.appendingPathComponent("routes.json").path,
                    "--migrations", root.appendingPathComponent("migrations").path,
                    "--threads", "1", "--no-access-log",
                ] + extra + ports.sorted { $0.key < $1.key }.flatMap { ["--\($0.key)", String($0.value)] }
            var environment = ProcessInfo.processInfo.environment
            environment["STRANGLER_ADMIN_TOKEN"] = nil
            environment["STRANGLER_STORE"] = nil
            process = try ChildProcess.spawn(binary.path, arguments, environment: environment, output: .file(output.path))
        }

        deinit {
            process.send(SIGTERM)
        }

        var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        /// Waits until the output has a line containing `needle`, and returns that line.
        func line(containing needle: String, within seconds: Int = 60) async throws -> String {
            for _ in 0..<(seconds * 10) {
                try #require(process.isRunning, "the demo exited early:\n\(text)")
                if let line = text.split(separator: "\n").first(where: { $0.contains(needle) }) { return String(line) }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("the demo printed no line with \"\(needle)\" within \(seconds) s:\n\(text)")
            throw CancellationError()
        }

        /// Stops the demo as Ctrl-C does and returns its exit status.
        func stop() async throws -> Int32 {
            process.send(SIGINT)
            for _ in 0..<600 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            if process.isRunning {
                process.send(SIGTERM)
                Issue.record("the demo did not stop on SIGINT:\n\(text)")
            }
            return process.waitUntilExit()
        }
    }

    /// curl's exit status, the body and the status code it got.
    static func curl(_ arguments: [String]) async throws -> (status: Int32, body: String, code: String) {
        let executable = try #require(
            ["/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "curl is needed (.ci/setup installs it)"
        )
        let run = try await offPool {
            try ChildProcess.run(
                executable,
                ["-sS", "--max-time", "10", "-w", "\n%{http_code}"] + arguments,
                environment: ["PATH": "/usr/bin:/bin"]
            )
        }
        let text = String(decoding: run.output, as: UTF8.self)
        var lines = text.components(separatedBy: "\n")
        let code = lines.popLast() ?? ""
        return (run.status, lines.joined(separator: "\n") + String(decoding: run.errors, as: UTF8.self), code)
    }

    @Test("curl --cacert demo-ca.pem gets an order over https; the demo's traffic uses https; a restart reuses the CA")
    func servesHTTPSWithTheLocalCA() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = directory.appendingPathComponent("demo-ca.pem").path

        let demo = try RunningDemo(dataDirectory: directory, extra: ["--traffic", "--traffic-rate", "20"])
        let port = demo.ports["port"]!
        let url = "https://localhost:\(port)/orders/ORD-100001"
        let tryLine = try await demo.line(containing: "curl --cacert")
        #expect(tryLine.trimmingCharacters(in: .whitespaces) == "curl --cacert \(ca) \(url)", "\(demo.text)")
        #expect(demo.text.contains("https://localhost:\(port)"), "\(demo.text)")
        #expect(demo.text.contains("made now"), "the first run makes the CA: \(demo.text)")

        let order = try await Self.curl(["--cacert", ca, url])
        #expect(order.status == 0, "\(order.body)")
        #expect(order.code == "200", "\(order.body)")
        #expect(order.body.contains(#""orderId":"ORD-100001""#), "\(order.body)")
        // By 127.0.0.1 too: the certificate has the address as well as the name.
        let byAddress = try await Self.curl(["--cacert", ca, "https://127.0.0.1:\(port)/orders/ORD-100001"])
        #expect(byAddress.code == "200", "\(byAddress.body)")
        // With the system's roots alone curl refuses the certificate (60: it cannot be authenticated).
        let untrusted = try await Self.curl([url])
        #expect(untrusted.status != 0, "\(untrusted.body)")
        #expect(untrusted.code == "000", "\(untrusted.body)")

        // The demo's own traffic goes over https, trusting the same CA.
        let progress = try await demo.line(containing: "traffic:", within: 30)
        #expect(progress.contains("2xx:"), "\(progress)")
        #expect(!progress.contains("failed"), "\(progress)")

        #expect(try await demo.stop() == 0, "\(demo.text)")
        #expect(demo.text.contains("demo stopped"))

        // The next run serves the same certificate: a trust set up once keeps working.
        let caBefore = try Data(contentsOf: URL(fileURLWithPath: ca))
        let again = try RunningDemo(dataDirectory: directory)
        let againURL = "https://localhost:\(again.ports["port"]!)/orders/ORD-100001"
        _ = try await again.line(containing: "curl --cacert \(ca) \(againURL)")
        #expect(again.text.contains("reused from an earlier run"), "\(again.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: ca)) == caBefore)
        let reused = try await Self.curl(["--cacert", ca, againURL])
        #expect(reused.code == "200", "\(reused.body)")
        #expect(try await again.stop() == 0, "\(again.text)")
    }
}
