/// One entry of `routes` in `routes.json`: which requests it takes and where they go.
public struct Route: Sendable, Hashable {
    /// Stable identifier used by the CLI, the audit trail and the reports.
    public var id: String
    /// Methods this route takes, upper case. Empty means every method.
    public var methods: [String]
    /// The path template: literal segments, `{name}` for one segment, trailing `/**` for any rest.
    public var path: PathTemplate
    /// Predicates on the host, headers, query and cookies (`match`); empty for a route that
    /// takes every request on its path.
    public var match: RouteMatch
    /// The lifecycle stage of the route.
    public var mode: RouteMode
    /// The upstream that plays "legacy" for this route (the table's `defaultUpstream` unless set).
    public var legacy: String
    /// The extracted service's upstream, if the route has one.
    public var service: String?
    /// In `service` mode: retry an idempotent request once on legacy when the service fails.
    public var fallback: Bool
    /// Shadow settings (`shadow` object).
    public var shadow: ShadowSettings?
    /// Canary settings (`canary` object).
    public var canary: CanarySettings?
    /// Comparison rules (`compare` object), used by shadow comparison.
    public var compare: CompareSettings?
    /// Promotion gate (`gate` object).
    public var gate: GateSettings?

    /// A route from its parts, as the validator builds it from `routes.json`. `legacy` is the
    /// resolved upstream name: the table's `defaultUpstream` when the route sets none.
    public init(
        id: String,
        methods: [String] = [],
        path: PathTemplate,
        match: RouteMatch = RouteMatch(),
        mode: RouteMode,
        legacy: String,
        service: String? = nil,
        fallback: Bool = false,
        shadow: ShadowSettings? = nil,
        canary: CanarySettings? = nil,
        compare: CompareSettings? = nil,
        gate: GateSettings? = nil
    ) {
        self.id = id
        self.methods = methods
        self.path = path
        self.match = match
        self.mode = mode
        self.legacy = legacy
        self.service = service
        self.fallback = fallback
        self.shadow = shadow
        self.canary = canary
        self.compare = compare
        self.gate = gate
    }

    /// The upstream that serves the client for this route in its current mode, before any
    /// canary split (a canary's service share is decided per request by the proxy).
    public var primaryUpstream: String {
        switch mode {
        case .legacy, .shadow, .canary: legacy
        case .service, .retired: service ?? legacy
        }
    }

    /// Whether a failed service call may be retried on legacy: always for a canary's service
    /// share, and in `service` mode when `fallback` is on.
    public var fallsBackToLegacy: Bool {
        service != nil && (mode == .canary || (mode == .service && fallback))
    }
}

/// `shadow` settings of a route.
public struct ShadowSettings: Sendable, Hashable {
    /// Share of requests copied to the other side, 0...1.
    public var sampleRate: Double
    /// How writes are treated; nil means the default (`skip`).
    public var writes: ShadowWrites?
    /// The shadow call's own timeout; nil means the service upstream's `timeoutMs`.
    public var timeoutMs: Int?

    /// Defaults: every request copied, writes skipped, the service upstream's own timeout.
    public init(sampleRate: Double = 1.0, writes: ShadowWrites? = nil, timeoutMs: Int? = nil) {
        self.sampleRate = sampleRate
        self.writes = writes
        self.timeoutMs = timeoutMs
    }
}

/// `canary` settings of a route.
public struct CanarySettings: Sendable, Hashable {
    /// Percentage of traffic served by the service, 0...100.
    public var percent: Double
    /// What keeps one caller on one side.
    public var stickyKey: StickyKey?

    /// - Parameters:
    ///   - percent: the share of requests the service serves, 0...100.
    ///   - stickyKey: what keeps one caller on one side; without it (or when a request lacks the
    ///     key) a request is placed by chance.
    public init(percent: Double, stickyKey: StickyKey? = nil) {
        self.percent = percent
        self.stickyKey = stickyKey
    }
}

/// What a canary split is sticky by: `"header:X-Customer-Id"` or `"param:orderId"`.
public enum StickyKey: Sendable, Hashable, CustomStringConvertible {
    /// Sticky by the value of this request header.
    case header(String)
    /// Sticky by the raw text of this `{param}` segment of the route's path.
    case param(String)

    /// The spelling `routes.json` uses: `header:NAME` or `param:NAME`.
    public var description: String {
        switch self {
        case .header(let name): "header:\(name)"
        case .param(let name): "param:\(name)"
        }
    }
}

/// `compare` settings of a route (README.md, "The route table: `routes.json`", the `compare` key).
public struct CompareSettings: Sendable, Hashable {
    /// JSON pointers whose differences are ignored; `*` matches any one segment.
    public var ignore: [String] = []
    /// Response headers compared (lower-cased); others are not.
    public var headers: [String] = []
    /// Array pointer → key field, to compare arrays as keyed sets.
    public var arrays: [String: String] = [:]
    /// Relative tolerance for numbers (0.005 = half a percent).
    public var numericTolerance: Double = 0
    /// Treat `"12.50"` and `12.5` as equal.
    public var coerceNumericStrings: Bool = false
    /// Learn noisy pointers by calling legacy twice.
    public var learnNoise: Bool = false
    /// Pointers masked before storage.
    public var redact: [String] = []

    /// No rules: nothing ignored, no header compared, arrays by index, numbers exact, no noise
    /// learned and no pointer redacted (card numbers and e-mail addresses are masked regardless).
    public init() {}
}

/// `gate` settings of a route: what the evidence must show before a promotion.
public struct GateSettings: Sendable, Hashable, Codable {
    /// Comparisons needed before a promotion is considered.
    public var minSamples: Int?
    /// Highest acceptable share of mismatching comparisons, 0...1.
    public var maxMismatchRate: Double?
    /// Highest acceptable service p99 over legacy p99.
    public var maxLatencyRatio: Double?
    /// Highest acceptable share of failed service answers (5xx, connect failure, timeout) while
    /// the service serves a canary share; breaking it demotes the route automatically.
    public var maxErrorRate: Double?

    /// A gate from its limits. A nil limit is filled from ``PromotionGate/defaults`` when the gate
    /// is applied; `maxLatencyRatio` has no default, so nil there means no latency check.
    public init(
        minSamples: Int? = nil,
        maxMismatchRate: Double? = nil,
        maxLatencyRatio: Double? = nil,
        maxErrorRate: Double? = nil
    ) {
        self.minSamples = minSamples
        self.maxMismatchRate = maxMismatchRate
        self.maxLatencyRatio = maxLatencyRatio
        self.maxErrorRate = maxErrorRate
    }
}
