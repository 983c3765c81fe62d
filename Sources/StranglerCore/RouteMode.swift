/// Where a route stands in the strangler-fig lifecycle (README.md, "Operating a migration"; what
/// each mode does is under "The route table: `routes.json`", Modes).
///
/// The order of the cases is the promotion order: `legacy → shadow → canary → service → retired`.
public enum RouteMode: String, Sendable, CaseIterable, Codable, Comparable {
    /// Legacy serves every request; nobody else sees it.
    case legacy
    /// Legacy serves; the service gets a copy to compare.
    case shadow
    /// The service serves a sticky share of traffic; legacy the rest.
    case canary
    /// The service serves; legacy may get a copy ("reverse shadow") and may be the fallback.
    case service
    /// The service serves and the monolith function is gone: no copy, no fallback.
    case retired

    /// Promotion order: `legacy` < `shadow` < `canary` < `service` < `retired`.
    public static func < (lhs: RouteMode, rhs: RouteMode) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// The next stage along `legacy → shadow → canary → service → retired`; nil after `retired`.
    public var promoted: RouteMode? {
        let index = Self.allCases.firstIndex(of: self)!
        return index + 1 < Self.allCases.count ? Self.allCases[index + 1] : nil
    }

    /// The previous stage; nil before `shadow`.
    public var demoted: RouteMode? {
        let index = Self.allCases.firstIndex(of: self)!
        return index > 0 ? Self.allCases[index - 1] : nil
    }

    /// Whether leaving this mode forward needs the route's gate to hold: the evidence from
    /// comparisons decides promotions out of `shadow` and `canary`.
    public var promotionNeedsGate: Bool {
        self == .shadow || self == .canary
    }
}

/// How shadowing treats requests that change state (README.md, "The route table: `routes.json`",
/// Shadow mode).
///
/// A copied write takes effect twice: a second `POST /orders` places a second order, a second
/// capture charges twice. So writes are skipped unless the route says otherwise; a `dry-run`
/// service must answer with what it would have done and commit nothing.
public enum ShadowWrites: String, Sendable, CaseIterable, Codable {
    /// Writes are never copied to the other side.
    case skip
    /// Writes are copied with `X-Strangler-Shadow: dry-run` and an `Idempotency-Key`.
    case dryRun = "dry-run"
    /// Writes are copied as they are: an explicit opt-in.
    case mirror
}
