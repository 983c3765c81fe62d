import ServiceLifecycle

/// Runs a ``ProxyServer`` inside a `ServiceGroup`: binds on start, drains on graceful shutdown.
public struct ProxyService: Service {
    /// The server this service runs.
    public let server: ProxyServer
    private let onStarted: @Sendable (Int) -> Void

    /// - Parameter onStarted: called with the bound port once the listener is up.
    public init(server: ProxyServer, onStarted: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.server = server
        self.onStarted = onStarted
    }

    /// Starts the server, reports its port, waits for graceful shutdown (or cancellation), then
    /// shuts the server down, draining in-flight requests.
    ///
    /// - Throws: What ``ProxyServer/start()`` throws, when the listener cannot bind.
    public func run() async throws {
        try await server.start()
        onStarted(server.localPort ?? server.configuration.port)
        try? await gracefulShutdown()
        await server.shutdown()
    }
}
