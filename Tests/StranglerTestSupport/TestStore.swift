import Foundation
import GRDB
import Logging
import ServiceLifecycle
import StranglerCore
import StranglerProxy
import StranglerStore

/// A fresh SQLite diff store in a temporary folder, with the repository's migrations applied.
package func makeTestStore(_ prefix: String) throws -> SQLiteDiffStore {
    let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").path
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)/store.sqlite").path
    return try SQLiteDiffStore(path: path, migrations: try Migration.load(directory: migrations))
}

/// A routes file path in the test store's own temporary folder.
package func routesFilePath(beside store: SQLiteDiffStore) -> String {
    URL(fileURLWithPath: store.path).deletingLastPathComponent().appendingPathComponent("routes.json").path
}

/// A real diff store, recorder and comparison worker, running while `body` runs.
package struct ShadowPipeline {
    package let store: SQLiteDiffStore
    package let recorder: DiffRecorder
    package let worker: ComparisonWorker
    package let metrics: ProxyMetrics

    package static func run(_ body: (ShadowPipeline) async throws -> Void) async throws {
        var logger = Logger(label: "test.shadow")
        logger.logLevel = .critical
        let store = try makeTestStore("shadow")
        let recorder = DiffRecorder(store: store, interval: .milliseconds(20), rollupInterval: .zero, logger: logger)
        let metrics = ProxyMetrics()
        let worker = ComparisonWorker(recorder: recorder, metrics: metrics, logger: logger)
        // Order matters: shutdown runs in reverse, so the worker drains into a live recorder.
        try await whileRunning([recorder, worker], logger: logger) {
            try await body(ShadowPipeline(store: store, recorder: recorder, worker: worker, metrics: metrics))
        }
    }

    /// Waits (bounded) until the store holds `count` comparisons.
    package func waitForComparisons(_ count: Int) async throws -> Int {
        for _ in 0..<400 {
            let stored = try await store.comparisonsCounted()
            if stored >= count { return stored }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await store.comparisonsCounted()
    }

    package func row(requestID: String) async throws -> Row? {
        try await store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM comparisons WHERE request_id = ?", arguments: [requestID])
        }
    }
}
