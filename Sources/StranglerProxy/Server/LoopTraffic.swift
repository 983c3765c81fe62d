import StranglerCore

/// Requests per route and side on one event loop, since the collector last took them.
///
/// Plain integers in arrays indexed like the live table's routes: counting costs the hot path
/// an index and an add, no lock and no hashing. The collector drains it on the loop itself.
struct LoopTraffic {
    /// Bumped on every table install, so a request that began under an older table counts
    /// against its route by id instead of by a stale index.
    private(set) var generation = 0
    private var counts: [RouteTraffic] = []
    private var carried: [String: RouteTraffic] = [:]

    /// Zeroed counters for a table's routes, made off the event loop (one per route).
    struct Counters: Sendable {
        fileprivate var counts: [RouteTraffic]

        init(_ table: RouteTable) {
            counts = table.routes.map { RouteTraffic(routeID: $0.id) }
        }

        fileprivate init(counts: [RouteTraffic]) {
            self.counts = counts
        }
    }

    /// Starts counting for a new table; counts so far are kept by route id.
    /// - Returns: the counters replaced, emptied, for the caller to release off the loop.
    mutating func install(_ fresh: Counters) -> Counters {
        fold()
        let replaced = Counters(counts: counts)
        counts = fresh.counts
        generation &+= 1
        return replaced
    }

    /// Counts one request (or an error) for the route at `index` of the table of `generation`.
    mutating func record(route index: Int, routeID: String, generation: Int, legacy: Int = 0, service: Int = 0, serviceErrors: Int = 0) {
        if generation == self.generation, index < counts.count {
            counts[index].legacy &+= legacy
            counts[index].service &+= service
            counts[index].serviceErrors &+= serviceErrors
        } else {
            carried[routeID, default: RouteTraffic(routeID: routeID)].add(legacy: legacy, service: service, serviceErrors: serviceErrors)
        }
    }

    /// Everything counted since the last drain, by route; the counters start again at zero.
    mutating func drain() -> [RouteTraffic] {
        fold()
        defer { carried.removeAll(keepingCapacity: true) }
        return carried.values.filter { $0.legacy + $0.service + $0.serviceErrors > 0 }
    }

    private mutating func fold() {
        for index in counts.indices where counts[index].legacy + counts[index].service + counts[index].serviceErrors > 0 {
            let item = counts[index]
            carried[item.routeID, default: RouteTraffic(routeID: item.routeID)].add(
                legacy: item.legacy,
                service: item.service,
                serviceErrors: item.serviceErrors
            )
            counts[index] = RouteTraffic(routeID: item.routeID)
        }
    }
}
