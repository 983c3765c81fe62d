import StranglerCore
import Testing

@Suite("The rules a canary is judged by: excused differences and the breach decision")
struct CanaryRulesTests {
    static func difference(_ kind: DifferenceKind, _ pointer: String) -> Difference {
        Difference(kind: kind, pointer: pointer, primary: "a", candidate: "b")
    }

    @Test("noise and accepted differences excuse body differences only; a status or header difference never")
    func excuses() {
        let excuses = DifferenceExcuses(noise: ["/servedAt", "etag"], accepted: [PointerPattern("/items/*/price")])
        #expect(excuses.excuses(Self.difference(.changed, "/servedAt")))
        #expect(excuses.excuses(Self.difference(.missing, "/items/3/price")))
        #expect(!excuses.excuses(Self.difference(.changed, "/items/3/name")))
        #expect(!excuses.excuses(Self.difference(.status, "")))
        #expect(!excuses.excuses(Self.difference(.header, "etag")), "a noisy header still counts, as the gates count it")
        #expect(excuses.excusesAll([Self.difference(.changed, "/servedAt"), Self.difference(.added, "/items/0/price")]))
        #expect(!excuses.excusesAll([Self.difference(.changed, "/servedAt"), Self.difference(.changed, "/total")]))
        #expect(DifferenceExcuses().excusesAll([]), "no difference needs no excuse")
    }

    @Test("a rate breaks the gate only above its limit and with enough answers or comparisons")
    func breach() {
        let gate = GateSettings(minSamples: nil, maxMismatchRate: 0.1, maxLatencyRatio: nil, maxErrorRate: 0.05)
        // 19 answers with 10 failures: too few to judge.
        #expect(CanaryBreach.reason(gate: gate, window: CanaryCounts(service: 19, serviceErrors: 10), minRequests: 20, windowSeconds: 60) == nil)
        // 5% exactly holds; one more failure breaks it.
        #expect(CanaryBreach.reason(gate: gate, window: CanaryCounts(service: 100, serviceErrors: 5), minRequests: 20, windowSeconds: 60) == nil)
        let errors = CanaryBreach.reason(gate: gate, window: CanaryCounts(service: 100, serviceErrors: 6), minRequests: 20, windowSeconds: 60)
        #expect(errors?.contains("service error rate 6") == true)
        #expect(errors?.contains("6 of 100 answers in the last 60s") == true)
        let mismatches = CanaryBreach.reason(
            gate: gate,
            window: CanaryCounts(service: 100, compared: 40, mismatched: 5),
            minRequests: 20,
            windowSeconds: 30
        )
        #expect(mismatches?.contains("5 of 40 comparisons in the last 30s") == true)
        #expect(mismatches?.contains("maxMismatchRate") == true)
        let summed = CanaryCounts(service: 1, serviceErrors: 1) + CanaryCounts(service: 2, compared: 3, mismatched: 1)
        #expect(summed == CanaryCounts(service: 3, serviceErrors: 1, compared: 3, mismatched: 1))
    }
}
