import Foundation

/// One endpoint of the admin API: its method and path, defined once. The router registers it,
/// the CLI's client calls it, and the OpenAPI document describes it, all from this value.
public struct AdminEndpoint: Sendable, Hashable {
    /// The HTTP methods the admin API uses.
    public enum Method: String, Sendable {
        /// A read: needs a token with read rights, unless reads are open.
        case get = "GET"
        /// A write: always needs a token.
        case post = "POST"
    }

    /// The method.
    public let method: Method
    /// The path, with `{id}` where a route id goes (as OpenAPI writes templates).
    public let template: String

    init(_ method: Method, _ template: String) {
        self.method = method
        self.template = template
    }

    /// The path as Hummingbird's router spells a parameter: `{id}` becomes `:id`.
    var routerPath: String {
        template.replacingOccurrences(of: "{id}", with: ":id")
    }

    /// The path to call: `id` percent-encoded into the template (a `/` in an id stays inside
    /// the one segment), then the query.
    /// - Parameters:
    ///   - id: the route id, for a template that has `{id}`.
    ///   - query: name and value pairs, percent-encoded as query components.
    public func path(id: String? = nil, query: [(String, String)] = []) -> String {
        var path = template
        if let id {
            let segment = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
            path = path.replacingOccurrences(of: "{id}", with: segment)
        }
        guard !query.isEmpty else { return path }
        let allowed = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))
        let items = query.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }
        return path + "?" + items.joined(separator: "&")
    }
}

extension AdminEndpoint {
    /// Liveness.
    public static let health = AdminEndpoint(.get, "/healthz")
    /// Readiness: the proxy listener is bound.
    public static let ready = AdminEndpoint(.get, "/readyz")
    /// Prometheus metrics.
    public static let metrics = AdminEndpoint(.get, "/metrics")
    /// The OpenAPI document.
    public static let openAPI = AdminEndpoint(.get, "/openapi.json")
    /// The diff report (`since`, `route`, `examples`).
    public static let report = AdminEndpoint(.get, "/api/report")
    /// The live route table.
    public static let routes = AdminEndpoint(.get, "/api/routes")
    /// One live route.
    public static let route = AdminEndpoint(.get, "/api/routes/{id}")
    /// Every route of the file with its evidence and gate verdict.
    public static let stats = AdminEndpoint(.get, "/api/stats")
    /// One route's evidence, gate verdict and traffic.
    public static let routeStats = AdminEndpoint(.get, "/api/routes/{id}/stats")
    /// The audit trail (`limit`).
    public static let changes = AdminEndpoint(.get, "/api/changes")
    /// One route's audit trail (`limit`).
    public static let routeChanges = AdminEndpoint(.get, "/api/routes/{id}/changes")
    /// Sets a route's mode, with a body of ``AdminWriteRequest``.
    public static let setMode = AdminEndpoint(.post, "/api/routes/{id}/mode")
    /// One step along the lifecycle.
    public static let promote = AdminEndpoint(.post, "/api/routes/{id}/promote")
    /// One step back.
    public static let demote = AdminEndpoint(.post, "/api/routes/{id}/demote")
    /// Restores an earlier table version.
    public static let rollback = AdminEndpoint(.post, "/api/rollback")

    /// Every endpoint outside the dashboard's files, in the order the OpenAPI document lists them.
    public static let all: [AdminEndpoint] = [
        health, ready, metrics, openAPI, report, routes, route, stats, routeStats, changes, routeChanges, setMode, promote, demote, rollback,
    ]
}

/// The JSON body of every admin write, defined once for the router, which decodes it, and the
/// CLI's client, which encodes it. Every member is optional; unknown members are ignored.
public struct AdminWriteRequest: Codable, Sendable, Equatable {
    /// For ``AdminEndpoint/setMode``: the mode's name.
    public var mode: String?
    /// For ``AdminEndpoint/setMode`` to canary: the service's share, 0–100.
    public var percent: Double?
    /// Why, for the audit trail; required with `force`.
    public var reason: String?
    /// Overrides a gate or the legacy-traffic rule; needs `reason`.
    public var force: Bool?
    /// Who the caller says they are; recorded beside the token's name.
    public var actor: String?
    /// For ``AdminEndpoint/rollback``: the table version (or a prefix of it); the last change's
    /// version before when absent.
    public var to: String?
    /// The table version the change is made against (also taken from an `If-Match` header):
    /// if the table is another version by the time the change commits, it is refused with
    /// 409 `version_conflict` and the current version, and nothing changes.
    public var expectedVersion: String?

    /// A body with the given members.
    public init(
        mode: String? = nil,
        percent: Double? = nil,
        reason: String? = nil,
        force: Bool? = nil,
        actor: String? = nil,
        to: String? = nil,
        expectedVersion: String? = nil
    ) {
        self.expectedVersion = expectedVersion
        self.mode = mode
        self.percent = percent
        self.reason = reason
        self.force = force
        self.actor = actor
        self.to = to
    }
}
