import Foundation
import StranglerCore
import StranglerStore

/// The shared PostgreSQL store holds the table for every instance: a change commits by
/// compare-and-set on the table's version, with its audit rows, and every instance is told
/// (``SharedRouteTableFollower``).
///
/// Nothing is locked while a change is prepared (gates are read, evidence is judged): a change
/// made meanwhile by another admin, instance or the routes file makes this one's commit fail with
/// ``RouteOperationError/Code-swift.struct/versionConflict`` and the version that won, so no
/// update is lost and none is applied to a table its author did not see.
public struct SharedRouteAuthority: RouteTableAuthority {
    /// The shared store.
    public let store: PostgresDiffStore

    /// The table in `store`.
    public init(store: PostgresDiffStore) {
        self.store = store
    }

    public var name: String { "the route table in \(store.location)" }

    public func read() async throws(RouteOperationError) -> Data? {
        do {
            return try await store.routeTable()?.content
        } catch {
            throw RouteOperationError(.storeFailed, "cannot read \(name): \(error)")
        }
    }

    public func exclusively<T: Sendable>(_ body: () async throws(RouteOperationError) -> T) async throws(RouteOperationError) -> T {
        try await body()
    }

    public func commit(
        _ content: Data,
        replacing old: Data?,
        changes: [RouteChange],
        fileVersion: String?
    ) async throws(RouteOperationError)
        -> [Int64]
    {
        do {
            return try await store.commitRouteTable(
                content,
                expecting: old.map { ContentHash.hex(of: $0) },
                changes: changes,
                fileVersion: fileVersion
            ).changeIDs
        } catch let conflict as SharedRouteTableConflict {
            throw RouteOperationError.conflict(current: conflict.current?.version, in: name)
        } catch let error as PostgresStoreError where error.isOutage {
            // The commit may have been sent before the database went away: say so, rather than
            // claim nothing changed.
            throw RouteOperationError(
                .storeFailed,
                "cannot commit the change to \(name): \(error); if the database went away after the commit was sent it may have landed: `strangler routes history` shows whether it did"
            )
        } catch {
            throw RouteOperationError(.storeFailed, "cannot commit the change to \(name): \(error); nothing was changed")
        }
    }
}
