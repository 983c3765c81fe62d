import StranglerCore

/// Why a route operation (set, promote, demote, rollback) was refused or failed.
///
/// Modelled on AsyncHTTPClient's errors: a struct over a code, so cases can be added. The
/// message says what is wrong and what to do; a refused promotion carries the gate's figures.
public struct RouteOperationError: Error, Sendable, CustomStringConvertible {
    enum Code: String, Sendable {
        case unknownRoute = "unknown_route"
        case invalidTable = "invalid_table"
        case gateRefused = "gate_refused"
        case legacyStillServing = "legacy_still_serving"
        case forceNeedsReason = "force_needs_reason"
        case noStep = "no_step"
        case nothingToRollBack = "nothing_to_roll_back"
        case unknownVersion = "unknown_version"
        case fileFailed = "file_failed"
        case storeFailed = "store_failed"
        case busy = "busy"
    }

    let code: Code
    /// What is wrong and what to do about it.
    public let message: String
    /// The gate's verdict, when a gate refused.
    public let verdict: GateVerdict?
    /// The evidence the gate was judged on, when a gate refused.
    public let evidence: RouteEvidence?

    init(_ code: Code, _ message: String, verdict: GateVerdict? = nil, evidence: RouteEvidence? = nil) {
        self.code = code
        self.message = message
        self.verdict = verdict
        self.evidence = evidence
    }

    /// A stable machine name (`gate_refused`, `unknown_route`...), as in admin API errors.
    public var name: String { code.rawValue }

    public var description: String {
        guard let verdict else { return message }
        return ([message] + verdict.lines.map { "  " + $0 }).joined(separator: "\n")
    }
}
