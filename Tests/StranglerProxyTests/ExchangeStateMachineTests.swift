import NIOPosix
import StranglerCore
import Testing

@testable import StranglerProxy

/// Every transition of ``ExchangeStateMachine``, with no sockets: each event in each phase, and
/// the interleavings of failure paths that once met through flags.
@Suite("Exchange state machine")
struct ExchangeStateMachineTests {
    /// Connections the machine only holds and hands back; none is ever attached to a channel.
    let first = UpstreamConnection()
    let second = UpstreamConnection()

    /// Names a connection in a description, so expectations read as text.
    func name(_ connection: UpstreamConnection?) -> String {
        guard let connection else { return "nil" }
        if connection === first { return "first" }
        if connection === second { return "second" }
        return "other"
    }

    /// An action as text: the action enum holds connections, which compare by identity.
    func describe(_ action: ExchangeStateMachine.Action) -> String {
        switch action {
        case .none: "none"
        case .connect(let attempt, let fresh): "connect(\(attempt), fresh: \(fresh))"
        case .sendRequest(let c, let ends, let pause): "sendRequest(\(name(c)), ends: \(ends), pauseReads: \(pause))"
        case .sendRequestEnd(let c): "sendRequestEnd(\(name(c)))"
        case .pauseReads(let c): "pauseReads(\(name(c)))"
        case .resumeReads(let c): "resumeReads(\(name(c)))"
        case .releaseConnection(let c, let reusable): "release(\(name(c)), reusable: \(reusable))"
        case .finishExchange: "finishExchange"
        }
    }

    /// A failed attempt's end as text; "none" when the failure was for an abandoned attempt.
    func describe(_ end: ExchangeStateMachine.AttemptEnd?) -> String {
        switch end {
        case nil: "none"
        case .fallBack(let attempt, let c): "fallBack(\(attempt), closing: \(name(c)))"
        case .answerError(let c): "answerError(closing: \(name(c)))"
        }
    }

    /// An upstream failure's outcome as text.
    func describe(_ failure: ExchangeStateMachine.UpstreamFailure) -> String {
        switch failure {
        case .ignore: "none"
        case .abortClient: "abortClient(closing: nil)"
        case .retryFresh(let attempt): "retryFresh(\(attempt))"
        case .attemptEnded(let end): describe(end)
        }
    }

    /// How an exchange ends as text; "none" when there was nothing to end.
    func describe(_ ending: ExchangeStateMachine.Ending?) -> String {
        switch ending {
        case nil: "none"
        case .answerError(let c): "answerError(closing: \(name(c)))"
        case .abortClient(let c): "abortClient(closing: \(name(c)))"
        }
    }

    /// What an abort closes as text.
    func describe(_ abort: ExchangeStateMachine.Abort) -> String {
        switch abort {
        case .exchange(let c): "abortClient(closing: \(name(c)))"
        case .connection: "closeClient"
        }
    }

    /// A response head's verdict as text.
    func describe(_ verdict: ExchangeStateMachine.HeadVerdict) -> String {
        switch verdict {
        case .ignore: "none"
        case .forward: "forwardHead"
        case .fallBack(let attempt, let c): "fallBack(\(attempt), closing: \(name(c)))"
        }
    }

    /// A cancelled call as text; "none" when no call was running.
    func describe(_ cancel: ExchangeStateMachine.Cancel?) -> String {
        guard let cancel else { return "none" }
        return "cancelCall(closing: \(name(cancel.closing)), responseStarted: \(cancel.responseStarted))"
    }

    /// The machine's state as text.
    func describe(_ machine: ExchangeStateMachine) -> String {
        switch machine.state {
        case .idle: "idle"
        case .connecting(let attempt): "connecting(\(attempt))"
        case .forwarding(let f): "forwarding(\(name(f.connection)), sent: \(f.requestSent), paused: \(f.readsPaused), \(f.response))"
        case .draining: "draining"
        case .modifying: "modifying"
        }
    }

    // MARK: - Phases to start from

    /// Connecting for attempt 1.
    func connecting(complete: Bool = true, replayable: Bool = true, mayFallBack: Bool = false) -> ExchangeStateMachine {
        var machine = ExchangeStateMachine()
        machine.exchangeStarted()
        if complete { _ = machine.requestEnded() }
        let action = machine.startCalling(replayable: replayable, mayFallBack: mayFallBack)
        #expect(describe(action) == "connect(1, fresh: false)")
        return machine
    }

    /// Forwarding on `first`, no response yet.
    func forwarding(complete: Bool = true, replayable: Bool = true, mayFallBack: Bool = false) -> ExchangeStateMachine {
        var machine = connecting(complete: complete, replayable: replayable, mayFallBack: mayFallBack)
        _ = machine.connectionReady(first, attempt: 1)
        return machine
    }

    /// Forwarding on `first`, the response's head read but not yet written to the client.
    func headRead(complete: Bool = true, keepAlive: Bool = true, mayFallBack: Bool = false) -> ExchangeStateMachine {
        var machine = forwarding(complete: complete, mayFallBack: mayFallBack)
        #expect(describe(machine.responseHeadReceived(status: 200, keepAlive: keepAlive)) == "forwardHead")
        return machine
    }

    /// Forwarding on `first`, the response's head written to the client.
    func headWritten(complete: Bool = true, keepAlive: Bool = true) -> ExchangeStateMachine {
        var machine = headRead(complete: complete, keepAlive: keepAlive)
        machine.responseHeadWritten()
        return machine
    }

    /// The response is done; the request has not ended.
    func draining() -> ExchangeStateMachine {
        var machine = headWritten(complete: false)
        _ = machine.responseEnded()
        #expect(describe(machine) == "draining")
        return machine
    }

    // MARK: - Idle

    @Test("idle: a new machine is idle, writable, and nothing has started")
    func idleInitially() {
        let machine = ExchangeStateMachine()
        #expect(machine.isIdle && !machine.isCalling && !machine.responseStarted)
        #expect(machine.connection == nil && machine.clientWritable)
        #expect(!machine.upstreamTimerRuns(upstreamWritable: false))
    }

    @Test("idle: events for a call that is not running do nothing")
    func idleIgnoresCallEvents() {
        var machine = ExchangeStateMachine()
        #expect(describe(machine.connectionFailed(attempt: 0, isConnectFailure: true)) == "none")
        #expect(describe(machine.responseHeadReceived(status: 200, keepAlive: true)) == "none")
        machine.responseHeadWritten()
        #expect(describe(machine.responseBodyForwarded()) == "none")
        #expect(describe(machine.responseEnded()) == "none")
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "none")
        #expect(describe(machine.upstreamTimedOut()) == "none")
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "none")
        #expect(describe(machine.clientClosed()) == "none")
        #expect(describe(machine.abort()) == "closeClient")
        #expect(describe(machine) == "idle")
    }

    @Test("idle: a connection that arrives for no attempt goes back to the pool, reusable")
    func idleReleasesLateConnection() {
        var machine = ExchangeStateMachine()
        #expect(describe(machine.connectionReady(first, attempt: 1)) == "release(first, reusable: true)")
        #expect(machine.isIdle)
    }

    @Test("idle: the request's end with no call running does nothing but note it")
    func idleRequestEnd() {
        var machine = ExchangeStateMachine()
        #expect(describe(machine.requestEnded()) == "none")
        #expect(machine.requestComplete && machine.isIdle)
        machine.requestAbandoned()
        #expect(!machine.requestComplete)
    }

    @Test("idle: the proxy's own answer (a refused request) moves to draining with nothing to close")
    func idleAnswer() {
        var machine = ExchangeStateMachine()
        machine.exchangeStarted()
        #expect(describe(machine.answerWithError()) == "answerError(closing: nil)")
        #expect(describe(machine) == "draining" && machine.responseStarted)
    }

    @Test("idle: starting a call connects for a new attempt; attempts are never reused")
    func startCallingNumbersAttempts() {
        var machine = ExchangeStateMachine()
        machine.exchangeStarted()
        #expect(describe(machine.startCalling(replayable: true, mayFallBack: true)) == "connect(1, fresh: false)")
        #expect(machine.replayable && machine.fallback == .permitted && machine.isCalling)
        _ = machine.clientClosed()
        machine.exchangeStarted()
        #expect(describe(machine.startCalling(replayable: false, mayFallBack: false)) == "connect(2, fresh: false)")
        #expect(!machine.replayable && machine.fallback == .forbidden)
    }

    @Test("exchangeStarted forgets everything the last exchange decided, but not the client's writability")
    func exchangeStartedResets() {
        var machine = forwarding(mayFallBack: true)
        _ = machine.clientWritabilityChanged(isWritable: false)
        _ = machine.upstreamFailed(wasReused: true, isConnectFailure: false)
        #expect(machine.retriedStale)
        machine.exchangeStarted()
        #expect(machine.isIdle && !machine.requestComplete && !machine.replayable && !machine.retriedStale)
        #expect(machine.fallback == .forbidden && !machine.clientWritable)
    }

    // MARK: - Connecting

    @Test("connecting: the connection for this attempt starts forwarding and sends the request, with its end if it ended")
    func connectingConnectionReady() {
        var complete = connecting(complete: true)
        #expect(describe(complete.connectionReady(first, attempt: 1)) == "sendRequest(first, ends: true, pauseReads: false)")
        #expect(describe(complete) == "forwarding(first, sent: true, paused: false, awaited)")
        #expect(complete.connection === first && !complete.responseStarted)

        var partial = connecting(complete: false)
        #expect(describe(partial.connectionReady(first, attempt: 1)) == "sendRequest(first, ends: false, pauseReads: false)")
        #expect(describe(partial) == "forwarding(first, sent: false, paused: false, awaited)")
    }

    @Test("connecting: a connection for an abandoned attempt goes back to the pool and the wait goes on")
    func connectingStaleAttempt() {
        var machine = connecting()
        #expect(describe(machine.connectionReady(second, attempt: 0)) == "release(second, reusable: true)")
        #expect(describe(machine) == "connecting(1)")
        #expect(describe(machine.connectionFailed(attempt: 0, isConnectFailure: true)) == "none")
        #expect(describe(machine) == "connecting(1)")
    }

    @Test("connecting: a connection that arrives while the client is not writable starts with its reads held back")
    func connectingWhilePaused() {
        var machine = connecting()
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "none")
        #expect(describe(machine.connectionReady(first, attempt: 1)) == "sendRequest(first, ends: true, pauseReads: true)")
        #expect(describe(machine) == "forwarding(first, sent: true, paused: true, awaited)")
        // The proxy's own pause is not the upstream's silence.
        #expect(!machine.upstreamTimerRuns(upstreamWritable: true))
    }

    @Test("connecting: a failure with no fallback is answered")
    func connectingFailureAnswered() {
        var machine = connecting(mayFallBack: false)
        #expect(describe(machine.connectionFailed(attempt: 1, isConnectFailure: true)) == "answerError(closing: nil)")
        #expect(describe(machine) == "draining")
    }

    @Test("connecting: a connect failure falls back once, even for a request that is not replayable")
    func connectingFailureFallsBack() {
        var machine = connecting(replayable: false, mayFallBack: true)
        #expect(describe(machine.connectionFailed(attempt: 1, isConnectFailure: true)) == "fallBack(2, closing: nil)")
        #expect(describe(machine) == "connecting(2)" && machine.fallback == .used)
        // The legacy attempt fails too: nothing is left to try.
        #expect(describe(machine.connectionFailed(attempt: 2, isConnectFailure: true)) == "answerError(closing: nil)")
        #expect(describe(machine) == "draining")
    }

    @Test("connecting: a failure other than connecting falls back only for a replayable request")
    func connectingOtherFailure() {
        var replayable = connecting(replayable: true, mayFallBack: true)
        #expect(describe(replayable.connectionFailed(attempt: 1, isConnectFailure: false)) == "fallBack(2, closing: nil)")
        var once = connecting(replayable: false, mayFallBack: true)
        #expect(describe(once.connectionFailed(attempt: 1, isConnectFailure: false)) == "answerError(closing: nil)")
    }

    @Test("connecting: the request's body and end are noted; nothing is written yet")
    func connectingRequestEvents() {
        var machine = connecting(complete: false)
        machine.stopReplaying()
        #expect(!machine.replayable)
        #expect(describe(machine.requestEnded()) == "none")
        #expect(machine.requestComplete && describe(machine) == "connecting(1)")
    }

    @Test("connecting: response and timer events do nothing without a connection")
    func connectingIgnoresResponseEvents() {
        var machine = connecting()
        #expect(describe(machine.responseHeadReceived(status: 200, keepAlive: true)) == "none")
        #expect(describe(machine.responseEnded()) == "none")
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "none")
        #expect(describe(machine.upstreamTimedOut()) == "none")
        #expect(!machine.upstreamTimerRuns(upstreamWritable: false))
        #expect(describe(machine) == "connecting(1)")
    }

    @Test("connecting: the proxy's own answer, an abort and the client's close end the wait")
    func connectingEnds() {
        var answered = connecting()
        #expect(describe(answered.answerWithError()) == "answerError(closing: nil)")
        #expect(describe(answered) == "draining")
        // The pool's late answer for the abandoned attempt is given back.
        #expect(describe(answered.connectionReady(first, attempt: 1)) == "release(first, reusable: true)")

        var aborted = connecting()
        #expect(describe(aborted.abort()) == "abortClient(closing: nil)")
        #expect(aborted.isIdle)

        var closed = connecting()
        #expect(describe(closed.clientClosed()) == "cancelCall(closing: nil, responseStarted: false)")
        #expect(closed.isIdle)
        #expect(describe(closed.connectionReady(first, attempt: 1)) == "release(first, reusable: true)")
    }

    // MARK: - Forwarding

    @Test("forwarding: the request's end is written once")
    func forwardingRequestEnd() {
        var machine = forwarding(complete: false)
        #expect(describe(machine.requestEnded()) == "sendRequestEnd(first)")
        #expect(describe(machine) == "forwarding(first, sent: true, paused: false, awaited)")
        #expect(describe(machine.requestEnded()) == "none")
    }

    @Test("forwarding: a response head is forwarded; a 5xx falls back only when permitted and replayable")
    func forwardingHead() {
        var plain = forwarding()
        #expect(describe(plain.responseHeadReceived(status: 503, keepAlive: true)) == "forwardHead")
        #expect(describe(plain) == "forwarding(first, sent: true, paused: false, headRead(keepAlive: true))")
        #expect(plain.responseStarted)

        var fallsBack = forwarding(mayFallBack: true)
        #expect(describe(fallsBack.responseHeadReceived(status: 502, keepAlive: true)) == "fallBack(2, closing: first)")
        #expect(describe(fallsBack) == "connecting(2)" && fallsBack.fallback == .used)
        // Legacy's 5xx is the answer.
        _ = fallsBack.connectionReady(second, attempt: 2)
        #expect(describe(fallsBack.responseHeadReceived(status: 500, keepAlive: true)) == "forwardHead")

        var notReplayable = forwarding(replayable: false, mayFallBack: true)
        #expect(describe(notReplayable.responseHeadReceived(status: 500, keepAlive: true)) == "forwardHead")

        var success = forwarding(mayFallBack: true)
        #expect(describe(success.responseHeadReceived(status: 404, keepAlive: false)) == "forwardHead")
        #expect(success.fallback == .permitted)
    }

    @Test("forwarding: writing the head moves the response on; writing it again changes nothing")
    func forwardingHeadWritten() {
        var machine = headRead(keepAlive: false)
        machine.responseHeadWritten()
        #expect(describe(machine) == "forwarding(first, sent: true, paused: false, headWritten(keepAlive: false))")
        machine.responseHeadWritten()
        #expect(describe(machine) == "forwarding(first, sent: true, paused: false, headWritten(keepAlive: false))")
        // With no head read, there is nothing to mark.
        var awaiting = forwarding()
        awaiting.responseHeadWritten()
        #expect(describe(awaiting) == "forwarding(first, sent: true, paused: false, awaited)")
    }

    @Test("forwarding: the response's end releases the connection, reusable only if both messages ended cleanly")
    func forwardingEnd() {
        var clean = headWritten()
        #expect(describe(clean.responseEnded()) == "release(first, reusable: true)")
        #expect(describe(clean) == "draining" && clean.connection == nil)

        var closing = headWritten(keepAlive: false)
        #expect(describe(closing.responseEnded()) == "release(first, reusable: false)")

        // An answer before the request's end: the request was not all sent on this connection.
        var early = headRead(complete: false)
        #expect(describe(early.responseEnded()) == "release(first, reusable: false)")

        var noHead = forwarding()
        #expect(describe(noHead.responseEnded()) == "none")
        #expect(describe(noHead) == "forwarding(first, sent: true, paused: false, awaited)")
    }

    @Test("forwarding: the client's writability holds back and resumes the upstream's reads, once each")
    func forwardingBackpressure() {
        var machine = headWritten()
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "pauseReads(first)")
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "none")
        #expect(describe(machine.responseBodyForwarded()) == "none")
        #expect(describe(machine.clientWritabilityChanged(isWritable: true)) == "resumeReads(first)")
        #expect(describe(machine.clientWritabilityChanged(isWritable: true)) == "none")
        #expect(describe(machine.responseBodyForwarded()) == "none")
    }

    @Test("forwarding: a body part forwarded while the client is not writable holds back the upstream")
    func forwardingBodyWhileUnwritable() {
        var machine = connecting()
        _ = machine.clientWritabilityChanged(isWritable: false)
        _ = machine.connectionReady(first, attempt: 1)
        // The pause already happened with the request.
        #expect(describe(machine.responseBodyForwarded()) == "none")
        _ = machine.clientWritabilityChanged(isWritable: true)
        #expect(describe(machine.responseBodyForwarded()) == "none")
        #expect(describe(machine) == "forwarding(first, sent: true, paused: false, awaited)")
    }

    @Test("forwarding: the upstream timer runs while the upstream holds up the exchange, not while the proxy does")
    func forwardingTimer() {
        var machine = forwarding(complete: false)
        // Waiting on the client's body: the client's bounds, not the upstream's.
        #expect(!machine.upstreamTimerRuns(upstreamWritable: true))
        // The upstream not taking the body is the upstream's doing.
        #expect(machine.upstreamTimerRuns(upstreamWritable: false))
        _ = machine.requestEnded()
        #expect(machine.upstreamTimerRuns(upstreamWritable: true))
        _ = machine.clientWritabilityChanged(isWritable: false)
        #expect(!machine.upstreamTimerRuns(upstreamWritable: true))
        #expect(machine.upstreamTimerRuns(upstreamWritable: false))
        _ = machine.clientWritabilityChanged(isWritable: true)
        #expect(machine.upstreamTimerRuns(upstreamWritable: true))
    }

    @Test("forwarding: a stale reused connection is retried once on a fresh one, for a replayable request")
    func forwardingStaleRetry() {
        var machine = forwarding()
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "retryFresh(2)")
        #expect(describe(machine) == "connecting(2)" && machine.retriedStale)
        _ = machine.connectionReady(second, attempt: 2)
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "answerError(closing: nil)")
        #expect(describe(machine) == "draining")

        var fresh = forwarding()
        #expect(describe(fresh.upstreamFailed(wasReused: false, isConnectFailure: false)) == "answerError(closing: nil)")
        var post = forwarding(replayable: false)
        #expect(describe(post.upstreamFailed(wasReused: true, isConnectFailure: false)) == "answerError(closing: nil)")
    }

    @Test("the stale-retry rule: a reused connection, no answer yet, a replayable request, not retried yet")
    func staleRetryRule() {
        #expect(ExchangeStateMachine.retriesStale(wasReused: true, answerBegun: false, replayable: true, retriedAlready: false))
        #expect(!ExchangeStateMachine.retriesStale(wasReused: false, answerBegun: false, replayable: true, retriedAlready: false))
        #expect(!ExchangeStateMachine.retriesStale(wasReused: true, answerBegun: true, replayable: true, retriedAlready: false))
        #expect(!ExchangeStateMachine.retriesStale(wasReused: true, answerBegun: false, replayable: false, retriedAlready: false))
        #expect(!ExchangeStateMachine.retriesStale(wasReused: true, answerBegun: false, replayable: true, retriedAlready: true))
    }

    @Test("forwarding: a failure after the head was read but not written is a clean answer, never a replay")
    func forwardingFailureAfterHeadRead() {
        var machine = headRead(mayFallBack: true)
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: true)) == "answerError(closing: nil)")
        #expect(describe(machine) == "draining" && machine.fallback == .forbidden)
    }

    @Test("forwarding: a failure after the head reached the client aborts the client")
    func forwardingFailureAfterHeadWritten() {
        var machine = headWritten()
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "abortClient(closing: nil)")
        #expect(machine.isIdle)
    }

    @Test("forwarding: a timeout before the response closes the connection and is answered, never replayed")
    func forwardingTimeoutBeforeResponse() {
        var machine = forwarding(mayFallBack: true)
        #expect(describe(machine.upstreamTimedOut()) == "answerError(closing: first)")
        #expect(describe(machine) == "draining" && machine.fallback == .forbidden)
    }

    @Test("forwarding: a timeout once the response started aborts the client and closes the connection")
    func forwardingTimeoutAfterResponse() {
        var read = headRead()
        #expect(describe(read.upstreamTimedOut()) == "abortClient(closing: first)")
        #expect(read.isIdle)
        var written = headWritten()
        #expect(describe(written.upstreamTimedOut()) == "abortClient(closing: first)")
        #expect(written.isIdle)
    }

    @Test("forwarding: the proxy's own answer closes the connection; once the response started it aborts")
    func forwardingAnswer() {
        var awaiting = forwarding()
        #expect(describe(awaiting.answerWithError()) == "answerError(closing: first)")
        #expect(describe(awaiting) == "draining")
        var started = headRead()
        #expect(describe(started.answerWithError()) == "abortClient(closing: first)")
        #expect(started.isIdle)
    }

    @Test("forwarding: an abort and the client's close give up the connection")
    func forwardingEnds() {
        var aborted = headWritten()
        #expect(describe(aborted.abort()) == "abortClient(closing: first)")
        #expect(aborted.isIdle && aborted.connection == nil)
        var closed = forwarding()
        #expect(describe(closed.clientClosed()) == "cancelCall(closing: first, responseStarted: false)")
        var closedStarted = headWritten()
        #expect(describe(closedStarted.clientClosed()) == "cancelCall(closing: first, responseStarted: true)")
        #expect(closedStarted.isIdle)
    }

    @Test("forwarding: a second connection for the same attempt is not taken")
    func forwardingRejectsSecondConnection() {
        var machine = forwarding()
        #expect(describe(machine.connectionReady(second, attempt: 1)) == "release(second, reusable: true)")
        #expect(machine.connection === first)
    }

    @Test("forwarding: a pool failure for the attempt already connected is stale and changes nothing")
    func forwardingIgnoresPoolFailure() {
        var machine = forwarding(mayFallBack: true)
        #expect(describe(machine.connectionFailed(attempt: 1, isConnectFailure: true)) == "none")
        #expect(describe(machine) == "forwarding(first, sent: true, paused: false, awaited)" && machine.fallback == .permitted)
    }

    @Test("connecting and draining: head-written and body events have no response to act on")
    func responseEventsWithoutResponse() {
        var waiting = connecting()
        waiting.responseHeadWritten()
        #expect(describe(waiting.responseBodyForwarded()) == "none")
        #expect(describe(waiting) == "connecting(1)")
        var done = draining()
        done.responseHeadWritten()
        _ = done.clientWritabilityChanged(isWritable: false)
        #expect(describe(done.responseBodyForwarded()) == "none")
        #expect(describe(done) == "draining")
    }

    // MARK: - Draining

    @Test("draining: the request's end finishes the exchange")
    func drainingRequestEnd() {
        var machine = draining()
        #expect(describe(machine.requestEnded()) == "finishExchange")
        machine.exchangeFinished()
        #expect(machine.isIdle)
    }

    @Test("draining: call events do nothing; an abort closes the client; the client's close makes it idle")
    func drainingEvents() {
        var machine = draining()
        #expect(machine.responseStarted && !machine.isCalling)
        #expect(describe(machine.connectionReady(first, attempt: 1)) == "release(first, reusable: true)")
        #expect(describe(machine.connectionFailed(attempt: 1, isConnectFailure: true)) == "none")
        #expect(describe(machine.responseHeadReceived(status: 200, keepAlive: true)) == "none")
        #expect(describe(machine.responseEnded()) == "none")
        #expect(describe(machine.upstreamFailed(wasReused: false, isConnectFailure: false)) == "none")
        #expect(describe(machine.upstreamTimedOut()) == "none")
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "none")
        #expect(describe(machine.abort()) == "closeClient")
        #expect(describe(machine) == "draining")
        #expect(describe(machine.answerWithError()) == "abortClient(closing: nil)")
        var closed = draining()
        #expect(describe(closed.clientClosed()) == "none")
        #expect(closed.isIdle)
    }

    // MARK: - Interleavings behind earlier bugs

    @Test("backpressure with the response's end: a paused connection is resumed before it goes back to the pool")
    func pausedConnectionNeverPooledPaused() async throws {
        var machine = headWritten()
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "pauseReads(first)")
        #expect(describe(machine.responseEnded()) == "release(first, reusable: true)")
        // The pool resumes what it is given back, for every borrower.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let resumed = try await loop.submit {
            let upstream = Upstream(name: "svc", url: "http://127.0.0.1:9", host: "127.0.0.1", port: 9, basePath: "")
            let pool = UpstreamPool(upstream: upstream, eventLoop: loop, tls: nil)
            defer { pool.retire() }
            let pooled = UpstreamConnection()
            let closed = UpstreamConnection()
            pooled.pauseReads()
            closed.pauseReads()
            pool.release(pooled, reusable: true)
            pool.release(closed, reusable: false)
            return !pooled.readsPaused && !closed.readsPaused
        }.get()
        #expect(resumed)
        try await group.shutdownGracefully()
        // The machine holds nothing that a later writability change could pause.
        #expect(describe(machine.clientWritabilityChanged(isWritable: true)) == "none")
        #expect(describe(machine.clientWritabilityChanged(isWritable: false)) == "none")
        #expect(machine.connection == nil)
    }

    @Test("timeout with pause: while the proxy holds the upstream back, the upstream timer does not run")
    func timeoutDoesNotCountOwnPause() {
        var machine = headWritten()
        #expect(machine.upstreamTimerRuns(upstreamWritable: true))
        _ = machine.clientWritabilityChanged(isWritable: false)
        #expect(!machine.upstreamTimerRuns(upstreamWritable: true))
        _ = machine.clientWritabilityChanged(isWritable: true)
        #expect(machine.upstreamTimerRuns(upstreamWritable: true))
    }

    @Test("fallback after a stale connection: the fresh retry's connect failure still falls back to legacy, once")
    func fallbackAfterStaleConnection() {
        var machine = forwarding(mayFallBack: true)
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "retryFresh(2)")
        #expect(describe(machine.connectionFailed(attempt: 2, isConnectFailure: true)) == "fallBack(3, closing: nil)")
        #expect(describe(machine.connectionReady(first, attempt: 3)) == "sendRequest(first, ends: true, pauseReads: false)")
        // Legacy's connection was stale too, but the one retry is spent.
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "answerError(closing: nil)")
        #expect(describe(machine) == "draining")
    }

    @Test("fallback after a stale connection: a 5xx on the fresh connection falls back, then the stale retry is not repeated")
    func staleThenStatusFallback() {
        var machine = forwarding(mayFallBack: true)
        _ = machine.upstreamFailed(wasReused: true, isConnectFailure: false)
        _ = machine.connectionReady(second, attempt: 2)
        #expect(describe(machine.responseHeadReceived(status: 503, keepAlive: true)) == "fallBack(3, closing: second)")
        _ = machine.connectionReady(first, attempt: 3)
        #expect(describe(machine.upstreamFailed(wasReused: true, isConnectFailure: false)) == "answerError(closing: nil)")
    }

    @Test("client close mid-shadow: the call is cancelled with its connection, and late pool answers are given back")
    func clientCloseMidCall() {
        var machine = headRead()
        #expect(describe(machine.clientClosed()) == "cancelCall(closing: first, responseStarted: true)")
        #expect(machine.isIdle)
        #expect(describe(machine.upstreamFailed(wasReused: false, isConnectFailure: false)) == "none")
        #expect(describe(machine.responseEnded()) == "none")
        #expect(describe(machine.connectionReady(second, attempt: 1)) == "release(second, reusable: true)")
    }

    @Test("a timeout on the legacy attempt after a fallback is answered, not replayed again")
    func timeoutAfterFallback() {
        var machine = forwarding(mayFallBack: true)
        _ = machine.responseHeadReceived(status: 500, keepAlive: true)
        _ = machine.connectionReady(second, attempt: 2)
        #expect(describe(machine.upstreamTimedOut()) == "answerError(closing: second)")
    }
}
