import Foundation
import GRDB
import StranglerCore

/// Folding the comparison rows recorded before rollups existed into rollups, once, so a store
/// upgraded to rollups keeps every figure it had: its gates and reports read the same numbers
/// the rows gave, and the rows stay as examples.
extension SQLiteDiffStore {
    /// How far a fold has got, for progress output.
    public struct FoldProgress: Sendable {
        /// Comparison rows folded so far.
        public var folded: Int
        /// Comparison rows to fold in all.
        public var total: Int
    }

    /// Rows read per step, and a progress report per step. Each step's rollups are added to
    /// the store before the next is read, so memory holds one step.
    public static let foldStep = 50_000

    /// The instance name folded rows are counted under: they were recorded before instances
    /// were told apart.
    public static let foldedInstanceID = "before-rollups"

    /// Folds every comparison recorded before rollups (rows with no example reason) into
    /// rollups under `instanceID`, once: the store remembers it did (`rollups_folded`), so a
    /// restart never counts them twice. Rollups and the fact are written in one transaction:
    /// a fold cut short leaves nothing half-counted and runs again at the next start.
    /// - Parameter progress: called after each step of ``foldStep`` rows.
    /// - Returns: how many rows were folded; 0 when the fold was done before.
    @discardableResult
    public func foldRowsIntoRollups(instanceID: String, progress: (FoldProgress) -> Void = { _ in }) throws -> Int {
        try pool.write { db in
            let done = try String.fetchOne(db, sql: "SELECT value FROM store_facts WHERE name = 'rollups_folded'")
            guard done == nil else { return 0 }
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM comparisons WHERE example_reason IS NULL AND reservoir_slot IS NULL") ?? 0
            var rollups = RollupAccumulator(instanceID: instanceID)
            var lastID: Int64 = 0
            var folded = 0
            while true {
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, route_id, request_id, method, path, recorded_at, table_version, primary_upstream, candidate_upstream,
                            primary_status, candidate_status, primary_ms, candidate_ms, outcome, skip_reason
                        FROM comparisons WHERE id > ? AND example_reason IS NULL AND reservoir_slot IS NULL ORDER BY id LIMIT ?
                        """,
                    arguments: [lastID, Self.foldStep]
                )
                guard let last = rows.last else { break }
                lastID = last["id"]
                var differences: [Int64: [Difference]] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT comparison_id, pointer, kind, primary_value, candidate_value FROM differences
                        WHERE comparison_id BETWEEN ? AND ? ORDER BY id
                        """,
                    arguments: [rows[0]["id"] as Int64, lastID]
                ) {
                    guard let kind = DifferenceKind(rawValue: row["kind"]) else { continue }
                    differences[row["comparison_id"], default: []].append(
                        Difference(kind: kind, pointer: row["pointer"], primary: row["primary_value"], candidate: row["candidate_value"])
                    )
                }
                for row in rows {
                    let outcome = ComparisonRecord.Outcome(rawValue: row["outcome"]) ?? .uncomparable
                    rollups.add(
                        ComparisonRecord(
                            routeID: row["route_id"],
                            requestID: row["request_id"],
                            method: row["method"],
                            path: row["path"],
                            recordedAt: Self.parse(row["recorded_at"]) ?? Date(timeIntervalSince1970: 0),
                            tableVersion: row["table_version"],
                            primaryUpstream: row["primary_upstream"],
                            candidateUpstream: row["candidate_upstream"],
                            primaryStatus: row["primary_status"],
                            candidateStatus: row["candidate_status"],
                            primaryMilliseconds: row["primary_ms"],
                            candidateMilliseconds: row["candidate_ms"],
                            outcome: outcome,
                            reason: row["skip_reason"],
                            differences: differences[row["id"]] ?? []
                        )
                    )
                }
                // Added now rather than at the end: a rollup adds to what its minute holds, so the
                // result is the same, and memory holds one step.
                for rollup in rollups.takeAll() { try Self.add(rollup, db) }
                folded += rows.count
                progress(FoldProgress(folded: folded, total: total))
            }
            try db.execute(
                sql: "INSERT INTO store_facts (name, value) VALUES ('rollups_folded', ?)",
                arguments: [Self.format(Date()) + " (\(folded) comparisons)"]
            )
            return folded
        }
    }
}
