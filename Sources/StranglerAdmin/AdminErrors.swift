import Hummingbird
import StranglerControl

/// A refusal of the admin API's own (bad input, no store), answered as an ``ErrorDocument`` with
/// its status. Handlers throw it; Hummingbird's router turns it into the response.
struct AdminAPIError: HTTPResponseError {
    /// The stable name, the document's `error`.
    let name: String
    /// What went wrong and what to do, in the caller's terms.
    let message: String
    /// The answer's status.
    let status: HTTPResponse.Status

    init(_ name: String, _ message: String, status: HTTPResponse.Status) {
        self.name = name
        self.message = message
        self.status = status
    }

    /// The route controls need the diff store, and this proxy has none.
    static let noController = AdminAPIError(
        "unavailable",
        "the route controls need the diff store; this proxy was started without one",
        status: .serviceUnavailable
    )

    func response(from request: Request, context: some RequestContext) throws -> Response {
        AdminAPI.jsonResponse(ErrorDocument(error: name, message: message), status: status)
    }
}

/// A refused or failed route operation, answered with its code's status and, for a gate's
/// refusal, the verdict and evidence behind it.
extension RouteOperationError: HTTPResponseError {
    /// The status each code is answered with.
    public var status: HTTPResponse.Status {
        switch code.base {
        case .unknownRoute, .unknownVersion: .notFound
        case .invalidTable: .unprocessableContent
        case .gateRefused, .legacyStillServing, .noStep, .nothingToRollBack, .versionConflict: .conflict
        case .forceNeedsReason, .badLimit: .badRequest
        case .fileFailed: .internalServerError
        case .storeFailed, .busy, .noTable: .serviceUnavailable
        }
    }

    /// The error as an ``ErrorDocument``.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        AdminAPI.jsonResponse(
            ErrorDocument(
                error: name,
                message: message,
                gate: verdict.map(VerdictDocument.init),
                evidence: evidence,
                currentVersion: currentVersion
            ),
            status: status
        )
    }
}
