import Foundation
import NIOCore
import Testing

@testable import StranglerProxy

/// Every transition of ``ClientConnectionStateMachine``, with no sockets: each event from each
/// of the states a connection reaches, compared as text (what it returns, then the state after).
@Suite("Client connection state machine")
struct ClientConnectionStateMachineTests {
    /// The states a connection reaches, each built by the events that lead there.
    enum Start: String, CaseIterable, CustomTestStringConvertible {
        case open, paused, pausedPending, holding, holdingPending, delivering, deliveringHolding
        case closed, rejected, discarding, quiescing, released

        var testDescription: String { rawValue }

        /// A machine in this state; held bytes are `GET` (3 bytes) or, held again during a
        /// delivery, `XY`; the discard budget is 10 bytes.
        func make() -> ClientConnectionStateMachine {
            var m = ClientConnectionStateMachine(holdsPlace: true, discardBudget: 10)
            switch self {
            case .open: break
            case .paused: _ = m.pauseReads()
            case .pausedPending:
                _ = m.pauseReads()
                _ = m.readRequested()
            case .holding: _ = m.holdPipelined(bytes("GET"))
            case .holdingPending:
                _ = m.holdPipelined(bytes("GET"))
                _ = m.readRequested()
            case .delivering:
                _ = m.holdPipelined(bytes("GET"))
                _ = m.startDelivering()
            case .deliveringHolding:
                _ = m.holdPipelined(bytes("GET"))
                _ = m.startDelivering()
                _ = m.holdPipelined(bytes("XY"))
            case .closed: m.closeInput()
            case .rejected: m.inputRejected()
            case .discarding: m.stagedCloseStarted()
            case .quiescing: _ = m.quiesce(exchangeRunning: true)
            case .released: _ = m.releasePlace()
            }
            return m
        }
    }

    static func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// The machine's state as text: input, reads, then the flags that are set.
    static func describe(_ m: ClientConnectionStateMachine) -> String {
        var text: String
        switch m.input {
        case .open: text = "open"
        case .holding(let buffer): text = "holding(\(buffer.readableBytes))"
        case .closed: text = "closed"
        case .discarding(let bytes): text = "discarding(\(bytes))"
        }
        switch m.reads {
        case .flowing: text += " flowing"
        case .paused(let pending): text += pending ? " paused+read" : " paused"
        }
        if m.rejected { text += " rejected" }
        if m.delivering { text += " delivering" }
        if m.quiescing { text += " quiescing" }
        if !m.holdsPlace { text += " noPlace" }
        return text
    }

    /// Runs `event` on a machine in `start` and checks what it returned and the state after.
    func check<R>(
        _ start: Start,
        _ expected: [Start: String],
        sourceLocation: SourceLocation = #_sourceLocation,
        _ event: (inout ClientConnectionStateMachine) -> R
    ) {
        var m = start.make()
        let result = event(&m)
        #expect("\(result) → \(Self.describe(m))" == expected[start], sourceLocation: sourceLocation)
    }

    @Test("the starting states are the ones named")
    func startingStates() {
        let expected: [Start: String] = [
            .open: "open flowing", .paused: "open paused", .pausedPending: "open paused+read",
            .holding: "holding(3) paused", .holdingPending: "holding(3) paused+read",
            .delivering: "open paused delivering", .deliveringHolding: "holding(2) paused delivering",
            .closed: "closed flowing", .rejected: "closed flowing rejected", .discarding: "discarding(0) flowing",
            .quiescing: "open flowing quiescing", .released: "open flowing noPlace",
        ]
        for start in Start.allCases {
            #expect(Self.describe(start.make()) == expected[start], "\(start)")
        }
    }

    @Test("views", arguments: Start.allCases)
    func views(_ start: Start) {
        let m = start.make()
        let parses = ![.closed, .rejected, .discarding].contains(start)
        let holds = [.holding, .holdingPending, .deliveringHolding].contains(start)
        let paused = [.paused, .pausedPending, .holding, .holdingPending, .delivering, .deliveringHolding].contains(start)
        #expect(m.parsesInput == parses)
        #expect(m.holdsPipelined == holds)
        #expect(m.readsPaused == paused)
    }

    @Test("a read asked for passes through unless reads are paused, when it is kept", arguments: Start.allCases)
    func readRequested(_ start: Start) {
        check(
            start,
            [
                .open: "true → open flowing", .paused: "false → open paused+read", .pausedPending: "false → open paused+read",
                .holding: "false → holding(3) paused+read", .holdingPending: "false → holding(3) paused+read",
                .delivering: "false → open paused+read delivering", .deliveringHolding: "false → holding(2) paused+read delivering",
                .closed: "true → closed flowing", .rejected: "true → closed flowing rejected", .discarding: "true → discarding(0) flowing",
                .quiescing: "true → open flowing quiescing", .released: "true → open flowing noPlace",
            ]
        ) { $0.readRequested() }
    }

    @Test("bytes are parsed behind any held ones, or dropped by a staged close", arguments: Start.allCases)
    func bytesArrived(_ start: Start) {
        check(
            start,
            [
                .open: "parse AB → open flowing", .paused: "parse AB → open paused", .pausedPending: "parse AB → open paused+read",
                .holding: "parse GETAB → open paused", .holdingPending: "parse GETAB → open paused+read",
                .delivering: "parse AB → open paused delivering", .deliveringHolding: "parse XYAB → open paused delivering",
                .closed: "parse AB → closed flowing", .rejected: "parse AB → closed flowing rejected",
                .discarding: "discarded AB → discarding(2) flowing",
                .quiescing: "parse AB → open flowing quiescing", .released: "parse AB → open flowing noPlace",
            ]
        ) { m in
            var buffer = Self.bytes("AB")
            let action = m.bytesArrived(&buffer)
            return "\(action) \(String(buffer: buffer))"
        }
    }

    @Test("a staged close drops bytes up to its budget, then closes")
    func discardBudget() {
        var m = Start.discarding.make()
        var ten = Self.bytes("0123456789")
        #expect(m.bytesArrived(&ten) == .discarded)
        var one = Self.bytes("x")
        #expect(m.bytesArrived(&one) == .closeDiscarding)
        #expect(Self.describe(m) == "discarding(11) flowing")
    }

    @Test("held bytes pause reads, unless nothing is parsed any more", arguments: Start.allCases)
    func holdPipelined(_ start: Start) {
        check(
            start,
            [
                .open: "true → holding(2) paused", .paused: "false → holding(2) paused", .pausedPending: "false → holding(2) paused+read",
                .holding: "false → holding(2) paused", .holdingPending: "false → holding(2) paused+read",
                .delivering: "false → holding(2) paused delivering", .deliveringHolding: "false → holding(2) paused delivering",
                .closed: "false → closed flowing", .rejected: "false → closed flowing rejected", .discarding: "false → discarding(0) flowing",
                .quiescing: "true → holding(2) paused quiescing", .released: "true → holding(2) paused noPlace",
            ]
        ) { $0.holdPipelined(Self.bytes("XY")) }
    }

    @Test("held bytes are delivered once, never during a delivery", arguments: Start.allCases)
    func startDelivering(_ start: Start) {
        check(
            start,
            [
                .open: "nil → open flowing", .paused: "nil → open paused", .pausedPending: "nil → open paused+read",
                .holding: "GET → open paused delivering", .holdingPending: "GET → open paused+read delivering",
                .delivering: "nil → open paused delivering", .deliveringHolding: "nil → holding(2) paused delivering",
                .closed: "nil → closed flowing", .rejected: "nil → closed flowing rejected", .discarding: "nil → discarding(0) flowing",
                .quiescing: "nil → open flowing quiescing", .released: "nil → open flowing noPlace",
            ]
        ) { m in m.startDelivering().map { String(buffer: $0) } ?? "nil" }
    }

    @Test("the end of a delivery keeps what was held again", arguments: Start.allCases)
    func deliveryEnded(_ start: Start) {
        check(
            start,
            [
                .open: "() → open flowing", .paused: "() → open paused", .pausedPending: "() → open paused+read",
                .holding: "() → holding(3) paused", .holdingPending: "() → holding(3) paused+read",
                .delivering: "() → open paused", .deliveringHolding: "() → holding(2) paused",
                .closed: "() → closed flowing", .rejected: "() → closed flowing rejected", .discarding: "() → discarding(0) flowing",
                .quiescing: "() → open flowing quiescing", .released: "() → open flowing noPlace",
            ]
        ) { $0.deliveryEnded() }
    }

    @Test("pausing reports only a change", arguments: Start.allCases)
    func pauseReads(_ start: Start) {
        check(
            start,
            [
                .open: "true → open paused", .paused: "false → open paused", .pausedPending: "false → open paused+read",
                .holding: "false → holding(3) paused", .holdingPending: "false → holding(3) paused+read",
                .delivering: "false → open paused delivering", .deliveringHolding: "false → holding(2) paused delivering",
                .closed: "true → closed paused", .rejected: "true → closed paused rejected", .discarding: "true → discarding(0) paused",
                .quiescing: "true → open paused quiescing", .released: "true → open paused noPlace",
            ]
        ) { $0.pauseReads() }
    }

    @Test("resuming issues the kept read, and waits while bytes are held", arguments: Start.allCases)
    func resumeReads(_ start: Start) {
        check(
            start,
            [
                .open: "none → open flowing", .paused: "resumed(read: false) → open flowing",
                .pausedPending: "resumed(read: true) → open flowing",
                .holding: "none → holding(3) paused", .holdingPending: "none → holding(3) paused+read",
                .delivering: "resumed(read: false) → open flowing delivering", .deliveringHolding: "none → holding(2) paused delivering",
                .closed: "none → closed flowing", .rejected: "none → closed flowing rejected", .discarding: "none → discarding(0) flowing",
                .quiescing: "none → open flowing quiescing", .released: "none → open flowing noPlace",
            ]
        ) { $0.resumeReads() }
    }

    @Test("a rejection closes the input, drops held bytes and is remembered", arguments: Start.allCases)
    func inputRejected(_ start: Start) {
        check(
            start,
            [
                .open: "() → closed flowing rejected", .paused: "() → closed paused rejected",
                .pausedPending: "() → closed paused+read rejected",
                .holding: "() → closed paused rejected", .holdingPending: "() → closed paused+read rejected",
                .delivering: "() → closed paused rejected delivering", .deliveringHolding: "() → closed paused rejected delivering",
                .closed: "() → closed flowing rejected", .rejected: "() → closed flowing rejected",
                .discarding: "() → discarding(0) flowing rejected",
                .quiescing: "() → closed flowing rejected quiescing", .released: "() → closed flowing rejected noPlace",
            ]
        ) { $0.inputRejected() }
    }

    @Test("closing the input drops held bytes; a staged close keeps discarding", arguments: Start.allCases)
    func closeInput(_ start: Start) {
        check(
            start,
            [
                .open: "() → closed flowing", .paused: "() → closed paused", .pausedPending: "() → closed paused+read",
                .holding: "() → closed paused", .holdingPending: "() → closed paused+read",
                .delivering: "() → closed paused delivering", .deliveringHolding: "() → closed paused delivering",
                .closed: "() → closed flowing", .rejected: "() → closed flowing rejected", .discarding: "() → discarding(0) flowing",
                .quiescing: "() → closed flowing quiescing", .released: "() → closed flowing noPlace",
            ]
        ) { $0.closeInput() }
    }

    @Test("quiescing closes now when idle, else after the exchange", arguments: Start.allCases, [false, true])
    func quiesce(_ start: Start, exchangeRunning: Bool) {
        var m = start.make()
        let before = Self.describe(m)
        #expect(m.quiesce(exchangeRunning: exchangeRunning) == (exchangeRunning ? .closeAfterExchange : .close))
        #expect(m.quiescing)
        // Nothing else changes.
        let withoutFlag = Self.describe(m).replacingOccurrences(of: " quiescing", with: "")
        #expect(withoutFlag == before.replacingOccurrences(of: " quiescing", with: ""))
    }

    @Test("the close after an exchange is staged while the client may still be sending", arguments: Start.allCases)
    func closeAfterExchange(_ start: Start) {
        check(
            start,
            [
                .open: "immediate → open flowing", .paused: "immediate → open paused", .pausedPending: "immediate → open paused+read",
                .holding: "staged → holding(3) paused", .holdingPending: "staged → holding(3) paused+read",
                .delivering: "immediate → open paused delivering", .deliveringHolding: "staged → holding(2) paused delivering",
                .closed: "immediate → closed flowing", .rejected: "staged → closed flowing rejected",
                .discarding: "immediate → discarding(0) flowing",
                .quiescing: "immediate → open flowing quiescing", .released: "immediate → open flowing noPlace",
            ]
        ) { $0.closeAfterExchange() }
    }

    @Test("a quiescing server closes at once even with bytes held or refused")
    func quiescingClosesAtOnce() {
        for start in [Start.holding, .rejected] {
            var m = start.make()
            _ = m.quiesce(exchangeRunning: true)
            #expect(m.closeAfterExchange() == .immediate, "\(start)")
        }
    }

    @Test("a staged close discards from zero and leaves reads as they are", arguments: Start.allCases)
    func stagedCloseStarted(_ start: Start) {
        check(
            start,
            [
                .open: "() → discarding(0) flowing", .paused: "() → discarding(0) paused",
                .pausedPending: "() → discarding(0) paused+read",
                .holding: "() → discarding(0) paused", .holdingPending: "() → discarding(0) paused+read",
                .delivering: "() → discarding(0) paused delivering", .deliveringHolding: "() → discarding(0) paused delivering",
                .closed: "() → discarding(0) flowing", .rejected: "() → discarding(0) flowing rejected",
                .discarding: "() → discarding(0) flowing",
                .quiescing: "() → discarding(0) flowing quiescing", .released: "() → discarding(0) flowing noPlace",
            ]
        ) { $0.stagedCloseStarted() }
    }

    @Test("reads resume to discard only in a staged close", arguments: Start.allCases)
    func resumeReadsToDiscard(_ start: Start) {
        check(
            start,
            [
                .open: "false → open flowing", .paused: "false → open paused", .pausedPending: "false → open paused+read",
                .holding: "false → holding(3) paused", .holdingPending: "false → holding(3) paused+read",
                .delivering: "false → open paused delivering", .deliveringHolding: "false → holding(2) paused delivering",
                .closed: "false → closed flowing", .rejected: "false → closed flowing rejected", .discarding: "false → discarding(0) flowing",
                .quiescing: "false → open flowing quiescing", .released: "false → open flowing noPlace",
            ]
        ) { $0.resumeReadsToDiscard() }
    }

    @Test("a staged close from paused reads lets them flow, issuing a kept read", arguments: [false, true])
    func stagedCloseFromPausedReads(pending: Bool) {
        var m = (pending ? Start.pausedPending : .paused).make()
        m.stagedCloseStarted()
        #expect(m.resumeReadsToDiscard() == pending)
        #expect(Self.describe(m) == "discarding(0) flowing")
    }

    @Test("the channel's close ends the input and gives the place back once", arguments: Start.allCases)
    func channelClosed(_ start: Start) {
        check(
            start,
            [
                .open: "true → closed flowing noPlace", .paused: "true → closed paused noPlace",
                .pausedPending: "true → closed paused+read noPlace",
                .holding: "true → closed paused noPlace", .holdingPending: "true → closed paused+read noPlace",
                .delivering: "true → closed paused delivering noPlace", .deliveringHolding: "true → closed paused delivering noPlace",
                .closed: "true → closed flowing noPlace", .rejected: "true → closed flowing rejected noPlace",
                .discarding: "true → closed flowing noPlace",
                .quiescing: "true → closed flowing quiescing noPlace", .released: "false → closed flowing noPlace",
            ]
        ) { $0.channelClosed() }
    }

    @Test("the place in the server's count is given back once", arguments: Start.allCases)
    func releasePlace(_ start: Start) {
        var m = start.make()
        let first = m.releasePlace()
        let second = m.releasePlace()
        #expect(first == (start != .released))
        #expect(!second)
        #expect(!m.holdsPlace)
    }

    @Test("a connection that never took a place gives none back")
    func noPlace() {
        var m = ClientConnectionStateMachine(holdsPlace: false, discardBudget: 10)
        let released = m.releasePlace()
        let releasedOnClose = m.channelClosed()
        #expect(!released)
        #expect(!releasedOnClose)
    }
}
