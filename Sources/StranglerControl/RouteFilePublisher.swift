import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore

/// GitOps with a shared store: `serve --routes routes.json --store postgres://…` watches the
/// file and pushes every valid new content into the shared table, through the same
/// compare-and-set commit as any other change, audited with the actor `file`. The file in git
/// stays the source of truth: what it says wins as soon as it changes.
///
/// A file is pushed once: the store keeps the hash of the last file pushed, so a restart, or a
/// second instance with the same file, does not push it again over changes made since through
/// the API or by auto-demote. An invalid file is not pushed; the log says why, and the shared
/// table stays.
public struct RouteFilePublisher: Service {
    private let path: String
    private let store: PostgresDiffStore
    private let controller: RouteController
    private let interval: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - controller: a controller of the shared table (``SharedRouteAuthority``).
    ///   - interval: how often the file's stamp is checked.
    public init(path: String, store: PostgresDiffStore, controller: RouteController, interval: Duration = .milliseconds(250), logger: Logger) {
        self.path = path
        self.store = store
        self.controller = controller
        self.interval = interval
        self.logger = logger
    }

    /// Pushes the file now if it is valid and not pushed before.
    /// - Returns: whether the shared table holds what the file says, or the file was pushed
    ///   before (false when the file is invalid or the store could not take it: try again).
    @discardableResult
    public func publish() async -> Bool {
        let data: Data
        do throws(RouteTableError) {
            data = try RouteTableLoader.read(path: path)
        } catch {
            logger.error("cannot read the routes file to push it into the shared store", metadata: ["path": "\(path)", "error": "\(error)"])
            return false
        }
        let version = ContentHash.hex(of: data)
        do {
            let head = try await store.routeTableHead()
            if head?.fileVersion == version || head?.version == version { return true }
            let result = try await controller.importTable(
                data,
                by: .init(actor: "file", source: .file, reason: "\(path) changed"),
                expecting: head?.version,
                fileVersion: version
            )
            logger.notice(
                "routes file pushed into the shared store",
                metadata: ["path": "\(path)", "version": "\(version)", "summary": "\(result.summary)"]
            )
            return true
        } catch let error as RouteOperationError where error.code == .invalidTable {
            logger.error("routes file not pushed: it does not validate; the shared table stays", metadata: ["path": "\(path)", "error": "\(error)"])
            return true
        } catch {
            logger.warning("routes file not pushed yet; will retry", metadata: ["path": "\(path)", "error": "\(error)"])
            return false
        }
    }

    /// Checks the file every `interval` until graceful shutdown, and pushes each new content;
    /// a push that failed (the store away, a concurrent change) is retried.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastStamp: FileStamp?
            var pending = true
            while !Task.isCancelled {
                let stamp = FileStamp(path: path)
                if stamp != lastStamp {
                    lastStamp = stamp
                    pending = true
                }
                if pending { pending = !(await publish()) }
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
    }
}
