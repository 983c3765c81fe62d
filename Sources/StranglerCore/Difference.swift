/// One response as captured for comparison: status, headers, and the body up to the capture cap.
public struct CapturedResponse: Sendable {
    /// The status code.
    public var status: Int
    /// The header lines as received, in order, duplicates kept.
    public var headers: [(name: String, value: String)]
    /// The body, at most the capture cap. The comparator takes it decoded: a `content-encoding`
    /// other than `identity` makes the comparison uncomparable.
    public var body: [UInt8]

    /// A captured response; headers and body default to none.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// All values of a header, names compared case-insensitively, joined with ", ".
    public func header(_ name: String) -> String? {
        // Lengths first: most names differ in length, and lowercasing allocates for long ones.
        var joined: String?
        for header in headers where header.name.utf8.count == name.utf8.count && header.name.lowercased() == name {
            joined = joined.map { $0 + ", " + header.value } ?? header.value
        }
        return joined
    }
}

/// What kind of disagreement a ``Difference`` records.
public enum DifferenceKind: String, Sendable, CaseIterable, Codable {
    /// The status codes differ.
    case status
    /// A compared header differs (or is absent on one side).
    case header
    /// The same JSON location holds different values of the same type.
    case changed
    /// The primary has the location, the candidate does not.
    case missing
    /// The candidate has a location the primary does not.
    case added
    /// The location holds values of different JSON types.
    case type
    /// Non-JSON text bodies differ.
    case text
    /// Binary bodies differ.
    case bytes
}

/// One difference between the primary's and the candidate's response.
public struct Difference: Sendable, Hashable, Codable {
    /// What kind of disagreement this is.
    public var kind: DifferenceKind
    /// An RFC 6901 pointer into the body, the header name for `header`, or "" for `status`.
    public var pointer: String
    /// The primary's value as compact JSON text (or the header/line text), nil when absent.
    public var primary: String?
    /// The candidate's value, nil when absent.
    public var candidate: String?

    /// A difference as found. Its values are not yet redacted: ``Redactor`` masks them before
    /// they are stored.
    public init(kind: DifferenceKind, pointer: String, primary: String?, candidate: String?) {
        self.kind = kind
        self.pointer = pointer
        self.primary = primary
        self.candidate = candidate
    }
}

/// The result of comparing two responses.
public struct Comparison: Sendable {
    /// How the comparison came out.
    public enum Outcome: Sendable, Equatable {
        /// No difference under the route's `compare` rules.
        case match
        /// At least one difference. Whether they are all excused (noise, accepted) is judged later,
        /// by ``DifferenceExcuses``.
        case mismatch
        /// The bodies could not be compared (hostile or unsupported input); the reason says why.
        case uncomparable(String)
    }

    /// Match, mismatch, or why the bodies could not be compared.
    public var outcome: Outcome
    /// The differences found, at most the comparator's cap.
    public var differences: [Difference]
    /// Differences found beyond the cap, counted but not kept.
    public var omitted: Int

    /// A result from its parts; `omitted` counts differences found beyond the comparator's cap.
    public init(outcome: Outcome, differences: [Difference], omitted: Int = 0) {
        self.outcome = outcome
        self.differences = differences
        self.omitted = omitted
    }
}
