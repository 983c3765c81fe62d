import Foundation
import StranglerCore
import StranglerStore

/// A diff report: per route, how often the service disagreed with legacy, where, with examples.
///
/// Its JSON encoding (``Report/json()``) is the stable format for scripts, documented in
/// docs/report-json.md: members are only ever added, and `schemaVersion` changes if one ever
/// changes meaning. Times are ISO 8601 UTC; rates are fractions (0.97, not 97).
public struct Report: Sendable, Codable {
    /// Bumped only when a member changes meaning or is removed.
    public var schemaVersion = 1
    /// When the report was made.
    public var generatedAt: Date
    /// The window: comparisons recorded at or after `since`.
    public var since: Date
    /// The diff store's path, as given.
    public var store: String
    /// The routes file the modes and gates came from, if one was read.
    public var routesFile: String?
    /// The routes reported, in the order asked for; by default the table's routes that have a
    /// service, then any other route with comparisons in the window.
    public var routes: [RouteReport]

    /// A report from its parts; ``ReportBuilder`` makes them from the store.
    public init(generatedAt: Date, since: Date, store: String, routesFile: String?, routes: [RouteReport]) {
        self.generatedAt = generatedAt
        self.since = since
        self.store = store
        self.routesFile = routesFile
        self.routes = routes
    }

    /// The stable JSON form: sorted keys, ISO 8601 dates.
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    /// Reads the JSON form back.
    public static func decode(_ data: Data) throws -> Report {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(Report.self, from: data)
    }
}

/// One route's part of a report.
public struct RouteReport: Sendable, Codable {
    /// The route's id.
    public var id: String
    /// The route's mode in the routes file; `unknown` for a route no longer in it.
    public var mode: String
    /// The path template as written; nil for a route no longer in the routes file.
    public var path: String?
    /// The route's methods, empty for every method; nil for a route no longer in the routes file.
    public var methods: [String]?
    /// The upstream playing legacy; nil for a route no longer in the routes file.
    public var legacy: String?
    /// The service's upstream; nil for a route without one or no longer in the routes file.
    public var service: String?
    /// Comparisons that compared (matched or mismatched).
    public var samples: Int
    /// Samples that matched, noise and accepted differences excused.
    public var matches: Int
    /// Samples that disagreed: a differing status or compared header, or a body difference that
    /// is neither learned noise nor accepted.
    public var mismatches: Int
    /// Mismatches whose only differences were learned noise; counted as matches.
    public var noiseOnly: Int
    /// Mismatches whose only differences were accepted (or noise); counted as matches.
    public var acceptedOnly: Int
    /// Comparisons that could not be made (a body that should be JSON and is not, a decode
    /// failure...); not samples.
    public var uncomparable: Int
    /// `matches / samples`; nil without samples.
    public var matchRate: Double?
    /// The 95% Wilson score interval of the match rate.
    public var matchRateInterval: Interval?
    /// Mismatches by kind of difference; one comparison can count under several kinds.
    public var mismatchesByKind: Kinds
    /// Comparisons that did not happen, by reason.
    public var skipped: [String: Int]
    /// p50 and p99 of each side over the samples, whichever side served the client.
    public var latency: Latency
    /// The route's gate over this window's evidence; its `coverage` check fails while the
    /// evidence has gaps.
    public var gate: Gate
    /// How much of the window the evidence covers, with its gaps (retention, dropped minutes).
    public var coverage: EvidenceCoverage
    /// The pointers that differed most, noise and accepted ones left out (they are listed apart).
    public var topDifferences: [PointerReport]
    /// Pointers learned to differ between two answers of legacy itself.
    public var noise: [NoiseReport]
    /// Noise probes recorded for the route: safe requests sent to legacy a second time. Counted
    /// since the route's noise was first learned, not only in the window.
    public var noiseProbes: Int
    /// Accepted differences that apply to the route (active ones), with what they cover.
    public var accepted: [AcceptedReport]
    /// Match rate and latency over time.
    public var timeline: [TimelineBucket]
    /// Width of a timeline bucket in seconds.
    public var bucketSeconds: Int

    /// A confidence interval of a rate.
    public struct Interval: Sendable, Codable, Hashable {
        /// The lower bound, a fraction.
        public var low: Double
        /// The upper bound, a fraction.
        public var high: Double
        /// The confidence level: 0.95.
        public var confidence: Double
    }

    /// Mismatches by kind of difference.
    public struct Kinds: Sendable, Codable, Hashable {
        /// Mismatches with a differing status code.
        public var status: Int
        /// Mismatches with a differing header listed in `compare.headers`.
        public var header: Int
        /// Mismatches with a body difference that is neither learned noise nor accepted.
        public var body: Int
    }

    /// Latency percentiles of each side, over the same requests.
    public struct Latency: Sendable, Codable, Hashable {
        /// Legacy's answers.
        public var legacy: Percentiles
        /// The service's answers.
        public var service: Percentiles
    }

    /// Two percentiles of one side's latency, in milliseconds at 0.1 ms resolution; nil without
    /// samples.
    public struct Percentiles: Sendable, Codable, Hashable {
        /// The median.
        public var p50: Double?
        /// The 99th percentile: what a gate's `maxLatencyRatio` compares.
        public var p99: Double?
    }

    /// The route's gate over the window: the verdict, and the settings it was judged by.
    public struct Gate: Sendable, Codable, Hashable {
        /// Whether every check passed.
        public var holds: Bool
        /// Every check, with its figure and its limit: the checks `strangler routes promote` applies.
        public var checks: [GateVerdict.Check]
        /// The gate judged by: the route's own, with the defaults filled in.
        public var settings: GateSettings
    }
}

/// A pointer that differed, with its counts and examples.
public struct PointerReport: Sendable, Codable, Hashable {
    /// The pointer: RFC 6901 into the body, a header's name, or `""` for the status.
    public var pointer: String
    /// The kinds of difference seen there (`changed`, `missing`...), sorted.
    public var kinds: [String]
    /// Comparisons in the window that differed there.
    public var count: Int
    /// `count / samples` of the route.
    public var share: Double
    /// When a comparison in the window first differed there.
    public var firstSeen: Date
    /// When a comparison in the window last differed there: whether it still happens after a fix.
    public var lastSeen: Date
    /// The newest few, redacted as stored.
    public var examples: [DifferenceExample]
}

/// A learned noise pointer.
public struct NoiseReport: Sendable, Codable, Hashable {
    /// The body pointer where legacy differed from itself.
    public var pointer: String
    /// Probes in which legacy differed from itself here.
    public var noisy: Int
    /// Share of the route's probes.
    public var share: Double
    /// Comparisons in the window with a difference here (excused).
    public var differences: Int
}

/// An accepted difference and what it covered in the window.
public struct AcceptedReport: Sendable, Codable, Hashable {
    /// The accepted difference's id, as `strangler diffs revoke` takes it.
    public var id: Int64
    /// The pattern accepted: it covers itself and everything under it; `*` is any one segment.
    public var pointer: String
    /// Why it was accepted.
    public var reason: String
    /// Who accepted it.
    public var owner: String
    /// When it was accepted.
    public var acceptedAt: Date
    /// When it lapses; nil for never.
    public var until: Date?
    /// Differences in the window it covers.
    public var differences: Int
}
