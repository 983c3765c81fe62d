/// Why a request target cannot be routed safely: the proxy answers 400 and forwards nothing.
public struct PathRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem, for tests and counters; ``message`` says it in words.
    public enum Reason: Sendable, Hashable {
        /// Neither a path (origin-form) nor an absolute `http`/`https` URL; `*` other than for
        /// OPTIONS; authority-form (CONNECT).
        case unsupportedForm
        /// An absolute URL whose authority is empty or has bytes no authority has.
        case invalidAuthority
        /// `%` not followed by two hex digits.
        case invalidEscape
        /// `%00`.
        case encodedNul
        /// `#`: a request target has no fragment, and upstreams disagree on where the path ends.
        case fragment
        /// A `..` with no segment left to remove.
        case aboveRoot
        /// An ambiguous spelling, refused by ``AmbiguousPathPolicy/reject``.
        case ambiguous(PathAmbiguity)
        /// An ambiguous spelling whose readings pick different routes, or one of which is
        /// refused (``AmbiguousPathPolicy/forwardWhenRoutesAgree``).
        case readingsDisagree(PathAmbiguity)
    }

    /// The kind of problem.
    public let reason: Reason
    /// What is wrong, for the client's 400 body and the log.
    public let message: String

    /// - Parameters:
    ///   - reason: the kind of problem.
    ///   - message: what is wrong, in words, for the client's 400 body and the log.
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// The ``message``.
    public var description: String { message }
}
