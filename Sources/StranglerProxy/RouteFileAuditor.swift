import Foundation
import Logging
import StranglerCore
import StranglerStore

/// Puts edits made to `routes.json` outside strangler (by hand, `git pull`, config management)
/// into the audit trail when the proxy loads them, with the actor `file`.
///
/// Changes made through the CLI, the admin API or auto-demote are recorded by the
/// ``RouteController`` before the file is replaced, so a table version that already has audit
/// rows is not recorded again.
public struct RouteFileAuditor: Sendable {
    let store: SQLiteDiffStore
    let metrics: ProxyMetrics?
    let logger: Logger

    public init(store: SQLiteDiffStore, metrics: ProxyMetrics? = nil, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    /// Records the table in `data` going live (at start or on a reload).
    public func tableWentLive(_ data: Data) async {
        let version = ContentHash.hex(of: data)
        do {
            let previousVersion = try await store.latestTableVersion()
            let recorded = try await store.hasChanges(toVersion: version)
            guard previousVersion != version, !recorded else {
                try await store.saveTable(version: version, content: data)
                return
            }
            guard let previousVersion, let previousData = try await store.tableContent(version: previousVersion) else {
                // The first table this store sees: nothing to compare it with.
                try await store.saveTable(version: version, content: data)
                return
            }
            let previous = try? RouteTableDocument(data: previousData)
            let current = try RouteTableDocument(data: data)
            var changes = RouteTableDocument.differences(from: previous, to: current).map {
                RouteChange(
                    actor: "file", source: .file, routeID: $0.routeID, reason: "the file changed outside strangler", before: $0.before,
                    after: $0.after, tableVersionBefore: previousVersion, tableVersionAfter: version
                )
            }
            if changes.isEmpty {
                changes = [
                    RouteChange(
                        actor: "file", source: .file, routeID: nil, reason: "the file's layout changed outside strangler", before: nil,
                        after: nil, tableVersionBefore: previousVersion, tableVersionAfter: version
                    )
                ]
            }
            try await store.recordChanges(changes, tableContent: data)
            metrics?.recordRouteChange(source: "file")
            logger.notice(
                "recorded a route table edit made outside strangler",
                metadata: ["version": "\(version)", "previous": "\(previousVersion)", "routes": "\(changes.compactMap(\.routeID))"]
            )
        } catch {
            logger.error(
                "cannot record the route table change in the audit trail", metadata: ["version": "\(version)", "error": "\(error)"])
        }
    }
}
