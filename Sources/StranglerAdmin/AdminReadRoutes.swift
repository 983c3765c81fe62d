import Foundation
import Hummingbird
import NIOCore
import StranglerControl
import StranglerProxy
import StranglerReport

/// The admin API's reads under `/api`: the live table, evidence with gate verdicts, the audit
/// trail and the report. ``AdminAuthMiddleware`` guards them.
enum AdminReadRoutes {
    /// The reads, behind `access`.
    /// - Parameter controller: the route controls; without one, the reads that need the store
    ///   answer 503.
    static func collection(server: ProxyServer, controller: RouteController?, access: AdminAccess) -> RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self).add(middleware: AdminAuthMiddleware(access: access))
        routes.on(.report) { request, _ in
            guard let controller else { throw AdminAPIError.noController }
            return try await report(request, controller: controller)
        }
        routes.on(.routes) { _, _ in
            AdminAPI.jsonResponse(LiveTableDocument(status: server.state.status))
        }
        routes.on(.route) { _, context in
            let id = context.parameters.get("id") ?? ""
            let status = server.state.status
            guard let route = status.table.routes.first(where: { $0.id == id }) else {
                throw AdminAPIError("unknown_route", "no route \"\(id)\" in the live table (version \(status.table.version))", status: .notFound)
            }
            return AdminAPI.jsonResponse(RouteDocument(route))
        }
        routes.on(.stats) { _, _ in
            guard let controller else { throw AdminAPIError.noController }
            return AdminAPI.jsonResponse(try await controller.inspectAll().map(RouteStatusDocument.init))
        }
        routes.on(.routeStats) { _, context in
            guard let controller else { throw AdminAPIError.noController }
            let id = context.parameters.get("id") ?? ""
            return AdminAPI.jsonResponse(RouteStatusDocument(try await controller.inspect(routeID: id)))
        }
        routes.on(.changes) { request, _ in
            guard let controller else { throw AdminAPIError.noController }
            guard let limit = historyLimit(request) else { throw badHistoryLimit }
            return AdminAPI.jsonResponse(ChangeListDocument(changes: try await controller.history(limit: limit).map(ChangeDocument.init)))
        }
        routes.on(.routeChanges) { request, context in
            guard let controller else { throw AdminAPIError.noController }
            let id = context.parameters.get("id") ?? ""
            guard let limit = historyLimit(request) else { throw badHistoryLimit }
            return AdminAPI.jsonResponse(
                ChangeListDocument(changes: try await controller.history(routeID: id, limit: limit).map(ChangeDocument.init))
            )
        }
        return routes
    }

    /// The diff report over `since` (a duration back from now, or an ISO 8601 time), for the
    /// `route`s asked for or all, with up to `examples` examples per top pointer.
    private static func report(_ request: Request, controller: RouteController) async throws -> Response {
        let sinceText = request.uri.queryParameters.get("since") ?? "24h"
        guard let since = ReportWindow.since(sinceText) else {
            throw AdminAPIError(
                "bad_request",
                "since \"\(sinceText)\" must be a duration like 1h or 7d, or an ISO 8601 time",
                status: .badRequest
            )
        }
        let routes = request.uri.queryParameters.getAll("route").map { String($0) }
        var builder = ReportBuilder(store: controller.store, table: try? await controller.document().table, routesFile: controller.routesPath)
        builder.examplesPerPointer = min(10, max(0, request.uri.queryParameters.get("examples").flatMap { Int($0) } ?? 3))
        do {
            let report = try await builder.build(since: since, routeIDs: routes.isEmpty ? nil : routes)
            var buffer = ByteBuffer(bytes: report.json())
            buffer.writeString("\n")
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
        } catch {
            throw AdminAPIError(
                "store_failed",
                "cannot build the report from \(controller.store.location): \(error)",
                status: .serviceUnavailable
            )
        }
    }

    /// A history request's `limit`: the controller's default when absent, nil when it is not a
    /// whole number (the controller judges its range).
    static func historyLimit(_ request: Request) -> Int? {
        guard let text = request.uri.queryParameters.get("limit") else { return RouteController.defaultHistoryLimit }
        return Int(text)
    }

    private static let badHistoryLimit = AdminAPIError(
        "bad_limit",
        "limit must be a whole number from 1 to \(RouteController.maxHistoryLimit)",
        status: .badRequest
    )
}
