import Foundation
import StranglerStore

/// Where the route table lives, and how a change to it is committed: the routes file of one
/// instance (``FileRouteAuthority``), or the table in a PostgreSQL store that several instances
/// share (``SharedRouteAuthority``).
///
/// ``RouteController`` makes every change through one, so the rules (gates, the legacy-traffic
/// check, the audit trail) are the same whichever holds the table. A commit stores the audit rows
/// and the new table together, and refuses a change made against a table that is no longer the
/// current one, so that of two concurrent changes none is lost.
public protocol RouteTableAuthority: Sendable {
    /// How messages name the table: the file's path, or the store it lives in.
    var name: String { get }

    /// The current table's bytes; nil when there is none yet (an empty shared store).
    func read() async throws(RouteOperationError) -> Data?

    /// Runs `body`, which reads the table and commits a change, so that no other change can
    /// commit in between (the file's lock), or so that one made in between is refused at commit.
    func exclusively<T: Sendable>(_ body: () async throws(RouteOperationError) -> T) async throws(RouteOperationError) -> T

    /// Makes `content` the table in place of `old` (nil: there was none), with `changes` in the
    /// audit trail, all or nothing.
    /// - Parameter fileVersion: the hash of the routes file `content` was pushed from, if it was.
    /// - Returns: the audit rows' ids.
    /// - Throws: ``RouteOperationError/Code-swift.struct/versionConflict`` when the table is no
    ///   longer `old`, with the current version.
    func commit(_ content: Data, replacing old: Data?, changes: [RouteChange], fileVersion: String?) async throws(RouteOperationError) -> [Int64]
}
