import Foundation
import GRDB

/// `merge_latencies(blob)`: an SQL aggregate that merges serialized latency histograms
/// (``LatencyDistribution/serialized()``) bucket by bucket, so a migration can sum minute
/// latencies into hours in one `GROUP BY`. Registered on every connection the store opens.
struct LatencyMergeAggregate: DatabaseAggregate {
    /// The function as SQLite sees it.
    static let function = DatabaseFunction("merge_latencies", argumentCount: 1, pure: true, aggregate: Self.self)

    private var merged = LatencyDistribution()

    init() {}

    mutating func step(_ dbValues: [DatabaseValue]) throws {
        guard let data = Data.fromDatabaseValue(dbValues[0]) else { return }
        // A blob that can't be read is left out, as the writer does when it merges into one:
        // the counts stay exact and only that minute's latencies are lost.
        if let distribution = try? LatencyDistribution(serialized: data) { merged.merge(distribution) }
    }

    func finalize() throws -> (any DatabaseValueConvertible)? {
        Data(merged.serialized())
    }
}
