import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore
import Testing

/// Holds chosen route table versions at the reload hooks until released, and tells a test when
/// a reload got there: the order of overlapping reloads is then set by the test, not by timing.
package final class ReloadHold: Sendable {
    private let held = NIOLockedValueBox<[String: PendingValue<Void>]>([:])
    private let arrivals: AsyncStream<String>
    private let arrived: AsyncStream<String>.Continuation

    package init() {
        (arrivals, arrived) = AsyncStream.makeStream()
    }

    /// Hooks that stop validation (`validation`) or the audit (`audit`) of held versions.
    package var hooks: ReloadHooks {
        ReloadHooks(
            beforeValidation: { version in self.arriveBlocking("validation \(version)") },
            beforeAudit: { version in await self.arrive("audit \(version)") }
        )
    }

    /// Holds the validation of `version`.
    package func holdValidation(of version: String) {
        held.withLockedValue { $0["validation \(version)"] = PendingValue() }
    }

    /// Holds the audit of `version`.
    package func holdAudit(of version: String) {
        held.withLockedValue { $0["audit \(version)"] = PendingValue() }
    }

    package func releaseValidation(of version: String) {
        held.withLockedValue { $0.removeValue(forKey: "validation \(version)") }?.fulfill(())
    }

    package func releaseAudit(of version: String) {
        held.withLockedValue { $0.removeValue(forKey: "audit \(version)") }?.fulfill(())
    }

    /// Returns once the validation of `version` has reached its hook.
    package func validationReached(_ version: String) async {
        for await point in arrivals where point == "validation \(version)" { return }
    }

    /// Returns once the audit of `version` has reached its hook.
    package func auditReached(_ version: String) async {
        for await point in arrivals where point == "audit \(version)" { return }
    }

    /// Waits like the work it stands for (an audit's comparison), which cancellation does not
    /// interrupt.
    private func arrive(_ point: String) async {
        arrived.yield(point)
        guard let gate = held.withLockedValue({ $0[point] }) else { return }
        await Task { try? await gate.value() }.value
    }

    /// Validation runs on a thread of its own, which may block.
    private func arriveBlocking(_ point: String) {
        guard let gate = held.withLockedValue({ $0[point] }) else {
            arrived.yield(point)
            return
        }
        let semaphore = DispatchSemaphore(value: 0)
        Task {
            try? await gate.value()
            semaphore.signal()
        }
        arrived.yield(point)
        semaphore.wait()
    }
}

package struct TimedOut: Error, CustomStringConvertible {
    package var limit: Duration
    package var description: String { "did not finish within \(limit)" }
}

/// Runs `body` and returns its result; if it has not finished within `limit`, records an issue
/// and throws ``TimedOut``. A hang detector, not a speed check: limits are many times what the
/// work takes on a loaded machine. On a hang `body` is left running.
@discardableResult
package func finishes<T: Sendable>(
    within limit: Duration,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let result = PendingValue<Result<T, any Error>>()
    Task {
        do { result.fulfill(.success(try await body())) } catch { result.fulfill(.failure(error)) }
    }
    let timer = Task {
        guard (try? await Task.sleep(for: limit)) != nil else { return }
        // Recorded now: the test's cleanup may hang on the same thing and never report the throw.
        Issue.record(TimedOut(limit: limit), sourceLocation: sourceLocation)
        result.fulfill(.failure(TimedOut(limit: limit)))
    }
    defer { timer.cancel() }
    return try await result.value().get()
}

/// One run of `strangler serve` on an existing routes file and diff store, without the admin
/// API: the proxy on port 0, the file audit and route controller, and the proxy and hot reload
/// in a service group.
package struct ServeRun {
    package let server: ProxyServer
    package let control: ControlPlane
    package let store: SQLiteDiffStore
    package var port: Int { server.localPort! }

    package static func run(routesPath: String, store: SQLiteDiffStore, _ body: (ServeRun) async throws -> Void) async throws {
        var logger = Logger(label: "test.serve")
        logger.logLevel = .critical
        let table = try await offPool { try RouteTableLoader.load(path: routesPath) }
        let server = ProxyServer(
            configuration: ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 2, shutdownGracePeriod: .seconds(2), accessLog: false),
            table: table,
            source: routesPath,
            logger: logger
        )
        let control = ControlPlane(server: server, routesPath: routesPath, store: store, worker: nil, logger: logger)
        await control.recordStartingTable()
        let started = PendingValue<Void>()
        try await whileRunning([ProxyService(server: server) { _ in started.fulfill(()) }] + control.services, logger: logger) {
            try await started.value()
            try await body(ServeRun(server: server, control: control, store: store))
        }
    }

    /// The live mode of a route.
    package func liveMode(_ id: String) -> RouteMode? {
        server.state.status.table.routes.first { $0.id == id }?.mode
    }
}

/// Runs CPU-heavy test setup (a 20,000-route table takes seconds in a debug build) on a thread
/// of its own, so it does not hold one of the concurrency pool's few threads that every test
/// running alongside needs.
package func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await PendingValue.onThread(named: "test-setup") { Result { try body() } }.value().get()
}
