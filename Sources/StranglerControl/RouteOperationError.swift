import StranglerCore
import StranglerProxy

/// Why a route operation (set, promote, demote, rollback) was refused or failed.
///
/// Modelled on AsyncHTTPClient's errors: a struct over a code, so cases can be added. The
/// message says what is wrong and what to do; a refused promotion carries the gate's figures.
public struct RouteOperationError: Error, Sendable, CustomStringConvertible {
    /// What kind of refusal or failure this is: callers match on it (`error.code == .gateRefused`),
    /// and its name is the admin API's `error` field. A struct, so that codes can be added
    /// without breaking a caller's `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        package enum Base: String, Sendable {
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
            case badLimit = "bad_limit"
            case versionConflict = "version_conflict"
            case noTable = "no_table"
        }

        package let base: Base

        /// The stable machine name: `gate_refused`, `unknown_route`...
        public var description: String { base.rawValue }

        /// No route has that id.
        public static let unknownRoute = Code(base: .unknownRoute)
        /// The change would make the table invalid.
        public static let invalidTable = Code(base: .invalidTable)
        /// The route's gate does not hold.
        public static let gateRefused = Code(base: .gateRefused)
        /// Legacy still served the route within the quiet period, so it can't be retired.
        public static let legacyStillServing = Code(base: .legacyStillServing)
        /// A forced change came without a reason.
        public static let forceNeedsReason = Code(base: .forceNeedsReason)
        /// The route is at the end of the lifecycle in that direction.
        public static let noStep = Code(base: .noStep)
        /// There is no change to roll back, or the table is already at that version.
        public static let nothingToRollBack = Code(base: .nothingToRollBack)
        /// No kept table has that version.
        public static let unknownVersion = Code(base: .unknownVersion)
        /// The routes file could not be read or written.
        public static let fileFailed = Code(base: .fileFailed)
        /// The diff store could not be read or written.
        public static let storeFailed = Code(base: .storeFailed)
        /// Another change holds the routes file.
        public static let busy = Code(base: .busy)
        /// A history page's size is outside what one page holds.
        public static let badLimit = Code(base: .badLimit)
        /// The table changed since the change was made against it (another change committed
        /// first, or the caller's expected version is not the current one).
        public static let versionConflict = Code(base: .versionConflict)
        /// The shared store holds no route table yet.
        public static let noTable = Code(base: .noTable)
    }

    /// What kind of refusal or failure this is.
    public let code: Code
    /// What is wrong and what to do about it.
    public let message: String
    /// The gate's verdict, when a gate refused.
    public let verdict: GateVerdict?
    /// The evidence the gate was judged on, when a gate refused.
    public let evidence: RouteEvidence?
    /// The table's current version, when a change was refused for being made against another.
    public let currentVersion: String?

    init(_ code: Code, _ message: String, verdict: GateVerdict? = nil, evidence: RouteEvidence? = nil, currentVersion: String? = nil) {
        self.code = code
        self.message = message
        self.verdict = verdict
        self.evidence = evidence
        self.currentVersion = currentVersion
    }

    /// A change made against a version of the table that is no longer current.
    static func conflict(current: String?, expected: String? = nil, in name: String) -> RouteOperationError {
        RouteOperationError(
            .versionConflict,
            (expected.map { "\(name) is not version \($0)" } ?? "\(name) changed while this change was made")
                + "; it is now version \(current ?? "none"). Read it again and retry if the change still makes sense",
            currentVersion: current
        )
    }

    /// A stable machine name (`gate_refused`, `unknown_route`...), as in admin API errors.
    public var name: String { code.description }

    /// The message, followed by the gate's checks one per indented line when a gate refused.
    public var description: String {
        guard let verdict else { return message }
        return ([message] + verdict.lines.map { "  " + $0 }).joined(separator: "\n")
    }
}
