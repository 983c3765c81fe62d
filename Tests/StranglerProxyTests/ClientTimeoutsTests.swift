import NIOCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The client bounds' state machine on its own: events in, the expired bound out, on a clock
/// the test moves by hand.
@Suite("Client timeouts state machine")
struct ClientTimeoutsTests {
    static let limits = ClientTimeouts.Limits(
        header: .seconds(60),
        body: .seconds(30),
        send: .seconds(20),
        keepAlive: .seconds(75),
        lingerTotal: .seconds(30),
        lingerIdle: .seconds(5)
    )
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test("a fresh connection that sends nothing expires as a header timeout without a partial request")
    func silentFreshConnection() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        #expect(timeouts.idleSince == at(0))
        #expect(timeouts.expired(now: at(59)) == nil)
        #expect(timeouts.expired(now: at(60)) == .header(partial: false))
    }

    @Test("the head deadline counts from the start: bytes arriving do not extend it")
    func headIsADeadline() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        for second in stride(from: Int64(1), to: 60, by: 5) { timeouts.requestBytesArrived(now: at(second)) }
        #expect(timeouts.idleSince == nil)
        #expect(timeouts.expired(now: at(60)) == .header(partial: true))
    }

    @Test("a kept-alive connection idles under keepAlive, and its next head is due within header of its first byte")
    func keepAliveThenHead() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        timeouts.headReceived(now: at(1), bodyFollows: false)
        #expect(timeouts.expired(now: at(500)) == nil, "no client bound runs while the upstream answers")
        timeouts.exchangeEnded(now: at(10), nextRequestWaiting: false)
        #expect(timeouts.idleSince == at(10))
        #expect(timeouts.expired(now: at(84)) == nil)
        #expect(timeouts.expired(now: at(85)) == .keepAlive)
        timeouts.requestBytesArrived(now: at(80))
        #expect(timeouts.expired(now: at(139)) == nil)
        #expect(timeouts.expired(now: at(140)) == .header(partial: true))
    }

    @Test("pipelined bytes already waiting start the next head's deadline at once")
    func pipelinedNextRequest() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        timeouts.headReceived(now: at(0), bodyFollows: false)
        timeouts.exchangeEnded(now: at(5), nextRequestWaiting: true)
        #expect(timeouts.idleSince == nil)
        #expect(timeouts.expired(now: at(65)) == .header(partial: true))
    }

    @Test("the body bound moves with each body read and stops while the proxy itself is not reading")
    func bodyBound() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        timeouts.headReceived(now: at(0), bodyFollows: true)
        #expect(timeouts.isReadingBody)
        timeouts.bodyProgress(now: at(20))
        #expect(timeouts.expired(now: at(49)) == nil)
        timeouts.clientReadsPaused(true, now: at(49))
        #expect(timeouts.expired(now: at(1000)) == nil, "paused by the proxy: not the client's fault")
        timeouts.clientReadsPaused(false, now: at(1000))
        #expect(timeouts.expired(now: at(1029)) == nil)
        #expect(timeouts.expired(now: at(1030)) == .body)
        timeouts.requestEnded()
        #expect(!timeouts.isReadingBody)
        #expect(timeouts.expired(now: at(5000)) == nil)
    }

    @Test("the send bound runs while the client is behind, restarts on progress, and stops when it catches up")
    func sendBound() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        timeouts.headReceived(now: at(0), bodyFollows: false)
        timeouts.sendStalled(true, now: at(10))
        #expect(timeouts.isSendStalled)
        timeouts.sendProgress(now: at(25))
        #expect(timeouts.expired(now: at(44)) == nil)
        #expect(timeouts.expired(now: at(45)) == .send)
        timeouts.sendStalled(false, now: at(44))
        #expect(!timeouts.isSendStalled)
        #expect(timeouts.expired(now: at(1000)) == nil)
    }

    @Test("a staged close ends after its idle bound, or its total bound however busy the client is")
    func lingerBounds() {
        var idle = ClientTimeouts(limits: Self.limits)
        idle.connectionOpened(now: at(0))
        idle.lingerStarted(now: at(10))
        #expect(idle.isLingering)
        #expect(idle.idleSince == nil, "a closing connection is not offered for eviction")
        idle.lingerRead(now: at(13))
        #expect(idle.expired(now: at(17)) == nil)
        #expect(idle.expired(now: at(18)) == .linger)

        var busy = ClientTimeouts(limits: Self.limits)
        busy.connectionOpened(now: at(0))
        busy.lingerStarted(now: at(10))
        for second in Int64(11)...39 { busy.lingerRead(now: at(second)) }
        #expect(busy.expired(now: at(39)) == nil)
        #expect(busy.expired(now: at(40)) == .linger)
    }

    @Test("a closed connection has no bound left")
    func closedHasNoBound() {
        var timeouts = ClientTimeouts(limits: Self.limits)
        timeouts.connectionOpened(now: at(0))
        timeouts.sendStalled(true, now: at(0))
        timeouts.closed()
        #expect(timeouts.expired(now: at(100_000)) == nil)
        #expect(timeouts.idleSince == nil)
    }

    @Test("the sweep's resolution is a quarter of the shortest bound, between 10 ms and 1 s")
    func sweepResolution() {
        #expect(ClientConnections.resolution(for: Self.limits) == .seconds(1))
        var short = Self.limits
        short.header = .milliseconds(300)
        #expect(ClientConnections.resolution(for: short) == .milliseconds(75))
        short.send = .milliseconds(1)
        #expect(ClientConnections.resolution(for: short) == .milliseconds(10))
    }

    @Test("the connection cap fits the open-file limit: one descriptor per client and one per upstream, after the reserve")
    func capFitsDescriptors() {
        #expect(FileDescriptorLimit.connectionCap(requested: 10_000, descriptors: 1_048_576) == 10_000)
        #expect(FileDescriptorLimit.connectionCap(requested: 10_000, descriptors: 1_024) == (1_024 - FileDescriptorLimit.reserved) / 2)
        #expect(FileDescriptorLimit.connectionCap(requested: 4, descriptors: 1_024) == 4)
    }
}
