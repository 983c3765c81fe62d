import Foundation
import NIOConcurrencyHelpers
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `strangler serve` running as a process of its own, as an operator runs it: the built
/// executable, a working folder of its own (the snapshot file and anything else written beside
/// the routes file land there), both listeners on port 0, and its log in a file.
///
/// The bound ports are read from the log (`proxy listening address=…` and Hummingbird's
/// `Server started and listening on …`), so nothing races for a port picked in advance. Stop it
/// with ``stop()`` (SIGTERM, a graceful shutdown) on every path: a `defer` right after
/// ``start(name:store:arguments:directory:environment:)`` does it.
package final class ServeProcess: Sendable {
    /// The package's checkout.
    package static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
    /// The built executable (`swift build --build-tests` builds it).
    package static var binary: URL { root.appendingPathComponent(".build/debug/strangler") }
    /// The checkout's migrations.
    package static var migrations: String { root.appendingPathComponent("migrations").path }
    /// The admin token every process started here accepts (`STRANGLER_ADMIN_TOKEN`).
    package static let token = (name: "ops-live", secret: "live-test-admin-secret-0123456789")

    /// The instance id, also used in messages.
    package let name: String
    /// The process's working folder.
    package let directory: URL
    /// Its standard error: the log and any refusal to start.
    package let logFile: URL
    private let process: ChildProcess
    private let ports = NIOLockedValueBox<(proxy: Int?, admin: Int?)>((nil, nil))

    /// The proxy's port; 0 before ``waitUntilListening(timeout:)`` returned.
    package var port: Int { ports.withLockedValue { $0.proxy } ?? 0 }
    /// The admin listener's port; 0 before ``waitUntilListening(timeout:)`` returned.
    package var adminPort: Int { ports.withLockedValue { $0.admin } ?? 0 }
    /// The process id.
    package var pid: Int32 { process.pid }
    /// Whether the process still runs.
    package var isRunning: Bool { process.isRunning }

    private init(name: String, directory: URL, logFile: URL, process: ChildProcess) {
        self.name = name
        self.directory = directory
        self.logFile = logFile
        self.process = process
    }

    /// A fresh working folder under the temporary directory.
    package static func makeDirectory(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Starts `strangler serve --store STORE --instance-id NAME` on port 0 for both listeners,
    /// with the checkout's migrations, one event loop, no access log, and `arguments` after
    /// those; it does not wait for the listeners (``waitUntilListening(timeout:)`` does).
    /// - Parameters:
    ///   - directory: the working folder; a fresh one when nil. Reuse one to restart an
    ///     instance where it ran before (its snapshot is there).
    ///   - environment: added to the test's environment, without its `STRANGLER_*` and `PG*`
    ///     variables; `STRANGLER_ADMIN_TOKEN` is ``token``.
    package static func start(
        name: String,
        store: String,
        arguments: [String] = [],
        directory: URL? = nil,
        environment: [String: String] = [:]
    ) throws -> ServeProcess {
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the package first (swift build --build-tests)")
        let directory = try directory ?? makeDirectory(name)
        // A restart in the same folder appends: the earlier run's lines stay for a failure message,
        // and the ports are read from what this run writes.
        let logFile = directory.appendingPathComponent("serve-\(UUID().uuidString.prefix(8)).log")
        guard FileManager.default.createFile(atPath: logFile.path, contents: nil) else {
            throw ServeProcessError("cannot create \(logFile.path)")
        }
        let arguments =
            [
                "serve", "--store", store, "--instance-id", name, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                "--migrations", migrations, "--threads", "1", "--no-access-log",
            ] + arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STRANGLER_") && !$0.key.hasPrefix("PG") }
        env["STRANGLER_ADMIN_TOKEN"] = "\(token.name):\(token.secret)"
        env.merge(environment) { $1 }
        let process = try ChildProcess.spawn(binary.path, arguments, environment: env, directory: directory.path, output: .file(logFile.path))
        return ServeProcess(name: name, directory: directory, logFile: logFile, process: process)
    }

    /// What the process has logged so far.
    package var log: String {
        (try? Data(contentsOf: logFile)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The last lines of the log, for failure messages.
    package var logTail: String {
        "\(name) (pid \(pid)) log \(logFile.path):\n"
            + log.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
    }

    /// Waits until both listeners are up and their ports are known.
    /// - Throws: ``ServeProcessError`` if the process exits first or the time runs out, with
    ///   the log's tail.
    package func waitUntilListening(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = log
            let proxy = Self.port(in: text, after: "proxy listening", pattern: "address=127.0.0.1:")
            let admin = Self.port(in: text, after: "Server started and listening on", pattern: "listening on 127.0.0.1:")
            if let proxy, let admin {
                ports.withLockedValue { $0 = (proxy, admin) }
                return
            }
            if !process.isRunning {
                throw ServeProcessError("\(name) exited with status \(process.terminationStatus ?? -1) before listening\n\(logTail)")
            }
            if ContinuousClock.now > deadline {
                throw ServeProcessError("\(name) was not listening after \(timeout)\n\(logTail)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The port after `pattern` on the last line that contains `marker`.
    private static func port(in log: String, after marker: String, pattern: String) -> Int? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains(marker) }),
            let range = line.range(of: pattern)
        else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// Waits for the process to exit by itself and returns its status.
    package func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = process.terminationStatus { return status }
            if ContinuousClock.now > deadline { throw ServeProcessError("\(name) still runs after \(timeout)\n\(logTail)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until the log contains `text`; returns whether it did within `timeout`.
    package func waitForLog(_ text: String, timeout: Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !log.contains(text) {
            if ContinuousClock.now > deadline { return false }
            try await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// Stops the process gracefully (SIGTERM), and kills it (SIGKILL) if it has not exited
    /// within `grace`. Does nothing once it has exited; safe to call more than once.
    /// - Returns: its exit status (or the signal that ended it).
    @discardableResult
    package func stop(grace: Duration = .seconds(20)) -> Int32 {
        if process.isRunning {
            process.send(SIGTERM)
            let deadline = ContinuousClock.now + grace
            while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
            process.send(SIGKILL)
        }
        return process.waitUntilExit()
    }

    /// Kills the process at once (SIGKILL): a crash, with no graceful shutdown.
    package func crash() {
        process.send(SIGKILL)
        process.waitUntilExit()
    }

    // MARK: - Talking to it

    /// An admin API call (URLSession: a second HTTP stack), with ``token`` unless told otherwise.
    package func admin(
        _ method: String,
        _ path: String,
        token: String? = ServeProcess.token.secret,
        body: [String: Any]? = nil,
        headers: [String: String] = [:]
    ) async throws -> AdminAnswer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(adminPort)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return AdminAnswer(status: status, data: data)
    }

    /// `GET /api/routes`: the live table.
    package func liveTable() async throws -> [String: Any] {
        let answer = try await admin("GET", "/api/routes")
        guard answer.status == 200 else { throw ServeProcessError("GET /api/routes on \(name) answered \(answer.status): \(answer.text)") }
        return answer.object
    }

    /// The live table's version and the mode of each route, from `GET /api/routes`.
    package func liveModes() async throws -> (version: String, modes: [String: String]) {
        let table = try await liveTable()
        var modes: [String: String] = [:]
        for route in table["routes"] as? [[String: Any]] ?? [] {
            if let id = route["id"] as? String, let mode = route["mode"] as? String { modes[id] = mode }
        }
        return (table["version"] as? String ?? "", modes)
    }

    /// The value of one Prometheus sample on `/metrics` (`name{labels}` exactly as rendered,
    /// e.g. `strangler_diff_records_total{result="counted"}`); nil when absent.
    package func metric(_ sample: String) async throws -> Double? {
        let answer = try await admin("GET", "/metrics", token: nil)
        for line in answer.text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, parts[0] == sample { return Double(parts[1]) }
        }
        return nil
    }

    /// Who served a GET through the proxy: its status and `X-Strangler-Upstream`.
    package func get(_ target: String) async throws -> (status: Int, upstream: String?) {
        let response = try await RawConnection.get(port: port, target)
        return (response.status, response.header("x-strangler-upstream"))
    }
}

/// An admin API answer.
package struct AdminAnswer: Sendable {
    /// The HTTP status.
    package var status: Int
    /// The body.
    package var data: Data

    /// The body as text.
    package var text: String { String(decoding: data, as: UTF8.self) }
    /// The body as a JSON object; empty when it is not one.
    package var object: [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
}

/// A serve process that did not do what a test needed, with its log.
package struct ServeProcessError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
/// For waiting on something another process does, with a deadline generous enough for a busy
/// machine; never a measure of speed.
package func pollUntil(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now > deadline { return false }
        try? await Task.sleep(for: .milliseconds(100))
    }
}
