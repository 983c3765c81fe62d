import NIOHTTP1
import StranglerCore

/// Which side of a strangled route served a request, for the route's traffic counts.
enum TrafficSide: Equatable {
    case legacy
    case service
}

/// Where one request goes on its matched route: the upstream that serves it, the upstream that
/// gets a shadow copy, and whether a failed service answer may be replayed on legacy.
///
/// A pure function of the route, the request's head and the sampler: no channel, no metrics.
struct RouteChoice: Equatable {
    /// The upstream that serves the request.
    var upstream: String
    /// The upstream that gets a compared copy, if any (whether it does is decided later:
    /// sampling, write policy, concurrency).
    var shadowTarget: String?
    /// A failure of the serving upstream may be retried on legacy.
    var mayFallBack: Bool
    /// Which side serves, for the route's traffic counts.
    var side: TrafficSide

    /// Whether this request is in the canary's service share: by the sticky key's bucket when
    /// the request has one, else by chance.
    static func canaryServes(_ route: Route, head: ClientRequestHead, targetRouter: TargetRouter, sampler: inout Xorshift) -> Bool {
        guard let canary = route.canary, canary.percent > 0 else { return false }
        if canary.percent >= 100 { return true }
        switch canary.stickyKey {
        case .header(let name)?:
            if let value = head.firstValue(named: name) {
                return CanarySplit.servesService(bucket: CanarySplit.bucket(of: value.utf8), percent: canary.percent)
            }
        case .param(let name)?:
            if let value = CanarySplit.parameter(name, of: route.path, uri: targetRouter.routedPath(of: head.uri)) {
                return CanarySplit.servesService(bucket: CanarySplit.bucket(of: value.utf8), percent: canary.percent)
            }
        case nil:
            break
        }
        return sampler.unit() * 100 < canary.percent
    }
}

extension RouteChoice {
    /// Chooses where a request matched by `route` goes.
    ///
    /// - Parameters:
    ///   - targetRouter: gives the routed path a canary's sticky parameter is read from.
    ///   - sampler: decides a canary request without a sticky key.
    init(route: Route, head: ClientRequestHead, targetRouter: TargetRouter, sampler: inout Xorshift) {
        upstream = route.primaryUpstream
        shadowTarget = nil
        mayFallBack = route.fallsBackToLegacy && head.method.isIdempotent
        switch route.mode {
        case .legacy, .retired:
            break
        case .shadow:
            shadowTarget = route.service
        case .canary:
            if let service = route.service, Self.canaryServes(route, head: head, targetRouter: targetRouter, sampler: &sampler) {
                upstream = service
                if route.shadow != nil { shadowTarget = route.legacy }
            } else {
                mayFallBack = false
                if route.shadow != nil { shadowTarget = route.service }
            }
        case .service:
            // Reverse shadow: legacy still gets a compared copy while the service serves.
            if route.shadow != nil { shadowTarget = route.legacy }
        }
        side = upstream == route.legacy ? .legacy : .service
    }
}
