import Foundation
import StranglerCore

/// One shadow comparison, ready to store: what was asked, what each side answered, and the
/// (already redacted) differences.
public struct ComparisonRecord: Sendable {
    /// How the comparison came out, as stored in `comparisons.outcome`.
    public enum Outcome: String, Sendable, CaseIterable {
        case match, mismatch, uncomparable, skipped
    }

    public var routeID: String
    public var requestID: String
    public var method: String
    public var path: String
    public var recordedAt: Date
    public var tableVersion: String
    public var primaryUpstream: String
    public var candidateUpstream: String
    public var primaryStatus: Int?
    public var candidateStatus: Int?
    public var primaryMilliseconds: Double?
    public var candidateMilliseconds: Double?
    public var outcome: Outcome
    /// Why a comparison was skipped or uncomparable.
    public var reason: String?
    public var differences: [Difference]
    /// When this request was a noise probe: the pointers that differed between two answers of
    /// the same legacy upstream (empty when none did). nil when there was no probe.
    public var noisePointers: [String]?

    public init(
        routeID: String, requestID: String, method: String, path: String, recordedAt: Date = Date(), tableVersion: String,
        primaryUpstream: String, candidateUpstream: String, primaryStatus: Int? = nil, candidateStatus: Int? = nil,
        primaryMilliseconds: Double? = nil, candidateMilliseconds: Double? = nil, outcome: Outcome, reason: String? = nil,
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

/// Where comparisons go. SQLite is the embedded default; PostgreSQL is for several proxies.
public protocol DiffStore: Sendable {
    /// Writes a batch in one transaction: all of it or none of it. A slice, so the recorder
    /// writes its queue in batches without copying them out.
    func insert(_ batch: ArraySlice<ComparisonRecord>) async throws
    /// Deletes comparisons recorded before `cutoff`, then the oldest beyond `maxRows`.
    /// Returns how many comparisons were deleted.
    func prune(recordedBefore cutoff: Date?, maxRows: Int?) async throws -> Int
}

extension DiffStore {
    /// Writes a batch in one transaction: all of it or none of it.
    public func insert(_ batch: [ComparisonRecord]) async throws {
        try await insert(batch[...])
    }
}
