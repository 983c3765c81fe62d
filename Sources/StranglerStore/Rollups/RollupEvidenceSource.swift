import Foundation

/// What a store reads a route's evidence from: the window's rollups, the route's learned noise
/// and its accepted differences. Both stores are one, so both read a breakdown the same way.
protocol RollupEvidenceSource: AcceptedDifferenceStore {
    /// The route's rollups for the window from `since`, from the levels ``RollupReadPlan`` picks.
    func windowRollups(routeID: String, since: Date, bucketSeconds: Int?) async throws -> [RouteMinuteRollup]
    /// The route's learned noise: pointer → probes in which legacy differed from itself there.
    func noise(route: String) async throws -> [String: Int]
    /// Noise probes recorded for the route.
    func noiseProbes(route: String) async throws -> Int
}

extension RollupEvidenceSource {
    /// A route's comparisons since `since`, read from its rollups, in buckets of
    /// `bucketSeconds` aligned on UTC (one bucket from `since` when nil or not a
    /// ``TimelineWidth``, whose finest is a minute). Whole hours are read from the hour
    /// rollups and the rest from minutes (``RollupReadPlan``): a window that starts inside a
    /// minute counts that whole minute, and one that starts before the minutes still kept counts
    /// its whole first hour.
    ///
    /// A mismatch whose every body difference is learned noise or accepted counts as a match
    /// (``RollupEvidence``), judged with the noise and accepted differences known now: the
    /// rollups count mismatches by the set of pointers they differed in, so this is exact.
    func rollupBreakdown(routeID: String, serviceUpstream: String?, since: Date, bucketSeconds: Int?) async throws -> RouteBreakdown {
        let width = bucketSeconds.flatMap { TimelineWidth(seconds: $0) }
        return RouteBreakdown(
            rollups: try await windowRollups(routeID: routeID, since: since, bucketSeconds: width?.rawValue),
            noise: try await noise(route: routeID),
            noiseProbes: try await noiseProbes(route: routeID),
            accepted: try await acceptedDifferences(routeID: routeID, includeInactive: false),
            serviceUpstream: serviceUpstream,
            since: since,
            bucketSeconds: bucketSeconds
        )
    }
}
