import Foundation
import Testing

/// curl, the second HTTP and TLS stack the tests check the proxy, the admin listener and the
/// demo against, as an operator calls them.
///
/// Every run is `curl --silent --show-error --noproxy '*' --max-time N` with an empty
/// environment: no proxy from the test's environment may take the request, which must reach a
/// loopback listener, and a hung peer ends the run instead of the test. The run happens on a
/// thread of its own (``offPool(_:)``), so waiting for curl holds none of the concurrency pool's
/// few threads that the server under test needs to answer it.
package enum Curl {
    /// curl's absolute path on PATH, or nil when it is not installed.
    package static var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/curl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs curl with `arguments` after the options above and returns its exit status, standard
    /// output and standard error; without curl on PATH it records an issue and throws.
    /// - Parameter maxTime: seconds the whole transfer may take (`--max-time`).
    package static func run(_ arguments: [String], maxTime: Int = 60) async throws -> (status: Int32, output: String, errors: String) {
        let curl = try #require(executable, "curl is not on PATH (.ci/setup installs it)")
        let run = try await offPool {
            try ChildProcess.run(
                curl,
                ["--silent", "--show-error", "--noproxy", "*", "--max-time", String(maxTime)] + arguments,
                environment: [:]
            )
        }
        return (run.status, String(decoding: run.output, as: UTF8.self), String(decoding: run.errors, as: UTF8.self))
    }
}
