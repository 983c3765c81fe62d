import Foundation
import StranglerCore
import StranglerStore
import Testing

@Suite("Route evidence, traffic and history in the store")
struct RouteHistoryStoreTests {
    static func record(
        _ id: String,
        route: String = "inv",
        at date: Date = Date(),
        statuses: (Int, Int) = (200, 200),
        ms: (Double, Double) = (10, 20),
        serviceIsCandidate: Bool = true,
        differences: [Difference] = [],
        outcome: ComparisonRecord.Outcome? = nil,
        reason: String? = nil
    ) -> ComparisonRecord {
        ComparisonRecord(
            routeID: route,
            requestID: id,
            method: "GET",
            path: "/inv/1",
            recordedAt: date,
            tableVersion: "v1",
            primaryUpstream: serviceIsCandidate ? "legacy" : "inventory",
            candidateUpstream: serviceIsCandidate ? "inventory" : "legacy",
            primaryStatus: statuses.0,
            candidateStatus: statuses.1,
            primaryMilliseconds: ms.0,
            candidateMilliseconds: ms.1,
            outcome: outcome ?? (differences.isEmpty ? .match : .mismatch),
            reason: reason,
            differences: differences
        )
    }

    @Test("evidence counts samples and mismatches by kind, leaves learned noise out, and reads each side's latency")
    func evidence() async throws {
        let store = try DiffStoreTests.store()
        var probe = Self.record("probe")
        probe.noisePointers = ["/updatedAt"]
        var records = [probe]
        for index in 0..<96 { records.append(Self.record("m\(index)", ms: (Double(index + 1), Double(2 * (index + 1))))) }
        records += [
            Self.record("noise", differences: [.init(kind: .changed, pointer: "/updatedAt", primary: "a", candidate: "b")]),
            Self.record("body", differences: [.init(kind: .changed, pointer: "/qty", primary: "1", candidate: "2")]),
            Self.record("status", statuses: (200, 500), differences: [.init(kind: .status, pointer: "", primary: "200", candidate: "500")]),
            Self.record(
                "header",
                differences: [.init(kind: .header, pointer: "content-type", primary: "application/json", candidate: "text/plain")]
            ),
            Self.record("timeout", outcome: .skipped, reason: "candidate_timeout"),
            Self.record("bad", outcome: .uncomparable, reason: "invalid JSON"),
            Self.record(
                "old",
                at: Date().addingTimeInterval(-3 * 86400),
                differences: [.init(kind: .changed, pointer: "/qty", primary: "1", candidate: "3")]
            ),
            Self.record("other", route: "other", differences: [.init(kind: .changed, pointer: "/qty", primary: "1", candidate: "3")]),
        ]
        try await store.insertCounted(records)
        let evidence = try await store.evidence(routeID: "inv", serviceUpstream: "inventory", since: Date().addingTimeInterval(-86400))
        #expect(evidence.samples == 101, "97 matches (the probe included) and 4 mismatches in the window")
        #expect(evidence.mismatches == 3)
        #expect(evidence.noiseOnly == 1)
        #expect(evidence.statusMismatches == 1)
        #expect(evidence.headerMismatches == 1)
        #expect(evidence.bodyMismatches == 1)
        #expect(evidence.uncomparable == 1)
        #expect(evidence.skipped == ["candidate_timeout": 1])
        // Service latencies are twice legacy's, whichever column they were stored in.
        let ratio = try #require(evidence.latencyRatio)
        #expect(ratio > 1.8 && ratio < 2.2)
        #expect(try #require(evidence.legacyP99) >= 90)

        // Reverse shadow: the service served and legacy got the copy.
        try await store.insertCounted((0..<10).map { Self.record("r\($0)", route: "rev", ms: (50, 5), serviceIsCandidate: false) })
        let reverse = try await store.evidence(routeID: "rev", serviceUpstream: "inventory", since: Date().addingTimeInterval(-60))
        #expect(reverse.serviceP99 == 50 && reverse.legacyP99 == 5)
    }

    @Test("an accepted difference leaves the mismatch count and the gate; a lapsed or revoked one does not")
    func acceptedDifferencesExcuse() async throws {
        let store = try DiffStoreTests.store()
        try await store.insertCounted(
            (0..<10).map {
                Self.record("a\($0)", differences: [.init(kind: .changed, pointer: "/items/\($0 % 3)/name", primary: "a", candidate: "b")])
            }
                + (0..<2).map { Self.record("b\($0)", differences: [.init(kind: .changed, pointer: "/qty", primary: "1", candidate: "2")]) }
        )
        let since = Date().addingTimeInterval(-60)
        var evidence = try await store.evidence(routeID: "inv", serviceUpstream: "inventory", since: since)
        #expect(evidence.samples == 12 && evidence.mismatches == 12)
        let gate = GateSettings(minSamples: 10, maxMismatchRate: 0.2)
        #expect(!PromotionGate.evaluate(gate, evidence: evidence).holds)

        let id = try await store.accept(routeID: "inv", pointer: "/items/*/name", reason: "renamed", owner: "rita", until: nil)
        try await store.accept(routeID: "inv", pointer: "/qty", reason: "lapsed", owner: "rita", until: Date().addingTimeInterval(-1))
        try await store.accept(routeID: "other", pointer: "/qty", reason: "another route", owner: "rita", until: nil)
        evidence = try await store.evidence(routeID: "inv", serviceUpstream: "inventory", since: since)
        #expect(evidence.mismatches == 2, "only the /qty ones are left")
        #expect(evidence.acceptedOnly == 10)
        #expect(PromotionGate.evaluate(gate, evidence: evidence).holds)

        #expect(try await store.revokeAccepted(id: id, by: "sam"))
        #expect(try await store.revokeAccepted(id: id, by: "sam") == false, "already revoked")
        evidence = try await store.evidence(routeID: "inv", serviceUpstream: "inventory", since: since)
        #expect(evidence.mismatches == 12)
        let all = try await store.acceptedDifferences(routeID: "inv", includeInactive: true)
        #expect(all.map(\.reason) == ["renamed", "lapsed"])
        #expect(all.first?.revokedBy == "sam" && all.first?.isActive() == false)
        #expect(try await store.acceptedDifferences(routeID: "inv").isEmpty)
        #expect(try await store.coveredCount(routeID: "inv", since: since, pattern: "/items/*/name") == 10)
    }

    @Test("traffic adds up per minute across instances; the last legacy minute is found, and its hour once minutes are pruned")
    func traffic() async throws {
        let store = try DiffStoreTests.store()
        let now = Date()
        let earlier = now.addingTimeInterval(-7200)
        try await store.recordTraffic([RouteTraffic(routeID: "inv", legacy: 3, service: 1)], at: earlier, instanceID: "a")
        try await store.recordTraffic([RouteTraffic(routeID: "inv", service: 5, serviceErrors: 2)], at: now, instanceID: "a")
        try await store.recordTraffic([RouteTraffic(routeID: "inv", service: 5)], at: now, instanceID: "b")
        let last = try #require(try await store.lastLegacyTraffic(routeID: "inv"))
        #expect(last == RollupLevel.minute.start(of: earlier))
        let recent = try await store.traffic(routeID: "inv", since: now.addingTimeInterval(-600))
        #expect(recent == RouteTraffic(routeID: "inv", legacy: 0, service: 10, serviceErrors: 2))
        #expect(try await store.lastLegacyTraffic(routeID: "none") == nil)
        // Traffic is not a comparison: the route has no evidence to report.
        #expect(try await store.routeIDs(since: earlier.addingTimeInterval(-60)).isEmpty)

        // Minutes before this hour go; the hours keep the counts, and the last legacy minute can
        // only be placed in its hour, so the latest minute of it is given (never too early).
        _ = try await store.pruneMinuteRollups(before: now)
        #expect(try await store.rollups(routeID: "inv", from: earlier.addingTimeInterval(-3600), to: RollupLevel.hour.start(of: now)).isEmpty)
        let hourly = try #require(try await store.lastLegacyTraffic(routeID: "inv"))
        #expect(hourly == RollupLevel.hour.start(of: earlier).addingTimeInterval(3540))
        let all = try await store.traffic(routeID: "inv", since: earlier)
        #expect(all == RouteTraffic(routeID: "inv", legacy: 3, service: 11, serviceErrors: 2))
    }

    @Test("changes and table contents are kept and read back newest first; taken-back rows are gone")
    func history() async throws {
        let store = try DiffStoreTests.store()
        let first = RouteChange(
            actor: "alice",
            source: .cli,
            routeID: "inv",
            reason: "start",
            before: #"{"mode":"legacy"}"#,
            after: #"{"mode":"shadow"}"#,
            tableVersionBefore: "v0",
            tableVersionAfter: "v1"
        )
        try await store.recordChanges([first], tableContent: Data("table one".utf8))
        let ids = try await store.recordChanges(
            [
                RouteChange(
                    actor: "bob",
                    source: .admin,
                    routeID: "inv",
                    reason: nil,
                    before: nil,
                    after: nil,
                    tableVersionBefore: "v1",
                    tableVersionAfter: "v2"
                )
            ],
            tableContent: nil
        )
        #expect(try await store.changes().map(\.actor) == ["bob", "alice"])
        #expect(try await store.latestTableVersion() == "v2")
        try await store.deleteChanges(ids: ids)
        let remaining = try await store.changes(routeID: "inv")
        #expect(remaining.map(\.actor) == ["alice"])
        #expect(remaining.first?.modes.after == "shadow")
        #expect(try await store.tableContent(version: "v1") == Data("table one".utf8))
        #expect(try await store.hasChanges(toVersion: "v1"))
        #expect(try await store.hasChanges(toVersion: "v2") == false)
        #expect(try await store.tableVersions(matching: "v") == ["v1"])
    }
}
