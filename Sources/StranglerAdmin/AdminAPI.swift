import Foundation
import Hummingbird
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
    ///   - onRunning: called with the bound port once the listener is up.
    public static func listener(
        host: String, port: Int, access: AdminAccess, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> StranglerApplication.AdminFactory {
        { server, controller, logger in
            try makeApplication(server: server, controller: controller, access: access, host: host, port: port, logger: logger, onRunning: onRunning)
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
    /// - Throws: ``AdminAccessError`` for a non-loopback host without a token.
    public static func makeApplication(
        server: ProxyServer, controller: RouteController? = nil, access: AdminAccess = AdminAccess(), host: String, port: Int,
        idleTimeout: TimeAmount = .seconds(60), logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try access.checkBinding(host: host)
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
        router.get("/openapi.json") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: AdminOpenAPI.document)))
        }

        // The dashboard: static files, open like /healthz; the data it shows comes from /api.
        for asset in DashboardAssets.all {
            router.get(RouterPath(stringLiteral: asset.path)) { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
                    body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
            }
        }

        // Reads.
        router.get("/api/report") { request, _ -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            guard let controller else { return noController() }
            let sinceText = request.uri.queryParameters.get("since") ?? "24h"
            guard let since = ReportWindow.since(sinceText) else {
                return error("bad_request", "since \"\(sinceText)\" must be a duration like 1h or 7d, or an ISO 8601 time", status: .badRequest)
            }
            let routes = request.uri.queryParameters.getAll("route").map { String($0) }
            var builder = ReportBuilder(store: controller.store, table: try? controller.document().table, routesFile: controller.routesPath)
            builder.examplesPerPointer = min(10, max(0, request.uri.queryParameters.get("examples").flatMap { Int($0) } ?? 3))
            do {
                let report = try await builder.build(since: since, routeIDs: routes.isEmpty ? nil : routes)
                var buffer = ByteBuffer(bytes: report.json())
                buffer.writeString("\n")
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
            } catch {
                return Self.error("store_failed", "cannot build the report from \(controller.store.location): \(error)", status: .serviceUnavailable)
            }
        }
        router.get("/api/routes") { request, _ -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            return jsonResponse(LiveTableDocument(status: server.state.status))
        }
        router.get("/api/routes/:id") { request, context -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            let id = context.parameters.get("id") ?? ""
            let status = server.state.status
            guard let route = status.table.routes.first(where: { $0.id == id }) else {
                return error("unknown_route", "no route \"\(id)\" in the live table (version \(status.table.version))", status: .notFound)
            }
            return jsonResponse(RouteDocument(route))
        }
        router.get("/api/stats") { request, _ -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            guard let controller else { return noController() }
            return await answer { () async throws(RouteOperationError) in try await controller.inspectAll().map(RouteStatusDocument.init) }
        }
        router.get("/api/routes/:id/stats") { request, context -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            guard let controller else { return noController() }
            let id = context.parameters.get("id") ?? ""
            return await answer { () async throws(RouteOperationError) in RouteStatusDocument(try await controller.inspect(routeID: id)) }
        }
        router.get("/api/changes") { request, _ -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            guard let controller else { return noController() }
            guard let limit = historyLimit(request) else { return badHistoryLimit() }
            return await answer { () async throws(RouteOperationError) in
                ChangeListDocument(changes: try await controller.history(limit: limit).map(ChangeDocument.init))
            }
        }
        router.get("/api/routes/:id/changes") { request, context -> Response in
            if let denied = deny(request, access: access, write: false).denied { return denied }
            guard let controller else { return noController() }
            let id = context.parameters.get("id") ?? ""
            guard let limit = historyLimit(request) else { return badHistoryLimit() }
            return await answer { () async throws(RouteOperationError) in
                ChangeListDocument(changes: try await controller.history(routeID: id, limit: limit).map(ChangeDocument.init))
            }
        }

        // Writes.
        router.post("/api/routes/:id/mode") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            return await write(request, access: access, controller: controller) { body, requester, controller in
                guard let text = body.mode else {
                    return error("bad_request", "the body needs \"mode\": one of \(modeList)", status: .badRequest)
                }
                guard let mode = RouteMode(rawValue: text) else {
                    return error("bad_request", "unknown mode \"\(text)\"; one of \(modeList)", status: .badRequest)
                }
                return await answer { () async throws(RouteOperationError) in
                    OperationDocument(try await controller.change(routeID: id, .set(mode, percent: body.percent), by: requester))
                }
            }
        }
        for (step, operation) in [("promote", RouteController.Operation.promote), ("demote", .demote)] {
            router.post("/api/routes/:id/\(step)") { request, context -> Response in
                let id = context.parameters.get("id") ?? ""
                return await write(request, access: access, controller: controller) { _, requester, controller in
                    await answer { () async throws(RouteOperationError) in
                        OperationDocument(try await controller.change(routeID: id, operation, by: requester))
                    }
                }
            }
        }
        router.post("/api/rollback") { request, _ -> Response in
            await write(request, access: access, controller: controller) { body, requester, controller in
                await answer { () async throws(RouteOperationError) in
                    OperationDocument(try await controller.rollback(to: body.to, by: requester))
                }
            }
        }

        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: "strangler-admin"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// The JSON body of a write. Unknown members are ignored; every member is optional.
    struct WriteBody: Decodable {
        var mode: String?
        var percent: Double?
        var reason: String?
        var force: Bool?
        var actor: String?
        var to: String?
    }

    private static let modeList = RouteMode.allCases.map(\.rawValue).joined(separator: ", ")

    /// Runs a write: authorise, read the body, name the requester, then `perform`.
    private static func write(
        _ request: Request, access: AdminAccess, controller: RouteController?,
        perform: (WriteBody, RouteController.Requester, RouteController) async -> Response
    ) async -> Response {
        let decision = deny(request, access: access, write: true)
        if let denied = decision.denied { return denied }
        guard let controller else { return noController() }
        let body: WriteBody
        do {
            body = try await readBody(request)
        } catch let failure {
            return Self.error("bad_request", failure.message, status: .badRequest)
        }
        if let refusal = refusePlainText(body) {
            return Self.error("bad_request", refusal, status: .badRequest)
        }
        let requester = RouteController.Requester(
            actor: actor(body: body, token: decision.tokenName), source: .admin, reason: body.reason, force: body.force ?? false)
        return await perform(body, requester, controller)
    }

    /// The actor recorded for an admin write: the token's name, and who the caller says they
    /// are when it says so (the CLI passes its `--actor`).
    static func actor(body: WriteBody, token: String?) -> String {
        let name = token ?? "anonymous"
        guard let claimed = body.actor?.trimmingCharacters(in: .whitespaces), !claimed.isEmpty, claimed != name else { return name }
        return "\(claimed) (token \(name))"
    }

    /// Why `actor` or `reason` can't go into the audit trail, if one can't: they are shown to
    /// operators by `strangler routes history`, the dashboard and reports, and a control
    /// character in them (ESC, CR, a bidi override) would act on a terminal or disguise the entry.
    /// Output escapes them anyway; refusing them here keeps the trail itself readable.
    static func refusePlainText(_ body: WriteBody) -> String? {
        for (name, value) in [("actor", body.actor), ("reason", body.reason)] {
            guard let value, let found = TerminalText.firstUnsafeCharacter(in: value) else { continue }
            return "\"\(name)\" must be plain text; it contains the control character \(TerminalText.codePoint(found))"
        }
        return nil
    }

    /// Why a write's body was not usable.
    struct BodyError: Error {
        let message: String
    }

    private static func readBody(_ request: Request) async throws(BodyError) -> WriteBody {
        do {
            let buffer = try await request.body.collect(upTo: 64 * 1024)
            if buffer.readableBytes == 0 { return WriteBody() }
            return try JSONDecoder().decode(WriteBody.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw BodyError(message: "the body is not the expected JSON: \(describe(error))")
        } catch {
            throw BodyError(message: "cannot read the body: \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "\(path): ") + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }

    /// Checks credentials: a response when the request is denied, else the token's name.
    private static func deny(_ request: Request, access: AdminAccess, write: Bool) -> (denied: Response?, tokenName: String?) {
        switch access.decide(authorization: request.headers[.authorization], write: write) {
        case .allowed(let name):
            return (nil, name)
        case .missing(let message):
            var response = error("unauthorized", message, status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"strangler-admin\""
            return (response, nil)
        case .wrong(let message):
            return (error("forbidden", message, status: .forbidden), nil)
        }
    }

    /// Runs an operation and answers with its document, or with the error mapped to a status.
    private static func answer(_ body: () async throws(RouteOperationError) -> some Encodable) async -> Response {
        do {
            return jsonResponse(try await body())
        } catch {
            return jsonResponse(
                ErrorDocument(error: error.name, message: error.message, gate: error.verdict.map(VerdictDocument.init), evidence: error.evidence),
                status: status(for: error)
            )
        }
    }

    static func status(for error: RouteOperationError) -> HTTPResponse.Status {
        switch error.code.base {
        case .unknownRoute, .unknownVersion: .notFound
        case .invalidTable: .unprocessableContent
        case .gateRefused, .legacyStillServing, .noStep, .nothingToRollBack: .conflict
        case .forceNeedsReason: .badRequest
        case .fileFailed: .internalServerError
        case .storeFailed, .busy: .serviceUnavailable
        }
    }

    private static func noController() -> Response {
        error("unavailable", "the route controls need the diff store; this proxy was started without one", status: .serviceUnavailable)
    }

    /// The most audit-trail entries one page of `/api/changes` returns.
    static let maxHistoryLimit = 1000

    /// A history request's `limit`: 50 when absent, nil when it is not a whole number from 1 to
    /// ``maxHistoryLimit`` (SQLite would read a negative limit as "no limit").
    static func historyLimit(_ request: Request) -> Int? {
        guard let text = request.uri.queryParameters.get("limit") else { return 50 }
        guard let limit = Int(text), (1...maxHistoryLimit).contains(limit) else { return nil }
        return limit
    }

    static func badHistoryLimit() -> Response {
        error("bad_limit", "limit must be a whole number from 1 to \(maxHistoryLimit)", status: .badRequest)
    }

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
