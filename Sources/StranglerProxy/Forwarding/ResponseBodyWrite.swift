import NIOCore

/// How a part of the upstream's response body goes to the client.
///
/// The forwarded head waits for the first body bytes (until the upstream's read ends): a small
/// response then leaves in one write, and a small first part rides in the head's buffer rather
/// than a write of its own.
enum ResponseBodyWrite: Equatable {
    /// Copied into the forwarded head, which still waits.
    case joinHead
    /// Written as a chunk, after the waiting head if there is one.
    case chunk
    /// Written as it came, after the waiting head if there is one.
    case asIs

    /// The most body bytes copied into the head's buffer; larger parts go as their own slices.
    static let bytesJoiningHead = 4096

    /// How a part of `bytes` bytes goes: into the waiting head if it is the first part and small
    /// enough, otherwise as a chunk when the client's framing is `chunked`, or as it came.
    static func choose(headWaiting: Bool, headHasBody: Bool, bytes: Int, chunked: Bool) -> ResponseBodyWrite {
        if headWaiting, !headHasBody, bytes <= bytesJoiningHead { return .joinHead }
        return chunked ? .chunk : .asIs
    }

    /// Appends `body` to the waiting `head`, framed as a chunk when `chunked`.
    static func join(_ body: ByteBuffer, into head: inout ByteBuffer, chunked: Bool) {
        if chunked { head.writeChunkSizeLine(body.readableBytes) }
        head.writeImmutableBuffer(body)
        if chunked { head.writeStaticString("\r\n") }
    }

    /// What ends the body towards the client: for a chunked body the last chunk with any
    /// `trailers`; other framings need nothing.
    static func end(chunked: Bool, trailers: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard chunked else { return nil }
        guard let trailers else { return ChannelHandlerContext.lastChunk }
        var chunk = allocator.buffer(capacity: 5 + trailers.readableBytes)
        chunk.writeStaticString("0\r\n")
        chunk.writeImmutableBuffer(trailers)
        chunk.writeStaticString("\r\n")
        return chunk
    }
}
