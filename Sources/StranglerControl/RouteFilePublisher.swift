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

    /// What a push came to.
    public enum Outcome: Sendable {
        /// The file was pushed, or was pushed before, or the table already holds it.
        case done
        /// The file is unreadable or invalid: logged; pushing it again changes nothing.
        case refused
        /// The store could not take it (away, or a concurrent change won): try again.
        case failed(String)
    }

    /// Pushes the file now if it is valid and not pushed before. A failure to reach the store
    /// is returned, not logged: the caller logs it once, not once per attempt.
    @discardableResult
    public func publish() async -> Outcome {
        let data: Data
        do throws(RouteTableError) {
            data = try RouteTableLoader.read(path: path)
        } catch {
            logger.error("cannot read the routes file to push it into the shared store", metadata: ["path": "\(path)", "error": "\(error)"])
            return .refused
        }
        let version = ContentHash.hex(of: data)
        do {
            let head = try await store.routeTableHead()
            if head?.fileVersion == version { return .done }
            if head?.version == version {
                try await store.recordFileVersion(version)
                return .done
            }
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
            return .done
        } catch let error as RouteOperationError where error.code == .invalidTable {
            logger.error("routes file not pushed: it does not validate; the shared table stays", metadata: ["path": "\(path)", "error": "\(error)"])
            return .refused
        } catch {
            return .failed("\(error)")
        }
    }

    /// Checks the file every `interval` until graceful shutdown, and pushes each new content;
    /// a push that failed (the store away, a concurrent change) is retried.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastStamp: FileStamp?
            var pending = true
            var failing = false
            while !Task.isCancelled {
                let stamp = FileStamp(path: path)
                if stamp != lastStamp {
                    lastStamp = stamp
                    pending = true
                }
                if pending {
                    switch await publish() {
                    case .done, .refused:
                        pending = false
                        if failing { logger.notice("routes file push works again", metadata: ["path": "\(path)"]) }
                        failing = false
                    case .failed(let error):
                        // Logged when pushes start failing, not at every retry.
                        if !failing {
                            logger.warning("routes file not pushed yet; retrying", metadata: ["path": "\(path)", "error": "\(error)"])
                        }
                        failing = true
                    }
                }
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
    }
}
