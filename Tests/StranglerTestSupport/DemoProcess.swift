import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A running `strangler demo`, the built executable, as a user starts it: its listeners on
/// loopback ports chosen here, a data folder, and its output in a log file there.
///
/// The demo prints its addresses before it serves and takes every port as a flag, so the ports
/// are picked in advance with ``LoopbackPorts`` (outside the range port-0 listeners draw from,
/// so no other test takes one first) and a test reads them from ``ports``. The routes
/// and migrations are the checkout's, with one event loop and no access log; the test's
/// `STRANGLER_ADMIN_TOKEN` and `STRANGLER_STORE` are dropped, so the demo makes its own token
/// and store as it does for a user. Stop it with ``stop()``, which checks that Ctrl-C ends it;
/// a demo dropped without that gets SIGTERM.
package final class DemoProcess: Sendable {
    /// The port given to each of the flags named at the start, by flag name without the dashes.
    package let ports: [String: Int]
    /// The file that collects standard output and standard error.
    package let output: URL
    private let process: ChildProcess

    /// Starts `strangler demo` with `arguments` (its mode, such as `--tls` or `--postgres URL`),
    /// the data folder and the checkout's files, and a distinct free port for each of
    /// `portFlags` (names without the dashes, such as `admin-port`); it does not wait for the
    /// listeners (``line(containing:within:)`` does).
    package init(arguments: [String], portFlags: [String], dataDirectory: URL) throws {
        var ports: [String: Int] = [:]
        for name in portFlags {
            ports[name] = try LoopbackPorts.reserve()
        }
        self.ports = ports
        output = dataDirectory.appendingPathComponent("demo-\(UUID().uuidString.prefix(8)).log")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let binary = ServeProcess.binary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the package first (swift build --build-tests)")
        let commandLine =
            ["demo"] + arguments
            + [
                "--data-dir", dataDirectory.path,
                "--routes", ServeProcess.root.appendingPathComponent("routes.json").path,
                "--migrations", ServeProcess.migrations,
                "--threads", "1", "--no-access-log",
            ] + ports.sorted { $0.key < $1.key }.flatMap { ["--\($0.key)", String($0.value)] }
        var environment = ProcessInfo.processInfo.environment
        environment["STRANGLER_ADMIN_TOKEN"] = nil
        environment["STRANGLER_STORE"] = nil
        process = try ChildProcess.spawn(binary.path, commandLine, environment: environment, output: .file(output.path))
    }

    deinit {
        process.send(SIGTERM)
    }

    /// Whether the demo still runs.
    package var isRunning: Bool { process.isRunning }

    /// Everything the demo printed so far.
    package var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// Waits until the output has a line containing `needle`, and returns that line; records an
    /// issue and throws when the demo exits first or `seconds` pass.
    package func line(containing needle: String, within seconds: Int = 60) async throws -> String {
        for _ in 0..<(seconds * 10) {
            try #require(process.isRunning, "the demo exited early:\n\(text)")
            if let line = text.split(separator: "\n").first(where: { $0.contains(needle) }) { return String(line) }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the demo printed no line with \"\(needle)\" within \(seconds) s:\n\(text)")
        throw CancellationError()
    }

    /// Stops the demo as Ctrl-C does (SIGINT) and returns its exit status; a demo still running
    /// after a minute records an issue and gets SIGTERM, so a hang fails the test instead of
    /// holding it.
    package func stop() async throws -> Int32 {
        process.send(SIGINT)
        for _ in 0..<600 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning {
            process.send(SIGTERM)
            Issue.record("the demo did not stop on SIGINT:\n\(text)")
        }
        return process.waitUntilExit()
    }
}
