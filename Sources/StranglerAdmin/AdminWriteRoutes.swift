import Foundation
import Hummingbird
import StranglerControl
import StranglerCore

/// The admin API's writes: mode changes, promotion steps and rollback, each with the gates and
/// the audit trail of ``RouteController``. ``AdminAuthMiddleware`` guards them; every write
/// needs a token, whose name the audit trail records.
enum AdminWriteRoutes {
    /// The writes, behind `access`.
    /// - Parameter controller: the route controls; without one, every write answers 503.
    static func collection(controller: RouteController?, access: AdminAccess) -> RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self).add(middleware: AdminAuthMiddleware(access: access))
        routes.on(.setMode) { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await write(request, context, controller: controller) { body, requester, controller in
                guard let text = body.mode else {
                    throw AdminAPIError("bad_request", "the body needs \"mode\": one of \(modeList)", status: .badRequest)
                }
                guard let mode = RouteMode(rawValue: text) else {
                    throw AdminAPIError("bad_request", "unknown mode \"\(text)\"; one of \(modeList)", status: .badRequest)
                }
                return AdminAPI.jsonResponse(
                    OperationDocument(
                        try await controller.change(routeID: id, .set(mode, percent: body.percent), by: requester, expecting: body.expectedVersion)
                    )
                )
            }
        }
        for (endpoint, operation) in [(AdminEndpoint.promote, RouteController.Operation.promote), (.demote, .demote)] {
            routes.on(endpoint) { request, context in
                let id = context.parameters.get("id") ?? ""
                return try await write(request, context, controller: controller) { body, requester, controller in
                    AdminAPI.jsonResponse(
                        OperationDocument(try await controller.change(routeID: id, operation, by: requester, expecting: body.expectedVersion))
                    )
                }
            }
        }
        routes.on(.rollback) { request, context in
            try await write(request, context, controller: controller) { body, requester, controller in
                AdminAPI.jsonResponse(OperationDocument(try await controller.rollback(to: body.to, by: requester, expecting: body.expectedVersion)))
            }
        }
        return routes
    }

    private static let modeList = RouteMode.allCases.map(\.rawValue).joined(separator: ", ")

    /// Runs a write: read the body, name the requester, then `perform`. Refusals are thrown
    /// (``AdminAPIError``, ``RouteOperationError``) and answered by the router.
    private static func write(
        _ request: Request,
        _ context: AdminRequestContext,
        controller: RouteController?,
        perform: (AdminWriteRequest, RouteController.Requester, RouteController) async throws -> Response
    ) async throws -> Response {
        guard let controller else { throw AdminAPIError.noController }
        var body: AdminWriteRequest
        do {
            body = try await readBody(request)
        } catch let failure {
            throw AdminAPIError("bad_request", failure.message, status: .badRequest)
        }
        if let match = request.headers[.ifMatch], let tag = try ifMatchVersion(match) {
            if let given = body.expectedVersion, given != tag {
                throw AdminAPIError("bad_request", "If-Match (\(tag)) and \"expectedVersion\" (\(given)) disagree", status: .badRequest)
            }
            body.expectedVersion = tag
        }
        if let refusal = refusePlainText(body) {
            throw AdminAPIError("bad_request", refusal, status: .badRequest)
        }
        let requester = RouteController.Requester(
            actor: actor(body: body, token: context.tokenName),
            source: .admin,
            reason: body.reason,
            force: body.force ?? false
        )
        return try await perform(body, requester, controller)
    }

    /// The table version an `If-Match` header names (RFC 9110): one strong entity tag, the
    /// version in quotes; `*` names none (any current table). Weak tags and lists are refused:
    /// a table version is compared strongly, and one change is made against one version.
    static func ifMatchVersion(_ header: String) throws -> String? {
        let value = header.trimmingCharacters(in: .whitespaces)
        if value == "*" { return nil }
        guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\""), !value.dropFirst().dropLast().contains("\"") else {
            throw AdminAPIError(
                "bad_request",
                "If-Match must be one strong entity tag: the table version in quotes, like \"3f1c2a9e0b7d4c61\" (or *); got \(TerminalText.escape(value))",
                status: .badRequest
            )
        }
        return String(value.dropFirst().dropLast())
    }

    /// The actor recorded for an admin write: the token's name, and who the caller says they
    /// are when it says so (the CLI passes its `--actor`).
    static func actor(body: AdminWriteRequest, token: String?) -> String {
        let name = token ?? "anonymous"
        guard let claimed = body.actor?.trimmingCharacters(in: .whitespaces), !claimed.isEmpty, claimed != name else { return name }
        return "\(claimed) (token \(name))"
    }

    /// Why `actor` or `reason` can't go into the audit trail, if one can't: they are shown to
    /// operators by `strangler routes history`, the dashboard and reports, and a control
    /// character in them (ESC, CR, a bidi override) would act on a terminal or disguise the entry.
    /// Output escapes them anyway; refusing them here keeps the trail itself readable.
    static func refusePlainText(_ body: AdminWriteRequest) -> String? {
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

    private static func readBody(_ request: Request) async throws(BodyError) -> AdminWriteRequest {
        do {
            let buffer = try await request.body.collect(upTo: 64 * 1024)
            if buffer.readableBytes == 0 { return AdminWriteRequest() }
            return try JSONDecoder().decode(AdminWriteRequest.self, from: Data(buffer.readableBytesView))
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
}
