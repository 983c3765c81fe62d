import Foundation
import StranglerCore

/// One shadow comparison, ready to store: what was asked, what each side answered, and the
/// (already redacted) differences.
public struct ComparisonRecord: Sendable {
    /// How the comparison came out, as stored in `comparisons.outcome`.
    public enum Outcome: String, Sendable, CaseIterable {
        /// `match` and `mismatch` are samples (a stored mismatch may still be excused when read, by
        /// noise or an accepted difference); `uncomparable` and `skipped` are not, and
        /// ``ComparisonRecord/reason`` says why.
        case match, mismatch, uncomparable, skipped
    }

    /// The route the request took.
    public var routeID: String
    /// The request's `X-Request-Id`: it leads to the access log line and both upstreams' logs.
    public var requestID: String
    /// The request method.
    public var method: String
    /// The request target as the client sent it.
    public var path: String
    /// When the record was made; windows select comparisons by it.
    public var recordedAt: Date
    /// The version (content hash) of the route table the request was routed by.
    public var tableVersion: String
    /// The upstream that served the client.
    public var primaryUpstream: String
    /// The upstream that got the copy.
    public var candidateUpstream: String
    /// The primary's status code; nil when it has none.
    public var primaryStatus: Int?
    /// The candidate's status code; nil when it has none (a timeout, a connect failure...).
    public var candidateStatus: Int?
    /// How long the primary took, in milliseconds; nil when unknown.
    public var primaryMilliseconds: Double?
    /// How long the candidate took, in milliseconds; nil when unknown.
    public var candidateMilliseconds: Double?
    /// How the comparison came out.
    public var outcome: Outcome
    /// Why a comparison was skipped or uncomparable; on a mismatch with more differences than
    /// the comparator keeps, how many were not kept.
    public var reason: String?
    /// The differences found, already redacted, at most the comparator's cap.
    public var differences: [Difference]
    /// When this request was a noise probe: the pointers that differed between two answers of
    /// the same legacy upstream (empty when none did). nil when there was no probe.
    public var noisePointers: [String]?
    /// Whether the comparison's row is kept as an example, and as which kind. The recorder's
    /// sampler (``ExampleSampler``) sets it; a record made elsewhere keeps its row.
    public var row: StoredRow = .kept(reason: nil)

    /// What becomes of a comparison's detail row. Its rollup counts it either way.
    public enum StoredRow: Sendable, Equatable {
        /// No row: only a noise probe's observation, if any, is stored.
        case notKept
        /// A row, with why it was kept (stored in `comparisons.example_reason`; nil for a row
        /// kept without sampling).
        case kept(reason: String?)
        /// A row in a reservoir slot of its route and hour, replacing the example that held it.
        case reservoir(slot: Int)
    }

    /// A record from its parts. ``noisePointers`` is set afterwards, when the request was also a
    /// noise probe.
    public init(
        routeID: String,
        requestID: String,
        method: String,
        path: String,
        recordedAt: Date = Date(),
        tableVersion: String,
        primaryUpstream: String,
        candidateUpstream: String,
        primaryStatus: Int? = nil,
        candidateStatus: Int? = nil,
        primaryMilliseconds: Double? = nil,
        candidateMilliseconds: Double? = nil,
        outcome: Outcome,
        reason: String? = nil,
        differences: [Difference] = []
    ) {
        self.routeID = routeID
        self.requestID = requestID
        self.method = method
        self.path = path
        self.recordedAt = recordedAt
        self.tableVersion = tableVersion
        self.primaryUpstream = primaryUpstream
        self.candidateUpstream = candidateUpstream
        self.primaryStatus = primaryStatus
        self.candidateStatus = candidateStatus
        self.primaryMilliseconds = primaryMilliseconds
        self.candidateMilliseconds = candidateMilliseconds
        self.outcome = outcome
        self.reason = reason
        self.differences = differences
    }
}
