import Foundation
import Logging
import NIOConcurrencyHelpers
import StranglerCore
import StranglerProxy

/// Reloads one route table source into one server: looks at it (the routes file, or the last
/// table fetched from a shared store), validates new content off the event loops and off the
/// concurrency pool, installs the newest valid table, and has each table that went live audited
/// in the order they went live (when there is an auditor).
///
/// A large table (90,000 routes, 10 MB) takes seconds to validate and audit. None of that holds
/// up a later reload: a newer look at the file supersedes a validation still running (see
/// ``ReloadGenerations``), the audit runs after the table is live without blocking the next
/// reload, and a caller waiting for a reload stops waiting as soon as its task is cancelled, so
/// graceful shutdown never waits for a validation or an audit.
final class RouteTableReloader: Sendable {
    /// What a look at the file found.
    enum Look: Sendable {
        /// The file could not be read; the live table stays.
        case unreadable
        /// The file holds the live table.
        case unchanged
        /// The file holds content rejected before.
        case rejectedBefore
        /// New content is on its way; the value says whether it went live.
        case reload(PendingValue<Bool>)
    }

    private struct State {
        var generations = ReloadGenerations()
        /// The generations on their way, with whether they went live, for looks that join them.
        var pending: [ReloadGenerations.Generation: PendingValue<Bool>] = [:]
    }

    /// A validated table (or its problems) on its way to going live.
    private struct Candidate: Sendable {
        var generation: ReloadGenerations.Generation
        var data: Data
        var version: String
        /// The table with each event loop's structures built, or the table's problems.
        var validated: Result<ProxyServer.PreparedTable, RouteTableError>
        /// When the look that found this content began, and how long validation took.
        var detected: ContinuousClock.Instant
        var validation: Duration
        /// How many routes were validated; the rest were reused from the last valid table.
        var validatedRoutes: Int
    }

    /// The source's name in logs: the routes file's path, or the store.
    let path: String
    /// Reads the source's current content.
    private let source: @Sendable () throws(RouteTableError) -> Data
    private let server: ProxyServer
    private let logger: Logger
    private let auditor: RouteFileAuditor?
    private let transform: @Sendable (RouteTable) -> RouteTable
    private let hooks: ReloadHooks
    private let state = NIOLockedValueBox(State())
    /// What the last valid table's validation leaves for the next: a reload validates only the
    /// routes that changed since (the first reload after start validates them all).
    /// Kept with its generation: of two validations that overlap, the newer table's stays.
    private let basis = NIOLockedValueBox<(generation: ReloadGenerations.Generation, basis: RouteTableBasis)?>(nil)
    /// Looks at the file one at a time, each reading the file and deciding under this lock, so
    /// the last look to decide is the one that read the file last.
    private let looking = NIOLock()
    /// Tables are installed one at a time, so every event loop gets them in the same order.
    private let installing = AsyncSerial()
    /// Audits, in the order their tables went live.
    private let audits = TaskChain()

    convenience init(
        path: String,
        server: ProxyServer,
        logger: Logger,
        auditor: RouteFileAuditor?,
        hooks: ReloadHooks,
        transform: @escaping @Sendable (RouteTable) -> RouteTable
    ) {
        self.init(
            name: path,
            source: { () throws(RouteTableError) -> Data in try RouteTableLoader.read(path: path) },
            server: server,
            logger: logger,
            auditor: auditor,
            hooks: hooks,
            transform: transform
        )
    }

    /// A reloader of whatever `source` returns, named `name` in logs.
    init(
        name: String,
        source: @escaping @Sendable () throws(RouteTableError) -> Data,
        server: ProxyServer,
        logger: Logger,
        auditor: RouteFileAuditor?,
        hooks: ReloadHooks,
        transform: @escaping @Sendable (RouteTable) -> RouteTable
    ) {
        self.path = name
        self.source = source
        self.server = server
        self.logger = logger
        self.auditor = auditor
        self.hooks = hooks
        // It runs in ``BackgroundWork`` with validation, so it must be pure computation.
        self.transform = transform
    }

    /// Looks at the file on a thread of its own (reading and hashing 10 MB blocks) and, if it
    /// holds new content, starts validating it there.
    /// - Parameter force: validate content rejected before again, and log unchanged content.
    /// - Returns: what the look found, once it has read the file.
    func look(force: Bool) -> PendingValue<Look> {
        let found = PendingValue<Look>()
        let detected = ContinuousClock.now
        BackgroundWork.start(named: "routes-look", priority: .normal) { [self] in
            let (look, work) = lookNow(force: force)
            found.fulfill(look)
            if let work { validate(work, detected: detected) }
        }
        return found
    }

    /// Returns once every table that went live before the call is in the audit trail.
    func auditsSettled() async {
        await audits.settled()
    }

    // MARK: - Internals

    /// Content found by a look, to validate as a new generation.
    private struct Work {
        var generation: ReloadGenerations.Generation
        var data: Data
        var version: String
    }

    private func lookNow(force: Bool) -> (Look, Work?) {
        looking.withLock {
            let data: Data
            do throws(RouteTableError) {
                data = try source()
            } catch {
                server.reject(error, version: nil)
                logger.error("route table reload rejected; the live table stays", metadata: ["path": "\(path)", "error": "\(error)"])
                return (.unreadable, nil)
            }
            let version = ContentHash.hex(of: data)
            let (look, work) = state.withLockedValue { state -> (Look, Work?) in
                // Read under this lock: an install records the live table before it marks its
                // generation installed (under this lock too), so the two can't be seen out of
                // step, and a revert to the table live before it is never taken for unchanged.
                let status = server.state.status
                switch state.generations.look(found: version, live: status.table.version, rejected: status.lastError?.version, force: force) {
                case .unchanged:
                    return (.unchanged, nil)
                case .rejectedBefore:
                    return (.rejectedBefore, nil)
                case .join(let generation):
                    // A generation stays pending until it has gone live or been dropped.
                    return (state.pending[generation].map(Look.reload) ?? .unchanged, nil)
                case .validate(let generation):
                    let outcome = PendingValue<Bool>()
                    state.pending[generation] = outcome
                    return (.reload(outcome), Work(generation: generation, data: data, version: version))
                }
            }
            if force, case .unchanged = look {
                logger.info("route table unchanged", metadata: ["version": "\(version)"])
            }
            return (look, work)
        }
    }

    /// Validates on a background thread (``BackgroundWork``) while the look's own waits, then
    /// goes on in a task to install.
    private func validate(_ work: Work, detected: ContinuousClock.Instant) {
        hooks.beforeValidation(work.version)
        let start = ContinuousClock.now
        typealias Outcome = (validated: Result<ProxyServer.PreparedTable, RouteTableError>, validatedRoutes: Int)
        let (validated, validatedRoutes) = BackgroundWork.run { [server, transform, basis] () -> Outcome in
            do throws(RouteTableError) {
                let validation = try RouteTable.parse(work.data, reusing: basis.withLockedValue { $0?.basis }, version: work.version)
                if let next = validation.basis {
                    basis.withLockedValue { kept in
                        if kept.map({ $0.generation < work.generation }) ?? true { kept = (work.generation, next) }
                    }
                }
                return (.success(try server.prepare(transform(validation.table))), validation.validatedRoutes)
            } catch {
                return (.failure(error), 0)
            }
        }
        let candidate = Candidate(
            generation: work.generation,
            data: work.data,
            version: work.version,
            validated: validated,
            detected: detected,
            validation: ContinuousClock.now - start,
            validatedRoutes: validatedRoutes
        )
        Task {
            let wentLive = await finish(candidate)
            let outcome = state.withLockedValue { $0.pending.removeValue(forKey: work.generation) }
            outcome?.fulfill(wentLive)
        }
    }

    /// Installs a valid table, or records an invalid one's problems, unless a later look
    /// superseded it. - Returns: whether the table went live.
    private func finish(_ candidate: Candidate) async -> Bool {
        await installing.acquire()
        let wentLive: Bool
        switch candidate.validated {
        case .success(let table):
            wentLive = await install(table, candidate)
        case .failure(let error):
            reject(error, candidate)
            wentLive = false
        }
        await installing.release()
        return wentLive
    }

    private func install(_ prepared: ProxyServer.PreparedTable, _ candidate: Candidate) async -> Bool {
        guard state.withLockedValue({ $0.generations.mayInstall(candidate.generation) }) else {
            superseded(candidate)
            return false
        }
        // Queued now, while installations are one at a time, so audits follow the order tables
        // went live in; and before the table is live, so a look that sees it live finds its
        // audit queued (``auditsSettled()`` waits for it). It runs once the table is live.
        let live = PendingValue<Void>()
        if let auditor {
            audits.add { [hooks, server] in
                try? await live.value()
                await hooks.beforeAudit(candidate.version)
                let start = ContinuousClock.now
                await auditor.tableWentLive(candidate.data, version: candidate.version)
                server.metrics.recordReload(phase: "audit", ContinuousClock.now - start)
            }
        }
        let previous = server.state.status.table.version
        let start = ContinuousClock.now
        await server.apply(prepared)
        let end = ContinuousClock.now
        live.fulfill(())
        state.withLockedValue { $0.generations.installed(candidate.generation) }
        let metrics = server.metrics
        metrics.recordReload(phase: "validate", candidate.validation)
        metrics.recordReload(phase: "apply", end - start)
        metrics.recordReload(phase: "live", end - candidate.detected)
        logger.notice(
            "route table reloaded",
            metadata: [
                "path": "\(path)", "version": "\(candidate.version)", "previous": "\(previous)", "routes": "\(prepared.table.routes.count)",
                "routes_validated": "\(candidate.validatedRoutes)",
                "validate_ms": "\(Self.milliseconds(candidate.validation))", "apply_ms": "\(Self.milliseconds(end - start))",
                "live_ms": "\(Self.milliseconds(end - candidate.detected))",
            ]
        )
        return true
    }

    private func reject(_ error: RouteTableError, _ candidate: Candidate) {
        guard state.withLockedValue({ $0.generations.mayReject(candidate.generation) }) else {
            superseded(candidate)
            return
        }
        server.reject(error, version: candidate.version)
        logger.error(
            "route table reload rejected; the live table stays",
            metadata: [
                "path": "\(path)", "version": "\(candidate.version)", "live": "\(server.state.status.table.version)",
                "problems": "\(error.problems.map(\.description))", "more_problems": "\(error.moreProblems)",
            ]
        )
    }

    private func superseded(_ candidate: Candidate) {
        server.metrics.reloadsSuperseded.increment()
        logger.info(
            "route table reload superseded by a newer edit of the file; dropped",
            metadata: [
                "path": "\(path)", "version": "\(candidate.version)",
                "validate_ms": "\(Self.milliseconds(candidate.validation))",
            ]
        )
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// Points where tests hold a reload, to see what may overlap with it.
package struct ReloadHooks: Sendable {
    /// Called on the validating thread before content is validated, with its version.
    package var beforeValidation: @Sendable (String) -> Void
    /// Called before a table that went live is audited, with its version.
    package var beforeAudit: @Sendable (String) async -> Void

    package init(
        beforeValidation: @escaping @Sendable (String) -> Void = { _ in },
        beforeAudit: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.beforeValidation = beforeValidation
        self.beforeAudit = beforeAudit
    }
}
