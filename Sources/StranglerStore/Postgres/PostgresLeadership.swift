import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Chooses one leader among the instances sharing a PostgreSQL store, with a session-level
/// advisory lock (`pg_try_advisory_lock`) held on a connection of its own.
///
/// While not leader, it tries the lock every `interval`; the instance whose session holds it is
/// the leader until that session ends. While leader, it checks the connection every `interval`
/// with a `SELECT 1` bounded by `checkTimeout`; when the check fails, or the connection closes,
/// it gives up leadership at once, closes the connection (so the server frees the lock for the
/// others, if it still held it) and reconnects with backoff, after stepping back for three
/// intervals so that an instance whose session is healthy takes over. Graceful shutdown gives up
/// leadership and closes the connection, so another instance takes over within its `interval`.
///
/// Why a connection of its own: the lock belongs to a session, and the store's pool hands its
/// sessions out to any query. Why a check while leader: a leader whose backend was terminated,
/// or whose network went away, must stop acting as leader rather than believe it still is.
///
/// Two leaders can overlap for a moment: between the server ending the leader's session (which
/// frees the lock for another instance at once) and the old leader noticing, which takes at most
/// `interval` plus `checkTimeout`, and usually no time at all, since a closed connection is seen
/// as it closes. Duties that run on the leader must tolerate that: pruning twice deletes nothing
/// more, and demoting a canary already demoted changes nothing. The opposite case, a server
/// that keeps a vanished leader's session (and lock) until its TCP keepalive gives up, leaves
/// the cluster without a leader for that long, which delays duties but never doubles them.
///
/// Advisory locks are per database: instances sharing one store database compete; stores in
/// other databases of the same server are independent. The session is named
/// `strangler leader election (INSTANCE)` in `pg_stat_activity`, so an operator can see which
/// instance holds the lock.
public final class PostgresLeadership: Leadership, Service, Sendable {
    /// The advisory lock's key: the 64-bit FNV-1a hash of "strangler leader", as a signed
    /// bigint. Fixed, so that every instance, of every version, competes for the same lock.
    public static let lockKey: Int64 = 0x4AE4_A800_ED61_7968

    /// The name this instance's log lines and database session carry (``InstanceIdentity``).
    public let instance: String
    /// Where the store is.
    public let url: PostgresStoreURL
    /// How often the lock is tried, or the connection checked while leader.
    public let interval: Duration
    /// The longest a connection attempt or a check may take before it counts as failed.
    public let checkTimeout: Duration

    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var isLeader = false
        /// Counts connections made, so that an old connection's close is told from the current
        /// one's.
        var generation = 0
        /// Whether the connection of `generation` is still open, as far as its close callback
        /// has said.
        var connectionOpen = false
        /// Shutting down: leadership ends as asked, not lost.
        var stopping = false
        var nextWaiter = 0
        var waiters: [Int: (leader: Bool, continuation: CheckedContinuation<Void, Never>)] = [:]
    }

    /// Creates the election; nothing connects until ``run()``.
    /// - Parameters:
    ///   - url: The shared store's database: the instances sharing it compete for its lock.
    ///   - instance: This instance's name (``InstanceIdentity``), for the log and the session name.
    ///   - interval: How often the lock is tried while not leader, and the connection checked
    ///     while leader; a stopped leader is replaced within about this long.
    ///   - checkTimeout: The longest connecting, trying the lock or checking may take; beyond it
    ///     the attempt counts as failed and a leader gives up leadership.
    ///   - logger: Where changes of leadership, and a database out of reach, are logged (once
    ///     per change, not per attempt).
    public init(
        url: PostgresStoreURL,
        instance: String,
        interval: Duration = .seconds(1),
        checkTimeout: Duration = .seconds(3),
        logger: Logger
    ) {
        self.url = url
        self.instance = instance
        self.interval = interval
        self.checkTimeout = checkTimeout
        var logger = logger
        logger[metadataKey: "instance"] = "\(instance)"
        self.logger = logger
    }

    /// Whether this instance is the cluster's leader now.
    public var isLeader: Bool {
        state.withLockedValue { $0.isLeader }
    }

    /// Returns once ``isLeader`` is `leader` (at once if it already is), or when the calling
    /// task is cancelled; check ``isLeader`` afterwards if the wait may have been cancelled.
    public func waitUntil(leader: Bool) async {
        let id = state.withLockedValue { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    // Checked under the lock the cancellation handler takes too, so a cancellation
                    // that came before the waiter was registered is not missed.
                    if state.isLeader == leader || Task.isCancelled { return true }
                    state.waiters[id] = (leader, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// Runs the election until graceful shutdown, then gives up leadership and closes the
    /// connection, which frees the lock for another instance.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.elect()
        }
    }

    // MARK: The election

    private func elect() async {
        var connection: PostgresConnection?
        var retry = interval
        let longestRetry = max(interval, .seconds(10))
        // An instance that lost its session waits out several of the others' rounds, and at
        // least a check's time, before it tries the lock again: the server frees the lock only
        // once the old session's backend has ended, and the instance that then asks first gets
        // it; with a step back of a few short intervals that could still be this one on a
        // loaded machine, which would keep leadership with the instance that just failed.
        let stepBack = max(interval * 3, checkTimeout)
        var unreachable = false
        // Whether this instance led at the end of the last round.
        var led = false
        while !Task.isCancelled {
            if led, !isLeader {
                // Its connection closed since (logged then). An instance that just lost its
                // session steps back before trying again, so that one whose session is healthy
                // takes over rather than the one that failed.
                led = false
                connection?.closeInBackground()
                connection = nil
                do { try await Task.sleep(for: stepBack) } catch { break }
                continue
            }
            do {
                // A connection the server ended is replaced at once: a new one is not a database
                // out of reach.
                if connection?.isClosed == true { connection = nil }
                let current: PostgresConnection
                if let connection {
                    current = connection
                } else {
                    current = try await connect()
                    connection = current
                }
                if isLeader {
                    try await bounded(current) { [logger] in
                        for try await _ in try await current.query("SELECT 1", logger: logger) {}
                    }
                } else {
                    let acquired = try await bounded(current) { [logger] in
                        var acquired = false
                        for try await locked in try await current.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger)
                            .decode(Bool.self)
                        {
                            acquired = locked
                        }
                        return acquired
                    }
                    if acquired { becomeLeader() }
                }
                led = isLeader
                if unreachable {
                    unreachable = false
                    logger.notice("leader election reaches the database again", metadata: ["store": "\(url)"])
                }
                retry = interval
                try await Task.sleep(for: interval)
            } catch {
                // Only a cancelled task ends the election. A CancellationError from below
                // (a bounded query or a pool's connect giving up) while this task runs is a
                // failed round: returning here would end the service, and with it the whole
                // instance's service group.
                if Task.isCancelled { break }
                // The lock may still be held by this session (a check that timed out, a lock
                // taken whose answer was lost): closing the connection is what frees it.
                let lost = giveUpLeadership(because: "the database connection failed: \(Self.reason(error))") || led
                led = false
                connection?.closeInBackground()
                connection = nil
                if !unreachable {
                    unreachable = true
                    logger.warning(
                        "cannot reach the database for leader election; retrying",
                        metadata: ["store": "\(url)", "error": "\(Self.reason(error))"]
                    )
                }
                do { try await Task.sleep(for: lost ? max(retry, stepBack) : retry) } catch { break }
                retry = min(retry * 2, longestRetry)
            }
        }
        // Leadership ends before the lock is freed: another instance may take it at once. The
        // close is not awaited: the server frees the lock when the session ends, and shutdown
        // must not wait on a connection that may not answer.
        state.withLockedValue { $0.stopping = true }
        giveUpLeadership(because: "shutting down")
        connection?.closeInBackground()
    }

    /// A connection of its own, named for `pg_stat_activity`, whose closing ends leadership at
    /// once rather than at the next check.
    private func connect() async throws -> PostgresConnection {
        var configuration = try url.connectionConfiguration()
        configuration.options.additionalStartupParameters.append(("application_name", "strangler leader election (\(instance))"))
        let logger = logger
        // A connection that comes after its time, or after shutdown began, is closed at once.
        let connection = try await FirstOutcome.of(
            timeout: checkTimeout,
            { [configuration] in try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger) },
            abandon: { _ in },
            discard: { $0.closeInBackground() }
        )
        let generation = state.withLockedValue { state -> Int in
            state.generation += 1
            state.connectionOpen = true
            return state.generation
        }
        connection.closeFuture.whenComplete { [weak self] _ in
            self?.connectionClosed(generation: generation)
        }
        return connection
    }

    /// Runs one query on `connection` for at most ``checkTimeout``. PostgresNIO's queries do not
    /// stop when their task is cancelled, so a query past its time, or interrupted by shutdown,
    /// is ended by closing the connection, which fails it.
    ///
    /// The election never waits for the query itself once its time is up: the query runs in a
    /// task of its own, and this returns at the first of its answer, the timeout, or
    /// cancellation. A query whose connection closed under it but that never completes (the
    /// election can't prove every path of the client library fails it) then can't hold the
    /// election, or a graceful shutdown, for ever.
    private func bounded<Result: Sendable>(
        _ connection: PostgresConnection,
        _ operation: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await FirstOutcome.of(timeout: checkTimeout, operation) { [state] cancelled in
            // Cancelled is shutting down: the connection's close is not a lost leadership.
            if cancelled { state.withLockedValue { $0.stopping = true } }
            connection.closeInBackground()
        }
    }

    /// What went wrong, without the store's location, which the log line carries already.
    private static func reason(_ error: any Error) -> String {
        (error as? PostgresStoreError)?.cause ?? PostgresErrorText.describe(error)
    }

    private func becomeLeader() {
        // A connection that closed after its lock was taken holds nothing any more; checked in
        // the same locked step as the change, so a close in between is not missed.
        guard setLeader(true, if: { $0.connectionOpen && !$0.stopping }) else { return }
        logger.notice("this instance is now the cluster leader", metadata: ["store": "\(url)"])
    }

    private func connectionClosed(generation: Int) {
        let current = state.withLockedValue { state -> Bool in
            guard state.generation == generation else { return false }
            state.connectionOpen = false
            return true
        }
        if current { giveUpLeadership(because: "its database connection closed") }
    }

    @discardableResult
    /// Ends leadership, logging why; returns whether this instance was the leader.
    private func giveUpLeadership(because reason: String) -> Bool {
        guard setLeader(false) else { return false }
        if state.withLockedValue({ $0.stopping }) {
            logger.notice("this instance is no longer the cluster leader: shutting down", metadata: ["store": "\(url)"])
        } else {
            logger.warning("lost leadership: \(reason)", metadata: ["store": "\(url)"])
        }
        return true
    }

    /// Sets ``isLeader``, when `condition` holds, and wakes the waiters for the new value;
    /// returns whether it changed.
    @discardableResult
    private func setLeader(_ leader: Bool, if condition: (State) -> Bool = { _ in true }) -> Bool {
        let woken = state.withLockedValue { state -> [CheckedContinuation<Void, Never>]? in
            guard state.isLeader != leader, condition(state) else { return nil }
            state.isLeader = leader
            let ids = state.waiters.filter { $0.value.leader == leader }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        guard let woken else { return false }
        for continuation in woken { continuation.resume() }
        return true
    }
}
