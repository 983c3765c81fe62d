import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import StranglerStore

/// The proxy's Prometheus metrics, exported on the admin listener's `/metrics`.
///
/// Metric objects are created through swift-metrics with an explicit factory (no global
/// bootstrap, so several proxies can live in one test process) and cached per event loop by
/// ``LoopMetrics``: the hot path only increments atomics.
public final class ProxyMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let reloadsOK: CoreMetrics.Counter
    let reloadsFailed: CoreMetrics.Counter
    /// Reloads dropped because a newer edit of the file came in while they were validated.
    package let reloadsSuperseded: CoreMetrics.Counter
    /// Run before each scrape, to refresh values that are read rather than counted.
    private let scrapeHooks = NIOLockedValueBox<[@Sendable (ProxyMetrics) -> Void]>([])
    /// Handles used off the event loops (worker, scrape hooks), created once per label set:
    /// creating one goes through the registry's lock and allocates.
    private let counters = NIOLockedValueBox<[HandleKey: CoreMetrics.Counter]>([:])
    private let timers = NIOLockedValueBox<[HandleKey: CoreMetrics.Timer]>([:])
    private let gauges = NIOLockedValueBox<[HandleKey: CoreMetrics.Gauge]>([:])

    /// A metric name and its label values (a name always has the same label names). A struct
    /// rather than one joined string: the comparison worker looks handles up several times per
    /// comparison, and building the string allocated each time.
    private struct HandleKey: Hashable {
        var name: String
        var first = ""
        var second = ""
        var third = ""

        init(_ name: String, _ labels: [(String, String)]) {
            precondition(labels.count <= 3, "metric \(name): at most three labels")
            self.name = name
            if labels.count > 0 { first = labels[0].1 }
            if labels.count > 1 { second = labels[1].1 }
            if labels.count > 2 { third = labels[2].1 }
        }
    }

    private func counter(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Counter {
        let key = HandleKey(name, labels)
        return counters.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
            cache[key] = counter
            return counter
        }
    }

    /// Creates the metrics in `registry`, with reload-duration buckets from 1 ms to 2 min.
    /// - Parameter registry: Where the metrics live; a fresh one by default, so each proxy (and
    ///   each test) has its own.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // A reload takes milliseconds for a small table and tens of seconds for a huge one.
        factory.durationHistogramBuckets[Self.reloadSeconds] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
        ]
        self.factory = factory
        self.reloadsOK = CoreMetrics.Counter(label: "strangler_route_reloads_total", dimensions: [("result", "ok")], factory: factory)
        self.reloadsFailed = CoreMetrics.Counter(label: "strangler_route_reloads_total", dimensions: [("result", "rejected")], factory: factory)
        self.reloadsSuperseded = CoreMetrics.Counter(
            label: "strangler_route_reloads_total",
            dimensions: [("result", "superseded")],
            factory: factory
        )
    }

    private static let reloadSeconds = "strangler_route_table_reload_seconds"

    /// Records how long one phase of a route table reload that went live took: `validate`
    /// (parsing and validating the file), `apply` (installing it on every event loop), `live`
    /// (from the look at the file that found it to every loop serving it) and `audit` (recording
    /// it in the audit trail, after it went live).
    public func recordReload(phase: String, _ duration: Duration) {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        timer(Self.reloadSeconds, [("phase", phase)]).recordNanoseconds(nanoseconds)
    }

    /// Prometheus text exposition of every metric.
    public func render() -> String {
        for hook in scrapeHooks.withLockedValue({ $0 }) { hook(self) }
        return registry.emitToString()
    }

    /// Registers `hook` to run before each scrape (queue depths, drop counts).
    public func onScrape(_ hook: @escaping @Sendable (ProxyMetrics) -> Void) {
        scrapeHooks.withLockedValue { $0.append(hook) }
    }

    /// Sets a gauge by name and labels.
    public func setGauge(_ name: String, labels: [(String, String)] = [], to value: Double) {
        let key = HandleKey(name, labels)
        let gauge = gauges.withLockedValue { cache in
            if let gauge = cache[key] { return gauge }
            let gauge = CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
            cache[key] = gauge
            return gauge
        }
        gauge.record(value)
    }

    /// Adds to a counter by name and labels.
    public func addToCounter(_ name: String, labels: [(String, String)] = [], _ amount: Int) {
        guard amount > 0 else { return }
        counter(name, labels).increment(by: amount)
    }

    private func timer(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Timer {
        let key = HandleKey(name, labels)
        return timers.withLockedValue { cache in
            if let timer = cache[key] { return timer }
            let timer = CoreMetrics.Timer(label: name, dimensions: labels, factory: factory)
            cache[key] = timer
            return timer
        }
    }

    func requestCounter(route: String, upstream: String, code: String) -> CoreMetrics.Counter {
        CoreMetrics.Counter(
            label: "strangler_requests_total",
            dimensions: [("route", route), ("upstream", upstream), ("code", code)],
            factory: factory
        )
    }

    func upstreamErrorCounter(upstream: String, kind: String) -> CoreMetrics.Counter {
        CoreMetrics.Counter(
            label: "strangler_upstream_errors_total",
            dimensions: [("upstream", upstream), ("error", kind)],
            factory: factory
        )
    }

    func shadowSkipCounter(route: String, reason: String) -> CoreMetrics.Counter {
        CoreMetrics.Counter(
            label: "strangler_shadow_skipped_total",
            dimensions: [("route", route), ("reason", reason)],
            factory: factory
        )
    }

    /// One route's comparison metrics: both sides' latency and the count by outcome.
    ///
    /// The comparison worker looks these up once per route per batch; one lookup per metric per
    /// comparison went through a lock and hashed the labels each time.
    public struct ComparisonHandles: Sendable {
        let primaryLatency: CoreMetrics.Timer
        let candidateLatency: CoreMetrics.Timer
        let outcomes: [ComparisonRecord.Outcome: CoreMetrics.Counter]

        /// The two answers a comparison has: the `side` label of `strangler_shadow_latency_seconds`.
        public enum Side: String, Sendable {
            /// The answer the client got.
            case primary
            /// The other side's answer, made for the comparison only.
            case candidate
        }

        /// Records one side's latency.
        public func recordLatency(_ side: Side, milliseconds: Double) {
            (side == .primary ? primaryLatency : candidateLatency).recordNanoseconds(Int64(milliseconds * 1_000_000))
        }

        /// Counts a finished comparison by outcome.
        public func recordOutcome(_ outcome: ComparisonRecord.Outcome) {
            outcomes[outcome]?.increment()
        }
    }

    /// The comparison metrics of `route`.
    public func comparisonHandles(route: String) -> ComparisonHandles {
        ComparisonHandles(
            primaryLatency: timer("strangler_shadow_latency_seconds", [("route", route), ("side", ComparisonHandles.Side.primary.rawValue)]),
            candidateLatency: timer("strangler_shadow_latency_seconds", [("route", route), ("side", ComparisonHandles.Side.candidate.rawValue)]),
            outcomes: Dictionary(
                uniqueKeysWithValues: ComparisonRecord.Outcome.allCases.map {
                    ($0, counter("strangler_comparisons_total", [("route", route), ("outcome", $0.rawValue)]))
                }
            )
        )
    }

    /// Counts a canary moved back to shadow by the proxy.
    public func recordAutoDemote(route: String) {
        counter("strangler_auto_demotions_total", [("route", route)]).increment()
    }

    /// Counts a route change made through the controls, by source (`cli`, `admin`, `file`, `auto`).
    public func recordRouteChange(source: RouteChange.Source) {
        counter("strangler_route_changes_total", [("source", source.rawValue)]).increment()
    }

    /// Counts a comparison that did not happen, by reason, off the event loop.
    public func recordSkip(route: String, reason: String) {
        counter("strangler_shadow_skipped_total", [("route", route), ("reason", reason)]).increment()
    }

    func fallbackCounter(route: String) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: "strangler_fallbacks_total", dimensions: [("route", route)], factory: factory)
    }
}

/// One event loop's cache of metric handles, so the hot path does no registry lookups.
///
/// Only atomic counters are touched per request. There is deliberately no latency histogram here
/// yet: swift-prometheus's histogram takes a lock per observation, shared by every event loop.
struct LoopMetrics {
    private struct RequestKey: Hashable {
        var route: String
        var upstream: String
        var statusClass: UInt
    }

    /// Two label values: (upstream, error) or (route, reason).
    private struct LabelPair: Hashable {
        var first: String
        var second: String
    }

    let metrics: ProxyMetrics
    private var requests: [RequestKey: CoreMetrics.Counter] = [:]
    private var lastRequest: (key: RequestKey, counter: CoreMetrics.Counter)?
    private var errors: [LabelPair: CoreMetrics.Counter] = [:]
    private var fallbacks: [String: CoreMetrics.Counter] = [:]
    private var shadowSkips: [LabelPair: CoreMetrics.Counter] = [:]

    init(metrics: ProxyMetrics) {
        self.metrics = metrics
    }

    mutating func recordRequest(route: String, upstream: String, status: UInt) {
        let key = RequestKey(route: route, upstream: upstream, statusClass: status / 100)
        // Traffic comes in runs of one route and upstream, whose strings share storage from
        // request to request, so comparing with the last key is cheaper than hashing two strings.
        if let last = lastRequest, last.key == key {
            last.counter.increment()
            return
        }
        Self.increment(&requests, key) {
            metrics.requestCounter(route: route, upstream: upstream, code: "\(status / 100)xx")
        }
        lastRequest = (key, requests[key]!)
    }

    mutating func recordUpstreamError(upstream: String, kind: String) {
        Self.increment(&errors, LabelPair(first: upstream, second: kind)) {
            metrics.upstreamErrorCounter(upstream: upstream, kind: kind)
        }
    }

    mutating func recordFallback(route: String) {
        Self.increment(&fallbacks, route) { metrics.fallbackCounter(route: route) }
    }

    /// A shadow not taken or not completed on the loop (sampling is not a skip).
    mutating func recordShadowSkip(route: String, reason: String) {
        Self.increment(&shadowSkips, LabelPair(first: route, second: reason)) {
            metrics.shadowSkipCounter(route: route, reason: reason)
        }
    }

    /// A client connection closed by one of its own bounds. Rare, so no handle is cached.
    func recordClientTimeout(_ kind: ClientTimeoutKind) {
        metrics.addToCounter("strangler_client_timeouts_total", labels: [("kind", kind.rawValue)], 1)
    }

    /// Increments the cached counter for `key`, creating it (one registry lookup) the first time.
    private static func increment<Key: Hashable>(
        _ cache: inout [Key: CoreMetrics.Counter],
        _ key: Key,
        make: () -> CoreMetrics.Counter
    ) {
        if let counter = cache[key] {
            counter.increment()
        } else {
            let counter = make()
            cache[key] = counter
            counter.increment()
        }
    }
}

/// Which of its own bounds closed a client connection; the raw value is the `kind` label of
/// `strangler_client_timeouts_total`.
enum ClientTimeoutKind: String {
    /// A request head did not arrive in time.
    case header
    /// The client stopped sending the request body.
    case body
    /// The client stopped taking the response.
    case send
    /// The connection sat idle between requests.
    case keepAlive = "keepalive"
}
