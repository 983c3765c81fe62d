import Foundation
import StranglerCore

// Microbenchmarks of the proxy's pure hot-path pieces, outside any server: a simple timing
// harness (median of repeated rounds), run from bench/ (bench/micro) in a release build.
//
//   strangler-bench match [--routes 10000] [--lookups 1000000]
//   strangler-bench predicates [--paths 2500] [--lookups 1000000]            (routes with predicates: see Predicates.swift)
//   strangler-bench target [--routes 100] [--lookups 1000000]                (routing on the normal path)
//   strangler-bench canary [--lookups 1000000]
//   strangler-bench compare [--comparisons 20000]                         (the comparator on two JSON bodies)
//   strangler-bench relay [--listen-port 18007] [--upstream-port 18001]   (a server: see Relay.swift)
//   strangler-bench record [--rows 200000] [--store postgres://...] [--migrations migrations]   (the diff store: see Record.swift)
//   strangler-bench store-growth [--comparisons 1000000] [--rate 5000] [--mix identical|realistic] [--store postgres://...]
//                                [--migrations migrations]
//                                                                          (store size and recorder CPU: see StoreGrowth.swift)
//   strangler-bench report-time [--days 30] [--routes 5] [--rate 5000]     (report and gate time over rollups: see ReportTime.swift)
//   strangler-bench propagation --admin-a URL --admin-b URL --token SECRET --route ID [--flips 100] [--modes legacy,shadow]
//                               [--poll-ms 1] [--pause-ms 100] [--warmup 2]
//                                                                          (a route change through one instance until another serves it:
//                                                                           see Propagation.swift; bench/route-propagation runs it)

func argument(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let parsed = Int(arguments[index + 1]) else { return value }
    return parsed
}

/// Runs `body` `rounds` times and returns the median nanoseconds per operation.
func measure(operations: Int, rounds: Int = 7, _ body: () -> Int) -> (nanoseconds: Double, checksum: Int) {
    var samples: [Double] = []
    var checksum = 0
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        checksum &+= body()
        let elapsed = ContinuousClock.now - start
        samples.append(Double(elapsed.components.attoseconds) / 1e9 + Double(elapsed.components.seconds) * 1e9)
    }
    samples.sort()
    return (samples[samples.count / 2] / Double(operations), checksum)
}

/// A table of `count` routes shaped like a large monolith's: /svcN/resource/{id}/action.
func table(routes count: Int) throws -> RouteTable {
    var routes: [String] = []
    for index in 0..<count {
        let group = index / 10
        switch index % 10 {
        case 0: routes.append(#"{"id": "r\#(index)", "methods": ["GET"], "path": "/svc\#(group)/items", "mode": "legacy"}"#)
        case 1: routes.append(#"{"id": "r\#(index)", "methods": ["GET"], "path": "/svc\#(group)/items/{id}", "mode": "legacy"}"#)
        case 2: routes.append(#"{"id": "r\#(index)", "path": "/svc\#(group)/items/{id}/history", "mode": "legacy"}"#)
        case 3: routes.append(#"{"id": "r\#(index)", "path": "/svc\#(group)/items/{id}/lines/{line}", "mode": "legacy"}"#)
        case 4: routes.append(#"{"id": "r\#(index)", "path": "/svc\#(group)/export", "mode": "legacy"}"#)
        case 5: routes.append(#"{"id": "r\#(index)", "path": "/svc\#(group)/admin/**", "mode": "legacy"}"#)
        case 6: routes.append(#"{"id": "r\#(index)", "methods": ["POST"], "path": "/svc\#(group)/items", "mode": "legacy"}"#)
        case 7: routes.append(#"{"id": "r\#(index)", "methods": ["DELETE"], "path": "/svc\#(group)/items/{id}", "mode": "legacy"}"#)
        case 8: routes.append(#"{"id": "r\#(index)", "path": "/svc\#(group)/search", "mode": "legacy"}"#)
        default: routes.append(#"{"id": "r\#(index)", "path": "/svc\#(group)/items/{id}/notes/**", "mode": "legacy"}"#)
        }
    }
    let json =
        #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "legacy", "routes": [\#(routes.joined(separator: ","))]}"#
    return try RouteTable.parse(Data(json.utf8))
}

let mode = CommandLine.arguments.dropFirst().first ?? "match"
switch mode {
case "match":
    let count = argument("--routes", default: 10_000)
    let lookups = argument("--lookups", default: 1_000_000)
    let start = ContinuousClock.now
    let routes = try table(routes: count)
    print("built and validated a table of \(count) routes in \(ContinuousClock.now - start)")
    let groups = max(1, count / 10)
    let uris = (0..<4096).map { index -> String in
        let group = (index &* 7919) % groups
        switch index % 4 {
        case 0: return "/svc\(group)/items/ORD-\(index)?page=2"
        case 1: return "/svc\(group)/items/ORD-\(index)/lines/\(index % 9)"
        case 2: return "/svc\(group)/admin/a/b/c"
        default: return "/nowhere/\(index)"
        }
    }
    let result = measure(operations: lookups) {
        var found = 0
        for index in 0..<lookups {
            if let route = routes.matcher.matchIndex(method: "GET", uri: uris[index & 4095]) { found &+= route }
        }
        return found
    }
    print(
        String(
            format: "match: %d routes, %.0f ns per lookup (median of 7 rounds of %d; checksum %d)",
            count,
            result.nanoseconds,
            lookups,
            result.checksum
        )
    )
case "predicates":
    try runPredicatesBenchmark(paths: argument("--paths", default: 2_500), lookups: argument("--lookups", default: 1_000_000))
case "target":
    // Routing a request target as the proxy does (TargetRouter), against the matcher on the raw
    // bytes: the cost of the one-pass normal-form check, and of normalising unusual targets.
    let count = argument("--routes", default: 100)
    let lookups = argument("--lookups", default: 1_000_000)
    let routes = try table(routes: count)
    let groups = max(1, count / 10)
    func targets(_ spell: (Int, Int) -> String) -> (bytes: [UInt8], ranges: [Range<Int>]) {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for index in 0..<4096 {
            let start = bytes.count
            bytes += Array(spell(index, (index &* 7919) % groups).utf8)
            ranges.append(start..<bytes.count)
        }
        return (bytes, ranges)
    }
    let normal = targets { index, group in
        index % 2 == 0 ? "/svc\(group)/items/ORD-\(index)?page=2" : "/svc\(group)/items/ORD-\(index)/lines/\(index % 9)"
    }
    let unusual = targets { index, group in
        switch index % 3 {
        case 0: "/svc\(group)/./items/%4FRD-\(index)?page=2"
        case 1: "http://shop.example/svc\(group)/items/ORD-\(index)"
        default: "//svc\(group)/x/../items/ORD-\(index)/lines/\(index % 9)"
        }
    }
    func run(_ name: String, _ set: (bytes: [UInt8], ranges: [Range<Int>]), router: Bool) {
        var targetRouter = TargetRouter()
        // These tables have no predicates: the request's host and headers are never read.
        let details = RequestDetails(target: "/")
        let result = set.bytes.withUnsafeBytes { raw in
            measure(operations: lookups) {
                var found = 0
                for index in 0..<lookups {
                    let target = UnsafeRawBufferPointer(rebasing: raw[set.ranges[index & 4095]])
                    let route =
                        router
                        ? try? targetRouter.matchIndex(in: routes.matcher, method: "GET", target: target, request: details)
                        : routes.matcher.matchIndex(method: "GET", target: target, request: details)
                    if let route { found &+= route }
                }
                return found
            }
        }
        print(String(format: "%@: %d routes, %.0f ns per lookup (checksum %d)", name, count, result.nanoseconds, result.checksum))
    }
    run("raw bytes, normal targets", normal, router: false)
    run("TargetRouter, normal targets", normal, router: true)
    run("TargetRouter, unusual targets", unusual, router: true)
case "canary":
    let lookups = argument("--lookups", default: 1_000_000)
    let keys = (0..<4096).map { "customer-\($0)" }
    let result = measure(operations: lookups) {
        var served = 0
        for index in 0..<lookups where CanarySplit.servesService(bucket: CanarySplit.bucket(of: keys[index & 4095].utf8), percent: 10) {
            served &+= 1
        }
        return served
    }
    print(String(format: "canary split: %.0f ns per decision (checksum %d)", result.nanoseconds, result.checksum))
case "compare":
    // The bench's order JSON against the same order with every object's keys reversed: equal as
    // JSON, not as bytes, so both bodies are parsed and walked (bench/run's strangler-shadow-json).
    let comparisons = argument("--comparisons", default: 20_000)
    let order = Array(
        #"{"orderId":"ORD-100001","customerId":"CUST-0005","status":"SHIPPED","currency":"USD","createdAt":"20260920 22:14:40","updatedAt":"20260920 22:14:40","shipZip":"98101","total":"443.58","items":[{"line":1,"sku":"SKU-1022","qty":1,"unitPrice":"89.04","name":"Trail Runner Shoe v3"},{"line":2,"sku":"SKU-1012","qty":1,"unitPrice":"184.44","name":"Rain Shell Jacket v2"},{"line":3,"sku":"SKU-1013","qty":3,"unitPrice":"56.70","name":"Merino Base Layer v2"}],"shipping":{"carrier":"UPS","service":"GROUND","trackingNumber":"UP900007919"},"LEGACY_ROW_ID":70013}"#
            .utf8
    )
    let reordered = Array(
        #"{"LEGACY_ROW_ID":70013,"shipping":{"trackingNumber":"UP900007919","service":"GROUND","carrier":"UPS"},"items":[{"name":"Trail Runner Shoe v3","unitPrice":"89.04","qty":1,"sku":"SKU-1022","line":1},{"name":"Rain Shell Jacket v2","unitPrice":"184.44","qty":1,"sku":"SKU-1012","line":2},{"name":"Merino Base Layer v2","unitPrice":"56.70","qty":3,"sku":"SKU-1013","line":3}],"total":"443.58","shipZip":"98101","updatedAt":"20260920 22:14:40","createdAt":"20260920 22:14:40","currency":"USD","status":"SHIPPED","customerId":"CUST-0005","orderId":"ORD-100001"}"#
            .utf8
    )
    let headers = [(name: "Content-Type", value: "application/json")]
    let primary = CapturedResponse(status: 200, headers: headers, body: order)
    let candidate = CapturedResponse(status: 200, headers: headers, body: reordered)
    var settings = CompareSettings()
    settings.headers = ["content-type"]
    let comparator = ResponseComparator(settings: settings)
    let result = measure(operations: comparisons) {
        var differences = 0
        for _ in 0..<comparisons { differences &+= comparator.compare(primary: primary, candidate: candidate).differences.count + 1 }
        return differences
    }
    print(
        String(
            format: "compare: a %d-byte order JSON against its keys reordered, %.2f us per comparison (checksum %d)",
            order.count,
            result.nanoseconds / 1000,
            result.checksum
        )
    )
    // One value changed: the answer a reviewer reads, with the difference found by parsing.
    let changed = CapturedResponse(
        status: 200,
        headers: headers,
        body: Array(String(decoding: reordered, as: UTF8.self).replacingOccurrences(of: "443.58", with: "443.59").utf8)
    )
    let mismatch = measure(operations: comparisons) {
        var differences = 0
        for _ in 0..<comparisons { differences &+= comparator.compare(primary: primary, candidate: changed).differences.count }
        return differences
    }
    print(
        String(
            format: "compare: the same with one value changed (one difference found), %.2f us per comparison (checksum %d)",
            mismatch.nanoseconds / 1000,
            mismatch.checksum
        )
    )
case "record":
    let arguments = CommandLine.arguments
    let migrations = arguments.firstIndex(of: "--migrations").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil } ?? "migrations"
    let store = arguments.firstIndex(of: "--store").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil }
    try await runRecordBenchmark(rows: argument("--rows", default: 200_000), store: store, migrations: migrations)
case "store-growth":
    let arguments = CommandLine.arguments
    func text(_ name: String, _ fallback: String) -> String {
        arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil } ?? fallback
    }
    try await runStoreGrowthBenchmark(
        comparisons: argument("--comparisons", default: 1_000_000),
        rate: argument("--rate", default: 5000),
        mix: text("--mix", "identical"),
        store: arguments.firstIndex(of: "--store").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil },
        migrations: text("--migrations", "migrations")
    )
case "report-time":
    let arguments = CommandLine.arguments
    try await runReportTimeBenchmark(
        days: argument("--days", default: 30),
        routes: argument("--routes", default: 5),
        rate: argument("--rate", default: 5000),
        migrations: arguments.firstIndex(of: "--migrations").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil }
            ?? "migrations"
    )
case "propagation":
    let arguments = CommandLine.arguments
    func text(_ name: String) -> String? {
        arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil }
    }
    guard let adminA = text("--admin-a"), let adminB = text("--admin-b"), let token = text("--token"), let route = text("--route") else {
        FileHandle.standardError.write(
            Data(
                "usage: strangler-bench propagation --admin-a URL --admin-b URL --token SECRET --route ID [--flips 100] [--modes legacy,shadow]\n"
                    .utf8
            )
        )
        exit(2)
    }
    var options = PropagationOptions(adminA: adminA, adminB: adminB, token: token, route: route)
    options.flips = argument("--flips", default: 100)
    options.warmup = argument("--warmup", default: 2)
    options.pollInterval = .milliseconds(argument("--poll-ms", default: 1))
    options.pause = .milliseconds(argument("--pause-ms", default: 100))
    if let modes = text("--modes")?.split(separator: ",").map(String.init) {
        guard modes.count == 2, modes[0] != modes[1] else {
            FileHandle.standardError.write(Data("--modes takes two different modes, like legacy,shadow\n".utf8))
            exit(2)
        }
        options.modes = (modes[0], modes[1])
    }
    do {
        try runPropagationBenchmark(options)
    } catch {
        FileHandle.standardError.write(Data("propagation: \(error)\n".utf8))
        exit(1)
    }
case "relay":
    try runRelay(listenPort: argument("--listen-port", default: 18007), upstreamPort: argument("--upstream-port", default: 18001))
default:
    FileHandle.standardError.write(
        Data(
            "usage: strangler-bench match [--routes N] [--lookups N] | predicates [--paths N] [--lookups N] | target [--routes N] [--lookups N] | canary [--lookups N] | compare [--comparisons N] | record [--rows N] [--store URL] [--migrations DIR] | store-growth [--comparisons N] [--rate R] [--mix identical|realistic] [--store URL] | report-time [--days N] [--routes N] [--rate R] | propagation --admin-a URL --admin-b URL --token SECRET --route ID [--flips N] | relay [--listen-port P] [--upstream-port P]\n"
                .utf8
        )
    )
    exit(2)
}
