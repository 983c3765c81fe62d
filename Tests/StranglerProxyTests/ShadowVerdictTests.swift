import Testing

@testable import StranglerProxy

/// What the shadow copy is told about the primary, for each point the handler asks.
@Suite("Shadow verdict")
struct ShadowVerdictTests {
    @Test("a complete primary is compared; an answer before the request's end is not")
    func responseEnd() {
        #expect(ShadowVerdict.atResponseEnd(requestComplete: true) == .primaryEnded)
        #expect(ShadowVerdict.atResponseEnd(requestComplete: false) == .primaryFailed)
    }

    @Test("a fallback drops a copy going to legacy and keeps any other")
    func fallback() {
        #expect(ShadowVerdict.atFallback(candidate: "legacy", legacy: "legacy") == .primaryFailed)
        #expect(ShadowVerdict.atFallback(candidate: "service", legacy: "legacy") == .keep)
    }
}
