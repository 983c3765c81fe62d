import Foundation
import StranglerCore

/// Where ``DiffRecorder`` writes comparisons: what the recorder needs of a store, and no more.
public protocol ComparisonWriter: Sendable {
    /// Writes comparison rows and rollup increments in one transaction: all of it or none of
    /// it, so a reader that sees a comparison's row also finds it counted. A slice, so the
    /// recorder writes its queue in batches without copying them out. Rollups add to the
    /// minutes they name, so the open minute can be written again with only what arrived since.
    func write(_ batch: ArraySlice<ComparisonRecord>, rollups: [RouteMinuteRollup]) async throws
    /// Deletes comparisons recorded before `cutoff`, then the oldest beyond `maxRows`.
    /// Returns how many comparisons were deleted.
    func prune(recordedBefore cutoff: Date?, maxRows: Int?) async throws -> Int
    /// Deletes rollups (minutes and hours) before `cutoff`'s hour, and remembers that evidence
    /// before it is gone, so windows reaching further report the gap. Returns how many hours'
    /// rows went.
    func pruneRollups(before cutoff: Date) async throws -> Int
    /// Deletes minute rollups before `cutoff`'s hour; the hours keep their counts, and windows
    /// reaching further read whole hours there. Returns how many minutes' rows went.
    func pruneMinuteRollups(before cutoff: Date) async throws -> Int
    /// Moves everything written into the store's main file, so that the files a graceful stop
    /// leaves behind are the store's real size (SQLite's write-ahead log is emptied). Called
    /// once the last write is done; a store without such a log does nothing.
    func checkpoint() async throws
}

extension ComparisonWriter {
    /// Stores `records` whole and counts every one in its minute's rollup under `instanceID`:
    /// what the recorder does for a comparison it keeps as an example, for all of them at once.
    /// For importing comparisons made elsewhere, and for tests that need both rows and rollups.
    /// Their rows say `imported` as the reason they were kept, so they are never mistaken for
    /// rows recorded before rollups and counted again.
    public func insertCounted(_ records: [ComparisonRecord], instanceID: String = "local") async throws {
        var rollups = RollupAccumulator(instanceID: instanceID)
        var rows = records
        for index in rows.indices {
            rollups.add(rows[index])
            if rows[index].row == .kept(reason: nil) { rows[index].row = .kept(reason: "imported") }
        }
        try await write(rows[...], rollups: rollups.takeAll())
    }

    /// Writes comparison rows in one transaction, counting nothing in the rollups.
    public func insert(_ batch: ArraySlice<ComparisonRecord>) async throws {
        try await write(batch, rollups: [])
    }

    /// Adds rollup increments to the minutes they name, in one transaction.
    public func addRollups(_ rollups: [RouteMinuteRollup]) async throws {
        try await write([], rollups: rollups)
    }

    /// Nothing to move: the store keeps no log of its own beside its data.
    public func checkpoint() async throws {}

    /// Writes a batch in one transaction: all of it or none of it.
    public func insert(_ batch: [ComparisonRecord]) async throws {
        try await insert(batch[...])
    }
}

/// What gates, reports and the canary monitor read about comparisons.
public protocol EvidenceReader: Sendable {
    /// A route's evidence since `since`, as promotion gates judge it: comparisons with
    /// `serviceUpstream` as the candidate, with noise and accepted differences excused.
    func evidence(routeID: String, serviceUpstream: String?, since: Date) async throws -> RouteEvidence
    /// A route's evidence broken down for a report: outcomes, pointers, latencies and, with
    /// `bucketSeconds`, a timeline.
    func breakdown(routeID: String, serviceUpstream: String?, since: Date, bucketSeconds: Int?) async throws -> RouteBreakdown
    /// The learned noise of every route: pointer to how often two legacy answers differed there.
    func noiseByRoute() async throws -> [String: [String: Int]]
    /// When the first comparison of a route since `since` was recorded, if any was.
    func firstComparison(routeID: String, since: Date) async throws -> Date?
    /// Every route with a comparison since `since`.
    func routeIDs(since: Date) async throws -> [String]
    /// Up to `limit` of the newest example differences at `pointer` on a route, with their
    /// requests, each side's value under its name (`serviceUpstream` tells them apart).
    func examples(routeID: String, serviceUpstream: String?, since: Date, pointer: String, limit: Int) async throws -> [DifferenceExample]
    /// How much of the window from `from` to `to` the route's evidence covers: the span from
    /// the later of `from` and the route's first comparison, less the minutes retention removed
    /// or the recorder dropped comparisons in.
    func coverage(routeID: String, from: Date, to: Date) async throws -> EvidenceCoverage
    /// How many differences of a route since `since` an accepted-difference pattern covers.
    func coveredCount(routeID: String, since: Date, pattern: String) async throws -> Int
}

/// Differences reviewers have accepted: they excuse matching differences in gates, reports and
/// the canary monitor until revoked or expired.
public protocol AcceptedDifferenceStore: Sendable {
    /// Records an accepted difference and returns its id.
    func accept(routeID: String, pointer: String, reason: String, owner: String, until: Date?) async throws -> Int64
    /// Revokes an accepted difference; false when no active one has that id.
    func revokeAccepted(id: Int64, by owner: String) async throws -> Bool
    /// Accepted differences, of one route or of all, oldest first; lapsed and revoked ones too
    /// when `includeInactive`.
    func acceptedDifferences(routeID: String?, includeInactive: Bool) async throws -> [AcceptedDifference]
}

extension AcceptedDifferenceStore {
    /// Every active accepted difference, of every route.
    public func acceptedDifferences() async throws -> [AcceptedDifference] {
        try await acceptedDifferences(routeID: nil, includeInactive: false)
    }
}

/// The audit trail: every route change, and every table version that went live, so that a
/// change can be rolled back.
public protocol RouteHistoryStore: Sendable {
    /// Records changes, and the table content they produced, in one transaction; returns their ids.
    func recordChanges(_ changes: [RouteChange], tableContent: Data?) async throws -> [Int64]
    /// Removes changes recorded for an edit that then failed to reach the file, so the trail
    /// never shows a change that did not happen.
    func deleteChanges(ids: [Int64]) async throws
    /// The newest changes first, of one route or of all.
    func changes(routeID: String?, limit: Int) async throws -> [RouteChange]
    /// Keeps a table's content by version, for rollback (once; the first sighting wins).
    func saveTable(version: String, content: Data) async throws
    /// A kept table version's content.
    func tableContent(version: String) async throws -> Data?
    /// Kept table versions starting with `prefix`.
    func tableVersions(matching prefix: String) async throws -> [String]
    /// The table version the audit trail last led to, else the last table kept.
    func latestTableVersion() async throws -> String?
}

extension RouteHistoryStore {
    /// The newest changes of every route, newest first.
    public func changes(limit: Int) async throws -> [RouteChange] {
        try await changes(routeID: nil, limit: limit)
    }
}

/// Which side served each route's clients, per interval: the rule that a route stops being served
/// by legacy before it is retired reads it.
public protocol TrafficStore: Sendable {
    /// Adds requests served to the routes' rollups for the minute of `at`, under the instance
    /// that served them.
    func recordTraffic(_ samples: [RouteTraffic], at: Date, instanceID: String) async throws
    /// A route's served-by counts since `since`.
    func traffic(routeID: String, since: Date) async throws -> RouteTraffic
    /// The last minute in which legacy served the route, if any was recorded.
    func lastLegacyTraffic(routeID: String) async throws -> Date?
}

extension TrafficStore where Self: ComparisonWriter {
    /// Adds requests served to the routes' rollups for the minute of `at`, under `instanceID`:
    /// traffic is counted in the rollups as comparisons are, so every store writes it alike.
    public func recordTraffic(_ samples: [RouteTraffic], at: Date, instanceID: String) async throws {
        var rollups = RollupAccumulator(instanceID: instanceID)
        for sample in samples { rollups.addTraffic(sample, at: at) }
        guard !rollups.isEmpty else { return }
        try await addRollups(rollups.takeAll())
    }
}

extension TrafficStore {
    /// Adds the served-by counts of one interval, recorded now.
    public func recordTraffic(_ samples: [RouteTraffic], instanceID: String) async throws {
        try await recordTraffic(samples, at: Date(), instanceID: instanceID)
    }
}

/// Everything the proxy keeps: comparisons and their evidence, accepted differences, the audit
/// trail and traffic. Nothing outside the store module names an implementation's type or its
/// database handle; ``SQLiteDiffStore`` is the embedded one.
public protocol DiffStore: ComparisonWriter, EvidenceReader, AcceptedDifferenceStore, RouteHistoryStore, TrafficStore {
    /// Where the store lives, for messages: a file path, or a database URL without its password.
    var location: String { get }
}
