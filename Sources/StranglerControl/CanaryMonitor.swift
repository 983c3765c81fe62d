import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore

/// Watches canaries and keeps the traffic record.
///
/// Every `tick` it takes the requests the event loops counted (per route: served by legacy, by
/// the service, and the service's failures) and the comparisons the worker made. It writes the
/// traffic to the store (the evidence `promote` to `retired` checks), and keeps a sliding window
/// per canary route. When a canary's service error rate or mismatch rate over the window breaks
/// the route's gate, it moves the route back to `shadow` through the ``RouteController``, which
/// records why in the audit trail; and it says so loudly in the log.
///
/// Several instances sharing one store judge together (``Configuration/Judging/sharedStore(_:)``):
/// each records its traffic, every 2 s so that the others see it soon, and only the leader
/// judges, from what every instance recorded in the store. One instance's window would see
/// only its share of a canary's answers, and every instance would demote the same route.
public actor CanaryMonitor: Service {
    /// How the monitor samples and judges.
    public struct Configuration: Sendable {
        /// Where a canary's window is counted, and who judges it.
        public enum Judging: Sendable {
            /// This instance judges what it served and compared itself, counted in memory per
            /// tick: a sliding window of exactly ``Configuration/window``. For an instance with
            /// a store of its own.
            case local
            /// The leader judges every instance's answers and comparisons, read from the shared
            /// store after each flush; the others only record theirs and never demote.
            ///
            /// The store keeps counts per minute, so the window is rounded out to whole minutes:
            /// it starts at the beginning of the minute ``Configuration/window`` ago (a 60 s
            /// window covers 60 to 120 s, as the minute goes), and the demotion's reason names
            /// the seconds it covered. A route this monitor saw become canary is judged from the
            /// start of the minute it did; one that was canary when the monitor started, over
            /// the whole window. So a canary promoted again within the minute of its demotion
            /// can be judged on that minute's failures again.
            case sharedStore(any Leadership)
        }

        /// How often traffic is taken from the event loops.
        public var tick: Duration = .seconds(1)
        /// How often counted traffic is written to the store (and, judging from a shared
        /// store, how often the leader judges): unless set, 10 s judging locally and 2 s from a
        /// shared store, so that the leader sees every instance's traffic soon. Follows
        /// ``judging`` when that is set later.
        public var flushEvery: Duration {
            get {
                if let chosenFlushEvery { return chosenFlushEvery }
                if case .local = judging { return .seconds(10) }
                return .seconds(2)
            }
            set { chosenFlushEvery = newValue }
        }
        private var chosenFlushEvery: Duration?
        /// The sliding window a canary is judged over.
        public var window: Duration = .seconds(60)
        /// Service answers (or comparisons) needed in the window before a rate is judged, so
        /// that one early failure is not a 100% error rate.
        public var minRequests: Int = 20
        /// The instance the traffic is recorded under: the recorder's (``InstanceIdentity``).
        public var instanceID: String = "local"
        /// Where canaries are judged from, and by whom.
        public var judging: Judging = .local

        /// Creates a configuration; the defaults judge each canary over the last minute, sampled
        /// every second, and write traffic to the store every 10 s (every 2 s when judging from
        /// a shared store, so that the leader sees every instance's traffic soon).
        public init(
            tick: Duration = .seconds(1),
            flushEvery: Duration? = nil,
            window: Duration = .seconds(60),
            minRequests: Int = 20,
            instanceID: String = "local",
            judging: Judging = .local
        ) {
            self.tick = tick
            self.chosenFlushEvery = flushEvery
            self.window = window
            self.minRequests = minRequests
            self.instanceID = instanceID
            self.judging = judging
        }
    }

    private let server: ProxyServer
    private let store: any DiffStore
    private let controller: RouteController
    private let configuration: Configuration
    private let logger: Logger
    private let comparisons = NIOLockedValueBox<[String: CanaryCounts]>([:])
    /// Per canary route: what a difference may be without counting as a mismatch (learned noise,
    /// accepted differences), refreshed from the store every few seconds.
    private let excuses = NIOLockedValueBox<[String: DifferenceExcuses]>([:])
    private var lastExcuseRefresh = ContinuousClock.now - .seconds(3600)
    private var excuseRefreshes = 0
    private var pending: [String: RouteTraffic] = [:]
    private var windows: [String: [CanaryCounts]] = [:]
    /// Counts collected by ``flushNow()`` between ticks, which the next tick judges with its own.
    private var carried: [String: CanaryCounts] = [:]
    private var lastFlush = ContinuousClock.now
    /// Judging from a shared store: the canaries seen at the last look (nil before the first),
    /// and when each one this monitor saw become canary did.
    private var canaries: Set<String>?
    private var canaryStarts: [String: Date] = [:]
    /// Judging from a shared store: whether the last reads failed, so a store that stays away
    /// is logged once, not every round.
    private var storeJudgingFails = false
    /// Auto-demotions done, for tests and the log.
    public private(set) var demotions: [String] = []

    /// Creates the monitor and, when there is a worker and it judges locally, subscribes to its
    /// comparisons (matches and mismatches only; a mismatch that learned noise or accepted
    /// differences excuse entirely is counted as compared, not mismatched). Judging from a
    /// shared store, it reads the comparisons every instance's recorder wrote instead.
    /// - Parameters:
    ///   - server: The proxy whose event loops count the traffic and whose live table says which
    ///     routes are canaries.
    ///   - store: Where traffic is written and excuses are read.
    ///   - controller: Demotes a canary that breaks its gate, with an audit record.
    ///   - worker: The comparison worker to observe; without one, only error rates are judged.
    ///   - configuration: How the monitor samples and judges.
    ///   - logger: Where demotions and store failures are logged.
    public init(
        server: ProxyServer,
        store: any DiffStore,
        controller: RouteController,
        worker: ComparisonWorker?,
        configuration: Configuration = .init(),
        logger: Logger
    ) {
        self.server = server
        self.store = store
        self.controller = controller
        self.configuration = configuration
        self.logger = logger
        guard case .local = configuration.judging else { return }
        worker?.observe { [comparisons, excuses] record in
            guard record.outcome == .match || record.outcome == .mismatch else { return }
            let excused = excuses.withLockedValue { $0[record.routeID] }
            let mismatched = record.outcome == .mismatch && (excused.map { !$0.excusesAll(record.differences) } ?? true)
            comparisons.withLockedValue {
                $0[record.routeID, default: CanaryCounts()].compared += 1
                if mismatched { $0[record.routeID, default: CanaryCounts()].mismatched += 1 }
            }
        }
    }

    /// Ticks every ``Configuration/tick`` until graceful shutdown, then writes the traffic still
    /// pending so none is lost.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: self.configuration.tick) } catch { break }
                await self.tick()
            }
        }
        await flushNow()
    }

    /// Takes what the loops counted, writes it to the store, and returns once it is there.
    /// The route controller calls this before it checks legacy traffic for a retirement.
    public func flushNow() async {
        let collected = await collect()
        if case .local = configuration.judging {
            // What this collects is the canaries' evidence too: the next tick judges it.
            for (route, counts) in collected { carried[route, default: CanaryCounts()] = carried[route, default: CanaryCounts()] + counts }
        }
        await writePending()
    }

    /// One round: collect, judge the canaries, and write the traffic when it is time.
    func tick() async {
        if case .sharedStore(let leadership) = configuration.judging {
            await tickShared(leadership)
            return
        }
        if ContinuousClock.now - lastExcuseRefresh >= .seconds(5) { await refreshExcuses() }
        var window = await collect()
        for (route, counts) in carried { window[route, default: CanaryCounts()] = window[route, default: CanaryCounts()] + counts }
        carried.removeAll(keepingCapacity: true)
        await judge(window)
        if ContinuousClock.now - lastFlush >= configuration.flushEvery {
            await writePending()
        }
    }

    /// Takes the counts since the last collection: the loops' traffic goes to what is pending for
    /// the store, and both traffic and comparisons are returned for the canary windows.
    private func collect() async -> [String: CanaryCounts] {
        var buckets = comparisons.withLockedValue { current -> [String: CanaryCounts] in
            defer { current.removeAll(keepingCapacity: true) }
            return current
        }
        for item in await server.drainTraffic() {
            pending[item.routeID, default: RouteTraffic(routeID: item.routeID)].add(
                legacy: item.legacy,
                service: item.service,
                serviceErrors: item.serviceErrors
            )
            buckets[item.routeID, default: CanaryCounts()].service += item.service
            buckets[item.routeID, default: CanaryCounts()].serviceErrors += item.serviceErrors
        }
        return buckets
    }

    /// Reloads noise and accepted differences of the routes in canary now; the monitor also
    /// does it every 5 s, so an acceptance made with `strangler diffs accept` counts within that.
    public func refreshExcuses() async {
        lastExcuseRefresh = .now
        // Refreshes can overlap (the actor is reentrant at each await): the latest one started wins.
        excuseRefreshes += 1
        let this = excuseRefreshes
        let canaries = server.state.status.table.routes.filter { $0.mode == .canary }.map(\.id)
        var fresh: [String: DifferenceExcuses] = [:]
        if !canaries.isEmpty {
            // Two reads for all canaries: a table with 1,500 of them made 3,000 reads every 5 s,
            // a tenth of a core on an idle proxy.
            do {
                let noise = try await store.noiseByRoute()
                let accepted = Dictionary(grouping: try await store.acceptedDifferences(), by: \.routeID)
                for id in canaries {
                    fresh[id] = DifferenceExcuses(noiseCounts: noise[id] ?? [:], acceptedPatterns: (accepted[id] ?? []).map(\.pointer))
                }
            } catch {
                // The excuses read last stay until a read succeeds.
                logger.warning("cannot read noise and accepted differences; keeping the last ones read", metadata: ["error": "\(error)"])
                return
            }
        }
        if this == excuseRefreshes { excuses.withLockedValue { $0 = fresh } }
    }

    private func writePending() async {
        lastFlush = .now
        guard !pending.isEmpty else { return }
        let items = Array(pending.values)
        do {
            try await store.recordTraffic(items, instanceID: configuration.instanceID)
            pending.removeAll()
        } catch {
            // Kept for the next flush: the counts are small and a full disk may clear.
            logger.error("cannot record route traffic; will retry", metadata: ["store": "\(store.location)", "error": "\(error)"])
        }
    }

    /// Slides each canary's window and demotes a canary whose window breaks its gate.
    private func judge(_ latest: [String: CanaryCounts]) async {
        let table = server.state.status.table
        let slots = max(1, Int(configuration.window / configuration.tick))
        var canaries = Set<String>()
        for route in table.routes where route.mode == .canary {
            canaries.insert(route.id)
            var window = windows[route.id] ?? []
            window.append(latest[route.id] ?? CanaryCounts())
            if window.count > slots { window.removeFirst(window.count - slots) }
            windows[route.id] = window
            if let reason = breach(of: route, in: window) {
                await demote(route, reason: reason)
            }
        }
        // A route that left canary starts a fresh window if it comes back.
        for id in windows.keys where !canaries.contains(id) { windows[id] = nil }
    }

    /// Why the window breaks the route's gate, or nil.
    func breach(of route: Route, in window: [CanaryCounts]) -> String? {
        CanaryBreach.reason(
            gate: route.gate,
            window: window.reduce(CanaryCounts(), +),
            minRequests: configuration.minRequests,
            windowSeconds: Int(configuration.window / .seconds(1))
        )
    }

    // MARK: Judging from a shared store

    /// One round judging from a shared store: the loops' counts are taken every tick, and
    /// written every ``Configuration/flushEvery``; right after its own are written, the leader
    /// judges every canary from what all instances wrote.
    private func tickShared(_ leadership: any Leadership) async {
        // Only the traffic matters here: the comparisons the store has, every instance's.
        _ = await collect()
        noteCanaries(in: server.state.status.table, at: Date())
        guard ContinuousClock.now - lastFlush >= configuration.flushEvery else { return }
        await writePending()
        if leadership.isLeader { await judgeFromStore(leadership) }
    }

    /// Notes when routes became canary, so that a canary's window does not reach back into
    /// the time it was shadow, or into the failures it was demoted for. Every instance notes it,
    /// leader or not, so that one becoming leader knows too.
    private func noteCanaries(in table: RouteTable, at now: Date) {
        let current = Set(table.routes.lazy.filter { $0.mode == .canary }.map(\.id))
        // Routes already canary at the first look may have been for long: their whole window counts.
        if let seen = canaries {
            for id in current.subtracting(seen) { canaryStarts[id] = now }
        }
        canaryStarts = canaryStarts.filter { current.contains($0.key) }
        canaries = current
    }

    /// Judges every canary on every instance's answers and comparisons in the store, and
    /// demotes those that break their gate, while this instance is still the leader.
    private func judgeFromStore(_ leadership: any Leadership) async {
        let now = Date()
        for route in server.state.status.table.routes where route.mode == .canary {
            let since = Self.sharedWindowStart(now: now, window: configuration.window, canarySince: canaryStarts[route.id])
            let window: CanaryCounts
            do {
                window = Self.counts(
                    traffic: try await store.traffic(routeID: route.id, since: since),
                    evidence: try await store.evidence(routeID: route.id, serviceUpstream: route.service, since: since)
                )
            } catch {
                if !storeJudgingFails {
                    storeJudgingFails = true
                    logger.error(
                        "cannot read canary evidence from the shared store; canaries are not judged until it answers",
                        metadata: ["store": "\(store.location)", "error": "\(error)"]
                    )
                }
                return
            }
            guard let reason = breach(of: route, in: window, windowSeconds: Int(now.timeIntervalSince(since).rounded())) else { continue }
            // The reads take time: leadership may have moved meanwhile, and only the leader demotes.
            guard leadership.isLeader else { return }
            await demote(route, reason: reason)
        }
        if storeJudgingFails {
            storeJudgingFails = false
            logger.notice("canaries are judged from the shared store again", metadata: ["store": "\(store.location)"])
        }
    }

    /// Where a canary's window in the shared store starts: `window` before `now`, or when the
    /// route became canary if that is later, rounded down to its minute, because the store
    /// counts by the minute (``Configuration/Judging/sharedStore(_:)``).
    static func sharedWindowStart(now: Date, window: Duration, canarySince: Date?) -> Date {
        let start = now.addingTimeInterval(-(window / .seconds(1)))
        return RollupLevel.minute.start(of: max(start, canarySince ?? start))
    }

    /// A canary's window from the store, counted as the local window counts it: the service's
    /// answers and failures, and comparisons made (matches and mismatches) with those noise and
    /// accepted differences do not excuse as mismatches.
    static func counts(traffic: RouteTraffic, evidence: RouteEvidence) -> CanaryCounts {
        CanaryCounts(service: traffic.service, serviceErrors: traffic.serviceErrors, compared: evidence.samples, mismatched: evidence.mismatches)
    }

    /// Why a window read from the shared store breaks the route's gate, or nil; the reason
    /// names the seconds the window really covered.
    func breach(of route: Route, in window: CanaryCounts, windowSeconds: Int) -> String? {
        CanaryBreach.reason(gate: route.gate, window: window, minRequests: configuration.minRequests, windowSeconds: windowSeconds)
    }

    // MARK: Demoting

    private func demote(_ route: Route, reason: String) async {
        logger.critical(
            "AUTO-DEMOTE: canary \(route.id) is moving back to shadow: \(reason)",
            metadata: ["route": "\(route.id)", "service": "\(route.service ?? "-")"]
        )
        do {
            let result = try await controller.change(
                routeID: route.id,
                .set(.shadow, percent: nil),
                by: .init(actor: "auto-demote", source: .auto, reason: reason)
            )
            windows[route.id] = nil
            guard result.changed else {
                // Someone, or a leader a moment ago, demoted it first: nothing was done here.
                logger.notice("AUTO-DEMOTE not needed: \(result.summary)", metadata: ["route": "\(route.id)"])
                return
            }
            // Should the live table still show it canary at the next look, or it be promoted
            // again before then, its window starts now, not before these failures.
            if case .sharedStore = configuration.judging { canaryStarts[route.id] = Date() }
            demotions.append(route.id)
            server.metrics.recordAutoDemote(route: route.id)
            logger.critical(
                "AUTO-DEMOTE done: \(result.summary)",
                metadata: ["route": "\(route.id)", "version": "\(result.tableVersionAfter)"]
            )
        } catch {
            logger.critical(
                "AUTO-DEMOTE FAILED: \(route.id) is still canary: \(error); demote it by hand with `strangler routes demote \(route.id)`",
                metadata: ["route": "\(route.id)"]
            )
        }
    }
}
