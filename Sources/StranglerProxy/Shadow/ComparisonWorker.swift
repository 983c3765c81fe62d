import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerCore
import StranglerStore

/// Compares finished shadow exchanges off the event loops and hands the results to the recorder.
///
/// The event loops only append to a bounded queue (``submit(_:)``); comparison, redaction and
/// storage run here. On graceful shutdown the queue is worked off before `run` returns, so
/// the recorder (shut down after this service) gets every comparison.
public final class ComparisonWorker: Service, ShadowSink {
    private let recorder: DiffRecorder
    private let metrics: ProxyMetrics
    private let capacity: Int
    private let logger: Logger
    private struct Queue {
        var jobs: [ShadowJob] = []
        /// The worker waits for a wake-up; only then does a submit send one.
        var idle = true
    }

    private let queue = NIOLockedValueBox(Queue())
    /// How long the worker lets jobs gather after a batch before it looks again.
    private let batchInterval: Duration
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let observers = NIOLockedValueBox<[@Sendable (ComparisonRecord) -> Void]>([])
    /// Each route's metric handles, kept from batch to batch: making them goes through the
    /// metrics factory (six lookups, each under its lock), which cost 0.13 µs per comparison
    /// when it was done once per batch. Only the worker's loop uses it, one batch at a time.
    private let handleCache = NIOLockedValueBox<[String: ProxyMetrics.ComparisonHandles]>([:])
    /// Routes whose handles are kept before the cache starts afresh (ids of removed routes
    /// would otherwise stay in it for good).
    private static let handleCacheLimit = 4096

    /// - Parameter batchInterval: under load the worker takes jobs in batches this far apart, so
    ///   the event loops wake it about once per interval rather than once per shadowed request
    ///   (each wake-up is a futex call and a context switch, which cost more than a comparison).
    public init(
        recorder: DiffRecorder,
        metrics: ProxyMetrics,
        capacity: Int = 10_000,
        batchInterval: Duration = .milliseconds(5),
        logger: Logger
    ) {
        self.recorder = recorder
        self.batchInterval = batchInterval
        self.metrics = metrics
        self.capacity = capacity
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // Queue depths and the recorder's drops are read at scrape time; drops become counters
        // by adding what changed since the last scrape.
        let reported = NIOLockedValueBox(DiffRecorder.Statistics())
        metrics.onScrape { [queue] metrics in
            let statistics = recorder.statistics
            metrics.setGauge("strangler_comparison_queue_depth", to: Double(queue.withLockedValue { $0.jobs.count }))
            metrics.setGauge("strangler_diff_recorder_queue_depth", to: Double(statistics.queued))
            let previous = reported.withLockedValue { last -> DiffRecorder.Statistics in
                defer { last = statistics }
                return last
            }
            // `counted`: in the rollups (every comparison the recorder took); `stored`: kept as
            // an example row.
            let records: [(String, KeyPath<DiffRecorder.Statistics, Int>)] = [
                ("counted", \.counted), ("stored", \.recorded), ("dropped_queue_full", \.droppedQueueFull),
                ("dropped_store_error", \.droppedStoreError), ("dropped_unwritten", \.droppedUnwritten),
            ]
            for (result, path) in records {
                metrics.addToCounter(
                    "strangler_diff_records_total",
                    labels: [("result", result)],
                    statistics[keyPath: path] - previous[keyPath: path]
                )
            }
            metrics.addToCounter(
                "strangler_diff_rollup_write_failures_total",
                labels: [],
                statistics.rollupWriteFailures - previous.rollupWriteFailures
            )
            metrics.addToCounter(
                "strangler_diff_example_rows_capped_total",
                labels: [],
                statistics.rowCapDeletions - previous.rowCapDeletions
            )
        }
    }

    /// Queues `job` for comparison, waking the worker if it is idle. Called on the event loops;
    /// it only appends under a short lock.
    ///
    /// - Returns: `false` when the queue already holds `capacity` jobs; the job is dropped.
    public func submit(_ job: ShadowJob) -> Bool {
        let (accepted, wakeWorker) = queue.withLockedValue { queue -> (Bool, Bool) in
            guard queue.jobs.count < capacity else { return (false, false) }
            queue.jobs.append(job)
            defer { queue.idle = false }
            return (true, queue.idle)
        }
        if wakeWorker { wake.yield() }
        return accepted
    }

    /// Compares queued jobs in batches until graceful shutdown, then works off what is still
    /// queued before it returns.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in self.wakeups {
                // Work in batches until a look finds nothing; only then is the worker idle
                // (set under the same lock as that look, so no submit is missed).
                while true {
                    let jobs = self.take(markIdleIfEmpty: true)
                    if jobs.isEmpty { break }
                    self.process(jobs)
                    try? await Task.sleep(for: self.batchInterval)
                }
            }
        }
        workOff()
    }

    /// Calls `observer` with every comparison made from now on, off the event loops (the
    /// canary monitor counts mismatches this way).
    public func observe(_ observer: @escaping @Sendable (ComparisonRecord) -> Void) {
        observers.withLockedValue { $0.append(observer) }
    }

    /// Jobs waiting, for tests and metrics.
    public var queued: Int { queue.withLockedValue { $0.jobs.count } }

    /// Everything queued, at shutdown.
    private func workOff() {
        while true {
            let jobs = take(markIdleIfEmpty: false)
            if jobs.isEmpty { return }
            process(jobs)
        }
    }

    private func take(markIdleIfEmpty: Bool) -> [ShadowJob] {
        queue.withLockedValue { queue -> [ShadowJob] in
            if queue.jobs.isEmpty {
                if markIdleIfEmpty { queue.idle = true }
                return []
            }
            defer { queue.jobs.removeAll(keepingCapacity: true) }
            return queue.jobs
        }
    }

    private func process(_ jobs: [ShadowJob]) {
        let observers = observers.withLockedValue { $0 }
        var handles = handleCache.withLockedValue { cache in
            defer { cache = [:] }
            return cache.count > Self.handleCacheLimit ? [:] : cache
        }
        defer { handleCache.withLockedValue { $0 = handles } }
        var records: [ComparisonRecord] = []
        records.reserveCapacity(jobs.count)
        for job in jobs {
            let routeMetrics = handles[job.routeID] ?? metrics.comparisonHandles(route: job.routeID)
            handles[job.routeID] = routeMetrics
            let record = record(for: job, metrics: routeMetrics)
            for observer in observers { observer(record) }
            records.append(record)
        }
        // One lock for the batch; into an empty recorder queue the array goes without a copy.
        recorder.submit(contentsOf: records)
    }

    /// Compares one job, with its route's metrics looked up for it alone.
    func record(for job: ShadowJob) -> ComparisonRecord {
        record(for: job, metrics: metrics.comparisonHandles(route: job.routeID))
    }

    /// Compares one job (or records why it could not be compared).
    func record(for job: ShadowJob, metrics routeMetrics: ProxyMetrics.ComparisonHandles) -> ComparisonRecord {
        var record = ComparisonRecord(
            routeID: job.routeID,
            requestID: job.requestID,
            method: job.method,
            path: job.uri,
            tableVersion: job.tableVersion,
            primaryUpstream: job.primary.upstream,
            candidateUpstream: job.candidate.upstream,
            primaryStatus: job.primary.status,
            candidateStatus: job.candidate.status,
            primaryMilliseconds: job.primary.milliseconds,
            candidateMilliseconds: job.candidate.milliseconds,
            outcome: .skipped
        )
        if let milliseconds = job.primary.milliseconds {
            routeMetrics.recordLatency(.primary, milliseconds: milliseconds)
        }
        if let milliseconds = job.candidate.milliseconds {
            routeMetrics.recordLatency(.candidate, milliseconds: milliseconds)
        }
        if let reason = job.skipReason {
            record.reason = reason
            metrics.recordSkip(route: job.routeID, reason: reason)
            routeMetrics.recordOutcome(.skipped)
            return record
        }
        // Found on the event loop: the usual answer of a finished migration, and a cheap one to
        // record, with nothing to copy, decode or parse.
        if job.identical {
            record.outcome = .match
            routeMetrics.recordOutcome(record.outcome)
            return record
        }
        guard let capturedPrimary = job.primary.captured(), let capturedCandidate = job.candidate.captured() else {
            record.reason = "incomplete"
            metrics.recordSkip(route: job.routeID, reason: "incomplete")
            routeMetrics.recordOutcome(.skipped)
            return record
        }
        let primary: CapturedResponse
        let candidate: CapturedResponse
        switch (ContentDecoding.decode(capturedPrimary, side: "primary"), ContentDecoding.decode(capturedCandidate, side: "candidate")) {
        case (.success(let decodedPrimary), .success(let decodedCandidate)):
            primary = decodedPrimary
            candidate = decodedCandidate
        case (.failure(let failure), _), (_, .failure(let failure)):
            record.outcome = .uncomparable
            record.reason = failure.reason
            routeMetrics.recordOutcome(.uncomparable)
            return record
        }
        let comparator = ResponseComparator(settings: job.compare ?? CompareSettings())
        let comparison = comparator.compare(primary: primary, candidate: candidate)
        // A noise probe: what differs between two answers of the same legacy is noise.
        if let probe = job.noise?.captured(), case .success(let decodedProbe) = ContentDecoding.decode(probe, side: "noise") {
            let noise = comparator.compare(primary: primary, candidate: decodedProbe)
            if case .uncomparable = noise.outcome {
            } else {
                // Only body pointers: a status or header difference is never excused
                // (``DifferenceExcuses``), and a status's or a byte difference's pointer is "".
                record.noisePointers = noise.differences.filter { $0.kind != .status && $0.kind != .header }.map(\.pointer)
            }
        }
        let redactor = Redactor(pointers: job.compare?.redact ?? [])
        record.differences = comparison.differences.map(redactor.redact)
        switch comparison.outcome {
        case .match: record.outcome = .match
        case .mismatch: record.outcome = .mismatch
        case .uncomparable(let reason):
            record.outcome = .uncomparable
            record.reason = reason
        }
        if comparison.omitted > 0 {
            record.reason = "\(comparison.omitted) more differences not kept"
        }
        routeMetrics.recordOutcome(record.outcome)
        return record
    }
}
