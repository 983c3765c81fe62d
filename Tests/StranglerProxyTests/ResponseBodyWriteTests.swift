import NIOCore
import Testing

@testable import StranglerProxy

/// How response body parts go to the client: into the waiting head, as chunks, or as they came.
@Suite("Response body write")
struct ResponseBodyWriteTests {
    @Test("a small first part joins the waiting head; anything else is written on its own")
    func choose() {
        let limit = ResponseBodyWrite.bytesJoiningHead
        #expect(ResponseBodyWrite.choose(headWaiting: true, headHasBody: false, bytes: limit, chunked: true) == .joinHead)
        #expect(ResponseBodyWrite.choose(headWaiting: true, headHasBody: false, bytes: limit + 1, chunked: true) == .chunk)
        #expect(ResponseBodyWrite.choose(headWaiting: true, headHasBody: true, bytes: 1, chunked: false) == .asIs)
        #expect(ResponseBodyWrite.choose(headWaiting: false, headHasBody: false, bytes: 1, chunked: true) == .chunk)
        #expect(ResponseBodyWrite.choose(headWaiting: false, headHasBody: false, bytes: 1, chunked: false) == .asIs)
    }

    @Test("a joined part is framed as a chunk only when the body is chunked")
    func join() {
        var chunked = ByteBuffer(string: "H")
        ResponseBodyWrite.join(ByteBuffer(string: "0123456789abcdefg"), into: &chunked, chunked: true)
        #expect(String(buffer: chunked) == "H11\r\n0123456789abcdefg\r\n")
        var plain = ByteBuffer(string: "H")
        ResponseBodyWrite.join(ByteBuffer(string: "body"), into: &plain, chunked: false)
        #expect(String(buffer: plain) == "Hbody")
    }

    @Test("a chunked body ends with the last chunk and its trailers; others with nothing")
    func end() {
        let allocator = ByteBufferAllocator()
        #expect(ResponseBodyWrite.end(chunked: false, trailers: nil, allocator: allocator) == nil)
        #expect(ResponseBodyWrite.end(chunked: true, trailers: nil, allocator: allocator).map { String(buffer: $0) } == "0\r\n\r\n")
        let trailers = ByteBuffer(string: "X-Sum: 1\r\n")
        #expect(
            ResponseBodyWrite.end(chunked: true, trailers: trailers, allocator: allocator).map { String(buffer: $0) }
                == "0\r\nX-Sum: 1\r\n\r\n"
        )
    }
}
