import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerReport
import StranglerStore

/// The admin listener: health, readiness, Prometheus metrics, the route table with its evidence
/// and audit trail, and the route controls (README.md, "Admin API"). `/openapi.json` describes
/// it all.
///
/// It runs on its own Hummingbird listener (127.0.0.1 by default) so that nothing on it is
/// reachable through the proxy's public port. Writes need a bearer token (``AdminAccess``).
public enum AdminAPI {
    /// The admin listener for a ``StranglerApplication``: it is built once the data plane and
    /// the route controller exist.
    /// - Parameters:
    ///   - host: the address to bind; ``AdminAccess/checkBinding(host:)`` decides whether the
    ///     access allows it.
    ///   - port: the port (0 for any free one).
    ///   - access: who may use the API.
    ///   - tls: serve HTTPS with this certificate (give the same reloader to the
    ///     ``StranglerApplication``, which reloads it); nil for plain HTTP.
    ///   - onRunning: called with the bound port once the listener is up.
    public static func listener(
        host: String,
        port: Int,
        access: AdminAccess,
        tls: ListenerTLSReloader? = nil,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> StranglerApplication.AdminFactory {
        { server, controller, logger in
            try makeApplication(
                server: server,
                controller: controller,
                access: access,
                host: host,
                port: port,
                tls: tls,
                logger: logger,
                onRunning: onRunning
            )
        }
    }

    /// Builds the admin application for `server`.
    ///
    /// - Parameters:
    ///   - controller: the route controls; without one, writes and stats answer 503.
    ///   - access: tokens and whether reads are open.
    ///   - host: address to bind; anything but loopback needs a token.
    ///   - port: port to bind; 0 picks a free one, reported through `onRunning`.
    ///   - idleTimeout: a connection that sends nothing for this long is closed, so silent or
    ///     abandoned connections can't pile up on the admin listener.
    ///   - tls: serve HTTPS with this certificate, and require client certificates if it has a
    ///     client CA; nil for plain HTTP.
    /// - Throws: ``AdminAccessError`` for a non-loopback host without a token;
    ///   ``ListenerTLSError`` for an unusable certificate, key or client CA.
    public static func makeApplication(
        server: ProxyServer,
        controller: RouteController? = nil,
        access: AdminAccess = AdminAccess(),
        host: String,
        port: Int,
        idleTimeout: TimeAmount = .seconds(60),
        tls: ListenerTLSReloader? = nil,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try access.checkBinding(host: host)
        if tls == nil, !access.tokens.isEmpty, !AdminAccess.isLoopback(host) {
            logger.warning(
                "the admin listener serves plain HTTP off loopback: its tokens travel in clear to anyone on the path",
                metadata: [
                    "address": "\(host):\(port)", "fix": "pass --admin-tls-cert FILE --admin-tls-key FILE, or keep --admin-listen on 127.0.0.1",
                ]
            )
        }
        let tlsConfiguration = try tls.map(AdminTLS.configuration)
        let router = Router(context: AdminRequestContext.self)
        // Open to anyone who can reach the listener: health, metrics and this API's description.
        // The store's state is said beside the proxy's, never instead of it: the proxy serves
        // through a database outage, so readiness must not fail with the database.
        let storeHealth: @Sendable () -> StoreHealthDocument? = {
            (controller?.store as? any StoreHealthReporting).map { StoreHealthDocument($0.health) }
        }
        router.on(.health) { _, _ in
            jsonResponse(HealthDocument(status: "ok", store: storeHealth()))
        }
        router.on(.ready) { _, _ in
            let ready = server.localPort != nil
            return jsonResponse(HealthDocument(status: ready ? "ready" : "starting", store: storeHealth()), status: ready ? .ok : .serviceUnavailable)
        }
        router.on(.metrics) { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: server.metrics.render()))
            )
        }
        router.on(.openAPI) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: AdminOpenAPI.document)))
        }
        // The dashboard: static files, open like /healthz; the data it shows comes from /api.
        for asset in DashboardAssets.all {
            router.get(RouterPath(stringLiteral: asset.path)) { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
                    body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes))
                )
            }
        }
        router.addRoutes(AdminReadRoutes.collection(server: server, controller: controller, access: access))
        router.addRoutes(AdminWriteRoutes.collection(controller: controller, access: access))

        return Application(
            router: router,
            server: try tlsConfiguration.map { try .tls(.http1(configuration: .init(idleTimeout: idleTimeout)), tlsConfiguration: $0) }
                ?? .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: "strangler-admin"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// An ``ErrorDocument`` answer, for the auth middleware, which answers rather than throws.
    static func error(_ name: String, _ message: String, status: HTTPResponse.Status) -> Response {
        jsonResponse(ErrorDocument(error: name, message: message), status: status)
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
