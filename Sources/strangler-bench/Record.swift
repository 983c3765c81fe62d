import Foundation
import StranglerCore
import StranglerStore

/// `strangler-bench record`: what storing one comparison costs, without any proxying. Writes
/// `rows` comparisons, in the diff recorder's batch size, to a fresh SQLite file migrated as
/// `strangler serve` migrates it, and reports wall and CPU time per row (CPU of the whole
/// process, so SQLite's and GRDB's threads count). Most rows are matches, some mismatches with
/// two differences, like a healthy shadowed route.
func runRecordBenchmark(rows: Int, migrations directory: String) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-bench-record-\(getpid())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try SQLiteDiffStore(path: folder.appendingPathComponent("diffs.sqlite").path, migrations: Migration.load(directory: directory))
    let batchSize = DiffRecorder.defaultBatchSize
    let routes = ["orders-get", "inventory-get", "customers-get", "orders-list"]
    func batch(_ start: Int) -> [ComparisonRecord] {
        (start..<min(start + batchSize, rows)).map { index in
            let mismatch = index % 20 == 0
            return ComparisonRecord(
                routeID: routes[index % routes.count],
                requestID: requestID(index),
                method: "GET",
                path: "/orders/ORD-\(100_000 + index % 5000)",
                tableVersion: "v-bench",
                primaryUpstream: "legacy",
                candidateUpstream: "orders-svc",
                primaryStatus: 200,
                candidateStatus: 200,
                primaryMilliseconds: 1.25,
                candidateMilliseconds: 0.75,
                outcome: mismatch ? .mismatch : .match,
                differences: mismatch
                    ? [
                        Difference(kind: .changed, pointer: "/total", primary: "12.5", candidate: "12.50"),
                        Difference(kind: .missing, pointer: "/lines/0/sku", primary: "\"A-1\"", candidate: nil),
                    ] : []
            )
        }
    }
    // Ids as the proxy makes them: a per-event-loop random prefix and a counter.
    func requestID(_ index: Int) -> String {
        let counter = String(index, radix: 16)
        return "9f86d081884c7d65-" + String(repeating: "0", count: max(0, 8 - counter.count)) + counter
    }
    // Warm-up: the first pages and statements.
    try await store.insert(batch(0))
    let cpuBefore = processCPUSeconds()
    let start = ContinuousClock.now
    var written = 0
    while written < rows {
        let next = batch(written)
        try await store.insert(next)
        written += next.count
    }
    let elapsed = ContinuousClock.now - start
    let cpu = processCPUSeconds() - cpuBefore
    let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    // Building the records is part of the loop; measured alone it is a small fraction of a µs.
    print(
        String(
            format: "record: %d comparisons in batches of %d: %.2f us wall, %.2f us CPU per row (%d rows in the store)",
            rows,
            batchSize,
            wall * 1e6 / Double(rows),
            cpu * 1e6 / Double(rows),
            try await store.comparisonCount()
        )
    )
}

/// User + system CPU seconds of this process, all threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
