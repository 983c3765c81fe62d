import Foundation
import Logging
import StranglerCore
import StranglerStore

/// The table an instance starts serving with a shared store, and where it came from.
public struct SharedRouteStart: Sendable {
    /// The table to serve.
    public var table: RouteTable
    /// The store's revision of it; nil when it came from the snapshot or the file because the
    /// store could not be read.
    public var revision: Int64?
    /// Where it came from, for the log.
    public var origin: String

    /// Why an instance can't start serving.
    public struct Failure: Error, CustomStringConvertible {
        /// What is wrong and what to do.
        public var description: String

        /// A failure saying `description`.
        public init(description: String) {
            self.description = description
        }
    }

    /// Finds the table to start with:
    /// 1. with `routesFile`, the file is pushed first if it was not pushed before (the file is the
    ///    source of truth in that setup; an invalid file stops the start);
    /// 2. the store's table;
    /// 3. if the store can't be read: the snapshot of the last table this instance served, else
    ///    the routes file.
    ///
    /// A store that answers but holds no table, with no routes file, stops the start with how to
    /// load one.
    public static func load(
        store: PostgresDiffStore,
        routesFile: String?,
        snapshotPath: String,
        logger: Logger
    ) async throws(Failure) -> SharedRouteStart {
        if let routesFile {
            // Validated before anything is pushed: a broken file stops the start, as without a store.
            do throws(RouteTableError) {
                _ = try RouteTableLoader.loadForServing(path: routesFile)
            } catch {
                throw Failure(description: "\(routesFile) is not a valid route table:\n" + error.problems.map(\.description).joined(separator: "\n"))
            }
            let controller = RouteController(authority: SharedRouteAuthority(store: store), store: store)
            let publisher = RouteFilePublisher(path: routesFile, store: store, controller: controller, logger: logger)
            // A concurrent start of another instance may win the first push; the second try
            // sees its result. A store that can't be reached is retried by the running
            // publisher; the start goes on with what can be read.
            var outcome = await publisher.publish()
            for _ in 0..<2 {
                guard case .failed = outcome else { break }
                outcome = await publisher.publish()
            }
            if case .failed(let error) = outcome {
                logger.warning("routes file not pushed into the shared store yet; retrying while serving", metadata: ["error": "\(error)"])
            }
        }
        let stored: (head: SharedRouteTableHead, content: Data)?
        do {
            stored = try await store.routeTable()
        } catch {
            for (path, what) in [(snapshotPath, "snapshot of the last table served"), (routesFile, "routes file")] {
                guard let path, FileManager.default.fileExists(atPath: path) else { continue }
                do throws(RouteTableError) {
                    let table = try RouteTableLoader.load(path: path)
                    logger.warning(
                        "cannot read the shared route table; starting with the \(what) until the store answers",
                        metadata: ["path": "\(path)", "version": "\(table.version)", "error": "\(error)"]
                    )
                    return SharedRouteStart(table: table, revision: nil, origin: path)
                } catch {
                    logger.error("the \(what) is not a valid route table", metadata: ["path": "\(path)", "error": "\(error)"])
                }
            }
            throw Failure(
                description:
                    "cannot read the route table from \(store.location) (\(error)), and there is no snapshot at \(snapshotPath) to start with; start the database, or pass --routes FILE"
            )
        }
        guard let stored else {
            throw Failure(
                description:
                    "\(store.location) holds no route table yet; load one with `strangler routes import routes.json --store URL`, or start with --routes routes.json"
            )
        }
        do throws(RouteTableError) {
            let table = try RouteTable.parse(stored.content)
            // The certificate files it names must exist here too (beside the routes file, or
            // the working directory): every instance reads its own copies.
            try RouteTableLoader.checkUpstreamFiles(
                table,
                relativeTo: routesFile.map(RouteTableLoader.directory(of:)) ?? FileManager.default.currentDirectoryPath
            )
            return SharedRouteStart(table: table, revision: stored.head.revision, origin: "\(store.location) revision \(stored.head.revision)")
        } catch {
            throw Failure(
                description: "the route table in \(store.location) (version \(stored.head.version)) does not validate in this strangler:\n"
                    + error.problems.map(\.description).joined(separator: "\n")
            )
        }
    }
}
