import Foundation

/// What the diff store knows about one route's comparisons in the evidence window: what a
/// promotion is judged on (README.md, "Operating a migration"; "Reviewing a migration" says how
/// to read each figure).
public struct RouteEvidence: Sendable, Hashable, Codable {
    /// Comparisons that compared (matched or mismatched) in the window.
    public var samples: Int
    /// Of those, mismatches once noise and accepted differences are excused: a differing status
    /// or compared header, or a body difference that is neither learned noise nor accepted.
    public var mismatches: Int
    /// Comparisons whose only differences were learned noise (counted as matches).
    public var noiseOnly: Int
    /// Comparisons whose only differences were accepted by a reviewer, or noise (counted as matches).
    public var acceptedOnly: Int
    /// Comparisons where the two sides answered with different status codes.
    public var statusMismatches: Int
    /// Comparisons with a differing compared header.
    public var headerMismatches: Int
    /// Comparisons with a body difference that is neither learned noise nor accepted.
    public var bodyMismatches: Int
    /// Comparisons that could not be made (body not parseable, decode failed...).
    public var uncomparable: Int
    /// Shadows that did not happen, by reason (`candidate_timeout`, `body_too_large`...).
    public var skipped: [String: Int]
    /// 50th and 99th percentile latency of each side, in milliseconds; nil without samples.
    public var legacyP50: Double?
    /// Legacy's 99th percentile latency, in milliseconds; nil without samples.
    public var legacyP99: Double?
    /// The service's 50th percentile latency, in milliseconds; nil without samples.
    public var serviceP50: Double?
    /// The service's 99th percentile latency, in milliseconds; nil without samples.
    public var serviceP99: Double?

    /// Evidence from its figures; counts default to zero and latencies to unknown.
    public init(
        samples: Int = 0,
        mismatches: Int = 0,
        noiseOnly: Int = 0,
        acceptedOnly: Int = 0,
        statusMismatches: Int = 0,
        headerMismatches: Int = 0,
        bodyMismatches: Int = 0,
        uncomparable: Int = 0,
        skipped: [String: Int] = [:],
        legacyP50: Double? = nil,
        legacyP99: Double? = nil,
        serviceP50: Double? = nil,
        serviceP99: Double? = nil
    ) {
        self.samples = samples
        self.mismatches = mismatches
        self.noiseOnly = noiseOnly
        self.acceptedOnly = acceptedOnly
        self.statusMismatches = statusMismatches
        self.headerMismatches = headerMismatches
        self.bodyMismatches = bodyMismatches
        self.uncomparable = uncomparable
        self.skipped = skipped
        self.legacyP50 = legacyP50
        self.legacyP99 = legacyP99
        self.serviceP50 = serviceP50
        self.serviceP99 = serviceP99
    }

    /// Share of samples that mismatched, noise and accepted differences excused; nil without
    /// samples.
    public var mismatchRate: Double? {
        samples > 0 ? Double(mismatches) / Double(samples) : nil
    }

    /// Service p99 over legacy p99; nil when either is unknown or legacy's is zero.
    public var latencyRatio: Double? {
        guard let service = serviceP99, let legacy = legacyP99, legacy > 0 else { return nil }
        return service / legacy
    }
}

/// The verdict of a route's gate over its evidence: every check with its figure and its limit.
public struct GateVerdict: Sendable, Hashable, Codable {
    /// One condition of the gate.
    public struct Check: Sendable, Hashable, Codable {
        /// `minSamples`, `maxMismatchRate`, `statusMismatches`, `maxLatencyRatio`.
        public var name: String
        /// The figure, as shown to people (`412`, `0.24%`, `1.31×`).
        public var actual: String
        /// The limit, as shown (`≥ 500`, `≤ 0.10%`).
        public var limit: String
        /// Whether the figure is within the limit.
        public var passed: Bool

        /// A check from its parts.
        public init(name: String, actual: String, limit: String, passed: Bool) {
            self.name = name
            self.actual = actual
            self.limit = limit
            self.passed = passed
        }
    }

    /// The checks, in the order ``PromotionGate/evaluate(_:evidence:)`` makes them: `minSamples`,
    /// `maxMismatchRate`, `statusMismatches`, then `maxLatencyRatio` when the gate sets one.
    public var checks: [Check]

    /// Whether every check passed.
    public var holds: Bool { checks.allSatisfy(\.passed) }

    /// One line per check: `FAIL minSamples: 412 (gate ≥ 500)`, or `ok  ` in front when it passed.
    public var lines: [String] {
        checks.map { "\($0.passed ? "ok  " : "FAIL") \($0.name): \($0.actual) (gate \($0.limit))" }
    }
}

/// Judges a route's evidence against its `gate` (README.md: the `gate` key under "The route table:
/// `routes.json`", and the rules under "Operating a migration").
///
/// A route without a `gate` is held to ``defaults``: a promotion on no evidence is never the
/// default. Status-code mismatches are never acceptable, whatever the gate says.
public enum PromotionGate {
    /// The gate of a route that sets none.
    public static let defaults = GateSettings(minSamples: 100, maxMismatchRate: 0.01, maxLatencyRatio: nil, maxErrorRate: 0.01)

    /// The gate that applies to a route whose `gate` is `gate`: its own values, the defaults
    /// where it sets none.
    public static func effective(_ gate: GateSettings?) -> GateSettings {
        GateSettings(
            minSamples: gate?.minSamples ?? defaults.minSamples,
            maxMismatchRate: gate?.maxMismatchRate ?? defaults.maxMismatchRate,
            maxLatencyRatio: gate?.maxLatencyRatio ?? defaults.maxLatencyRatio,
            maxErrorRate: gate?.maxErrorRate ?? defaults.maxErrorRate
        )
    }

    /// Every check of the effective gate over `evidence`.
    public static func evaluate(_ gate: GateSettings?, evidence: RouteEvidence) -> GateVerdict {
        let gate = effective(gate)
        var checks: [GateVerdict.Check] = []
        if let minimum = gate.minSamples {
            checks.append(.init(name: "minSamples", actual: "\(evidence.samples)", limit: "≥ \(minimum)", passed: evidence.samples >= minimum))
        }
        if let limit = gate.maxMismatchRate {
            let rate = evidence.mismatchRate
            checks.append(
                .init(
                    name: "maxMismatchRate",
                    actual: rate.map { "\(percent($0)) (\(evidence.mismatches) of \(evidence.samples), noise and accepted excluded)" }
                        ?? "no samples",
                    limit: "≤ \(percent(limit))",
                    passed: rate.map { $0 <= limit } ?? false
                )
            )
        }
        checks.append(
            .init(
                name: "statusMismatches",
                actual: "\(evidence.statusMismatches)",
                limit: "= 0",
                passed: evidence.statusMismatches == 0
            )
        )
        if let limit = gate.maxLatencyRatio {
            let ratio = evidence.latencyRatio
            let figures = ratio.map {
                String(format: "%.2f× (service p99 %.1f ms, legacy p99 %.1f ms)", $0, evidence.serviceP99 ?? 0, evidence.legacyP99 ?? 0)
            }
            checks.append(
                .init(
                    name: "maxLatencyRatio",
                    actual: figures ?? "no latencies",
                    limit: String(format: "≤ %.2f×", limit),
                    passed: ratio.map { $0 <= limit } ?? false
                )
            )
        }
        return GateVerdict(checks: checks)
    }

    /// `0.24%`, with enough digits for small gates.
    public static func percent(_ value: Double) -> String {
        let scaled = value * 100
        if scaled == 0 || scaled >= 10 { return String(format: "%.1f%%", scaled) }
        if scaled >= 0.1 { return String(format: "%.2f%%", scaled) }
        return String(format: "%.3f%%", scaled)
    }
}
