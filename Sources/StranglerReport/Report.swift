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
    public var generatedAt: Date
    /// The window: comparisons recorded at or after `since`.
    public var since: Date
    public var store: String
    /// The routes file the modes and gates came from, if one was read.
    public var routesFile: String?
    public var routes: [RouteReport]

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
    public var id: String
    /// The route's mode in the routes file; `unknown` for a route no longer in it.
    public var mode: String
    public var path: String?
    public var methods: [String]?
    public var legacy: String?
    public var service: String?
    /// Comparisons that compared (matched or mismatched).
    public var samples: Int
    /// Samples that matched, noise and accepted differences excused.
    public var matches: Int
    public var mismatches: Int
    /// Mismatches whose only differences were learned noise; counted as matches.
    public var noiseOnly: Int
    /// Mismatches whose only differences were accepted (or noise); counted as matches.
    public var acceptedOnly: Int
    public var uncomparable: Int
    /// `matches / samples`; nil without samples.
    public var matchRate: Double?
    /// The 95% Wilson score interval of the match rate.
    public var matchRateInterval: Interval?
    public var mismatchesByKind: Kinds
    /// Comparisons that did not happen, by reason.
    public var skipped: [String: Int]
    public var latency: Latency
    /// The route's gate over this window's evidence.
    public var gate: Gate
    /// The pointers that differed most, noise and accepted ones left out (they are listed apart).
    public var topDifferences: [PointerReport]
    /// Pointers learned to differ between two answers of legacy itself.
    public var noise: [NoiseReport]
    public var noiseProbes: Int
    /// Accepted differences that apply to the route (active ones), with what they cover.
    public var accepted: [AcceptedReport]
    /// Match rate and latency over time.
    public var timeline: [TimelineBucket]
    /// Width of a timeline bucket in seconds.
    public var bucketSeconds: Int

    public struct Interval: Sendable, Codable, Hashable {
        public var low: Double
        public var high: Double
        public var confidence: Double
    }

    public struct Kinds: Sendable, Codable, Hashable {
        public var status: Int
        public var header: Int
        public var body: Int
    }

    public struct Latency: Sendable, Codable, Hashable {
        public var legacy: Percentiles
        public var service: Percentiles
    }

    public struct Percentiles: Sendable, Codable, Hashable {
        public var p50: Double?
        public var p99: Double?
    }

    public struct Gate: Sendable, Codable, Hashable {
        public var holds: Bool
        public var checks: [GateVerdict.Check]
        public var settings: GateSettings
    }
}

/// A pointer that differed, with its counts and examples.
public struct PointerReport: Sendable, Codable, Hashable {
    public var pointer: String
    public var kinds: [String]
    public var count: Int
    /// `count / samples` of the route.
    public var share: Double
    public var firstSeen: Date
    public var lastSeen: Date
    /// The newest few, redacted as stored.
    public var examples: [DifferenceExample]
}

/// A learned noise pointer.
public struct NoiseReport: Sendable, Codable, Hashable {
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
    public var id: Int64
    public var pointer: String
    public var reason: String
    public var owner: String
    public var acceptedAt: Date
    public var until: Date?
    /// Differences in the window it covers.
    public var differences: Int
}
