import Foundation
import StranglerCore
import StranglerStore

/// The routes file holds the table (one instance, or several each with their own file): a
/// change takes the file's lock, and the file is replaced atomically once the audit rows are
/// stored.
public struct FileRouteAuthority: RouteTableAuthority {
    /// The routes file.
    public let path: String
    /// Where the audit rows and the tables' content go.
    public let store: any DiffStore

    /// The authority of `path`, auditing into `store`.
    public init(path: String, store: any DiffStore) {
        self.path = path
        self.store = store
    }

    public var name: String { path }

    public func read() async throws(RouteOperationError) -> Data? {
        try RouteFile(path: path).read()
    }

    public func exclusively<T: Sendable>(_ body: () async throws(RouteOperationError) -> T) async throws(RouteOperationError) -> T {
        do {
            return try await RouteFile(path: path).withLock { try await body() }
        } catch let error as RouteOperationError {
            throw error
        } catch {
            throw RouteOperationError(.fileFailed, "\(error)")
        }
    }

    /// Stages the file, stores the audit rows with both tables' content, then renames the file
    /// into place. If the rename fails the rows are taken back, so the trail never claims a
    /// change that did not happen. The lock held by ``exclusively(_:)`` makes `old` current.
    public func commit(
        _ content: Data,
        replacing old: Data?,
        changes: [RouteChange],
        fileVersion: String?
    ) async throws(RouteOperationError)
        -> [Int64]
    {
        let file = RouteFile(path: path)
        let staged = try file.stage(content)
        var ids: [Int64]
        do {
            if let old { try await store.saveTable(version: ContentHash.hex(of: old), content: old) }
            ids = try await store.recordChanges(changes, tableContent: content)
        } catch {
            staged.discard()
            throw RouteOperationError(
                .storeFailed,
                "cannot record the change in \(store.location): \(error); \(path) is unchanged, as every change must be audited"
            )
        }
        do {
            try staged.commit()
        } catch {
            try? await store.deleteChanges(ids: ids)
            ids.removeAll()
            throw error
        }
        return ids
    }
}
