/// The exchange's route and upstream as the route's traffic counts them (auto-demote and the
/// traffic report read these counts): kept beside the fields they set, so that the handler
/// records each step with one call and the counts can't drift from the record.
extension ExchangeRecord {
    /// Takes the matched route (`entry`, at `index` in the live table) and the upstream the
    /// `choice` picked, and counts the request for the side that serves it. The route is held
    /// by reference (``LoopContext/RouteEntry``): the record copies none of its fields.
    mutating func take(_ entry: LoopContext.RouteEntry, index: Int, choice: RouteChoice, traffic: inout LoopTraffic) {
        matched = entry
        routeID = entry.route.id
        routeIndex = index
        trafficGeneration = traffic.generation
        upstreamName = choice.upstream
        let servedByLegacy = choice.side == .legacy
        traffic.record(
            route: index,
            routeID: entry.route.id,
            generation: trafficGeneration,
            legacy: servedByLegacy ? 1 : 0,
            service: servedByLegacy ? 0 : 1
        )
    }

    /// Counts a failed answer when the route's service gave it; legacy's failures and the
    /// default route's are not the service's record.
    func recordServiceError(in traffic: inout LoopTraffic) {
        guard let route, upstreamName == route.service, routeIndex >= 0 else { return }
        traffic.record(route: routeIndex, routeID: route.id, generation: trafficGeneration, serviceErrors: 1)
    }

    /// Moves the exchange to `legacy` after the service failed it, counting the replay for
    /// legacy.
    mutating func fallBack(to legacy: String, traffic: inout LoopTraffic) {
        if routeIndex >= 0 {
            traffic.record(route: routeIndex, routeID: routeID, generation: trafficGeneration, legacy: 1)
        }
        upstreamName = legacy
    }
}
