import Foundation
import StranglerCore
import StranglerProxy
import StranglerStore

/// The route controls ops engineers use: set a mode, promote, demote and roll back, with the
/// promotion gates and the audit trail (README.md, "Operating a migration").
///
/// The CLI, the admin API and the proxy's auto-demote all go through this one type, so the same
/// rules hold everywhere. The table lives where its ``RouteTableAuthority`` keeps it: in the
/// routes file (an operation locks the file, validates the edited table, stores the audit rows
/// and the new table's content, then atomically replaces the file; a running proxy picks it up
/// through hot reload), or in the shared PostgreSQL store (the operation commits by
/// compare-and-set on the table's version, and every instance applies the new table).
public struct RouteController: Sendable {
    /// Windows and defaults of the rules.
    public struct Configuration: Sendable {
        /// How far back comparisons count as a gate's evidence.
        public var evidenceWindow: TimeInterval = 24 * 3600
        /// How long legacy must have served nothing on a route before it may be retired.
        public var legacyQuietWindow: TimeInterval = 24 * 3600
        /// The canary share a route gets when it enters `canary` without one.
        public var defaultCanaryPercent: Double = 5

        /// Creates a configuration; both windows default to 24 hours.
        public init(evidenceWindow: TimeInterval = 24 * 3600, legacyQuietWindow: TimeInterval = 24 * 3600) {
            self.evidenceWindow = evidenceWindow
            self.legacyQuietWindow = legacyQuietWindow
        }
    }

    /// What to do to one route.
    public enum Operation: Sendable, Hashable {
        /// Set the mode (and the canary share).
        case set(RouteMode, percent: Double?)
        /// One step along the lifecycle.
        case promote
        /// One step back.
        case demote
    }

    /// Who asks, and why.
    public struct Requester: Sendable, Hashable {
        /// Who asks, as the audit trail records it: `--actor`, the admin token's name, the OS
        /// user, or `auto-demote`.
        public var actor: String
        /// Where the request comes from: the CLI, the admin API, or the proxy itself.
        public var source: RouteChange.Source
        /// Why, as the audit trail records it; nil when none was given.
        public var reason: String?
        /// Override a refusing gate or the legacy-traffic rule; needs a reason.
        public var force: Bool

        /// Creates a requester; a reason of only whitespace counts as none.
        public init(actor: String, source: RouteChange.Source, reason: String? = nil, force: Bool = false) {
            self.actor = actor
            self.source = source
            self.reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
            self.force = force
        }
    }

    /// Where the table lives.
    public let authority: any RouteTableAuthority
    /// How messages name the table: the routes file's path, or the store holding it.
    public var routesPath: String { authority.name }
    /// Where the evidence is read and the audit rows and table contents are written.
    public let store: any DiffStore
    /// The windows and defaults the rules use.
    public let configuration: Configuration
    private let beforeChange: @Sendable () async -> Void
    private let afterWrite: @Sendable () async -> Void
    let pendingTraffic: @Sendable () async -> Void
    private let changed: @Sendable (RouteChange.Source) -> Void

    /// - Parameters:
    ///   - beforeChange: called once an operation holds the file's lock, before it reads the
    ///     file; a proxy finishes recording the tables that already went live (hand edits), so
    ///     the audit trail keeps the order in which changes happened.
    ///   - afterWrite: called once the file was replaced; a proxy applies the table at once.
    ///   - pendingTraffic: called before the legacy-traffic rule is checked, so a running proxy
    ///     can write the traffic it has counted but not stored yet.
    ///   - changed: called after each change, with its source (for metrics).
    public init(
        routesPath: String,
        store: any DiffStore,
        configuration: Configuration = .init(),
        beforeChange: @escaping @Sendable () async -> Void = {},
        afterWrite: @escaping @Sendable () async -> Void = {},
        pendingTraffic: @escaping @Sendable () async -> Void = {},
        changed: @escaping @Sendable (RouteChange.Source) -> Void = { _ in }
    ) {
        self.init(
            authority: FileRouteAuthority(path: routesPath, store: store),
            store: store,
            configuration: configuration,
            beforeChange: beforeChange,
            afterWrite: afterWrite,
            pendingTraffic: pendingTraffic,
            changed: changed
        )
    }

    /// A controller of the table `authority` holds; the hooks are as for a routes file.
    public init(
        authority: any RouteTableAuthority,
        store: any DiffStore,
        configuration: Configuration = .init(),
        beforeChange: @escaping @Sendable () async -> Void = {},
        afterWrite: @escaping @Sendable () async -> Void = {},
        pendingTraffic: @escaping @Sendable () async -> Void = {},
        changed: @escaping @Sendable (RouteChange.Source) -> Void = { _ in }
    ) {
        self.changed = changed
        self.authority = authority
        self.store = store
        self.configuration = configuration
        self.beforeChange = beforeChange
        self.afterWrite = afterWrite
        self.pendingTraffic = pendingTraffic
    }

    // MARK: - Reading

    /// The route table as its authority has it now.
    public func document() async throws(RouteOperationError) -> RouteTableDocument {
        try document(from: try await currentContent())
    }

    /// The table's bytes; a shared store that holds none yet is an error that says how to load one.
    func currentContent() async throws(RouteOperationError) -> Data {
        guard let data = try await authority.read() else {
            throw RouteOperationError(
                .noTable,
                "\(routesPath) is empty: no table was imported yet; load one with `strangler routes import routes.json --store URL`"
            )
        }
        return data
    }

    /// The current table's bytes, as its authority holds them (`strangler routes export`).
    public func currentTable() async throws(RouteOperationError) -> Data {
        try await currentContent()
    }

    /// Refuses a change when the caller expects another version than the current one.
    func check(_ data: Data, expecting expected: String?) throws(RouteOperationError) {
        guard let expected else { return }
        let current = ContentHash.hex(of: data)
        guard current == expected else { throw RouteOperationError.conflict(current: current, expected: expected, in: routesPath) }
    }

    private func document(from data: Data) throws(RouteOperationError) -> RouteTableDocument {
        do {
            return try RouteTableDocument(data: data)
        } catch {
            throw RouteOperationError(.invalidTable, "\(routesPath) does not validate; fix it (or roll back) first:\n\(error)")
        }
    }

    /// A route with its evidence, the verdict of its gate and its recent legacy traffic.
    public func inspect(routeID: String) async throws(RouteOperationError) -> RouteInspection {
        let document = try await document()
        guard let route = document.table.routes.first(where: { $0.id == routeID }) else {
            throw unknownRoute(routeID, in: document)
        }
        return try await inspect(route, json: document.routeJSON(id: routeID) ?? "{}")
    }

    /// Every route of the file with its evidence, in file order.
    public func inspectAll() async throws(RouteOperationError) -> [RouteInspection] {
        let document = try await document()
        // One pass over the file for every route's JSON; a search per route grew with the square
        // of the table.
        let json = document.routeJSONByID
        var result: [RouteInspection] = []
        for route in document.table.routes {
            result.append(try await inspect(route, json: json[route.id] ?? "{}"))
        }
        return result
    }

    func inspect(_ route: Route, json: String) async throws(RouteOperationError) -> RouteInspection {
        let now = Date()
        let since = now.addingTimeInterval(-configuration.evidenceWindow)
        do {
            let evidence = try await store.evidence(routeID: route.id, serviceUpstream: route.service, since: since)
            let coverage = try await store.coverage(routeID: route.id, from: since, to: now)
            let traffic = try await store.traffic(routeID: route.id, since: Date().addingTimeInterval(-configuration.legacyQuietWindow))
            return RouteInspection(
                route: route,
                json: json,
                evidence: evidence,
                gate: PromotionGate.effective(route.gate),
                verdict: PromotionGate.evaluate(route.gate, evidence: evidence).requiring(coverage),
                evidenceSince: since,
                coverage: coverage,
                lastLegacyTraffic: try await store.lastLegacyTraffic(routeID: route.id),
                recentTraffic: traffic
            )
        } catch {
            throw RouteOperationError(.storeFailed, "cannot read the diff store \(store.location): \(error)")
        }
    }

    /// How many changes a history page holds unless asked otherwise.
    public static let defaultHistoryLimit = 50
    /// The most changes one history page holds.
    public static let maxHistoryLimit = 1000

    /// The audit trail, newest first.
    /// - Throws: ``RouteOperationError/Code-swift.struct/badLimit`` for a `limit` outside
    ///   1...``maxHistoryLimit`` (the store would read a negative one as no limit at all).
    public func history(routeID: String? = nil, limit: Int = defaultHistoryLimit) async throws(RouteOperationError) -> [RouteChange] {
        guard (1...Self.maxHistoryLimit).contains(limit) else {
            throw RouteOperationError(.badLimit, "a history page holds 1 to \(Self.maxHistoryLimit) changes, not \(limit)")
        }
        do {
            return try await store.changes(routeID: routeID, limit: limit)
        } catch {
            throw RouteOperationError(.storeFailed, "cannot read the audit trail in \(store.location): \(error)")
        }
    }

    // MARK: - Changing

    /// Applies `operation` to one route, with the gates, and records it.
    /// - Parameter expected: the table version the caller saw; a change to any other version
    ///   is refused with ``RouteOperationError/Code-swift.struct/versionConflict``.
    public func change(
        routeID: String,
        _ operation: Operation,
        by requester: Requester,
        expecting expected: String? = nil
    ) async throws(RouteOperationError) -> RouteOperationResult {
        if requester.force, requester.reason == nil {
            throw RouteOperationError(.forceNeedsReason, "a forced change needs a reason: an override is recorded with why it was made")
        }
        return try await locked { () async throws(RouteOperationError) -> RouteOperationResult in
            let data = try await currentContent()
            try check(data, expecting: expected)
            let current = try document(from: data)
            guard let route = current.table.routes.first(where: { $0.id == routeID }) else {
                throw unknownRoute(routeID, in: current)
            }
            let (target, percent) = try Self.target(of: operation, from: route)
            if percent != nil, target != .canary {
                throw RouteOperationError(.invalidTable, "a canary percentage applies to mode canary only; \(routeID) would be \(target.rawValue)")
            }
            var edited = current
            do {
                try edited.setMode(target, percent: percent, route: routeID, defaultCanaryPercent: configuration.defaultCanaryPercent)
            } catch {
                throw RouteOperationError(.invalidTable, "\(routeID) can't be \(target.rawValue):\n\(error)")
            }
            let after = edited.formatted
            guard after != data else {
                return RouteOperationResult(
                    changed: false,
                    summary: "\(routeID) is already \(Self.describe(route)); nothing changed",
                    tableVersionBefore: current.table.version,
                    tableVersionAfter: current.table.version,
                    changes: []
                )
            }

            // The rules, unless overridden.
            let gate = try await checkGate(route, to: target, by: requester)
            let quiet = try await checkLegacyQuiet(route, to: target, by: requester)
            let overridden = [gate.overridden, quiet].compactMap { $0 }

            var reason = requester.reason
            if !overridden.isEmpty {
                reason = "FORCED past " + overridden.joined(separator: " and ") + "; reason: " + (requester.reason ?? "")
            }
            let change = RouteChange(
                actor: requester.actor,
                source: requester.source,
                routeID: routeID,
                reason: reason,
                before: current.routeJSON(id: routeID),
                after: edited.routeJSON(id: routeID),
                tableVersionBefore: current.table.version,
                tableVersionAfter: ContentHash.hex(of: after)
            )
            let stored = try await write(after, replacing: data, changes: [change])
            let newRoute = edited.table.routes.first { $0.id == routeID }!
            return RouteOperationResult(
                changed: true,
                summary: "\(routeID): \(Self.describe(route)) → \(Self.describe(newRoute))\(overridden.isEmpty ? "" : " (forced)")",
                tableVersionBefore: current.table.version,
                tableVersionAfter: change.tableVersionAfter,
                changes: stored,
                verdict: gate.verdict,
                evidence: gate.evidence,
                forced: !overridden.isEmpty
            )
        }
    }

    /// Restores an earlier table: `version` (or a unique prefix of it), else the one before the
    /// most recent change. Every route that differs is recorded.
    public func rollback(
        to version: String? = nil,
        by requester: Requester,
        expecting expected: String? = nil
    ) async throws(RouteOperationError) -> RouteOperationResult {
        try await locked { () async throws(RouteOperationError) -> RouteOperationResult in
            let data = try await currentContent()
            try check(data, expecting: expected)
            let currentVersion = ContentHash.hex(of: data)
            let current = try? RouteTableDocument(data: data)
            let target = try await fromStore("the audit trail") { () async throws -> String in
                guard let version else {
                    guard let last = try await store.changes(limit: 1).first, let before = last.tableVersionBefore else {
                        throw RouteOperationError(.nothingToRollBack, "the audit trail has no change to roll back")
                    }
                    return before
                }
                let matches = try await store.tableVersions(matching: version)
                guard matches.count == 1 else {
                    throw RouteOperationError(
                        .unknownVersion,
                        matches.isEmpty
                            ? "no kept table version starts with \"\(version)\"; the audit trail lists them"
                            : "\"\(version)\" is ambiguous: \(matches.joined(separator: ", ")); give more characters"
                    )
                }
                return matches[0]
            }
            guard target != currentVersion else {
                throw RouteOperationError(.nothingToRollBack, "\(routesPath) is already table version \(target)")
            }
            let content = try await fromStore("table \(target)") { () async throws -> Data in
                guard let kept = try await store.tableContent(version: target) else {
                    throw RouteOperationError(
                        .unknownVersion,
                        "table version \(target) was not kept in \(store.location); roll back with git instead"
                    )
                }
                return kept
            }
            let restored: RouteTableDocument
            do { restored = try RouteTableDocument(data: content) } catch {
                throw RouteOperationError(.invalidTable, "table version \(target) no longer validates:\n\(error)")
            }
            let reason = "rollback to \(target)" + (requester.reason.map { ": \($0)" } ?? "")
            let changes = RouteChange.rows(
                for: RouteTableDocument.differences(from: current, to: restored),
                actor: requester.actor,
                source: requester.source,
                reason: reason,
                from: currentVersion,
                to: target
            )
            let stored = try await write(content, replacing: data, changes: changes)
            let routes = changes.compactMap(\.routeID)
            return RouteOperationResult(
                changed: true,
                summary: "rolled back to table \(target)" + (routes.isEmpty ? "" : "; changed: " + routes.joined(separator: ", ")),
                tableVersionBefore: currentVersion,
                tableVersionAfter: target,
                changes: stored
            )
        }
    }

    // MARK: - Internals

    /// Runs a store read; a refusal passes through, any other failure becomes `store_failed`.
    private func fromStore<T>(_ what: String, _ body: () async throws -> T) async throws(RouteOperationError) -> T {
        do {
            return try await body()
        } catch let error as RouteOperationError {
            throw error
        } catch {
            throw RouteOperationError(.storeFailed, "cannot read \(what) from \(store.location): \(error)")
        }
    }

    func locked<T: Sendable>(_ body: () async throws(RouteOperationError) -> T) async throws(RouteOperationError) -> T {
        try await authority.exclusively { () async throws(RouteOperationError) -> T in
            await beforeChange()
            return try await body()
        }
    }

    /// Commits the new table with its audit rows through the authority, then lets the proxy
    /// apply it. - Returns: the changes with their ids.
    func write(
        _ content: Data,
        replacing old: Data?,
        changes: [RouteChange],
        fileVersion: String? = nil
    ) async throws(RouteOperationError) -> [RouteChange] {
        let ids = try await authority.commit(content, replacing: old, changes: changes, fileVersion: fileVersion)
        await afterWrite()
        if let source = changes.first?.source { changed(source) }
        var stored = changes
        for index in stored.indices where index < ids.count { stored[index].id = ids[index] }
        return stored
    }

    private func unknownRoute(_ id: String, in document: RouteTableDocument) -> RouteOperationError {
        RouteOperationError(
            .unknownRoute,
            "no route with id \"\(id)\" in \(routesPath); known: \(document.table.routes.map(\.id).joined(separator: ", "))"
        )
    }

    /// `canary 10%`, `shadow`.
    static func describe(_ route: Route) -> String {
        guard route.mode == .canary, let percent = route.canary?.percent else { return route.mode.rawValue }
        return "canary \(RouteTableDocument.numberText(percent))%"
    }

    static func describe(seconds: TimeInterval) -> String {
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        return "\(Int(seconds))s"
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}

/// A route with everything needed to judge it.
public struct RouteInspection: Sendable {
    /// The route as the file has it.
    public var route: Route
    /// The route's JSON as in the file.
    public var json: String
    /// The route's comparisons in the evidence window.
    public var evidence: RouteEvidence
    /// The gate that applies (the route's, the defaults where it sets none).
    public var gate: GateSettings
    /// What the gate says of the evidence: whether a promotion may go ahead, check by check.
    public var verdict: GateVerdict
    /// Start of the evidence window.
    public var evidenceSince: Date
    /// How much of the evidence window the evidence covers, with its gaps.
    public var coverage: EvidenceCoverage
    /// The last minute legacy served the route, if recorded.
    public var lastLegacyTraffic: Date?
    /// Requests in the legacy quiet window, by side.
    public var recentTraffic: RouteTraffic
}

/// What an operation did.
public struct RouteOperationResult: Sendable {
    /// Whether the file changed.
    public var changed: Bool
    /// One line for people: `inventory-read: shadow → canary 5%`.
    public var summary: String
    /// The version (content hash) of the table the operation started from.
    public var tableVersionBefore: String
    /// The version of the table the operation left; the same as before when nothing changed.
    public var tableVersionAfter: String
    /// The audit rows recorded, with their ids.
    public var changes: [RouteChange]
    /// The gate's verdict, when a gate was consulted.
    public var verdict: GateVerdict?
    /// The evidence the gate judged, when a gate was consulted.
    public var evidence: RouteEvidence?
    /// Whether a refusal was overridden by force (with a reason).
    public var forced: Bool = false
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
