import NIOCore
import NIOHTTP1

/// The response on its way to the client: the forwarded head, held until body bytes or the end
/// of the upstream's read, and the framing of the body that follows it.
///
/// Holding the head lets a small response leave as one buffer (one write, no vector) rather
/// than two, and lets a framing error later in the same read still give the client a clean 502
/// instead of half a response. The writer decides what goes out and in which order; the handler
/// writes what it is given. It keeps the last head's buffer for the next exchange's head, so a
/// keep-alive connection writes heads without allocating.
struct ClientResponseWriter {
    /// What a part of the response body puts on the wire, in order.
    enum BodyWrite {
        /// The part joined the waiting head; nothing is written yet.
        case joinedHead
        /// Write `head` first if there is one (the forwarded head, no longer waiting), then
        /// `part` as a chunk.
        case chunk(head: ByteBuffer?, part: ByteBuffer)
        /// Write `head` first if there is one, then `part` as it came.
        case asIs(head: ByteBuffer?, part: ByteBuffer)
    }

    private var spare = SpareHeadBuffer()
    /// The forwarded head, not written yet.
    private var pendingHead: ByteBuffer?
    /// Body bytes joined `pendingHead`.
    private var headHasBody = false
    /// The body goes to the client in chunked framing (its upstream sent no length).
    private(set) var chunked = false

    /// Forgets the response so far: a new exchange starts, or an error answer replaces a
    /// response none of which reached the client. The spare buffer is kept.
    mutating func reset() {
        pendingHead = nil
        headHasBody = false
        chunked = false
    }

    /// Rewrites the upstream's `head` for the client and holds it until body bytes or the end
    /// of the read.
    mutating func holdHead(
        _ head: UpstreamResponseHead,
        clientVersion: HTTPVersion,
        requestID: RequestIDValue,
        upstreamName: String,
        framing: ResponseFraming
    ) {
        chunked = framing.chunked
        let joining = min(head.contentLength ?? 0, ResponseBodyWrite.bytesJoiningHead)
        var out = spare.take(capacity: head.bytes.readableBytes + 96 + requestID.utf8Count + upstreamName.utf8.count + joining)
        ResponseHeadRewrite.write(head, clientVersion: clientVersion, requestID: requestID, upstreamName: upstreamName, framing: framing, into: &out)
        pendingHead = out
        headHasBody = false
    }

    /// The waiting head, if any, to write now; its buffer is kept as the next head's spare.
    mutating func takeHead() -> ByteBuffer? {
        guard let head = pendingHead else { return nil }
        pendingHead = nil
        spare.keep(head)
        return head
    }

    /// What a part of the response body puts on the wire: a small first part rides in the
    /// waiting head; any other part releases the head and follows it.
    mutating func body(_ part: ByteBuffer) -> BodyWrite {
        switch ResponseBodyWrite.choose(headWaiting: pendingHead != nil, headHasBody: headHasBody, bytes: part.readableBytes, chunked: chunked) {
        case .joinHead:
            // Taken out first, so that the head's buffer is uniquely held while it grows.
            if var head = pendingHead {
                pendingHead = nil
                ResponseBodyWrite.join(part, into: &head, chunked: chunked)
                pendingHead = head
                headHasBody = true
            }
            return .joinedHead
        case .chunk:
            return .chunk(head: takeHead(), part: part)
        case .asIs:
            return .asIs(head: takeHead(), part: part)
        }
    }

    /// What ends the body towards the client (the last chunk, with any `trailers`), if its
    /// framing needs anything. The waiting head must have been taken first.
    func end(trailers: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer? {
        assert(pendingHead == nil, "the response's head is still waiting at its end")
        return ResponseBodyWrite.end(chunked: chunked, trailers: trailers, allocator: allocator)
    }
}
