/// Requests one route served, by side, in one stretch of time.
public struct RouteTraffic: Sendable, Hashable {
    /// The route these counts are for.
    public var routeID: String
    /// Requests legacy served (as primary or as a fallback).
    public var legacy: Int
    /// Requests the service served.
    public var service: Int
    /// Of those, answers that failed: 5xx, connect failure or timeout.
    public var serviceErrors: Int

    /// Counts for `routeID`; each defaults to zero.
    public init(routeID: String, legacy: Int = 0, service: Int = 0, serviceErrors: Int = 0) {
        self.routeID = routeID
        self.legacy = legacy
        self.service = service
        self.serviceErrors = serviceErrors
    }

    /// Adds counts taken elsewhere (another event loop, another tick).
    public mutating func add(legacy: Int, service: Int, serviceErrors: Int) {
        self.legacy &+= legacy
        self.service &+= service
        self.serviceErrors &+= serviceErrors
    }
}
