import NIOCore
import NIOEmbedded
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The small pieces the forwarding path is built from, each checked on its own.
@Suite("Data plane parts")
struct DataPlanePartsTests {
    @Test("request ids: 16 hex digits, a dash, 8 hex digits of a counter; unique and valid as X-Request-Id")
    func requestIDs() {
        var generator = RequestIDGenerator()
        let ids = (0..<1000).map { _ in generator.nextValue().string }
        #expect(Set(ids).count == 1000)
        for id in ids {
            let parts = id.split(separator: "-")
            #expect(parts.count == 2)
            #expect(parts[0].count == 16 && parts[1].count == 8)
            #expect(id.allSatisfy { $0.isHexDigit || $0 == "-" })
            #expect(RequestID.isValid(id))
        }
        #expect(ids[0].hasSuffix("-00000001"))
        #expect(ids[999].hasSuffix("-000003e8"))
        #expect(ids[0].prefix(16) == ids[999].prefix(16))
    }

    @Test("a generated request id written into a head is the same text as the id's string, and a client's id is kept as sent")
    func requestIDValues() {
        var generator = RequestIDGenerator()
        for _ in 0..<3 { _ = generator.nextValue() }
        let generated = generator.nextValue()
        var buffer = ByteBuffer(string: "X-Request-Id: ")
        let written = buffer.writeRequestID(generated)
        #expect(written == generated.utf8Count)
        #expect(String(buffer: buffer) == "X-Request-Id: " + generated.string)
        #expect(generated.string.hasSuffix("-00000004"))
        #expect(RequestID.isValid(generated.string))
        // A counter past 8 hex digits gets more digits, not a truncated id.
        let long = RequestIDValue.generated(prefix: 0xABCD, counter: 0x1_2345_6789)
        #expect(long.string == "000000000000abcd-123456789")
        var longBuffer = ByteBuffer()
        longBuffer.writeRequestID(long)
        #expect(String(buffer: longBuffer) == long.string && long.utf8Count == 26)
        // Every digit value in every position, against the standard library's hex.
        func padded(_ value: UInt64, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text
        }
        for prefix: UInt64 in [0, 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, .max, 0xA0A0_0A0A_F0F0_0F0F] {
            for counter: UInt64 in [1, 0x9, 0xA, 0xF, 0x10, 0xABCD_EF01, 0xFFFF_FFFF, 0x1_0000_0000] {
                let id = RequestIDValue.generated(prefix: prefix, counter: counter)
                #expect(id.string == padded(prefix, 16) + "-" + padded(counter, 8))
                var written = ByteBuffer()
                written.writeRequestID(id)
                #expect(String(buffer: written) == id.string)
            }
        }
        let client = RequestIDValue.client("order-42")
        var clientBuffer = ByteBuffer()
        clientBuffer.writeRequestID(client)
        #expect(String(buffer: clientBuffer) == "order-42" && client.utf8Count == 8)
    }

    @Test("token bytes are exactly RFC 9110's tchar, for every byte value")
    func tokenBytes() {
        let tchar = Set(Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8))
        for byte in UInt8.min...UInt8.max {
            #expect(HTTPHeadSyntax.isTokenByte(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }

    @Test("header names are recognised whatever their case; other names are not")
    func headerNames() {
        #expect(ProxyHeaderName("Transfer-Encoding") == .transferEncoding)
        #expect(ProxyHeaderName("X-FORWARDED-PROTO") == .xForwardedProto)
        #expect(ProxyHeaderName("x-forwarded-host") == .xForwardedHost)
        #expect(ProxyHeaderName("Proxy-Connection") == .proxyConnection)
        #expect(ProxyHeaderName("te") == .te)
        #expect(ProxyHeaderName("TE").isHopByHop)
        #expect(ProxyHeaderName("Content-Length") == .contentLength)
        #expect(ProxyHeaderName("Content-Lengtx") == .other)
        #expect(ProxyHeaderName("x-request-id") == .xRequestID)
        #expect(ProxyHeaderName("X-Strangler-Upstream") == .xStranglerUpstream)
        // Same length, differing only in bytes that fold to the same thing with 0x20.
        #expect(ProxyHeaderName("h\u{0F}st") == .other)
        #expect(ProxyHeaderName("connectioN") == .connection)
        #expect(ProxyHeaderName("connection\u{0}") == .other)
        #expect(!ProxyHeaderName("content-type").isHopByHop)
        // Underscores: their own class, whether or not the name would be known with hyphens.
        #expect(ProxyHeaderName("X_Strangler_Shadow") == .underscored)
        #expect(ProxyHeaderName("x_forwarded_for") == .underscored)
        #expect(ProxyHeaderName("Transfer_Encoding") == .underscored)
        #expect(ProxyHeaderName("_") == .underscored)
        #expect(ProxyHeaderName("X-Custom_Thing") == .underscored)
        #expect(ProxyHeaderName("X-Custom-Thing") == .other)
        #expect(!ProxyHeaderName("Connection_").isHopByHop)
    }

    final class Waiter: UpstreamDeadlineClient {
        var deadlineSlot = -1
        var upstreamDeadline: NIODeadline
        var fired = 0
        init(deadline: NIODeadline) { upstreamDeadline = deadline }
        func upstreamDeadlineReached() { fired += 1 }
    }

    @Test("upstream deadlines fire once, after their time, only while armed; a moved deadline waits")
    func deadlines() {
        let loop = EmbeddedEventLoop()
        let deadlines = UpstreamDeadlines(eventLoop: loop, resolution: .milliseconds(10))
        let start = loop.now
        let early = Waiter(deadline: start + .milliseconds(50))
        let late = Waiter(deadline: start + .milliseconds(200))
        let cancelled = Waiter(deadline: start + .milliseconds(30))
        let moved = Waiter(deadline: start + .milliseconds(40))
        for waiter in [early, late, cancelled, moved] { deadlines.arm(waiter) }
        #expect(deadlines.count == 4)
        deadlines.disarm(cancelled)
        #expect(deadlines.count == 3)

        loop.advanceTime(by: .milliseconds(35))
        moved.upstreamDeadline = start + .milliseconds(150)  // the upstream sent something
        loop.advanceTime(by: .milliseconds(25))
        #expect(early.fired == 1)
        #expect(moved.fired == 0 && late.fired == 0 && cancelled.fired == 0)
        loop.advanceTime(by: .milliseconds(100))
        #expect(moved.fired == 1)
        #expect(late.fired == 0)
        loop.advanceTime(by: .milliseconds(100))
        #expect(late.fired == 1)
        #expect(early.fired == 1 && moved.fired == 1 && cancelled.fired == 0)
        #expect(deadlines.count == 0)
        #expect(early.deadlineSlot == -1)
    }
}
