import Foundation
import NIOConcurrencyHelpers
import StranglerCore

/// What the admin API shows about the live route table: the table, its version, when it was
/// loaded, and the last reload that was rejected.
public struct RouteTableStatus: Sendable {
    /// The table requests are routed with.
    public var table: RouteTable
    /// When `table` went live.
    public var loadedAt: Date
    /// Where it was read from, if from a file.
    public var source: String?
    /// The last rejected reload, if any since start.
    public var lastError: ReloadFailure?
    /// Successful loads since start (the first load counts).
    public var loads: Int

    /// A rejected reload.
    public struct ReloadFailure: Sendable {
        /// When the reload was rejected.
        public var at: Date
        /// The rejected file's version (its content hash), or nil when the file could not be read.
        public var version: String?
        /// The first problems, at most ``RouteTableError/reportedLimit``.
        public var problems: [RouteTableError.Problem]
        /// Problems found beyond `problems` and only counted.
        public var moreProblems: Int
    }
}

/// Thread-safe holder of the table status. Read by the admin API and the watcher; the data plane
/// never reads it (each event loop has its own copy of the table).
public final class RouteTableState: Sendable {
    private let box: NIOLockedValueBox<RouteTableStatus>

    /// Starts with `table` live, loaded now, counted as the first load.
    /// - Parameters:
    ///   - table: The table the server starts with.
    ///   - source: Where it was read from, if from a file.
    public init(table: RouteTable, source: String?) {
        box = NIOLockedValueBox(RouteTableStatus(table: table, loadedAt: Date(), source: source, lastError: nil, loads: 1))
    }

    /// A snapshot of the status.
    public var status: RouteTableStatus { box.withLockedValue { $0 } }

    /// Records `table` as live; called once every event loop serves it.
    ///
    /// - Returns: The table it replaced, for the caller to release where freeing a large table
    ///   costs nothing that matters (not under the lock the admin API reads with).
    @discardableResult
    func recordLoaded(_ table: RouteTable) -> RouteTable {
        box.withLockedValue { status -> RouteTable in
            let replaced = status.table
            status.table = table
            status.loadedAt = Date()
            status.loads += 1
            return replaced
        }
    }

    func recordRejected(_ error: RouteTableError, version: String?) {
        box.withLockedValue {
            $0.lastError = .init(at: Date(), version: version, problems: error.problems, moreProblems: error.moreProblems)
        }
    }
}
