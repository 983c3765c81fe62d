import NIOCore
import Testing

@testable import StranglerProxy

/// What each expired client bound does, the label it is counted under, and the shadow roles'
/// names in failure reasons.
@Suite("Client timeout answer")
struct ClientTimeoutAnswerTests {
    let limits = ClientTimeouts.Limits(
        header: .seconds(10),
        body: .milliseconds(1500),
        send: .seconds(30),
        keepAlive: .seconds(60),
        lingerTotal: .seconds(5),
        lingerIdle: .seconds(1)
    )

    /// The answer as text: its kind's label, and its error's status or its outcome.
    func describe(_ answer: ClientTimeoutAnswer) -> String {
        switch answer {
        case .closeLingering: "closeLingering"
        case .close(let kind): "close \(kind.rawValue)"
        case .answer(let kind, let error): "answer \(kind.rawValue) \(error.status.code) \(error.description)"
        case .abort(let kind, let outcome): "abort \(kind.rawValue) \(outcome.name)"
        }
    }

    @Test("each bound, before and after a response started", arguments: [false, true])
    func answers(responseStarted: Bool) {
        func answer(_ expiry: ClientTimeouts.Expiry) -> String {
            describe(ClientTimeoutAnswer.choose(expiry, limits: limits, responseStarted: responseStarted))
        }
        #expect(answer(.linger) == "closeLingering")
        #expect(answer(.keepAlive) == "close keepalive")
        #expect(answer(.header(partial: false)) == "close header")
        #expect(answer(.header(partial: true)).hasPrefix("answer header 408 "))
        #expect(answer(.header(partial: true)).hasSuffix("the request head did not arrive within 10 s"))
        if responseStarted {
            #expect(answer(.body) == "abort body client_body_timeout")
        } else {
            #expect(answer(.body).hasPrefix("answer body 408 "))
            #expect(answer(.body).hasSuffix("the client sent no request body bytes for 1500 ms"))
        }
        #expect(answer(.send) == "abort send client_send_timeout")
    }

    @Test("metric labels and role names keep their spelling")
    func rawValues() {
        #expect([ClientTimeoutKind.header, .body, .send, .keepAlive].map(\.rawValue) == ["header", "body", "send", "keepalive"])
        #expect([ShadowRole.candidate, .noise].map(\.rawValue) == ["candidate", "noise"])
        #expect(SideCall.Failure.timeout.reason(role: .candidate) == "candidate_timeout")
        #expect(SideCall.Failure.bodyTooLarge.reason(role: .noise) == "body_too_large")
    }
}
