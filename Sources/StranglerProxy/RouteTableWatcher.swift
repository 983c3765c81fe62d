import Foundation
import Logging
import ServiceLifecycle
import StranglerCore
import UnixSignals

/// Hot reload: watches the route table file and reloads on change or on SIGHUP.
///
/// A valid table is applied to every event loop at once; an invalid one is rejected whole, logged
/// with every problem, and the live table stays. The file is polled (a `stat` every
/// `interval`) rather than watched with inotify because editors and `git checkout` replace files
/// by rename, which inotify watches of the old inode miss.
public struct RouteTableWatcher: Service {
    private let path: String
    private let server: ProxyServer
    private let interval: Duration
    private let logger: Logger
    private let transform: @Sendable (RouteTable) -> RouteTable
    private let auditor: RouteFileAuditor?
    /// One reload at a time: the poll, SIGHUP and a controller's write may ask at once, and two
    /// overlapping reloads of the same content would both apply it.
    private let serial = AsyncSerial()

    /// - Parameters:
    ///   - path: the `routes.json` the server was started with.
    ///   - interval: how often to check the file for changes.
    ///   - transform: applied to every table before it goes live (the demo moves ports with it).
    ///   - auditor: records tables that went live from edits made outside strangler.
    public init(
        path: String, server: ProxyServer, interval: Duration = .milliseconds(250), logger: Logger,
        auditor: RouteFileAuditor? = nil, transform: @escaping @Sendable (RouteTable) -> RouteTable = { $0 }
    ) {
        self.auditor = auditor
        self.path = path
        self.server = server
        self.interval = interval
        self.logger = logger
        self.transform = transform
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        // Both loops end when the group shuts down gracefully; neither treats that as an error.
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in signals {
                        logger.info("SIGHUP: reloading route table", metadata: ["path": "\(path)"])
                        await reloadIfChanged(force: true)
                    }
                }
                group.addTask {
                    var lastStamp = FileStamp(path: path)
                    // The file may have changed between the first load and this stamp.
                    await reloadIfChanged(force: false)
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: interval) } catch { return }
                        let stamp = FileStamp(path: path)
                        if stamp != lastStamp {
                            lastStamp = stamp
                            await reloadIfChanged(force: false)
                        }
                    }
                }
            }
        }
    }

    /// Reads the file and applies it if its content differs from the live table.
    /// - Returns: whether a new table went live.
    @discardableResult
    public func reloadIfChanged(force: Bool) async -> Bool {
        await serial.acquire()
        let applied = await reload(force: force)
        await serial.release()
        return applied
    }

    private func reload(force: Bool) async -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else {
            let error = RouteTableError(problems: [.init(path: "$", message: "cannot read \(path); the live table stays")])
            server.reject(error, version: nil)
            logger.error("route table reload rejected", metadata: ["path": "\(path)", "error": "\(error)"])
            return false
        }
        let version = ContentHash.hex(of: data)
        let status = server.state.status
        if version == status.table.version {
            if force { logger.info("route table unchanged", metadata: ["version": "\(version)"]) }
            return false
        }
        if !force, let lastError = status.lastError, lastError.version == version {
            return false  // Already rejected this exact content.
        }
        do {
            let table = transform(try RouteTable.parse(data))
            await server.apply(table)
            await auditor?.tableWentLive(data)
            logger.notice(
                "route table reloaded",
                metadata: ["path": "\(path)", "version": "\(version)", "previous": "\(status.table.version)", "routes": "\(table.routes.count)"]
            )
            return true
        } catch {
            server.reject(error, version: version)
            logger.error(
                "route table reload rejected; the live table stays",
                metadata: ["path": "\(path)", "version": "\(version)", "live": "\(status.table.version)", "problems": "\(error.problems.map(\.description))"]
            )
            return false
        }
    }
}

/// What identifies one state of a file cheaply: modification time, size and inode.
struct FileStamp: Equatable {
    var modified: Date?
    var size: Int?
    var inode: Int?

    init(path: String) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        modified = attributes?[.modificationDate] as? Date
        size = (attributes?[.size] as? NSNumber)?.intValue
        inode = (attributes?[.systemFileNumber] as? NSNumber)?.intValue
    }
}

/// An async mutex: callers run one at a time, in arrival order.
actor AsyncSerial {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
