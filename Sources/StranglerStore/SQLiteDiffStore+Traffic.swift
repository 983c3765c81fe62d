import Foundation
import GRDB
import StranglerCore

extension SQLiteDiffStore {
    /// Adds requests served to the route's counters for the minute of `at`.
    public func recordTraffic(_ samples: [RouteTraffic], at: Date = Date()) async throws {
        let samples = samples.filter { $0.legacy + $0.service + $0.serviceErrors > 0 }
        guard !samples.isEmpty else { return }
        let minute = String(Self.format(at).prefix(16))  // 2026-11-22T15:54
        try await pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO route_traffic (route_id, minute, legacy, service, service_errors) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (route_id, minute) DO UPDATE SET legacy = legacy + excluded.legacy,
                        service = service + excluded.service, service_errors = service_errors + excluded.service_errors
                    """
            )
            for sample in samples {
                try statement.execute(arguments: [sample.routeID, minute, sample.legacy, sample.service, sample.serviceErrors])
            }
        }
    }

    /// The last minute in which legacy served the route, if any was recorded.
    public func lastLegacyTraffic(routeID: String) async throws -> Date? {
        try await pool.read { db in
            guard
                let minute = try String.fetchOne(
                    db,
                    sql: "SELECT MAX(minute) FROM route_traffic WHERE route_id = ? AND legacy > 0",
                    arguments: [routeID]
                )
            else { return nil }
            return Self.parse(minute + ":00.000Z")
        }
    }

    /// Requests the route served since `since`, by side.
    public func traffic(routeID: String, since: Date) async throws -> RouteTraffic {
        let from = String(Self.format(since).prefix(16))
        return try await pool.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(legacy), 0) AS legacy, COALESCE(SUM(service), 0) AS service,
                        COALESCE(SUM(service_errors), 0) AS errors FROM route_traffic WHERE route_id = ? AND minute >= ?
                    """,
                arguments: [routeID, from]
            )
            return RouteTraffic(routeID: routeID, legacy: row?["legacy"] ?? 0, service: row?["service"] ?? 0, serviceErrors: row?["errors"] ?? 0)
        }
    }
}
