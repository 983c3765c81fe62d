import Foundation
import Logging
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import UnixSignals

/// Hot reload: watches the route table file and reloads on change or on SIGHUP.
///
/// A valid table is applied to every event loop at once; an invalid one is rejected whole, logged
/// with every problem, and the live table stays. The file is polled (a `stat` every
/// `interval`) rather than watched with inotify because editors and `git checkout` replace files
/// by rename, which inotify watches of the old inode miss.
///
/// Validation runs on a thread of its own, so the poll goes on while a large table is validated:
/// an edit made meanwhile supersedes it, and only the newest content can go live. Graceful
/// shutdown returns at once, even mid-validation or mid-audit.
public struct RouteTableWatcher: Service {
    private let reloader: RouteTableReloader
    private let interval: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - path: the `routes.json` the server was started with.
    ///   - interval: how often to check the file for changes.
    ///   - transform: applied to every table before it goes live (the demo moves ports with it).
    ///     It runs on a background thread (``BackgroundWork``): pure computation only, never
    ///     starting a thread or resuming a task.
    ///   - auditor: records tables that went live from edits made outside strangler.
    public init(
        path: String,
        server: ProxyServer,
        interval: Duration = .milliseconds(250),
        logger: Logger,
        auditor: RouteFileAuditor? = nil,
        transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 }
    ) {
        self.init(path: path, server: server, interval: interval, logger: logger, auditor: auditor, hooks: ReloadHooks(), transform: transform)
    }

    /// - Parameter hooks: where tests hold a reload.
    init(
        path: String,
        server: ProxyServer,
        interval: Duration = .milliseconds(250),
        logger: Logger,
        auditor: RouteFileAuditor? = nil,
        hooks: ReloadHooks,
        transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 }
    ) {
        self.reloader = RouteTableReloader(path: path, server: server, logger: logger, auditor: auditor, hooks: hooks, transform: transform)
        self.interval = interval
        self.logger = logger
    }

    /// Polls the file every `interval` and reloads on SIGHUP until graceful shutdown. It looks
    /// once at the start, since the file may have changed since the server's first load.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let path = reloader.path
        // Both loops end when the group shuts down gracefully; neither treats that as an error.
        // They wait only for each look at the file (milliseconds), never for a validation, so a
        // later edit is seen while an earlier one is still being validated.
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in signals {
                        logger.info("SIGHUP: reloading route table", metadata: ["path": "\(path)"])
                        _ = try? await reloader.look(force: true).value()
                    }
                }
                group.addTask {
                    var lastStamp = FileStamp(path: path)
                    // The file may have changed between the first load and this stamp.
                    _ = try? await reloader.look(force: false).value()
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: interval) } catch { return }
                        let stamp = FileStamp(path: path)
                        if stamp != lastStamp {
                            lastStamp = stamp
                            _ = try? await reloader.look(force: false).value()
                        }
                    }
                }
            }
        }
    }

    /// Reads the file and applies it if its content differs from the live table.
    ///
    /// Returns early, with false, if the calling task is cancelled; the reload itself goes on.
    /// - Returns: whether this content went live (false if it was unchanged, invalid, or
    ///   superseded by a newer edit before it could go live).
    @discardableResult
    public func reloadIfChanged(force: Bool) async -> Bool {
        do {
            guard case .reload(let outcome) = try await reloader.look(force: force).value() else { return false }
            return try await outcome.value()
        } catch {
            return false
        }
    }

    /// Returns once every table that went live before the call is in the audit trail.
    func auditsSettled() async {
        await reloader.auditsSettled()
    }
}
