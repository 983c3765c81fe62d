import Foundation
import StranglerTestSupport
import Testing

/// `strangler demo --tls`, the built executable: the proxy over https with a certificate from
/// the local CA the demo makes in its data folder, checked by curl as a second TLS stack.
@Suite("strangler demo --tls")
struct DemoTLSTests {
    /// Starts `strangler demo --tls` with `extra` arguments.
    static func demo(dataDirectory: URL, extra: [String] = []) throws -> DemoProcess {
        try DemoProcess(
            arguments: ["--tls"] + extra,
            portFlags: ["port", "admin-port", "legacy-port", "inventory-port", "tracking-port", "orders-port"],
            dataDirectory: dataDirectory
        )
    }

    /// curl's exit status, the body (with anything curl printed on standard error) and the
    /// status code it got, read from `-w "\n%{http_code}"`.
    static func curl(_ arguments: [String]) async throws -> (status: Int32, body: String, code: String) {
        let run = try await Curl.run(["-w", "\n%{http_code}"] + arguments, maxTime: 10)
        var lines = run.output.components(separatedBy: "\n")
        let code = lines.popLast() ?? ""
        return (run.status, lines.joined(separator: "\n") + run.errors, code)
    }

    @Test("curl --cacert demo-ca.pem gets an order over https; the demo's traffic uses https; a restart reuses the CA")
    func servesHTTPSWithTheLocalCA() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = directory.appendingPathComponent("demo-ca.pem").path

        let demo = try Self.demo(dataDirectory: directory, extra: ["--traffic", "--traffic-rate", "20"])
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
        let again = try Self.demo(dataDirectory: directory)
        let againURL = "https://localhost:\(again.ports["port"]!)/orders/ORD-100001"
        _ = try await again.line(containing: "curl --cacert \(ca) \(againURL)")
        #expect(again.text.contains("reused from an earlier run"), "\(again.text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: ca)) == caBefore)
        let reused = try await Self.curl(["--cacert", ca, againURL])
        #expect(reused.code == "200", "\(reused.body)")
        #expect(try await again.stop() == 0, "\(again.text)")
    }
}
