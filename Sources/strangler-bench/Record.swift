import Foundation
import Logging
import StranglerCore
import StranglerStore

/// `strangler-bench record`: what storing one comparison costs, without any proxying. Writes
/// `rows` comparisons, in the diff recorder's batch size, to a fresh SQLite file migrated as
/// `strangler serve` migrates it, and reports wall and CPU time per row (CPU of the whole
/// process, so SQLite's and GRDB's threads count). Most rows are matches, some mismatches with
/// two differences, like a healthy shadowed route.
///
/// With `store` a `postgres://` URL the rows go to that (empty) database instead, and the
/// PostgreSQL server's CPU on this machine is reported beside the process's.
func runRecordBenchmark(rows: Int, store location: String?, migrations directory: String) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-bench-record-\(getpid())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try await benchStore(location, sqlite: folder.appendingPathComponent("diffs.sqlite").path, migrations: directory)
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
    let serverBefore = postgresServerCPUSeconds()
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
    let server = postgresServerCPUSeconds() - serverBefore
    let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    // Building the records is part of the loop; measured alone it is a small fraction of a µs.
    print(
        String(
            format: "record (%@): %d comparisons in batches of %d: %.2f us wall, %.2f us CPU per row%@ (%.0f rows a second; %d rows in the store)",
            store.location,
            rows,
            batchSize,
            wall * 1e6 / Double(rows),
            cpu * 1e6 / Double(rows),
            store is PostgresDiffStore ? String(format: ", PostgreSQL server %.2f us CPU per row", server * 1e6 / Double(rows)) : "",
            Double(rows) / wall,
            try await benchComparisonCount(store)
        )
    )
    if let store = store as? PostgresDiffStore { await store.close() }
}

/// The store a bench writes to: a fresh SQLite file, or the given `postgres://` database.
func benchStore(_ location: String?, sqlite path: String, migrations directory: String) async throws -> any DiffStore {
    guard let location, PostgresStoreURL.isPostgres(location) else {
        return try SQLiteDiffStore(path: path, migrations: Migration.load(directory: directory))
    }
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    return try await PostgresDiffStore.open(
        url: try PostgresStoreURL(location),
        migrations: try PostgresMigrationRunner.load(directory: directory),
        logger: logger,
        operationTimeout: .seconds(60)
    )
}

/// Example rows in either store.
func benchComparisonCount(_ store: any DiffStore) async throws -> Int {
    if let store = store as? SQLiteDiffStore { return try await store.comparisonCount() }
    if let store = store as? PostgresDiffStore { return try await store.comparisonCount() }
    return 0
}

/// User + system CPU seconds of every PostgreSQL server process on this machine (from
/// /proc), so a bench against a local server counts the work it moved there.
func postgresServerCPUSeconds() -> Double {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = 0.0
    for entry in entries where entry.allSatisfy(\.isNumber) {
        guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"),
            stat[stat.index(after: open)..<close].hasPrefix("postgres")
        else { continue }
        // Fields after the name: state is the 3rd field overall; utime and stime are the 14th and 15th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
        total += (user + system) / ticks
    }
    return total
}

/// User + system CPU seconds of this process, all threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
