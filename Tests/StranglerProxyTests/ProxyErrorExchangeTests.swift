import Testing

@testable import StranglerProxy

/// How an exchange's failures become the proxy's errors.
@Suite("Proxy errors of an exchange")
struct ProxyErrorExchangeTests {
    struct Broken: Error, CustomStringConvertible {
        var description: String { "broken" }
    }

    @Test("an upstream failure keeps a known error, else depends on whether the head was read")
    func upstreamFailure() {
        let known = ProxyError.upstreamTimeout("slow")
        #expect(ProxyError(upstreamFailure: known, upstream: "svc", responseStarted: true) == known)
        let inResponse = ProxyError(upstreamFailure: Broken(), upstream: "svc", responseStarted: true)
        #expect(inResponse == .invalidResponse("upstream \"svc\" failed in its response: broken"))
        let beforeAnswer = ProxyError(upstreamFailure: Broken(), upstream: "svc", responseStarted: false)
        #expect(beforeAnswer == .upstreamClosed("upstream \"svc\" failed before answering: broken"))
    }

    @Test("only an invalid response is one; its name stays what clients read")
    func invalidResponse() {
        let invalid = ProxyError.invalidResponse("bad framing")
        #expect(invalid.isInvalidResponse && invalid.name == "upstream_invalid_response")
        #expect(!ProxyError.upstreamClosed("gone").isInvalidResponse)
        #expect(!ProxyError.connectFailed("refused").isInvalidResponse)
    }

    @Test("bodies over the limit are refused with 413")
    func bodyTooLarge() {
        #expect(ProxyError(declaredBody: 11, limit: 10).status.code == 413)
        #expect(ProxyError(bodyOver: 10).status.code == 413)
    }
}
