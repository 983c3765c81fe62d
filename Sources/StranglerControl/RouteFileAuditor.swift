import Foundation
import Logging
import StranglerCore
import StranglerProxy
import StranglerStore

/// Puts edits made to `routes.json` outside strangler (by hand, `git pull`, config management)
/// into the audit trail when the proxy loads them, with the actor `file`.
///
/// A table that goes live is recorded when the audit trail does not already lead to it. Changes
/// made through the CLI, the admin API or auto-demote are recorded by the ``RouteController``
/// before the file is replaced, so the trail already leads to their version and they are not
/// recorded twice. A hand edit back to a version seen before is recorded like any other.
public struct RouteFileAuditor: Sendable {
    let store: any DiffStore
    let metrics: ProxyMetrics?
    let logger: Logger

    /// Creates an auditor.
    /// - Parameters:
    ///   - store: Holds the audit trail and the content of every table recorded.
    ///   - metrics: Where recorded changes are counted; nil counts nothing.
    ///   - logger: Where failures to record are logged (they never stop a reload).
    public init(store: any DiffStore, metrics: ProxyMetrics? = nil, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    /// Records the table in `data` going live (at start or on a reload).
    public func tableWentLive(_ data: Data) async {
        await tableWentLive(data, version: ContentHash.hex(of: data))
    }

    /// Records the table in `data`, whose content hash is `version`, going live.
    func tableWentLive(_ data: Data, version: String) async {
        do {
            // Where the trail leads, not whether any row ever led to `version`: that question
            // skipped every hand revert to a version the trail had seen before.
            guard let previousVersion = try await store.latestTableVersion(), previousVersion != version,
                let previousData = try await store.tableContent(version: previousVersion)
            else {
                // Already recorded, or the first table this store sees: nothing to compare with.
                try await store.saveTable(version: version, content: data)
                return
            }
            // Comparing two large tables is CPU work: off the concurrency pool, like validation,
            // and below the event loops' priority.
            let changes = try await PendingValue.onThread(named: "routes-audit") {
                BackgroundWork.run { Self.fileChanges(from: previousData, previousVersion, to: data, version) }
            }.value()
            try await store.recordChanges(changes, tableContent: data)
            metrics?.recordRouteChange(source: .file)
            let routes = changes.compactMap(\.routeID)
            logger.notice(
                "recorded a route table edit made outside strangler",
                metadata: [
                    "version": "\(version)", "previous": "\(previousVersion)", "routes": "\(routes.prefix(20))",
                    "routes_changed": "\(routes.count)",
                ]
            )
        } catch {
            logger.error(
                "cannot record the route table change in the audit trail",
                metadata: ["version": "\(version)", "error": "\(error)"]
            )
        }
    }

    /// The audit rows for the file going from `previousData` to `data`: one per route that
    /// differs, or one for the whole table when only the layout changed.
    static func fileChanges(from previousData: Data, _ previousVersion: String, to data: Data, _ version: String) -> [RouteChange] {
        // Both sides validated when they went live; comparing them as JSON is all the diff needs.
        RouteChange.rows(
            for: RouteTableDocument.differences(from: previousData, to: data),
            actor: "file",
            source: .file,
            reason: "the file changed outside strangler",
            tableReason: "the file's layout changed outside strangler",
            from: previousVersion,
            to: version
        )
    }
}
