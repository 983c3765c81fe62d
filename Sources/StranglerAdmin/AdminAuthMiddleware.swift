import Hummingbird

/// The request context of the admin listener: Hummingbird's core storage, plus the name of the
/// token the request carried once ``AdminAuthMiddleware`` has let it through.
public struct AdminRequestContext: RequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The name of the token that authorised the request; nil for open reads and open endpoints.
    public var tokenName: String?

    /// A context for a request arriving on `source`.
    public init(source: Source) {
        coreContext = .init(source: source)
    }
}

/// Lets a request under `/api` through only with the credentials ``AdminAccess`` asks for: a
/// token for every write, and for reads too unless reads are open. A GET or HEAD is a read and
/// anything else a write, as ``AdminEndpoint/Method`` defines them.
///
/// 401 (with `WWW-Authenticate`) when no token came, 403 when it is not one this proxy accepts.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext

    let access: AdminAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let write = request.method != .get && request.method != .head
        switch access.decide(authorization: request.headers[.authorization], write: write) {
        case .allowed(let name):
            var context = context
            context.tokenName = name
            return try await next(request, context)
        case .missing(let message):
            var response = AdminAPI.error("unauthorized", message, status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"strangler-admin\""
            return response
        case .wrong(let message):
            return AdminAPI.error("forbidden", message, status: .forbidden)
        }
    }
}

extension RouterMethods {
    /// Registers `handler` for `endpoint`, at its method and path.
    @discardableResult
    func on(_ endpoint: AdminEndpoint, use handler: @Sendable @escaping (Request, Context) async throws -> Response) -> Self {
        let method: HTTPRequest.Method =
            switch endpoint.method {
            case .get: .get
            case .post: .post
            }
        return on(RouterPath(stringLiteral: endpoint.routerPath), method: method, use: handler)
    }
}
