import Foundation
import StranglerCore
import StranglerStore

/// Builds a ``Report`` from the diff store with indexed queries, one route at a time; nothing
/// loads all rows.
public struct ReportBuilder: Sendable {
    /// The diff store the report is read from.
    public let store: any DiffStore
    /// The routes file's table, for modes, services and gates; nil without one.
    public let table: RouteTable?
    /// The routes file's path, for the report's heading; nil without one.
    public let routesFile: String?
    /// Top differing pointers per route.
    public var topPointers = 10
    /// Examples per top pointer.
    public var examplesPerPointer = 3

    /// - Parameters:
    ///   - store: the diff store to read.
    ///   - table: the routes file's table, for modes, services and gates. Without it every route
    ///     is reported in mode `unknown` and judged by the default gate.
    ///   - routesFile: the routes file's path, for the report's heading.
    public init(store: any DiffStore, table: RouteTable?, routesFile: String?) {
        self.store = store
        self.table = table
        self.routesFile = routesFile
    }

    /// The report for `routeIDs` (default: every route in the table or with comparisons) since `since`.
    public func build(since: Date, routeIDs: [String]? = nil, now: Date = Date()) async throws -> Report {
        var ids = routeIDs ?? []
        if routeIDs == nil {
            ids = table?.routes.filter { $0.service != nil }.map(\.id) ?? []
            for id in try await store.routeIDs(since: since) where !ids.contains(id) { ids.append(id) }
        }
        // Routes are independent: the store's pool reads them in parallel.
        let routes = try await withThrowingTaskGroup(of: (Int, RouteReport).self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask { (index, try await route(id, since: since, now: now)) }
            }
            var done: [(Int, RouteReport)] = []
            for try await item in group { done.append(item) }
            return done.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return Report(generatedAt: now, since: since, store: store.location, routesFile: routesFile, routes: routes)
    }

    private func route(_ id: String, since: Date, now: Date) async throws -> RouteReport {
        let route = table?.routes.first { $0.id == id }
        // The chart spans the data, not the whole window, so a young route still gets a line.
        let first = try await store.firstComparison(routeID: id, since: since) ?? since
        let bucket = TimelineWidth.fitting(now.timeIntervalSince(first)).rawValue
        let breakdown = try await store.breakdown(routeID: id, serviceUpstream: route?.service, since: first, bucketSeconds: bucket)
        let evidence = breakdown.evidence
        // Coverage is judged over the whole window asked for, not only the span with data.
        let coverage = try await store.coverage(routeID: id, from: since, to: now)
        let verdict = PromotionGate.evaluate(route?.gate, evidence: evidence).requiring(coverage)

        // The most frequent real pointers; noise and accepted ones are reported apart.
        var top: [PointerReport] = []
        let excuses = breakdown.excuses
        for item in breakdown.pointers where !excuses.excuses(pointer: item.pointer) {
            guard top.count < topPointers else { break }
            top.append(
                PointerReport(
                    pointer: item.pointer,
                    kinds: item.kinds,
                    count: item.count,
                    share: evidence.samples > 0 ? Double(item.count) / Double(evidence.samples) : 0,
                    firstSeen: item.firstSeen,
                    lastSeen: item.lastSeen,
                    examples: examplesPerPointer == 0
                        ? []
                        : try await store.examples(
                            routeID: id,
                            serviceUpstream: route?.service,
                            since: first,
                            pointer: item.pointer,
                            limit: examplesPerPointer
                        )
                )
            )
        }
        let accepted = breakdown.accepted.map { item in
            let pattern = PointerPattern(item.pointer)
            let covered = breakdown.pointers.filter { pattern.covers(pointer: $0.pointer) }
            return AcceptedReport(
                id: item.id,
                pointer: item.pointer,
                reason: item.reason,
                owner: item.owner,
                acceptedAt: item.acceptedAt,
                until: item.until,
                differences: covered.reduce(0) { $0 + $1.count }
            )
        }
        let counts = Dictionary(breakdown.pointers.map { ($0.pointer, $0.count) }, uniquingKeysWith: +)
        let matches = evidence.samples - evidence.mismatches
        return RouteReport(
            id: id,
            mode: route?.mode.rawValue ?? "unknown",
            path: route?.path.description,
            methods: route?.methods,
            legacy: route?.legacy,
            service: route?.service,
            samples: evidence.samples,
            matches: matches,
            mismatches: evidence.mismatches,
            noiseOnly: evidence.noiseOnly,
            acceptedOnly: evidence.acceptedOnly,
            uncomparable: evidence.uncomparable,
            matchRate: evidence.samples > 0 ? Double(matches) / Double(evidence.samples) : nil,
            matchRateInterval: ConfidenceInterval.wilson(successes: matches, trials: evidence.samples),
            mismatchesByKind: .init(status: evidence.statusMismatches, header: evidence.headerMismatches, body: evidence.bodyMismatches),
            skipped: evidence.skipped,
            latency: .init(
                legacy: .init(p50: evidence.legacyP50, p99: evidence.legacyP99),
                service: .init(p50: evidence.serviceP50, p99: evidence.serviceP99)
            ),
            gate: .init(holds: verdict.holds, checks: verdict.checks, settings: PromotionGate.effective(route?.gate)),
            coverage: coverage,
            topDifferences: top,
            noise: breakdown.noise.filter { $0.value > 0 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map {
                NoiseReport(
                    pointer: $0.key,
                    noisy: $0.value,
                    share: breakdown.noiseProbes > 0 ? Double($0.value) / Double(breakdown.noiseProbes) : 0,
                    differences: counts[$0.key] ?? 0
                )
            },
            noiseProbes: breakdown.noiseProbes,
            accepted: accepted,
            timeline: breakdown.buckets.map {
                TimelineBucket(
                    start: $0.start,
                    samples: $0.samples,
                    mismatches: $0.mismatches,
                    legacyMeanMs: $0.legacyMeanMs,
                    serviceMeanMs: $0.serviceMeanMs
                )
            },
            bucketSeconds: bucket
        )
    }
}

/// Confidence intervals for rates.
public enum ConfidenceInterval {
    /// The Wilson score interval at 95%: honest at small samples and at rates near 0 or 1,
    /// where the normal approximation gives nonsense. nil without trials.
    public static func wilson(successes: Int, trials: Int, z: Double = 1.959964) -> RouteReport.Interval? {
        guard trials > 0 else { return nil }
        let n = Double(trials)
        let p = Double(successes) / n
        let denominator = 1 + z * z / n
        let centre = (p + z * z / (2 * n)) / denominator
        let margin = z * ((p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()) / denominator
        return .init(low: max(0, centre - margin), high: min(1, centre + margin), confidence: 0.95)
    }
}
