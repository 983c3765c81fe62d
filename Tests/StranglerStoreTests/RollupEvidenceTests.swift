import Foundation
import StranglerCore
import StranglerStore
import Testing

@Suite("Evidence from rollups")
struct RollupEvidenceTests {
    static let start = RollupFixtures.hour

    static func mismatch(
        at offset: TimeInterval = 0,
        statuses: (Int?, Int?) = (200, 200),
        upstreams: (String, String) = ("legacy", "svc"),
        milliseconds: (Double?, Double?) = (1, 2),
        _ differences: [(DifferenceKind, String)]
    ) -> ComparisonRecord {
        ComparisonRecord(
            routeID: "r",
            requestID: "x",
            method: "GET",
            path: "/",
            recordedAt: start.addingTimeInterval(offset),
            tableVersion: "v",
            primaryUpstream: upstreams.0,
            candidateUpstream: upstreams.1,
            primaryStatus: statuses.0,
            candidateStatus: statuses.1,
            primaryMilliseconds: milliseconds.0,
            candidateMilliseconds: milliseconds.1,
            outcome: differences.isEmpty && statuses.0 == statuses.1 ? .match : .mismatch,
            differences: differences.map { Difference(kind: $0.0, pointer: $0.1, primary: "1", candidate: "2") }
        )
    }

    static func evidence(
        _ records: [ComparisonRecord],
        noise: Set<String> = [],
        accepted: [String] = [],
        service: String? = "svc"
    ) -> RouteEvidence {
        RollupEvidence.breakdown(
            of: RollupFixtures.rollups(records),
            excuses: DifferenceExcuses(noise: noise, accepted: accepted.map(PointerPattern.init)),
            serviceUpstream: service,
            since: start,
            bucketSeconds: nil
        ).evidence
    }

    @Test("noise and accepted differences learned after the minute still excuse its mismatches")
    func excusesAppliedWhenRead() throws {
        let records = [
            Self.mismatch([(.changed, "/servedAt")]),
            Self.mismatch([(.changed, "/servedAt"), (.changed, "/items/0/name")]),
            Self.mismatch([(.changed, "/items/3/name")]),
            Self.mismatch([(.changed, "/price"), (.changed, "/servedAt")]),
        ]
        let before = Self.evidence(records)
        #expect(before.mismatches == 4 && before.bodyMismatches == 4)
        let after = Self.evidence(records, noise: ["/servedAt"], accepted: ["/items/*/name"])
        #expect(after.samples == 4)
        #expect(after.noiseOnly == 1)
        #expect(after.acceptedOnly == 2, "noise and an accepted difference together count as accepted")
        #expect(after.mismatches == 1 && after.bodyMismatches == 1)
    }

    @Test("a differing status or header is never excused; status comes from the status codes")
    func statusAndHeader() throws {
        let records = [
            Self.mismatch(statuses: (200, 500), [(.status, ""), (.changed, "/servedAt")]),
            Self.mismatch([(.header, "etag"), (.changed, "/servedAt")]),
            Self.mismatch(statuses: (nil, 404), [(.changed, "/servedAt")]),
            Self.mismatch([(.status, "")]),
        ]
        let evidence = Self.evidence(records, noise: ["/servedAt"])
        #expect(evidence.mismatches == 3)
        #expect(evidence.statusMismatches == 2)
        #expect(evidence.headerMismatches == 1)
        #expect(evidence.bodyMismatches == 0)
        #expect(evidence.noiseOnly == 1, "a status difference row with equal status codes excuses like noise, as the per-row flags read it")
    }

    @Test("a mismatch stored without differences counts as a sample only")
    func mismatchWithoutDifferences() throws {
        let evidence = Self.evidence([Self.mismatch(statuses: (200, 500), [])])
        #expect(evidence.samples == 1)
        #expect(evidence.mismatches == 0 && evidence.noiseOnly == 0 && evidence.acceptedOnly == 0 && evidence.statusMismatches == 0)
    }

    @Test("each side's latency is chosen per comparison by which upstream is the service")
    func latencySides() throws {
        let records = [
            Self.mismatch(upstreams: ("legacy", "svc"), milliseconds: (10, 20), []),
            Self.mismatch(upstreams: ("svc", "legacy"), milliseconds: (30, 40), []),
        ]
        let evidence = Self.evidence(records)
        // Service: 20 (candidate is svc) and 30 (candidate is not, so the primary's); legacy: 10 and 40.
        #expect(evidence.serviceP50 == 20 && evidence.serviceP99 == 30)
        #expect(evidence.legacyP50 == 10 && evidence.legacyP99 == 40)
        let unnamed = Self.evidence(records, service: nil)
        #expect(unnamed.serviceP50 == 10 && unnamed.serviceP99 == 30, "without a service, the primary's latency is the service's, as in SQL")
    }

    @Test("buckets follow UTC widths; ten-second buckets cannot come from minutes")
    func buckets() throws {
        let records = (0..<30).map { Self.mismatch(at: Double($0) * 40, milliseconds: (Double($0), 1), [(.changed, "/a")]) }
        let rollups = RollupFixtures.rollups(records)
        let perMinute = RollupEvidence.breakdown(of: rollups, excuses: .init(), serviceUpstream: "svc", since: Self.start, bucketSeconds: 60)
        #expect(perMinute.buckets.count == 20)
        #expect(perMinute.buckets.map(\.samples).reduce(0, +) == 30)
        #expect(perMinute.buckets.first?.legacyMeanMs == 0.5, "records 0 and 1 fall in the first minute")
        let perTen = RollupEvidence.breakdown(of: rollups, excuses: .init(), serviceUpstream: "svc", since: Self.start, bucketSeconds: 600)
        #expect(perTen.buckets.map(\.start) == [Self.start, Self.start.addingTimeInterval(600)])
        // The window's rollups, as the store's reader picks them (``RollupReadPlan``).
        let later = RollupEvidence.breakdown(
            of: rollups.filter { $0.key.minute >= Self.start.addingTimeInterval(600) },
            excuses: .init(),
            serviceUpstream: "svc",
            since: Self.start.addingTimeInterval(600),
            bucketSeconds: nil
        )
        #expect(later.buckets.count == 1 && later.buckets[0].start == Self.start.addingTimeInterval(600))
        #expect(later.buckets[0].samples == 15, "comparisons from the window's start on")
        // Rollups are per minute, so nothing finer is a timeline width: 10 seconds reads as one
        // bucket from the window's start, as any width that is not one does.
        #expect(TimelineWidth(rawValue: 10) == nil)
        #expect(TimelineWidth.fitting(60) == .minute, "a young route's chart is drawn in minutes")
        let tenSeconds = RollupEvidence.breakdown(of: rollups, excuses: .init(), serviceUpstream: "svc", since: Self.start, bucketSeconds: 10)
        #expect(tenSeconds.buckets.count == 1 && tenSeconds.buckets[0].start == Self.start)
    }
}
