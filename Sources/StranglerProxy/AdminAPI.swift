import Foundation
import Hummingbird
import Logging
import NIOCore
import StranglerCore

/// The admin listener: health, readiness, Prometheus metrics and the live route table.
///
/// It runs on its own Hummingbird listener (127.0.0.1 by default) so that nothing on it is
/// reachable through the proxy's public port.
public enum AdminAPI {
    /// Builds the admin application for `server`.
    ///
    /// - Parameters:
    ///   - host: address to bind; keep it on loopback unless a token guards writes (issue 4).
    ///   - port: port to bind; 0 picks a free one, reported through `onRunning`.
    public static func makeApplication(
        server: ProxyServer, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ in
            jsonResponse(["status": "ok"])
        }
        router.get("/readyz") { _, _ -> Response in
            let ready = server.localPort != nil
            return jsonResponse(["status": ready ? "ready" : "starting"], status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.render()))
            )
        }
        router.get("/api/routes") { _, _ -> Response in
            jsonResponse(RouteTableDocument(status: server.state.status))
        }
        router.get("/api/routes/:id") { _, context -> Response in
            let id = context.parameters.get("id") ?? ""
            let status = server.state.status
            guard let route = status.table.routes.first(where: { $0.id == id }) else {
                return jsonResponse(
                    ["error": "not_found", "message": "no route \"\(id)\" in the live table (version \(status.table.version))"],
                    status: .notFound
                )
            }
            return jsonResponse(RouteDocument(route))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "strangler-admin"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    static func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var buffer = ByteBuffer(bytes: data)
        buffer.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

/// `GET /api/routes`: the live table with its version, load time and last reload error.
struct RouteTableDocument: Encodable {
    var version: String
    var loadedAt: Date
    var source: String?
    var loads: Int
    var defaultUpstream: String
    var upstreams: [UpstreamDocument]
    var routes: [RouteDocument]
    var lastReloadError: ReloadErrorDocument?

    init(status: RouteTableStatus) {
        version = status.table.version
        loadedAt = status.loadedAt
        source = status.source
        loads = status.loads
        defaultUpstream = status.table.defaultUpstream
        upstreams = status.table.upstreams.values.sorted { $0.name < $1.name }.map(UpstreamDocument.init)
        routes = status.table.routes.map(RouteDocument.init)
        lastReloadError = status.lastError.map(ReloadErrorDocument.init)
    }
}

struct UpstreamDocument: Encodable {
    var name: String
    var url: String
    var connectTimeoutMs: Int
    var timeoutMs: Int
    var maxConnectionsPerLoop: Int
    var idleTimeoutMs: Int

    init(_ upstream: Upstream) {
        name = upstream.name
        url = upstream.url
        connectTimeoutMs = upstream.connectTimeoutMs
        timeoutMs = upstream.timeoutMs
        maxConnectionsPerLoop = upstream.maxConnectionsPerLoop
        idleTimeoutMs = upstream.idleTimeoutMs
    }
}

struct RouteDocument: Encodable {
    var id: String
    var methods: [String]
    var path: String
    var mode: String
    var legacy: String
    var service: String?
    var fallback: Bool
    var servedBy: String

    init(_ route: Route) {
        id = route.id
        methods = route.methods
        path = route.path.description
        mode = route.mode.rawValue
        legacy = route.legacy
        service = route.service
        fallback = route.fallback
        servedBy = route.primaryUpstream
    }
}

struct ReloadErrorDocument: Encodable {
    struct Problem: Encodable {
        var path: String
        var message: String
    }

    var at: Date
    var version: String?
    var problems: [Problem]

    init(_ failure: RouteTableStatus.ReloadFailure) {
        at = failure.at
        version = failure.version
        problems = failure.problems.map { Problem(path: $0.path, message: $0.message) }
    }
}
