import Foundation
import GRDB
import StranglerCore

/// Requests served by each side, kept in the rollups (`legacy_served`, `service_served`,
/// `service_errors`) beside the comparisons, per minute and hour and per instance; they are
/// written as rollups (``TrafficStore/recordTraffic(_:at:instanceID:)``).
extension SQLiteDiffStore {
    /// The last minute in which legacy served the route, if any was recorded. Where only the
    /// hour is still kept, its last minute: the latest legacy could have served, so a route is
    /// never called quiet too early.
    public func lastLegacyTraffic(routeID: String) async throws -> Date? {
        try await pool.read { db in
            guard
                let hour = try String.fetchOne(
                    db,
                    sql: "SELECT MAX(minute) FROM hour_rollups WHERE route_id = ? AND legacy_served > 0",
                    arguments: [routeID]
                )
            else { return nil }
            if let minute = try String.fetchOne(
                db,
                sql: "SELECT MAX(minute) FROM rollups WHERE route_id = ? AND minute >= ? AND legacy_served > 0",
                arguments: [routeID, hour]
            ) {
                return Self.parse(minute)
            }
            return Self.parse(hour).map { $0.addingTimeInterval(Double(RollupLevel.hour.seconds - RollupLevel.minute.seconds)) }
        }
    }

    /// Requests the route served since `since`'s minute, by side, read as the window's
    /// evidence is (``RollupReadPlan``).
    public func traffic(routeID: String, since: Date) async throws -> RouteTraffic {
        try await pool.read { db in
            var traffic = RouteTraffic(routeID: routeID)
            for part in try Self.plan(db, since: since, bucketSeconds: nil).parts {
                let (from, to) = Self.bounds(part)
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT COALESCE(SUM(legacy_served), 0) AS legacy, COALESCE(SUM(service_served), 0) AS service,
                            COALESCE(SUM(service_errors), 0) AS errors FROM \(part.level.tablePrefix)rollups
                        WHERE route_id = ? AND minute >= ? AND minute < ?
                        """,
                    arguments: [routeID, from, to]
                )
                traffic.add(legacy: row?["legacy"] ?? 0, service: row?["service"] ?? 0, serviceErrors: row?["errors"] ?? 0)
            }
            return traffic
        }
    }
}
