import NIOCore
import NIOHTTP1
import Testing

@testable import StranglerProxy

/// The response on its way to the client: the head waits for body bytes, a small first part
/// joins it, and the body's framing decides how parts and the end are written.
@Suite("Client response writer")
struct ClientResponseWriterTests {
    static func framing(_ head: UpstreamResponseHead, method: HTTPMethod = .GET) -> ResponseFraming {
        ResponseFraming(
            method: method,
            statusCode: head.statusCode,
            contentLength: head.contentLength,
            clientVersion: .http1_1,
            clientKeepAlive: true,
            requestComplete: true,
            closeAlready: false
        )
    }

    static func holding(_ text: String) throws -> ClientResponseWriter {
        let head = try ProxyHandlerShellTests.responseHead(text)
        var writer = ClientResponseWriter()
        writer.holdHead(head, clientVersion: .http1_1, requestID: .client("r1"), upstreamName: "legacy", framing: framing(head))
        return writer
    }

    static let lengthHead = "HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n"
    static let unframedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    static let rewrittenLengthHead = "HTTP/1.1 200 OK\r\nContent-Length: 9000\r\nX-Request-Id: r1\r\nX-Strangler-Upstream: legacy\r\n\r\n"

    @Test("a small first part joins the held head; the next part releases the head and follows it")
    func joinThenRelease() throws {
        var writer = try Self.holding(Self.lengthHead)
        guard case .joinedHead = writer.body(ByteBuffer(string: "first")) else {
            Issue.record("a small first part should join the head")
            return
        }
        guard case .asIs(let head?, let part) = writer.body(ByteBuffer(string: "second")) else {
            Issue.record("the second part should release the head and go as it came")
            return
        }
        #expect(String(buffer: head) == Self.rewrittenLengthHead + "first")
        #expect(String(buffer: part) == "second")
        let again = writer.takeHead()
        #expect(again == nil, "the head is written once")
        guard case .asIs(nil, _) = writer.body(ByteBuffer(string: "third")) else {
            Issue.record("later parts have no head before them")
            return
        }
    }

    @Test("a large first part does not join the head: the head goes first, then the part")
    func largeFirstPart() throws {
        var writer = try Self.holding(Self.lengthHead)
        let large = ByteBuffer(repeating: UInt8(ascii: "x"), count: ResponseBodyWrite.bytesJoiningHead + 1)
        guard case .asIs(let head?, let part) = writer.body(large) else {
            Issue.record("a large first part should follow the head")
            return
        }
        #expect(String(buffer: head) == Self.rewrittenLengthHead)
        #expect(part.readableBytes == large.readableBytes)
    }

    @Test("an upstream body without a length goes chunked: joined and later parts are chunks, and the end is the last chunk")
    func chunked() throws {
        var writer = try Self.holding(Self.unframedHead)
        #expect(writer.chunked)
        guard case .joinedHead = writer.body(ByteBuffer(string: "abc")) else {
            Issue.record("a small first part should join the head")
            return
        }
        let taken = writer.takeHead()
        let head = try #require(taken)
        #expect(String(buffer: head).hasSuffix("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"))
        guard case .chunk(nil, let part) = writer.body(ByteBuffer(string: "defg")) else {
            Issue.record("a later part should be a chunk")
            return
        }
        #expect(String(buffer: part) == "defg")
        let last = writer.end(trailers: ByteBuffer(string: "X-Sum: 1\r\n"), allocator: ByteBufferAllocator())
        #expect(last.map { String(buffer: $0) } == "0\r\nX-Sum: 1\r\n\r\n")
    }

    @Test("reset forgets a held head and the framing, so an error answer replaces a response none of which was sent")
    func reset() throws {
        var writer = try Self.holding(Self.unframedHead)
        _ = writer.body(ByteBuffer(string: "abc"))
        writer.reset()
        let held = writer.takeHead()
        #expect(held == nil)
        #expect(!writer.chunked)
        #expect(writer.end(trailers: nil, allocator: ByteBufferAllocator()) == nil, "an error answer has its own length")
    }

    @Test("a body-less response ends with nothing to write")
    func bodyless() throws {
        let head = try ProxyHandlerShellTests.responseHead("HTTP/1.1 204 No Content\r\n\r\n")
        var writer = ClientResponseWriter()
        writer.holdHead(head, clientVersion: .http1_1, requestID: .client("r1"), upstreamName: "svc", framing: Self.framing(head))
        let taken = writer.takeHead()
        let written = try #require(taken)
        #expect(String(buffer: written).hasPrefix("HTTP/1.1 204 No Content\r\n"))
        #expect(writer.end(trailers: nil, allocator: ByteBufferAllocator()) == nil)
    }
}
