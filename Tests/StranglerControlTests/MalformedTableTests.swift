import Foundation
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

/// Every malformed table in ``MalformedTableCases``, applied by hot reload to one running proxy
/// (a routes file, the watcher, the admin API, an upstream): each must be rejected with its JSON
/// path, leave the good table serving, and be explained by `lastReloadError` in `/api/routes`.
@Suite("Malformed route tables, applied by hot reload")
struct MalformedTableTests {
    /// What `/api/routes` may weigh, whatever the table: a rejected table's problems are quoted
    /// there, and a hostile one must not make it large.
    static let answerLimit = 64 * 1024

    @Test("each malformed table is rejected with its JSON path; the good table keeps serving; lastReloadError says why")
    func rejectsEveryMalformedTable() async throws {
        try await ControlledProxy.run(routes: "[]") { proxy in
            let fixture = try await MalformedTableFixture(proxy)
            let cases = fixture.cases.all
            #expect(cases.count >= 50)
            #expect(Set(cases.map(\.name)).count == cases.count, "case names are unique")
            #expect(Set(cases.map { ContentHash.hex(of: $0.bytes) }).count == cases.count, "each case is different content")
            for (index, item) in cases.enumerated() {
                try await fixture.check(item, probe: "/good/case-\(index)")
            }
        }
    }

    @Test("2,000 pairwise-ambiguous routes: at most 100 problems listed, the rest counted, /api/routes stays small and matches its schema")
    func hostileTableStaysSmall() async throws {
        try await ControlledProxy.run(routes: "[]") { proxy in
            let fixture = try await MalformedTableFixture(proxy)
            let hostile = fixture.cases.hostile
            let failure = try await fixture.check(hostile, probe: "/good/hostile")
            let problems = failure?["problems"] as? [[String: Any]] ?? []
            let more = failure?["moreProblems"] as? Int
            #expect(problems.count <= 100)
            #expect(more.map { $0 > 0 } == true, "the rest are counted: \(String(describing: failure?["moreProblems"]))")
            #expect(problems.count + (more ?? 0) >= 1999, "at least one problem for each route after the first")

            let answer = try await proxy.admin("GET", "/api/routes")
            let spec = try JSONDocument.parse(try #require(try await proxy.admin("GET", "/openapi.json", token: nil).data))
            let schemaProblems = SchemaValidator(spec: spec).validate(
                answer: answer.data,
                contentType: answer.headers["content-type"] ?? "",
                method: "GET",
                path: "/api/routes",
                status: answer.status
            )
            #expect(schemaProblems.isEmpty, "\(schemaProblems)")

            // The watcher is not stuck: a valid edit still goes live.
            let legacyTable = Data(fixture.cases.route(#"{"id": "good", "path": "/good/**", "mode": "legacy"}"#).utf8)
            try fixture.replaceFile(with: legacyTable)
            await proxy.control.watcher!.reloadIfChanged(force: false)
            #expect(proxy.server.state.status.table.version == ContentHash.hex(of: legacyTable))
            #expect(try await proxy.servedBy("/good/after") == "legacy")
        }
    }
}

/// The running proxy with the good table live, and what a case is checked with.
struct MalformedTableFixture {
    let proxy: ControlledProxy
    let cases: MalformedTableCases
    let good: Data
    var goodVersion: String { ContentHash.hex(of: good) }

    /// Puts the good table live by hot reload: it is what every case breaks, so this also shows
    /// that each case has nothing wrong but what it is about.
    init(_ proxy: ControlledProxy) async throws {
        self.proxy = proxy
        cases = MalformedTableCases(legacyURL: "http://127.0.0.1:\(proxy.legacy.port)", serviceURL: "http://127.0.0.1:\(proxy.service.port)")
        good = Data(cases.good.utf8)
        try replaceFile(with: good)
        await proxy.control.watcher!.reloadIfChanged(force: false)
        try #require(proxy.server.state.status.table.version == goodVersion, "the good table must go live")
        try #require(try await proxy.servedBy("/good/start") == "service")
    }

    /// Replaces the routes file the way editors and `git checkout` do: a new file renamed over
    /// it, so the watcher never reads half a table.
    func replaceFile(with data: Data) throws {
        let temporary = proxy.routesPath + ".next"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, proxy.routesPath) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Applies `item` by hot reload and checks that it was rejected for the right reason while
    /// the good table kept serving. Returns `lastReloadError` as `/api/routes` showed it, if it is this case's.
    @discardableResult
    func check(_ item: MalformedTable, probe: String) async throws -> [String: Any]? {
        try replaceFile(with: item.bytes)
        // The polling watcher may get there first; then this finds the content already rejected.
        let applied = await proxy.control.watcher!.reloadIfChanged(force: false)
        #expect(!applied, "\(item.name): the table went live")

        let answer = try await proxy.admin("GET", "/api/routes")
        #expect(answer.status == 200, "\(item.name)")
        #expect(answer.data.count < MalformedTableTests.answerLimit, "\(item.name): /api/routes is \(answer.data.count) bytes")
        let document = answer.json as? [String: Any]
        #expect(document?["version"] as? String == goodVersion, "\(item.name): the live version is not the good table's")
        let failure = document?["lastReloadError"] as? [String: Any]
        #expect(failure?["version"] as? String == ContentHash.hex(of: item.bytes), "\(item.name): lastReloadError is not about this content")
        // Problems of an earlier case's rejection must not count for this one.
        let current = failure?["version"] as? String == ContentHash.hex(of: item.bytes)
        let problems = current ? failure?["problems"] as? [[String: Any]] ?? [] : []
        let listed = problems.map { "\($0["path"] ?? "?"): \($0["message"] ?? "?")" }.joined(separator: "; ")
        let atPath = problems.filter { $0["path"] as? String == item.path }.compactMap { $0["message"] as? String }
        #expect(!atPath.isEmpty, "\(item.name): no problem at \(item.path); got \(listed.prefix(600))")
        for fragment in item.says {
            #expect(
                atPath.contains { $0.localizedCaseInsensitiveContains(fragment) },
                "\(item.name): \(item.path) does not say \"\(fragment)\": \(atPath.joined(separator: "; ").prefix(600))"
            )
        }

        // A real request still goes where the good table sends it.
        #expect(try await proxy.servedBy(probe) == "service", "\(item.name): not served by the good table")

        if proxy.server.state.status.table.version != goodVersion {
            // The validator let this one through: put the good table back so the next case starts
            // from it (the failure is already recorded above).
            try replaceFile(with: good)
            await proxy.control.watcher!.reloadIfChanged(force: false)
        }
        return current ? failure : nil
    }
}
