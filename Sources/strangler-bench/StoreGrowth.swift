import Foundation
import Logging
import StranglerCore
import StranglerStore

/// `strangler-bench store-growth`: how big the diff store grows, and what the recorder costs,
/// per shadowed request. Feeds `comparisons` records through a real ``DiffRecorder`` into a
/// fresh SQLite store (as `strangler serve` migrates it), timed as if they arrived at `rate` a
/// second, stops it as a graceful shutdown does (flush, then a WAL checkpoint), and reports the
/// bytes the store's files take at each quarter, with CPU per comparison.
///
/// `mix` is `identical` (every answer the same) or `realistic`: 95% identical, 5% mismatches
/// with 1–3 differences among a dozen pointers, one in ten of those with a differing status.
///
/// With `store` a `postgres://` URL the recorder writes to that (empty) database instead; the
/// size is then the database's (`pg_database_size`), and the server's CPU is reported too.
func runStoreGrowthBenchmark(comparisons: Int, rate: Int, mix: String, store location: String?, migrations directory: String) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-bench-growth-\(getpid())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("diffs.sqlite").path
    let store = try await benchStore(location, sqlite: path, migrations: directory)
    let postgres = store as? PostgresDiffStore
    let emptySize = try await postgres?.databaseSize() ?? 0
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    let recorder = DiffRecorder(store: store, capacity: 50_000, instanceID: "bench", logger: logger)
    let routes = ["orders-get", "inventory-get", "customers-get", "orders-list"]
    let pointers = [
        "/total", "/lines/0/sku", "/lines/0/qty", "/customer/email", "/status", "/updatedAt", "/currency", "/tax",
        "/lines/1/price", "/shipping/method", "/discounts/0/code", "/notes",
    ]
    let realistic = mix == "realistic"
    let start = Date()
    var random = SystemRandomNumberGenerator()
    func record(_ index: Int) -> ComparisonRecord {
        let mismatch = realistic && index % 20 == 7
        var differences: [Difference] = []
        if mismatch {
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let pointer = pointers[Int.random(in: 0..<pointers.count, using: &random)]
                differences.append(Difference(kind: .changed, pointer: pointer, primary: "\"legacy value\"", candidate: "\"service value\""))
            }
        }
        let statusDiffers = mismatch && index % 200 == 7
        return ComparisonRecord(
            routeID: routes[index % routes.count],
            requestID: "9f86d081884c7d65-" + String(index, radix: 16),
            method: "GET",
            path: "/orders/ORD-\(100_000 + index % 5000)",
            recordedAt: start.addingTimeInterval(Double(index) / Double(rate)),
            tableVersion: "v-bench",
            primaryUpstream: "legacy",
            candidateUpstream: "orders-svc",
            primaryStatus: 200,
            candidateStatus: statusDiffers ? 500 : 200,
            primaryMilliseconds: 1.2 + Double(index % 17) * 0.1,
            candidateMilliseconds: 0.7 + Double(index % 13) * 0.1,
            outcome: mismatch || statusDiffers ? .mismatch : .match,
            differences: differences
        )
    }
    func bytes() async throws -> Int {
        // A database starts with PostgreSQL's own catalogs: only what the store added counts.
        if let postgres { return try await postgres.databaseSize() - emptySize }
        return ["", "-wal", "-shm"].reduce(0) { total, suffix in
            total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int) ?? 0)
        }
    }
    print("store-growth: \(comparisons) comparisons (\(mix)) at \(rate)/s of record time, through the recorder into \(store.location)")
    let serverBefore = postgresServerCPUSeconds()
    let wallStart = ContinuousClock.now
    let chunk = 10_000
    var submitted = 0
    var recorderCPU = 0.0
    var quarter = 1
    while submitted < comparisons {
        let records = (submitted..<min(submitted + chunk, comparisons)).map(record)
        let cpu = processCPUSeconds()
        recorder.submit(contentsOf: records)
        await recorder.drainQueued()
        recorderCPU += processCPUSeconds() - cpu
        submitted += records.count
        if submitted >= comparisons * quarter / 4 {
            let cpu = processCPUSeconds()
            await recorder.flush()
            await recorder.checkpoint()
            recorderCPU += processCPUSeconds() - cpu
            let size = try await bytes()
            print(
                String(
                    format: "  after %8d: %9d bytes (%.2f MB per million), %d example rows",
                    submitted,
                    size,
                    Double(size) / 1e6 * 1e6 / Double(submitted),
                    try await benchComparisonCount(store)
                )
            )
            quarter += 1
        }
    }
    let statistics = recorder.statistics
    let wall = ContinuousClock.now - wallStart
    let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
    let serverCPU = (postgresServerCPUSeconds() - serverBefore) * 1e6 / Double(comparisons)
    print(
        String(
            format: "  recorder CPU %.2f us per comparison (queue, rollups, sampling, writes)%@; "
                + "%.0f comparisons a second; counted %d, dropped %d, rows written %d",
            recorderCPU * 1e6 / Double(comparisons),
            postgres == nil ? "" : String(format: ", PostgreSQL server %.2f us", serverCPU),
            Double(comparisons) / seconds,
            statistics.counted,
            statistics.droppedQueueFull + statistics.droppedStoreError,
            statistics.recorded
        )
    )
    await postgres?.close()
}
