import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore

#if canImport(Glibc)
import Glibc
#endif

/// What `strangler routes` needs, whether it edits the file itself or asks a running proxy's
/// admin API (`--admin URL`). Both answer with the admin API's documents.
protocol RouteControls: Sendable {
    func stats(routeID: String?) async throws(ControlFailure) -> [RouteStatusDocument]
    func change(
        routeID: String,
        _ operation: RouteController.Operation,
        reason: String?,
        force: Bool
    ) async throws(ControlFailure)
        -> OperationDocument
    func rollback(to version: String?, reason: String?) async throws(ControlFailure) -> OperationDocument
    func history(routeID: String?, limit: Int) async throws(ControlFailure) -> [ChangeDocument]
    func close() async
}

/// A refused or failed control operation, as printed to the user.
struct ControlFailure: Error {
    var message: String
    var gate: VerdictDocument?
    var evidence: RouteEvidence?
    /// The refusal's code name (`gate_refused`...), when the controller gave one.
    var name: String?

    init(message: String, gate: VerdictDocument? = nil, evidence: RouteEvidence? = nil, name: String? = nil) {
        self.message = message
        self.gate = gate
        self.evidence = evidence
        self.name = name
    }

    init(_ error: RouteOperationError) {
        self.init(message: error.message, gate: error.verdict.map(VerdictDocument.init), evidence: error.evidence, name: error.name)
    }
}

/// Edits the routes file directly, recording in the store (a proxy picks the file up by hot reload).
struct LocalRouteControls: RouteControls {
    let controller: RouteController
    let actor: String

    func stats(routeID: String?) async throws(ControlFailure) -> [RouteStatusDocument] {
        do {
            if let routeID { return [RouteStatusDocument(try await controller.inspect(routeID: routeID))] }
            return try await controller.inspectAll().map(RouteStatusDocument.init)
        } catch {
            throw ControlFailure(error)
        }
    }

    func change(
        routeID: String,
        _ operation: RouteController.Operation,
        reason: String?,
        force: Bool
    ) async throws(ControlFailure)
        -> OperationDocument
    {
        do {
            return OperationDocument(
                try await controller.change(routeID: routeID, operation, by: .init(actor: actor, source: .cli, reason: reason, force: force))
            )
        } catch {
            throw ControlFailure(error)
        }
    }

    func rollback(to version: String?, reason: String?) async throws(ControlFailure) -> OperationDocument {
        do {
            return OperationDocument(try await controller.rollback(to: version, by: .init(actor: actor, source: .cli, reason: reason)))
        } catch {
            throw ControlFailure(error)
        }
    }

    func history(routeID: String?, limit: Int) async throws(ControlFailure) -> [ChangeDocument] {
        do {
            return try await controller.history(routeID: routeID, limit: limit).map(ChangeDocument.init)
        } catch {
            throw ControlFailure(error)
        }
    }

    func close() async {
        await StoreLocation.close(controller.store)
    }
}

/// Acts through a running proxy's admin API, with AsyncHTTPClient.
struct RemoteRouteControls: RouteControls {
    let base: String
    let token: String?
    /// Sent as the body's `actor` when given; the proxy records it beside the token's name.
    let actor: String?
    let client: HTTPClient

    init(base: String, token: String?, actor: String?) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.token = token
        self.actor = actor
        client = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    func stats(routeID: String?) async throws(ControlFailure) -> [RouteStatusDocument] {
        if let routeID {
            return [try await call(.routeStats, AdminEndpoint.routeStats.path(id: routeID), as: RouteStatusDocument.self)]
        }
        return try await call(.stats, AdminEndpoint.stats.path(), as: [RouteStatusDocument].self)
    }

    func change(
        routeID: String,
        _ operation: RouteController.Operation,
        reason: String?,
        force: Bool
    ) async throws(ControlFailure)
        -> OperationDocument
    {
        var body = AdminWriteRequest(reason: reason, force: force, actor: actor)
        let endpoint: AdminEndpoint
        switch operation {
        case .set(let mode, let percent):
            body.mode = mode.rawValue
            body.percent = percent
            endpoint = .setMode
        case .promote: endpoint = .promote
        case .demote: endpoint = .demote
        }
        return try await call(endpoint, endpoint.path(id: routeID), body: body, as: OperationDocument.self)
    }

    func rollback(to version: String?, reason: String?) async throws(ControlFailure) -> OperationDocument {
        let body = AdminWriteRequest(reason: reason, actor: actor, to: version)
        return try await call(.rollback, AdminEndpoint.rollback.path(), body: body, as: OperationDocument.self)
    }

    func history(routeID: String?, limit: Int) async throws(ControlFailure) -> [ChangeDocument] {
        let endpoint: AdminEndpoint = routeID == nil ? .changes : .routeChanges
        return try await call(endpoint, endpoint.path(id: routeID, query: [("limit", "\(limit)")]), as: ChangeListDocument.self).changes
    }

    func close() async {
        try? await client.shutdown()
    }

    /// Calls `endpoint` at `path` (the endpoint's path with its id and query filled in).
    private func call<T: Decodable>(
        _ endpoint: AdminEndpoint,
        _ path: String,
        body: AdminWriteRequest? = nil,
        as type: T.Type
    )
        async throws(ControlFailure) -> T
    {
        let method = HTTPMethod(rawValue: endpoint.method.rawValue)
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data("{}".utf8)))
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let status: UInt
        let bytes: Data
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            status = response.status.code
            bytes = Data(try await response.body.collect(upTo: 16 * 1024 * 1024).readableBytesView)
        } catch {
            throw ControlFailure(message: "cannot reach the admin API at \(base): \(error); is the proxy running, and is --admin right?")
        }
        guard status == 200 else {
            if let failure = try? decoder.decode(ErrorDocument.self, from: bytes) {
                var message = failure.message
                if status == 401 { message += " (pass --token-file FILE or set STRANGLER_ADMIN_TOKEN)" }
                throw ControlFailure(message: message, gate: failure.gate, evidence: failure.evidence, name: failure.error)
            }
            // Not one of our documents: whatever answered, shown escaped on one line.
            throw ControlFailure(
                message:
                    "the admin API answered \(status) to \(method) \(path): \(TerminalText.escape(String(decoding: bytes.prefix(4096), as: UTF8.self)))"
            )
        }
        do {
            return try decoder.decode(T.self, from: bytes)
        } catch {
            throw ControlFailure(
                message: "the admin API's answer to \(path) is not what this strangler expects (\(error)); are both the same version?"
            )
        }
    }
}

/// Who the audit trail records for a CLI change: `--actor`, else the OS user.
enum OperatingUser {
    static var name: String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            return String(cString: name)
        }
        return ProcessInfo.processInfo.environment["USER"] ?? "unknown"
    }
}
