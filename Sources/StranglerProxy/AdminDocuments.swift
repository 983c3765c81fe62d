import Foundation
import StranglerCore
import StranglerStore

/// `GET /api/routes`: the live table with its version, load time and last reload error.
struct LiveTableDocument: Encodable {
    var version: String
    var loadedAt: Date
    var source: String?
    var loads: Int
    var defaultUpstream: String
    var upstreams: [UpstreamDocument]
    var routes: [RouteDocument]
    var lastReloadError: ReloadErrorDocument?

    init(status: RouteTableStatus) {
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

struct UpstreamDocument: Encodable {
    var name: String
    var url: String
    var connectTimeoutMs: Int
    var timeoutMs: Int
    var maxConnectionsPerLoop: Int
    var idleTimeoutMs: Int

    init(_ upstream: Upstream) {
        name = upstream.name
        url = upstream.url
        connectTimeoutMs = upstream.connectTimeoutMs
        timeoutMs = upstream.timeoutMs
        maxConnectionsPerLoop = upstream.maxConnectionsPerLoop
        idleTimeoutMs = upstream.idleTimeoutMs
    }
}

/// A route as the admin API shows it.
struct RouteDocument: Encodable {
    struct Canary: Encodable {
        var percent: Double
        var stickyKey: String?
    }

    var id: String
    var methods: [String]
    var path: String
    var mode: String
    var legacy: String
    var service: String?
    var fallback: Bool
    /// Who serves the client; for a canary, who serves the rest.
    var servedBy: String
    var canary: Canary?
    /// The gate that applies: the route's values, the defaults where it sets none.
    var gate: GateSettingsDocument

    init(_ route: Route) {
        id = route.id
        methods = route.methods
        path = route.path.description
        mode = route.mode.rawValue
        legacy = route.legacy
        service = route.service
        fallback = route.fallback
        servedBy = route.primaryUpstream
        canary = route.canary.map { Canary(percent: $0.percent, stickyKey: $0.stickyKey?.description) }
        gate = GateSettingsDocument(PromotionGate.effective(route.gate))
    }
}

struct GateSettingsDocument: Encodable {
    var minSamples: Int?
    var maxMismatchRate: Double?
    var maxLatencyRatio: Double?
    var maxErrorRate: Double?

    init(_ gate: GateSettings) {
        minSamples = gate.minSamples
        maxMismatchRate = gate.maxMismatchRate
        maxLatencyRatio = gate.maxLatencyRatio
        maxErrorRate = gate.maxErrorRate
    }
}

/// A gate's verdict: whether it holds, and each check with its figure and limit.
struct VerdictDocument: Encodable {
    var holds: Bool
    var checks: [GateVerdict.Check]

    init(_ verdict: GateVerdict) {
        holds = verdict.holds
        checks = verdict.checks
    }
}

/// `GET /api/routes/{id}/stats`: a route with its evidence and the verdict of its gate.
struct RouteStatusDocument: Encodable {
    struct Traffic: Encodable {
        var legacy: Int
        var service: Int
        var serviceErrors: Int
    }

    var route: RouteDocument
    var evidenceSince: Date
    var evidence: RouteEvidence
    var matchRate: Double?
    var gate: VerdictDocument
    var lastLegacyTraffic: Date?
    var recentTraffic: Traffic

    init(_ inspection: RouteInspection) {
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
struct ChangeDocument: Encodable {
    var id: Int64?
    var changedAt: Date
    var actor: String
    var source: String
    var routeId: String?
    var reason: String?
    var modeBefore: String?
    var modeAfter: String?
    var before: JSONValue?
    var after: JSONValue?
    var tableVersionBefore: String?
    var tableVersionAfter: String

    init(_ change: RouteChange) {
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

struct ChangeListDocument: Encodable {
    var changes: [ChangeDocument]
}

/// What a write did.
struct OperationDocument: Encodable {
    var changed: Bool
    var summary: String
    var tableVersionBefore: String
    var tableVersionAfter: String
    var forced: Bool
    var changes: [ChangeDocument]
    var gate: VerdictDocument?
    var evidence: RouteEvidence?

    init(_ result: RouteOperationResult) {
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
struct ErrorDocument: Encodable {
    var error: String
    var message: String
    var gate: VerdictDocument?
    var evidence: RouteEvidence?
}

struct ReloadErrorDocument: Encodable {
    struct Problem: Encodable {
        var path: String
        var message: String
    }

    var at: Date
    var version: String?
    var problems: [Problem]

    init(_ failure: RouteTableStatus.ReloadFailure) {
        at = failure.at
        version = failure.version
        problems = failure.problems.map { Problem(path: $0.path, message: $0.message) }
    }
}
