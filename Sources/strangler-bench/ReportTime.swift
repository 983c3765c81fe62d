import Foundation
import GRDB
import StranglerCore
import StranglerReport
import StranglerStore

/// `strangler-bench report-time`: how long the whole report and one route's gate take over a
/// long window of rollups. Generates `days` of minutes for `routes` routes as if each received
/// `rate / routes` shadowed requests a second (5,000 a second over 30 days is about 13 billion
/// comparisons), written as rollups straight into a fresh SQLite store, then times
/// `ReportBuilder.build` over the whole window and `evidence` (what a gate reads) for one route
/// over the last 24 hours and over the whole window.
func runReportTimeBenchmark(days: Int, routes routeCount: Int, rate: Int, migrations directory: String) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-bench-report-\(getpid())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("diffs.sqlite").path
    let store = try SQLiteDiffStore(path: path, migrations: Migration.load(directory: directory))
    let routes = (0..<routeCount).map { "route-\($0)" }
    let perMinute = rate * 60 / routeCount
    let now = RouteMinuteRollup.minute(of: Date())
    let minutes = days * 1440
    let pointers = ["/total", "/lines/0/sku", "/updatedAt", "/customer/email", "/tax"]
    var random = SystemRandomNumberGenerator()
    func rollup(route: String, minute: Date) -> RouteMinuteRollup {
        var rollup = RouteMinuteRollup(routeID: route, minute: minute, instanceID: "bench")
        let mismatches = perMinute / 50
        rollup.matches = perMinute - mismatches
        rollup.mismatches = mismatches
        rollup.bodyMismatches = mismatches
        rollup.statusMismatches = mismatches / 20
        rollup.skipped = ["write_skipped": perMinute / 100]
        for (index, pointer) in pointers.enumerated() {
            let count = mismatches / (index + 2)
            rollup.pointers[.init(pointer: pointer, kind: .changed)] = .init(count: count, firstSeen: minute, lastSeen: minute.addingTimeInterval(59))
        }
        rollup.signatures[MismatchSignature(statusDiffers: false, headerDiffers: false, hasDifferences: true, bodyPointers: ["/total"])] =
            mismatches - mismatches / 3 - mismatches / 20
        rollup.signatures[MismatchSignature(statusDiffers: false, headerDiffers: false, hasDifferences: true, bodyPointers: ["/total", "/tax"])] =
            mismatches / 3
        rollup.signatures[MismatchSignature(statusDiffers: true, headerDiffers: false, hasDifferences: true, bodyPointers: [])] =
            mismatches / 20
        var latency = RouteMinuteRollup.PairLatency()
        // A spread of latencies, as a minute of real traffic would have.
        for _ in 0..<200 {
            latency.primary.record(milliseconds: Double.random(in: 0.5...40, using: &random))
            latency.candidate.record(milliseconds: Double.random(in: 0.3...25, using: &random))
        }
        rollup.latency[.init(primary: "legacy", candidate: "service")] = latency
        return rollup
    }
    print(
        "report-time: \(days) days × \(routeCount) routes of minute rollups at \(rate) shadowed req/s "
            + "(\(Int64(rate) * Int64(minutes) * 60) comparisons)"
    )
    let generateStart = ContinuousClock.now
    for route in routes {
        var batch: [RouteMinuteRollup] = []
        for offset in stride(from: minutes, to: 0, by: -1) {
            batch.append(rollup(route: route, minute: now.addingTimeInterval(-Double(offset) * 60)))
            if batch.count == 1440 {
                try await store.addRollups(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        try await store.addRollups(batch)
    }
    try await store.checkpoint()
    func megabytes() -> Double {
        Double((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) / 1e6
    }
    print(String(format: "  generated in %@; store %.1f MB", "\(ContinuousClock.now - generateStart)", megabytes()))
    // As a store under the default retention holds it: minutes for the last 8 days, hours for all.
    let pruned = try await store.pruneMinuteRollups(before: now.addingTimeInterval(-8 * 86_400))
    try await store.pool.writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
    print(String(format: "  minutes older than 8 days pruned (%d route-minutes) and vacuumed: store %.1f MB", pruned, megabytes()))

    let table = try RouteTable.parse(
        Data(
            """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:1"}, "service": {"url": "http://127.0.0.1:2"}}, "defaultUpstream": "legacy",
             "routes": [\(routes.map { #"{"id": "\#($0)", "path": "/\#($0)/**", "mode": "shadow", "service": "service"}"# }.joined(separator: ", "))]}
            """.utf8
        )
    )
    let builder = ReportBuilder(store: store, table: table, routesFile: nil)
    func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
    for round in 1...3 {
        var clock = ContinuousClock.now
        let report = try await builder.build(since: now.addingTimeInterval(-Double(minutes) * 60), now: now)
        let reportTime = seconds(ContinuousClock.now - clock)
        clock = ContinuousClock.now
        let day = try await store.evidence(routeID: routes[0], serviceUpstream: "service", since: now.addingTimeInterval(-86_400))
        let gateDay = seconds(ContinuousClock.now - clock)
        clock = ContinuousClock.now
        let whole = try await store.evidence(routeID: routes[0], serviceUpstream: "service", since: now.addingTimeInterval(-Double(minutes) * 60))
        let gateWhole = seconds(ContinuousClock.now - clock)
        print(
            String(
                format: "  round %d: whole report %.3f s (%d routes, %lld samples); "
                    + "one route's gate over 24 h %.1f ms (%d samples), over %d days %.1f ms",
                round,
                reportTime,
                report.routes.count,
                Int64(report.routes.reduce(0) { $0 + $1.samples }),
                gateDay * 1000,
                day.samples,
                days,
                gateWhole * 1000
            )
        )
        _ = whole
    }
}
