import Foundation
import Logging
import NIOCore
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy

/// A proxy on port 0 in front of two scriptable upstreams, "legacy" and "service".
package struct ProxyHarness {
    package let legacy: TestUpstream
    package let service: TestUpstream
    package let server: ProxyServer
    package var port: Int { server.localPort! }

    /// Builds the table from `routes` (the JSON array text) with the two upstreams filled in.
    package static func table(legacyPort: Int, servicePort: Int, routes: String, upstreamExtra: String = "") throws -> RouteTable {
        let json = """
            {
              "upstreams": {
                "legacy": { "url": "http://127.0.0.1:\(legacyPort)" \(upstreamExtra) },
                "service": { "url": "http://127.0.0.1:\(servicePort)" \(upstreamExtra) }
              },
              "defaultUpstream": "legacy",
              "routes": \(routes)
            }
            """
        return try RouteTable.parse(Data(json.utf8))
    }

    package static func start(
        routes: String = "[]",
        upstreamExtra: String = "",
        servicePort: Int? = nil,
        shadowSink: ShadowSink? = nil,
        configure: (inout ProxyConfiguration) -> Void = { _ in }
    ) async throws -> ProxyHarness {
        let legacy = try await TestUpstream(name: "legacy")
        let service = try await TestUpstream(name: "service")
        let table = try table(
            legacyPort: legacy.port,
            servicePort: servicePort ?? service.port,
            routes: routes,
            upstreamExtra: upstreamExtra
        )
        var configuration = ProxyConfiguration(host: "127.0.0.1", port: 0, threads: 2, shutdownGracePeriod: .seconds(2), accessLog: false)
        configure(&configuration)
        var logger = Logger(label: "test.proxy")
        logger.logLevel = .warning
        let server = ProxyServer(configuration: configuration, table: table, logger: logger, shadowSink: shadowSink)
        try await server.start()
        return ProxyHarness(legacy: legacy, service: service, server: server)
    }

    package func stop() async {
        await server.shutdown()
        await legacy.stop()
        await service.stop()
    }
}

/// Runs `body` with a started harness and always stops it.
package func withProxy(
    routes: String = "[]",
    upstreamExtra: String = "",
    servicePort: Int? = nil,
    shadowSink: ShadowSink? = nil,
    configure: (inout ProxyConfiguration) -> Void = { _ in },
    _ body: (ProxyHarness) async throws -> Void
) async throws {
    let harness = try await ProxyHarness.start(
        routes: routes,
        upstreamExtra: upstreamExtra,
        servicePort: servicePort,
        shadowSink: shadowSink,
        configure: configure
    )
    do {
        try await body(harness)
    } catch {
        await harness.stop()
        throw error
    }
    await harness.stop()
}

extension RawConnection.Response {
    /// The request as the echo upstream saw it.
    var echoedHeaders: [(String, String)] {
        (json()["headers"] as? [[String]] ?? []).map { ($0[0], $0[1]) }
    }

    package func echoedHeader(_ name: String) -> String? {
        echoedHeaders.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    package func echoedHeaderNames() -> Set<String> {
        Set(echoedHeaders.map { $0.0.lowercased() })
    }
}
