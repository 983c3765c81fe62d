import Foundation
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore

/// `GET /api/routes`: the live table with its version, load time and last reload error.
public struct LiveTableDocument: Codable, Sendable {
    public var version: String
    public var loadedAt: Date
    public var source: String?
    public var loads: Int
    public var defaultUpstream: String
    public var upstreams: [UpstreamDocument]
    public var routes: [RouteDocument]
    public var lastReloadError: ReloadErrorDocument?

    public init(status: RouteTableStatus) {
        version = status.table.version
        loadedAt = status.loadedAt
        source = status.source
        loads = status.loads
        defaultUpstream = status.table.defaultUpstream
        upstreams = status.table.upstreams.values.sorted { $0.name < $1.name }.map(UpstreamDocument.init)
        routes = status.table.routes.map(RouteDocument.init)
        lastReloadError = status.lastError.map(ReloadErrorDocument.init)
    }
}

public struct UpstreamDocument: Codable, Sendable {
    public var name: String
    public var url: String
    public var connectTimeoutMs: Int
    public var timeoutMs: Int
    public var maxConnectionsPerLoop: Int
    public var idleTimeoutMs: Int

    public init(_ upstream: Upstream) {
        name = upstream.name
        url = upstream.url
        connectTimeoutMs = upstream.connectTimeoutMs
        timeoutMs = upstream.timeoutMs
        maxConnectionsPerLoop = upstream.maxConnectionsPerLoop
        idleTimeoutMs = upstream.idleTimeoutMs
    }
}

/// A route as the admin API shows it.
public struct RouteDocument: Codable, Sendable {
    public struct Canary: Codable, Sendable {
        public var percent: Double
        public var stickyKey: String?
    }

    public var id: String
    public var methods: [String]
    public var path: String
    public var mode: String
    public var legacy: String
    public var service: String?
    public var fallback: Bool
    /// Who serves the client; for a canary, who serves the rest.
    public var servedBy: String
    public var canary: Canary?
    /// The gate that applies: the route's values, the defaults where it sets none.
    public var gate: GateSettings

    public init(_ route: Route) {
        id = route.id
        methods = route.methods
        path = route.path.description
        mode = route.mode.rawValue
        legacy = route.legacy
        service = route.service
        fallback = route.fallback
        servedBy = route.primaryUpstream
        canary = route.canary.map { Canary(percent: $0.percent, stickyKey: $0.stickyKey?.description) }
        gate = PromotionGate.effective(route.gate)
    }
}

/// A gate's verdict: whether it holds, and each check with its figure and limit.
public struct VerdictDocument: Codable, Sendable {
    public var holds: Bool
    public var checks: [GateVerdict.Check]

    public init(_ verdict: GateVerdict) {
        holds = verdict.holds
        checks = verdict.checks
    }
}

/// `GET /api/routes/{id}/stats`: a route with its evidence and the verdict of its gate.
public struct RouteStatusDocument: Codable, Sendable {
    public struct Traffic: Codable, Sendable {
        public var legacy: Int
        public var service: Int
        public var serviceErrors: Int
    }

    public var route: RouteDocument
    public var evidenceSince: Date
    public var evidence: RouteEvidence
    public var matchRate: Double?
    public var gate: VerdictDocument
    public var lastLegacyTraffic: Date?
    public var recentTraffic: Traffic

    public init(_ inspection: RouteInspection) {
        route = RouteDocument(inspection.route)
        evidenceSince = inspection.evidenceSince
        evidence = inspection.evidence
        matchRate = inspection.evidence.mismatchRate.map { 1 - $0 }
        gate = VerdictDocument(inspection.verdict)
        lastLegacyTraffic = inspection.lastLegacyTraffic
        recentTraffic = Traffic(
            legacy: inspection.recentTraffic.legacy, service: inspection.recentTraffic.service,
            serviceErrors: inspection.recentTraffic.serviceErrors)
    }
}

/// One audit row.
public struct ChangeDocument: Codable, Sendable {
    public var id: Int64?
    public var changedAt: Date
    public var actor: String
    public var source: String
    public var routeId: String?
    public var reason: String?
    public var modeBefore: String?
    public var modeAfter: String?
    public var before: JSONValue?
    public var after: JSONValue?
    public var tableVersionBefore: String?
    public var tableVersionAfter: String

    public init(_ change: RouteChange) {
        id = change.id
        changedAt = change.changedAt
        actor = change.actor
        source = change.source.rawValue
        routeId = change.routeID
        reason = change.reason
        (modeBefore, modeAfter) = change.modes
        before = change.before.flatMap { try? JSONValue.parse(Data($0.utf8)) }
        after = change.after.flatMap { try? JSONValue.parse(Data($0.utf8)) }
        tableVersionBefore = change.tableVersionBefore
        tableVersionAfter = change.tableVersionAfter
    }
}

public struct ChangeListDocument: Codable, Sendable {
    public var changes: [ChangeDocument]
}

/// What a write did.
public struct OperationDocument: Codable, Sendable {
    public var changed: Bool
    public var summary: String
    public var tableVersionBefore: String
    public var tableVersionAfter: String
    public var forced: Bool
    public var changes: [ChangeDocument]
    public var gate: VerdictDocument?
    public var evidence: RouteEvidence?

    public init(_ result: RouteOperationResult) {
        changed = result.changed
        summary = result.summary
        tableVersionBefore = result.tableVersionBefore
        tableVersionAfter = result.tableVersionAfter
        forced = result.forced
        changes = result.changes.map(ChangeDocument.init)
        gate = result.verdict.map(VerdictDocument.init)
        evidence = result.evidence
    }
}

/// Every error answer: a stable name, a message that says what to do, and for a refused
/// promotion the gate's figures.
public struct ErrorDocument: Codable, Sendable {
    public var error: String
    public var message: String
    public var gate: VerdictDocument?
    public var evidence: RouteEvidence?
}

/// The last rejected reload: when, which content, and what is wrong with it.
public struct ReloadErrorDocument: Codable, Sendable {
    public struct Problem: Codable, Sendable {
        public var path: String
        public var message: String
    }

    public var at: Date
    public var version: String?
    /// The first problems (at most 100), so that a hostile table can't make the answer huge.
    public var problems: [Problem]
    /// How many more problems the table has beyond `problems`.
    public var moreProblems: Int

    public init(_ failure: RouteTableStatus.ReloadFailure) {
        at = failure.at
        version = failure.version
        problems = failure.problems.map { Problem(path: $0.path, message: $0.message) }
        moreProblems = failure.moreProblems
    }
}
