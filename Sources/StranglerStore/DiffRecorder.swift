import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Takes comparisons from the shadow path and writes them to a ``DiffStore`` in batches, and
/// counts every one in its route's per-minute rollup.
///
/// `submit` never waits: a full queue drops the record and counts it, in the rollup of its
/// minute too, so a window knows it is missing evidence. A failing store (disk full, locked)
/// drops the batch's detail rows and counts them; rollups that fail to write are kept and
/// written with the next ones. The recorder keeps going and the proxy keeps serving. Rollups
/// reach the store every `rollupInterval` (2 s unless told otherwise). On graceful shutdown
/// everything already queued is written, rollups included, before `run` returns.
///
/// Retention is a cluster duty: with a store shared by several instances, only the leader
/// (``Leadership``) prunes it; every instance writes its own comparisons.
public final class DiffRecorder: Service, Sendable {
    /// Counters, for `/metrics` and tests.
    public struct Statistics: Sendable, Equatable {
        /// Comparisons counted in the rollups: every one taken off the queue.
        public var counted = 0
        /// Rows written to the store: comparisons kept as examples (``ExampleSampler``).
        public var recorded = 0
        /// Records dropped because the queue was full.
        public var droppedQueueFull = 0
        /// Records dropped because the store failed to write their batch.
        public var droppedStoreError = 0
        /// Batches written, a transaction each.
        public var batches = 0
        /// Records waiting in the queue when the statistics were read.
        public var queued = 0
        /// The store's last write error; nil if no write ever failed.
        public var lastError: String?
        /// Rollup writes, a transaction each.
        public var rollupWrites = 0
        /// Rollup writes that failed; their counts were kept for the next write.
        public var rollupWriteFailures = 0
        /// Example rows deleted because the row cap (`maxRows`) was reached, not their age.
        public var rowCapDeletions = 0
        /// Comparisons counted but turned into drops before they could be written: the store
        /// was away so long that more than `maxUnwrittenMinutes` route-minutes waited.
        public var droppedUnwritten = 0

        /// All zero: what a reader that has seen nothing yet compares against.
        public init() {}
    }

    private struct State {
        var queue: [ComparisonRecord] = []
        var statistics = Statistics()
        /// The store is failing writes now; when the failure was last logged.
        var failingSince: ContinuousClock.Instant?
        var lastFailureLog: ContinuousClock.Instant?
        /// Records the full queue dropped since the last drain, by route: counted in rollups.
        var droppedByRoute: [String: Int] = [:]
    }

    /// The rollups being counted, touched only by the draining task (its lock is never
    /// contended by `submit`).
    private struct Rollups {
        var open: RollupAccumulator
        /// Which comparisons keep their row as an example.
        var examples: ExampleSampler<SystemRandomNumberGenerator>
        var lastWrite = ContinuousClock.now
    }

    private let store: any DiffStore
    private let capacity: Int
    private let batchSize: Int
    private let interval: Duration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let retention: Retention
    private let leadership: any Leadership
    private let rollups: NIOLockedValueBox<Rollups>
    private let rollupInterval: Duration
    private let maxUnwrittenMinutes: Int

    /// How long evidence is kept (README.md, "`strangler serve`": `--retention-days`,
    /// `--rollup-retention-days`, `--minute-rollup-retention-days`, `--retention-rows`).
    /// Retention is by time; applied at start and then hourly, by the leader only when the store
    /// is shared (``Leadership``).
    public struct Retention: Sendable {
        /// Example rows older than this many days are deleted (`--retention-days`); nil keeps
        /// them however old.
        public var maxAgeDays: Int?
        /// Only the newest this many example rows are kept (`--retention-rows`); nil for no
        /// limit. A safety net: sampling keeps the rows few, so when it fires it is logged as an
        /// error and counted, because the examples then cover less time than `maxAgeDays`.
        public var maxRows: Int?
        /// Rollups (hours and minutes) older than this many days are deleted
        /// (`--rollup-retention-days`); nil keeps them however old. Windows reaching past it
        /// report the gap.
        public var rollupDays: Int?
        /// Minute rollups older than this many days are deleted
        /// (`--minute-rollup-retention-days`); their hours stay, so older windows read whole
        /// hours. nil keeps them as long as the hours.
        public var minuteRollupDays: Int?

        /// A policy from the limits; the default prunes nothing.
        public init(maxAgeDays: Int? = nil, maxRows: Int? = nil, rollupDays: Int? = nil, minuteRollupDays: Int? = nil) {
            self.maxAgeDays = maxAgeDays
            self.maxRows = maxRows
            self.rollupDays = rollupDays
            self.minuteRollupDays = minuteRollupDays
        }
    }

    /// Records per transaction unless told otherwise. Each commit rewrites the table's and the
    /// indexes' last pages, so larger transactions cost less per record: 2,000 took about
    /// 0.5–1 µs of CPU per record less than 500 (`strangler-bench record`), and hold the write
    /// lock for about 16 ms.
    public static let defaultBatchSize = 2000

    /// - Parameters:
    ///   - capacity: most records waiting to be written; beyond it records are dropped.
    ///   - batchSize: most records per transaction.
    ///   - interval: how often the queue is written.
    ///   - retention: what to prune, in the background.
    ///   - leadership: whether this instance prunes now: with a store shared by several
    ///     instances, only the leader does (``PostgresLeadership``). The default, for a store of
    ///     its own, always does.
    ///   - instanceID: the name this instance's rollups are kept under (``InstanceIdentity``).
    ///   - examples: how many comparisons keep their row as an example (``ExampleSampler``); the
    ///     rest are only counted in the rollups.
    ///   - rollupInterval: how often rollups are written; the dashboard and gates see a
    ///     comparison at most this long (plus `interval`) after it was made. Zero writes them
    ///     with every round.
    ///   - maxUnwrittenMinutes: route-minutes with comparisons kept in memory while the store
    ///     fails; beyond it the oldest turn into drops (``RollupAccumulator/shed(keeping:)``).
    ///     The default, 5,000, is about 3.5 days of one busy route or an hour and a half of 50,
    ///     at up to a few tens of KB each (mostly latency histograms).
    public init(
        store: any DiffStore,
        capacity: Int = 10_000,
        batchSize: Int = DiffRecorder.defaultBatchSize,
        interval: Duration = .milliseconds(200),
        retention: Retention = Retention(),
        leadership: any Leadership = SingleInstanceLeadership(),
        instanceID: String = "local",
        rollupInterval: Duration = .seconds(2),
        maxUnwrittenMinutes: Int = 5_000,
        examples: ExampleSampler<SystemRandomNumberGenerator>.Configuration = .init(),
        logger: Logger
    ) {
        self.rollups = NIOLockedValueBox(
            Rollups(open: RollupAccumulator(instanceID: instanceID), examples: ExampleSampler(configuration: examples))
        )
        self.rollupInterval = rollupInterval
        self.maxUnwrittenMinutes = maxUnwrittenMinutes
        self.store = store
        self.capacity = capacity
        self.batchSize = batchSize
        self.interval = interval
        self.retention = retention
        self.leadership = leadership
        self.logger = logger
    }

    /// The instance this recorder's rollups are kept under.
    public var instanceID: String { rollups.withLockedValue { $0.open.instanceID } }

    /// Prunes by the retention policy: examples and rollups by age, then examples beyond the
    /// row cap. Failures are logged, never fatal. Called directly, it prunes whether or not
    /// this instance is the leader; ``run()`` calls it only on the leader.
    public func applyRetention() async {
        let now = Date()
        do {
            if let days = retention.maxAgeDays {
                let deleted = try await store.prune(recordedBefore: now.addingTimeInterval(-Double(days) * 86_400), maxRows: nil)
                if deleted > 0 { logger.info("retention pruned examples", metadata: ["deleted": "\(deleted)", "days": "\(days)"]) }
            }
            if let days = retention.rollupDays {
                let deleted = try await store.pruneRollups(before: now.addingTimeInterval(-Double(days) * 86_400))
                if deleted > 0 { logger.info("retention pruned rollup hours", metadata: ["deleted": "\(deleted)", "days": "\(days)"]) }
            }
            if let days = retention.minuteRollupDays {
                let deleted = try await store.pruneMinuteRollups(before: now.addingTimeInterval(-Double(days) * 86_400))
                if deleted > 0 { logger.info("retention pruned rollup minutes", metadata: ["deleted": "\(deleted)", "days": "\(days)"]) }
            }
            if let rows = retention.maxRows {
                let deleted = try await store.prune(recordedBefore: nil, maxRows: rows)
                if deleted > 0 {
                    state.withLockedValue { $0.statistics.rowCapDeletions += deleted }
                    logger.error(
                        "example row cap reached: oldest examples deleted before their retention age; raise --retention-rows or lower --retention-days (rows recorded before rollups count too, until they age out)",
                        metadata: ["deleted": "\(deleted)", "cap": "\(rows)"]
                    )
                }
            }
        } catch {
            logger.error("retention failed; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Queues a record. Returns false (and counts it) when the queue is full.
    @discardableResult
    public func submit(_ record: ComparisonRecord) -> Bool {
        state.withLockedValue { state in
            guard state.queue.count < capacity else {
                state.statistics.droppedQueueFull += 1
                state.droppedByRoute[record.routeID, default: 0] += 1
                return false
            }
            state.queue.append(record)
            return true
        }
    }

    /// Queues records under one lock; those beyond the queue's room are dropped and counted.
    /// Returns how many were queued.
    @discardableResult
    public func submit(contentsOf records: [ComparisonRecord]) -> Int {
        state.withLockedValue { state in
            let room = max(0, capacity - state.queue.count)
            guard records.count > room else {
                if state.queue.isEmpty {
                    state.queue = records
                } else {
                    state.queue.append(contentsOf: records)
                }
                return records.count
            }
            state.queue.append(contentsOf: records.prefix(room))
            state.statistics.droppedQueueFull += records.count - room
            for record in records.dropFirst(room) { state.droppedByRoute[record.routeID, default: 0] += 1 }
            return room
        }
    }

    /// The counters now, with ``Statistics/queued`` set to the queue's current length.
    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.queued = state.queue.count
            return statistics
        }
    }

    /// Runs the recorder as a service: prunes by the retention policy, then writes the queue every
    /// `interval` and prunes again hourly. On graceful shutdown it writes everything queued,
    /// checkpoints the store (``checkpoint()``), and then returns.
    ///
    /// Only the leader prunes. An instance that becomes leader prunes at its next round if it
    /// has not pruned in the last hour, so the cluster's retention does not wait an hour after
    /// the leader changed.
    public func run() async throws {
        let interval = self.interval
        let pruned = leadership.isLeader
        if pruned { await applyRetention() }
        await cancelWhenGracefulShutdown {
            var lastRetention: ContinuousClock.Instant? = pruned ? .now : nil
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { break }
                await self.drainQueued()
                if self.leadership.isLeader, lastRetention.map({ ContinuousClock.now - $0 > .seconds(3600) }) ?? true {
                    lastRetention = .now
                    await self.applyRetention()
                }
            }
        }
        await flush()
        // A flush that could not write leaves its rollups open.
        let unwritten = rollups.withLockedValue { $0.open.count }
        if unwritten > 0 {
            logger.error(
                "diff store unavailable at shutdown: rollups not written are lost, and their minutes will read as missing",
                metadata: ["rollups": "\(unwritten)", "error": "\(statistics.lastError ?? "unknown")"]
            )
        }
        await checkpoint()
    }

    /// Empties the store's write-ahead log after the last write, so the files a graceful stop
    /// leaves are the store's real size. A failure is logged: the data is safe in the log, and
    /// the next open moves it.
    public func checkpoint() async {
        do {
            try await store.checkpoint()
        } catch {
            logger.warning("diff store checkpoint failed; its write-ahead log stays until the next start", metadata: ["error": "\(error)"])
        }
    }

    /// Writes everything queued, including what arrives while it writes, and then every rollup.
    public func flush() async {
        while await drainQueued() > 0 {}
        await writeRollups()
    }

    /// Takes what is queued now and writes it, a transaction per `batchSize` records; returns
    /// how many records it took off the queue. One batch per interval would cap the recorder at
    /// `batchSize / interval` comparisons a second and drop the rest under load; records
    /// arriving meanwhile wait for the next interval, so a steady stream can't keep this loop
    /// from sleeping. The queue is swapped out whole and written in slices: copying each batch
    /// out of it, and shifting the rest down, cost about half a microsecond per comparison
    /// under load.
    @discardableResult
    public func drainQueued() async -> Int {
        var (taken, dropped) = state.withLockedValue { state -> ([ComparisonRecord], [String: Int]) in
            var taken: [ComparisonRecord] = []
            swap(&taken, &state.queue)
            state.queue.reserveCapacity(min(taken.count, capacity))
            var dropped: [String: Int] = [:]
            swap(&dropped, &state.droppedByRoute)
            return (taken, dropped)
        }
        // Every comparison is counted in its minute's rollup; only sampled ones keep a row.
        let now = Date()
        rollups.withLockedValue { rollups in
            for index in taken.indices {
                rollups.open.add(taken[index])
                switch rollups.examples.decide(taken[index]) {
                case .drop: taken[index].row = .notKept
                case .keep(let reason): taken[index].row = .kept(reason: reason.rawValue)
                case .keepInReservoir(let slot): taken[index].row = .reservoir(slot: slot)
                }
            }
            for (route, count) in dropped { rollups.open.addDropped(routeID: route, at: now, count: count) }
            rollups.examples.release(before: now.addingTimeInterval(-3600))
        }
        state.withLockedValue { $0.statistics.counted += taken.count }
        let takenCount = taken.count
        // Rows kept are written; of the others only noise probes have anything to store.
        taken.removeAll { $0.row == .notKept && $0.noisePointers == nil }
        // Due rollups ride with the first batch, in its transaction: whoever sees a comparison's
        // row also finds it counted.
        // Rows to write bring the rollups with them (they are few once sampled), so a row is
        // never seen before its comparison is counted.
        var rollupsDue = !taken.isEmpty || ContinuousClock.now - rollups.withLockedValue({ $0.lastWrite }) >= rollupInterval
        var start = 0
        while start < taken.count || rollupsDue {
            let batch = taken[start..<min(start + batchSize, taken.count)]
            start = batch.endIndex
            await write(batch, rollups: rollupsDue ? takeRollups() : [])
            rollupsDue = false
        }
        return takenCount
    }

    /// Writes the rollups counted since the last write (and any whose write failed), adding them
    /// to their minutes. A failed write keeps them for the next one, so no count is lost while
    /// the store is away.
    public func writeRollups() async {
        await write([], rollups: takeRollups())
    }

    /// The rollups to write now: everything counted since the last write, with whatever a
    /// failed write put back.
    private func takeRollups() -> [RouteMinuteRollup] {
        rollups.withLockedValue { rollups in
            rollups.lastWrite = .now
            return rollups.open.takeAll()
        }
    }

    /// Writes a batch of rows and any rollups in one transaction. A failure drops the rows
    /// (counted) and keeps the rollups for the next write.
    private func write(_ batch: ArraySlice<ComparisonRecord>, rollups pending: [RouteMinuteRollup]) async {
        guard !batch.isEmpty || !pending.isEmpty else { return }
        do {
            try await store.write(batch, rollups: pending)
            let recovered = state.withLockedValue { state -> ContinuousClock.Instant? in
                if !batch.isEmpty {
                    state.statistics.recorded += batch.count
                    state.statistics.batches += 1
                }
                if !pending.isEmpty { state.statistics.rollupWrites += 1 }
                defer { state.failingSince = nil }
                return state.failingSince
            }
            if let recovered {
                logger.notice("diff store writes work again", metadata: ["failing_for": "\(ContinuousClock.now - recovered)"])
            }
        } catch {
            let now = ContinuousClock.now
            // Logged when the store starts failing, then at most once a minute while it fails.
            let log = state.withLockedValue { state -> Bool in
                state.statistics.droppedStoreError += batch.count
                if !pending.isEmpty { state.statistics.rollupWriteFailures += 1 }
                state.statistics.lastError = "\(error)"
                if state.failingSince == nil { state.failingSince = now }
                guard state.lastFailureLog.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
                state.lastFailureLog = now
                return true
            }
            let limit = maxUnwrittenMinutes
            let (waiting, shed) = rollups.withLockedValue { rollups in
                rollups.open.restore(pending)
                let shed = rollups.open.shed(keeping: limit)
                return (rollups.open.count, shed)
            }
            if shed > 0 {
                let total = state.withLockedValue { state -> Int in
                    state.statistics.droppedUnwritten += shed
                    return state.statistics.droppedUnwritten
                }
                // Logged the first time evidence is given up rather than delayed, then with the
                // failure's own log at most once a minute.
                if log || total == shed {
                    logger.error(
                        "diff store away too long: the oldest unwritten minutes keep only their traffic, and their comparisons count as dropped (coverage shows the gaps)",
                        metadata: ["dropped_comparisons": "\(total)", "minutes_kept": "\(limit)", "error": "\(error)"]
                    )
                }
            }
            if log {
                logger.error(
                    "diff store write failed; example rows dropped, counts kept in memory and retried; serving continues",
                    metadata: [
                        "dropped_rows": "\(batch.count)", "rollups_waiting": "\(waiting)", "error": "\(error)",
                    ]
                )
            }
        }
    }
}
