import Foundation
import StranglerCore
import StranglerStore

/// Builds a ``Report`` from the diff store with indexed queries, one route at a time; nothing
/// loads all rows.
public struct ReportBuilder: Sendable {
    public let store: SQLiteDiffStore
    /// The routes file's table, for modes, services and gates; nil without one.
    public let table: RouteTable?
    public let routesFile: String?
    /// Top differing pointers per route.
    public var topPointers = 10
    /// Examples per top pointer.
    public var examplesPerPointer = 3

    public init(store: SQLiteDiffStore, table: RouteTable?, routesFile: String?) {
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
        var routes: [RouteReport] = []
        for id in ids {
            routes.append(try await route(id, since: since, now: now))
        }
        return Report(generatedAt: now, since: since, store: store.path, routesFile: routesFile, routes: routes)
    }

    /// Timeline bucket width: the smallest step that keeps the chart to at most 60 points.
    static func bucketSeconds(for span: TimeInterval) -> Int {
        let steps = [10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400]
        return steps.first { Double($0) * 60 >= span } ?? steps.last!
    }

    private func route(_ id: String, since: Date, now: Date) async throws -> RouteReport {
        let route = table?.routes.first { $0.id == id }
        let evidence = try await store.evidence(routeID: id, serviceUpstream: route?.service, since: since)
        let verdict = PromotionGate.evaluate(route?.gate, evidence: evidence)
        let noise = try await store.noise(route: id)
        let probes = try await store.noiseProbes(route: id)
        let accepted = try await store.acceptedDifferences(routeID: id)
        let patterns = accepted.map { PointerPattern($0.pointer) }

        // Classify the most frequent pointers; noise and accepted ones are reported apart.
        let counts = try await store.pointerCounts(routeID: id, since: since, limit: 200)
        var top: [PointerReport] = []
        var noiseDifferences: [String: Int] = [:]
        for item in counts {
            if noise[item.pointer].map({ $0 > 0 }) == true {
                noiseDifferences[item.pointer] = item.count
                continue
            }
            let segments = item.pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
            if item.pointer.hasPrefix("/"), patterns.contains(where: { $0.covers(segments) }) { continue }
            guard top.count < topPointers else { continue }
            top.append(
                PointerReport(
                    pointer: item.pointer, kinds: item.kinds, count: item.count,
                    share: evidence.samples > 0 ? Double(item.count) / Double(evidence.samples) : 0, firstSeen: item.firstSeen,
                    lastSeen: item.lastSeen,
                    examples: try await store.examples(routeID: id, since: since, pointer: item.pointer, limit: examplesPerPointer)
                )
            )
        }
        var acceptedReports: [AcceptedReport] = []
        for item in accepted {
            acceptedReports.append(
                AcceptedReport(
                    id: item.id, pointer: item.pointer, reason: item.reason, owner: item.owner, acceptedAt: item.acceptedAt,
                    until: item.until, differences: try await store.coveredCount(routeID: id, since: since, pattern: item.pointer)
                )
            )
        }
        // The chart spans the data, not the whole window, so a young route still gets a line.
        let first = try await store.firstComparison(routeID: id, since: since) ?? since
        let bucket = Self.bucketSeconds(for: now.timeIntervalSince(first))
        let matches = evidence.samples - evidence.mismatches
        return RouteReport(
            id: id, mode: route?.mode.rawValue ?? "unknown", path: route?.path.description, methods: route?.methods,
            legacy: route?.legacy, service: route?.service, samples: evidence.samples, matches: matches,
            mismatches: evidence.mismatches, noiseOnly: evidence.noiseOnly, acceptedOnly: evidence.acceptedOnly,
            uncomparable: evidence.uncomparable, matchRate: evidence.samples > 0 ? Double(matches) / Double(evidence.samples) : nil,
            matchRateInterval: ConfidenceInterval.wilson(successes: matches, trials: evidence.samples),
            mismatchesByKind: .init(status: evidence.statusMismatches, header: evidence.headerMismatches, body: evidence.bodyMismatches),
            skipped: evidence.skipped,
            latency: .init(
                legacy: .init(p50: evidence.legacyP50, p99: evidence.legacyP99),
                service: .init(p50: evidence.serviceP50, p99: evidence.serviceP99)),
            gate: .init(holds: verdict.holds, checks: verdict.checks, settings: PromotionGate.effective(route?.gate)),
            topDifferences: top,
            noise: noise.filter { $0.value > 0 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map {
                NoiseReport(
                    pointer: $0.key, noisy: $0.value, share: probes > 0 ? Double($0.value) / Double(probes) : 0,
                    differences: noiseDifferences[$0.key] ?? 0)
            },
            noiseProbes: probes, accepted: acceptedReports,
            timeline: try await store.timeline(routeID: id, since: first, bucketSeconds: bucket, serviceUpstream: route?.service),
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
