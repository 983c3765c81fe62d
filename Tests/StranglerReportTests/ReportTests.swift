import Foundation
import StranglerCore
import StranglerReport
import StranglerStore
import Testing

@Suite("Diff reports")
struct ReportTests {
    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../migrations").path

    static let table = try! RouteTable.parse(
        Data(
            """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "inventory": {"url": "http://127.0.0.1:9101"}},
             "defaultUpstream": "legacy",
             "routes": [{"id": "inv", "path": "/inventory/{sku}", "mode": "shadow", "service": "inventory",
                         "gate": {"minSamples": 10, "maxMismatchRate": 0.05}}]}
            """.utf8
        )
    )

    /// 20 comparisons on "inv": 10 match; 6 differ at /qty; 4 differ at /updatedAt (learned
    /// noise) and /flags/0 (to be accepted); one status mismatch among the /qty ones.
    static func store() async throws -> SQLiteDiffStore {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)/store.sqlite").path
        let store = try SQLiteDiffStore(path: path, migrations: try Migration.load(directory: migrations))
        let now = Date()
        var records: [ComparisonRecord] = []
        func record(_ index: Int, _ differences: [Difference], status: Int = 200) -> ComparisonRecord {
            ComparisonRecord(
                routeID: "inv",
                requestID: "req-\(index)",
                method: "GET",
                path: "/inventory/SKU-\(index)",
                recordedAt: now.addingTimeInterval(Double(index - 20) * 60),
                tableVersion: "v1",
                primaryUpstream: "legacy",
                candidateUpstream: "inventory",
                primaryStatus: 200,
                candidateStatus: status,
                primaryMilliseconds: Double(index + 1),
                candidateMilliseconds: Double(2 * (index + 1)),
                outcome: differences.isEmpty ? .match : .mismatch,
                differences: differences
            )
        }
        for index in 0..<10 { records.append(record(index, [])) }
        for index in 10..<16 {
            var differences = [Difference(kind: .changed, pointer: "/qty", primary: "\(index)", candidate: "\(index + 1)")]
            if index == 15 { differences.insert(Difference(kind: .status, pointer: "", primary: "200", candidate: "500"), at: 0) }
            records.append(record(index, differences, status: index == 15 ? 500 : 200))
        }
        for index in 16..<20 {
            records.append(
                record(
                    index,
                    [
                        Difference(kind: .changed, pointer: "/updatedAt", primary: "a", candidate: "b"),
                        Difference(kind: .added, pointer: "/flags/0", primary: nil, candidate: "\"x\""),
                    ]
                )
            )
        }
        var probe = record(99, [])
        probe.noisePointers = ["/updatedAt"]
        records.append(probe)
        records.append(
            ComparisonRecord(
                routeID: "inv",
                requestID: "slow",
                method: "GET",
                path: "/inventory/SKU-9",
                recordedAt: now,
                tableVersion: "v1",
                primaryUpstream: "legacy",
                candidateUpstream: "inventory",
                outcome: .skipped,
                reason: "candidate_timeout"
            )
        )
        try await store.insertCounted(records)
        return store
    }

    @Test("counts, the confidence interval, top pointers with examples, noise and accepted apart, latency and the gate")
    func builds() async throws {
        let store = try await Self.store()
        try await store.accept(routeID: "inv", pointer: "/flags", reason: "new flags list", owner: "rita", until: nil)
        let lapsed = try await store.accept(routeID: "inv", pointer: "/qty", reason: "lapsed", owner: "rita", until: Date().addingTimeInterval(-1))
        _ = lapsed
        let report = try await ReportBuilder(store: store, table: Self.table, routesFile: "routes.json").build(
            since: Date().addingTimeInterval(-3600)
        )
        let route = try #require(report.routes.first)
        #expect(report.routes.count == 1)
        #expect(route.mode == "shadow" && route.service == "inventory")
        #expect(route.samples == 21)
        #expect(route.mismatches == 6, "the /qty ones; the lapsed acceptance does not excuse them")
        #expect(route.acceptedOnly == 4, "noise + accepted only")
        #expect(route.matches == 15)
        let rate = try #require(route.matchRate)
        #expect(abs(rate - 15.0 / 21.0) < 1e-9)
        let interval = try #require(route.matchRateInterval)
        #expect(interval.low < rate && rate < interval.high && interval.low > 0.45 && interval.high < 0.9)
        #expect(route.mismatchesByKind.status == 1 && route.mismatchesByKind.header == 0 && route.mismatchesByKind.body == 6)
        #expect(route.skipped == ["candidate_timeout": 1])
        #expect(route.topDifferences.map(\.pointer) == ["/qty", ""], "noise and accepted pointers are listed apart")
        let qty = route.topDifferences[0]
        #expect(qty.count == 6 && qty.kinds == ["changed"])
        #expect(qty.examples.map(\.requestID) == ["req-15", "req-14", "req-13"], "the newest three")
        #expect(qty.examples.first?.legacy == "15" && qty.examples.first?.service == "16")
        #expect(route.noise.map(\.pointer) == ["/updatedAt"])
        #expect(route.noise.first?.differences == 4)
        #expect(route.accepted.map(\.pointer) == ["/flags"], "only active acceptances")
        #expect(route.accepted.first?.differences == 4)
        #expect(route.accepted.first?.owner == "rita")
        #expect(route.latency.service.p99 == 2 * (route.latency.legacy.p99 ?? 0))
        #expect(!route.gate.holds)
        #expect(route.gate.checks.first { $0.name == "statusMismatches" }?.passed == false)
        #expect(route.timeline.reduce(0) { $0 + $1.samples } == 21)
        #expect(route.timeline.reduce(0) { $0 + $1.mismatches } == 6)
    }

    @Test("text aligns and colours only when asked; markdown, JSON and self-contained HTML carry the same facts")
    func renders() async throws {
        let store = try await Self.store()
        let report = try await ReportBuilder(store: store, table: Self.table, routesFile: "routes.json").build(
            since: Date().addingTimeInterval(-3600)
        )
        let plain = ReportFormat.text.render(report, colour: false)
        #expect(!plain.contains("\u{1B}["))
        #expect(plain.contains("inv    shadow  21       52.4%"))
        #expect(plain.contains("/qty"))
        #expect(plain.contains("req-15"))
        #expect(ReportFormat.text.render(report, colour: true).contains("\u{1B}[31m"))

        let markdown = ReportFormat.markdown.render(report, colour: true)
        #expect(markdown.contains("| route | mode | samples | match rate |"))
        #expect(markdown.contains("| inv | shadow | 21 |"))
        #expect(!markdown.contains("\u{1B}["))

        let json = Data(ReportFormat.json.render(report).utf8)
        let decoded = try Report.decode(json)
        #expect(decoded.schemaVersion == 1)
        #expect(decoded.routes.first?.topDifferences.first?.pointer == "/qty")

        let html = ReportFormat.html.render(report)
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.contains("<style>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 2, "a match-rate chart and a latency chart")
        #expect(html.contains("<polyline class=\"series\" data-series=\"match rate\""))
        #expect(html.contains("data-series=\"service\""))
        for external in ["src=", "<link", "url(", "@import", "https://"] {
            #expect(!html.contains(external), "no external asset: \(external)")
        }
        #expect(html.contains("&lt;") == false || html.contains("<code>"), "values are escaped")
    }

    @Test("values from responses, requests and acceptances are escaped in the text and markdown reports; only the colours are raw")
    func escapesValues() async throws {
        let store = try await Self.store()
        var hostile = ComparisonRecord(
            routeID: "inv",
            requestID: "req-\u{1B}]0;x\u{7}",
            method: "GET",
            path: "/inventory/\u{1B}[2J",
            tableVersion: "v1",
            primaryUpstream: "legacy",
            candidateUpstream: "inventory",
            primaryStatus: 200,
            candidateStatus: 200,
            primaryMilliseconds: 1,
            candidateMilliseconds: 1,
            outcome: .mismatch
        )
        hostile.differences = [Difference(kind: .changed, pointer: "/note\u{9B}", primary: "\"a\u{202E}b\"", candidate: "\"\u{1B}[31mred\"")]
        try await store.insertCounted([hostile])
        try await store.accept(routeID: "inv", pointer: "/flags", reason: "ok\u{1B}[2J\rforged", owner: "rita\u{7F}", until: nil)
        let report = try await ReportBuilder(store: store, table: Self.table, routesFile: "routes.json").build(
            since: Date().addingTimeInterval(-3600)
        )
        for (name, text) in [
            ("text", ReportFormat.text.render(report, colour: false)), ("markdown", ReportFormat.markdown.render(report, colour: false)),
        ] {
            let raw = text.unicodeScalars.filter { scalar in
                scalar != "\n"
                    && ((0...0x1F).contains(scalar.value) || (0x7F...0x9F).contains(scalar.value) || (0x202A...0x202E).contains(scalar.value))
            }
            #expect(raw.isEmpty, "\(name) printed \(raw.map { TerminalText.codePoint($0) })")
            #expect(text.contains(#"/note\u{9B}"#), "\(name)")
            #expect(text.contains(#"\u{1B}[31mred"#), "\(name)")
            #expect(text.contains(#"ok\u{1B}[2J\rforged"#), "\(name)")
        }
        let plain = ReportFormat.text.render(report, colour: false)
        #expect(plain.contains(#"req-\u{1B}]0;x\u{7}"#))
        #expect(plain.contains(#"rita\u{7F}"#))
        let coloured = ReportFormat.text.render(report, colour: true)
        #expect(coloured.contains("\u{1B}[31m"), "the renderer's own colours stay")
        #expect(!coloured.contains("\u{1B}[2J"), "a value's escape sequence does not")
    }

    @Test("the Wilson interval is sane at the edges")
    func wilson() throws {
        let none = try #require(ConfidenceInterval.wilson(successes: 0, trials: 10))
        #expect(none.low == 0 && none.high > 0.2 && none.high < 0.35)
        let all = try #require(ConfidenceInterval.wilson(successes: 1000, trials: 1000))
        #expect(all.high == 1 && all.low > 0.99)
        #expect(ConfidenceInterval.wilson(successes: 0, trials: 0) == nil)
    }

    @Test("the window is a duration or an ISO 8601 time")
    func window() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(ReportWindow.since("2h", now: now) == now.addingTimeInterval(-7200))
        #expect(ReportWindow.since("2026-11-20T00:00:00Z") == Date(timeIntervalSince1970: 1_795_132_800))
        #expect(ReportWindow.since("2026-11-20") != nil)
        #expect(ReportWindow.since("yesterday") == nil)
    }
}
