import StranglerCore
import StranglerStore

extension RouteChange {
    /// The audit rows for one table replacing another: one per route that differs, or, when no
    /// route does (only the layout or settings outside the routes), one row for the whole table,
    /// so that the trail still explains the new version.
    /// - Parameter tableReason: the whole-table row's reason; `reason` when nil.
    static func rows(
        for differences: [RouteTableDocument.RouteDifference],
        actor: String,
        source: Source,
        reason: String?,
        tableReason: String? = nil,
        from before: String?,
        to after: String
    ) -> [RouteChange] {
        guard !differences.isEmpty else {
            return [
                RouteChange(
                    actor: actor,
                    source: source,
                    routeID: nil,
                    reason: tableReason ?? reason,
                    before: nil,
                    after: nil,
                    tableVersionBefore: before,
                    tableVersionAfter: after
                )
            ]
        }
        return differences.map {
            RouteChange(
                actor: actor,
                source: source,
                routeID: $0.routeID,
                reason: reason,
                before: $0.before,
                after: $0.after,
                tableVersionBefore: before,
                tableVersionAfter: after
            )
        }
    }
}
