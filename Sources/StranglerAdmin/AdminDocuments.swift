import Foundation
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore

/// `GET /api/routes`: the live table with its version, load time and last reload error.
public struct LiveTableDocument: Codable, Sendable {
    /// The live table's version (the content hash of its file).
    public var version: String
    /// When the live table went live.
    public var loadedAt: Date
    /// The file it was read from, if any.
    public var source: String?
    /// Successful loads since the proxy started, the first one included.
    public var loads: Int
    /// The upstream that plays legacy for routes that name none.
    public var defaultUpstream: String
    /// Every upstream of the table, by name.
    public var upstreams: [UpstreamDocument]
    /// The routes, in table order.
    public var routes: [RouteDocument]
    /// The last reload that was rejected since start, if any; the live table stayed.
    public var lastReloadError: ReloadErrorDocument?

    /// The document for the live table's `status`.
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

/// An upstream as the admin API shows it, with its settings in force (defaults filled in).
public struct UpstreamDocument: Codable, Sendable {
    /// The name routes refer to it by.
    public var name: String
    /// The URL as written in `routes.json`.
    public var url: String
    /// How long a TCP connect may take before the request fails with 504.
    public var connectTimeoutMs: Int
    /// How long the upstream may stay silent before the request fails with 504 (or is aborted
    /// once the response has started).
    public var timeoutMs: Int
    /// Most connections it gets from one event loop's pool.
    public var maxConnectionsPerLoop: Int
    /// How long an idle pooled connection is kept.
    public var idleTimeoutMs: Int
    /// TLS to an `https` upstream; nil for plain http.
    public var tls: TLS?

    /// How the proxy speaks TLS to an upstream.
    public struct TLS: Codable, Sendable {
        /// Whether the certificate and host name are verified (false with `insecureSkipVerify`).
        public var verify: Bool
        /// The name sent as SNI and verified; nil for an IP literal host (verified against the
        /// certificate's IP addresses).
        public var serverName: String?
        /// The private CA trusted besides the system's roots, as written in the table.
        public var caFile: String?
        /// The client certificate presented (mutual TLS), as written in the table.
        public var clientCertFile: String?
        /// Set when verification is off: what that exposes, for anyone reading the table.
        public var warning: String?
    }

    /// The document for `upstream`.
    public init(_ upstream: Upstream) {
        name = upstream.name
        url = upstream.url
        connectTimeoutMs = upstream.connectTimeoutMs
        timeoutMs = upstream.timeoutMs
        maxConnectionsPerLoop = upstream.maxConnectionsPerLoop
        idleTimeoutMs = upstream.idleTimeoutMs
        tls = upstream.tls.map { tls in
            TLS(
                verify: !tls.insecureSkipVerify,
                serverName: tls.serverHostname(for: upstream.host),
                caFile: tls.caFile,
                clientCertFile: tls.clientCertFile,
                warning: tls.insecureSkipVerify
                    ? "certificate verification is off (insecureSkipVerify): anyone on the path can read and change this upstream's traffic" : nil
            )
        }
    }
}

/// A route as the admin API shows it.
public struct RouteDocument: Codable, Sendable {
    /// A canary's split.
    public struct Canary: Codable, Sendable {
        /// Percentage of requests the service serves, 0...100.
        public var percent: Double
        /// What keeps one caller on one side, as `routes.json` spells it (`header:NAME`,
        /// `param:NAME`); nil places each request by chance.
        public var stickyKey: String?
    }

    /// The route's stable id.
    public var id: String
    /// The methods it takes, upper case; empty for every method.
    public var methods: [String]
    /// The path template, as `routes.json` spells it.
    public var path: String
    /// The route's predicates on host, headers, query and cookies, as `routes.json` spells them
    /// (``RouteMatch/json``: header names in lower case); nil, and left out of the JSON, when the
    /// route takes every request on its path. ``RouteMatch/init(json:)`` reads it back.
    public var match: JSONValue?
    /// The lifecycle stage: `legacy`, `shadow`, `canary`, `service` or `retired`.
    public var mode: String
    /// The upstream that plays legacy for the route.
    public var legacy: String
    /// The extracted service's upstream, if the route has one.
    public var service: String?
    /// In `service` mode: whether an idempotent request the service fails is retried once on legacy.
    public var fallback: Bool
    /// Who serves the client; for a canary, who serves the rest.
    public var servedBy: String
    /// The canary split, when the route has canary settings.
    public var canary: Canary?
    /// The gate that applies: the route's values, the defaults where it sets none.
    public var gate: GateSettings

    /// The document for `route`.
    public init(_ route: Route) {
        id = route.id
        methods = route.methods
        path = route.path.description
        match = route.match.isEmpty ? nil : route.match.json
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
    /// Whether every check passed.
    public var holds: Bool
    /// The checks in the order the gate makes them, each with its figure, limit and result.
    public var checks: [GateVerdict.Check]

    /// The document for `verdict`.
    public init(_ verdict: GateVerdict) {
        holds = verdict.holds
        checks = verdict.checks
    }
}

/// `GET /api/routes/{id}/stats`: a route with its evidence and the verdict of its gate.
public struct RouteStatusDocument: Codable, Sendable {
    /// Requests in the legacy quiet window, by side.
    public struct Traffic: Codable, Sendable {
        /// Requests legacy served.
        public var legacy: Int
        /// Requests the service served.
        public var service: Int
        /// Of those, the ones the service failed.
        public var serviceErrors: Int
    }

    /// The route as the file has it.
    public var route: RouteDocument
    /// Start of the evidence window.
    public var evidenceSince: Date
    /// How much of the evidence window the evidence covers, with its gaps; a gate does not
    /// pass while there are any.
    public var coverage: EvidenceCoverage
    /// The route's comparisons in the evidence window.
    public var evidence: RouteEvidence
    /// Share of samples that matched once noise and accepted differences are excused, 0...1;
    /// nil without samples.
    public var matchRate: Double?
    /// The verdict of the route's gate on that evidence.
    public var gate: VerdictDocument
    /// The last minute legacy served the route, if recorded.
    public var lastLegacyTraffic: Date?
    /// Requests in the legacy quiet window, by side.
    public var recentTraffic: Traffic

    /// The document for `inspection`.
    public init(_ inspection: RouteInspection) {
        route = RouteDocument(inspection.route)
        evidenceSince = inspection.evidenceSince
        coverage = inspection.coverage
        evidence = inspection.evidence
        matchRate = inspection.evidence.mismatchRate.map { 1 - $0 }
        gate = VerdictDocument(inspection.verdict)
        lastLegacyTraffic = inspection.lastLegacyTraffic
        recentTraffic = Traffic(
            legacy: inspection.recentTraffic.legacy,
            service: inspection.recentTraffic.service,
            serviceErrors: inspection.recentTraffic.serviceErrors
        )
    }
}

/// One audit row.
public struct ChangeDocument: Codable, Sendable {
    /// The row's id; nil only for a change not stored yet.
    public var id: Int64?
    /// When the change was made.
    public var changedAt: Date
    /// Who made it: the admin token's name (with the name the caller gave, if any), the CLI's
    /// `--actor` or OS user, `file`, or `auto-demote`.
    public var actor: String
    /// Where it came from: `cli`, `admin`, `file` or `auto`.
    public var source: String
    /// The route that changed; nil for a change outside any route.
    public var routeId: String?
    /// Why, as given with the change; nil when none was given.
    public var reason: String?
    /// The route's mode before the change, with the share for a canary (`canary 5%`); nil when
    /// the route did not exist.
    public var modeBefore: String?
    /// The route's mode after the change, in the same form; nil when the change removed it.
    public var modeAfter: String?
    /// The route's JSON before the change; nil when it did not exist.
    public var before: JSONValue?
    /// The route's JSON after the change; nil when the change removed it.
    public var after: JSONValue?
    /// The table's version before the change; nil when there was no table before.
    public var tableVersionBefore: String?
    /// The table's version after the change.
    public var tableVersionAfter: String

    /// The document for the audit row `change`.
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

/// `GET /api/changes` and `GET /api/routes/{id}/changes`: audit rows, newest first.
public struct ChangeListDocument: Codable, Sendable {
    /// The rows, newest first, at most the request's `limit` (50 by default).
    public var changes: [ChangeDocument]
}

/// What a write did.
public struct OperationDocument: Codable, Sendable {
    /// Whether the routes file changed.
    public var changed: Bool
    /// One line for people: `inventory-read: shadow → canary 5%`.
    public var summary: String
    /// The table's version before the operation.
    public var tableVersionBefore: String
    /// The table's version after it; the same as before when nothing changed.
    public var tableVersionAfter: String
    /// Whether a refusal was overridden by force (with a reason).
    public var forced: Bool
    /// The audit rows recorded.
    public var changes: [ChangeDocument]
    /// The gate's verdict, when a gate was consulted.
    public var gate: VerdictDocument?
    /// The evidence the gate judged, when a gate was consulted.
    public var evidence: RouteEvidence?

    /// The document for `result`.
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
    /// The stable machine name (`gate_refused`, `unknown_route`, `unauthorized`...).
    public var error: String
    /// What is wrong and what to do about it.
    public var message: String
    /// The gate's verdict, when a gate refused.
    public var gate: VerdictDocument?
    /// The evidence the gate judged, when a gate refused.
    public var evidence: RouteEvidence?
    /// The route table's current version, when a change was refused with `version_conflict`
    /// for being made against another.
    public var currentVersion: String?
}

/// `GET /healthz` and `GET /readyz`: the proxy's own state, and the store's beside it.
public struct HealthDocument: Codable, Sendable {
    /// `ok` (health), `ready` or `starting` (readiness): the proxy's own state only.
    public var status: String
    /// Whether the diff store answers; absent when the listener has no store.
    public var store: StoreHealthDocument?
}

/// The store's state as the health endpoints show it. The cause of a failure is in the log,
/// not here: these endpoints need no token.
public struct StoreHealthDocument: Codable, Sendable {
    /// `ok`, `unreachable`, or `notYetReached` (opened while its database was away).
    public var state: String
    /// Since when.
    public var since: Date

    init(_ health: StoreHealth) {
        state = health.state.rawValue
        since = health.since
    }
}

/// The last rejected reload: when, which content, and what is wrong with it.
public struct ReloadErrorDocument: Codable, Sendable {
    /// One problem with the rejected table.
    public struct Problem: Codable, Sendable {
        /// JSON path of the offending value, e.g. `routes[3].service`; `$` for the whole document.
        public var path: String
        /// What is wrong, and where possible what would be right.
        public var message: String
    }

    /// When the reload was rejected.
    public var at: Date
    /// The rejected file's version (its content hash); nil when the file could not be read.
    public var version: String?
    /// The first problems (at most 100), so that a hostile table can't make the answer huge.
    public var problems: [Problem]
    /// How many more problems the table has beyond `problems`.
    public var moreProblems: Int

    /// The document for `failure`.
    public init(_ failure: RouteTableStatus.ReloadFailure) {
        at = failure.at
        version = failure.version
        problems = failure.problems.map { Problem(path: $0.path, message: $0.message) }
        moreProblems = failure.moreProblems
    }
}
