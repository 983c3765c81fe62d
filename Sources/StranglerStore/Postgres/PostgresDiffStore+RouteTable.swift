import Foundation
import NIOConcurrencyHelpers
import PostgresNIO
import StranglerCore

/// Which route table is live for every instance sharing the store (`route_table_head`,
/// `migrations/postgres/0003_route_table_head.sql`).
public struct SharedRouteTableHead: Sendable, Hashable {
    /// Counts committed changes; an instance compares it to the one it applied.
    public var revision: Int64
    /// The live table's version: its content hash, as the audit trail names tables.
    public var version: String
    /// When the live table was committed.
    public var changedAt: Date
    /// The content hash of the last routes file an instance pushed, if one did.
    public var fileVersion: String?

    /// A head from its parts.
    public init(revision: Int64, version: String, changedAt: Date, fileVersion: String?) {
        self.revision = revision
        self.version = version
        self.changedAt = changedAt
        self.fileVersion = fileVersion
    }
}

extension SharedRouteTableHead {
    /// A head from its row: `revision, version, changed_at, file_version`.
    init(row revision: Int64, _ version: String, _ changedAt: String, _ fileVersion: String?) {
        self.init(
            revision: revision,
            version: version,
            changedAt: StoredTimestamp.parse(changedAt) ?? Date(timeIntervalSince1970: 0),
            fileVersion: fileVersion
        )
    }
}

/// A change made against a table version that is no longer live: another change committed
/// first. Nothing was written.
public struct SharedRouteTableConflict: Error, Sendable, CustomStringConvertible {
    /// The version the change was made against; nil for a change made against no table.
    public var expected: String?
    /// What is live now; nil when the store holds no table.
    public var current: SharedRouteTableHead?

    public var description: String {
        "the route table is version \(current?.version ?? "none") (revision \(current?.revision ?? 0)), not \(expected ?? "none") as the change expected"
    }
}

extension PostgresDiffStore {
    /// The channel every committed change is announced on, with its revision as the payload.
    public static let routeTableChannel = "strangler_route_table"

    /// The live table's head; nil when no table was ever imported.
    public func routeTableHead() async throws -> SharedRouteTableHead? {
        try await read(
            "SELECT revision, version, changed_at, file_version FROM route_table_head",
            as: (Int64, String, String, String?).self,
            SharedRouteTableHead.init(row:_:_:_:)
        ).first
    }

    /// The live table's head and content, read together; nil when no table was ever imported.
    public func routeTable() async throws -> (head: SharedRouteTableHead, content: Data)? {
        try await read(
            """
            SELECT h.revision, h.version, h.changed_at, h.file_version, t.content
            FROM route_table_head h JOIN route_tables t ON t.version = h.version
            """,
            as: (Int64, String, String, String?, String).self
        ) { revision, version, changedAt, fileVersion, content in
            (SharedRouteTableHead(row: revision, version, changedAt, fileVersion), Data(content.utf8))
        }.first
    }

    /// Records that the routes file whose hash is `fileVersion` was pushed, when the live table
    /// already is that file's content (imported by hand, or pushed by another instance before
    /// file versions were kept): a later start with the same file then does not push it over
    /// changes made since.
    public func recordFileVersion(_ fileVersion: String) async throws {
        try await execute("UPDATE route_table_head SET file_version = \(fileVersion) WHERE version = \(fileVersion)")
    }

    /// Makes `content` the live table if the live one is still `expected` (nil: no table yet),
    /// with its audit rows and a NOTIFY to every instance, in one transaction: all of it or none.
    /// - Parameter fileVersion: the hash of the routes file this content came from, when an
    ///   instance pushes its file; kept, so the same file is not pushed again.
    /// - Returns: the new head and the audit rows' ids.
    /// - Throws: ``SharedRouteTableConflict`` when another change committed first (nothing is
    ///   written); ``PostgresStoreError`` when the database fails or does not answer.
    public func commitRouteTable(
        _ content: Data,
        expecting expected: String?,
        changes: [RouteChange],
        fileVersion: String? = nil
    ) async throws -> (head: SharedRouteTableHead, changeIDs: [Int64]) {
        let version = ContentHash.hex(of: content)
        let now = Date()
        enum Outcome: Sendable {
            case committed(SharedRouteTableHead, [Int64])
            case conflict(SharedRouteTableHead?)
        }
        // A conflict is an answer, not a failure: it is returned from the transaction (which
        // then commits having written nothing) and thrown here, outside the store's error text.
        let outcome = try await transaction { connection -> Outcome in
            // The row lock orders concurrent changes: the second waits for the first to end,
            // then sees its version.
            let current = try await Self.fetch(
                connection,
                "SELECT revision, version, changed_at, file_version FROM route_table_head FOR UPDATE",
                as: (Int64, String, String, String?).self,
                logger: self.logger,
                SharedRouteTableHead.init(row:_:_:_:)
            ).first
            guard current?.version == expected else { return .conflict(current) }
            // Kept first: the head refers to it. A version kept without going live is harmless
            // (the kept versions are what rollback chooses from).
            try await Self.saveTable(connection, version: version, content: content, self.logger)
            let head = SharedRouteTableHead(
                revision: (current?.revision ?? 0) + 1,
                version: version,
                changedAt: now,
                fileVersion: fileVersion ?? current?.fileVersion
            )
            // Two first imports into an empty store both find no row to lock: the second one's
            // insert then finds the first's row, changes nothing, and is a conflict.
            let written = try await Self.fetch(
                connection,
                """
                INSERT INTO route_table_head (revision, version, changed_at, file_version)
                VALUES (\(head.revision), \(head.version), \(StoredTimestamp.format(now)), \(head.fileVersion))
                ON CONFLICT (singleton) DO UPDATE SET revision = EXCLUDED.revision, version = EXCLUDED.version,
                    changed_at = EXCLUDED.changed_at, file_version = EXCLUDED.file_version
                WHERE route_table_head.version IS NOT DISTINCT FROM \(expected)
                RETURNING revision
                """,
                as: (Int64.self),
                logger: self.logger
            ) { $0 }
            guard !written.isEmpty else {
                return .conflict(
                    try await Self.fetch(
                        connection,
                        "SELECT revision, version, changed_at, file_version FROM route_table_head",
                        as: (Int64, String, String, String?).self,
                        logger: self.logger,
                        SharedRouteTableHead.init(row:_:_:_:)
                    ).first
                )
            }
            let ids = try await Self.insertChanges(changes, connection, self.logger)
            // Delivered when the transaction commits, and only then.
            try await connection.query("SELECT pg_notify(\(Self.routeTableChannel), \(String(head.revision)))", logger: self.logger)
            return .committed(head, ids)
        }
        switch outcome {
        case .committed(let head, let ids): return (head, ids)
        case .conflict(let current): throw SharedRouteTableConflict(expected: expected, current: current)
        }
    }
}

extension PostgresDiffStore {
    /// Listens for route table commits on a connection of its own: calls `changed` once
    /// listening has begun (a commit made before is found then) and after every notification,
    /// until the task is cancelled (it returns) or the connection fails (it throws
    /// ``PostgresStoreError``).
    /// How often the listening connection is checked.
    static var listenCheckInterval: Duration { .seconds(5) }

    public func listenForRouteTableChanges(_ changed: @escaping @Sendable () async -> Void) async throws {
        let connection: PostgresConnection
        do {
            // Bounded, and not awaited past its time or past cancellation: a connection that
            // comes late is closed at once.
            let configuration = try url.connectionConfiguration()
            connection = try await FirstOutcome.of(
                timeout: operationTimeout,
                { [logger] in try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger) },
                abandon: { _ in },
                discard: { $0.closeInBackground() }
            )
        } catch {
            throw PostgresStoreError(location: location, cause: PostgresErrorText.describe(error))
        }
        // The listening and the checks run in tasks of their own, and whichever ends first (the
        // notifications, a failed check, or cancellation) ends both by closing the connection:
        // nothing here awaits a query that might never answer.
        do {
            try await FirstOutcome.of(
                // No deadline: listening lasts until it fails or the caller is cancelled.
                timeout: nil,
                { [logger] in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            try await connection.listen(on: Self.routeTableChannel) { notifications in
                                await changed()
                                for try await _ in notifications { await changed() }
                            }
                        }
                        // A connection cut without a reset (a partition, a failover) would wait
                        // for notifications for ever: a bounded query every few seconds finds it
                        // dead.
                        group.addTask {
                            while true {
                                try await Task.sleep(for: Self.listenCheckInterval)
                                try await FirstOutcome.of(
                                    timeout: Self.listenCheckInterval,
                                    {
                                        try await connection.query("SELECT 1", logger: logger)
                                        return ()
                                    },
                                    abandon: { _ in connection.closeInBackground() }
                                )
                            }
                        }
                        defer { group.cancelAll() }
                        try await group.next()
                    }
                },
                abandon: { _ in connection.closeInBackground() }
            )
        } catch {
            connection.closeInBackground()
            if Task.isCancelled { return }
            throw PostgresStoreError(location: location, cause: PostgresErrorText.describe(error))
        }
        connection.closeInBackground()
        if !Task.isCancelled {
            throw PostgresStoreError(location: location, cause: "the server ended the notifications")
        }
    }
}
