import NIOCore
import StranglerCore

/// Everything one shadowed request produced, handed off the event loop for comparison.
public struct ShadowJob: Sendable {
    /// One side's captured answer.
    public struct Side: Sendable {
        public var upstream: String
        public var status: Int?
        public var headers: [(name: String, value: String)] = []
        /// The body as received, copied into one buffer (see ``append(_:)``).
        public var body = ByteBuffer()
        public var milliseconds: Double?

        /// Keeps a copy of a body part. A slice would keep alive the whole read buffer it came
        /// from (up to 64 KiB) for as long as the job waits in the comparison queue: under load
        /// that was hundreds of MiB for bodies of a few hundred bytes. Parts go into one buffer,
        /// sized by the first part; most bodies come in one read, so one allocation.
        mutating func append(_ buffer: ByteBuffer) {
            if body.capacity == 0 {
                body = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
            }
            body.writeImmutableBuffer(buffer)
        }

        /// Drops what was captured of the headers and the body; the status and timing stay.
        mutating func dropCapture() {
            headers = []
            body = ByteBuffer()
        }

        /// Whether `other` is the same answer byte for byte: status, the captured headers in
        /// order, and the body, with no content coding. The comparator would find no difference
        /// between such answers (it compares statuses, listed headers and decoded bodies).
        func isIdentical(to other: Side) -> Bool {
            guard let status, status == other.status, body == other.body, headers.count == other.headers.count else { return false }
            for (mine, theirs) in zip(headers, other.headers) where mine.name != theirs.name || mine.value != theirs.value {
                return false
            }
            return !headers.contains { header in
                var name = header.name
                return name.withUTF8 { HTTPHeadSyntax.name(UnsafeRawBufferPointer($0), is: "content-encoding") }
            }
        }

        /// The side as the comparator takes it.
        func captured() -> CapturedResponse? {
            guard let status else { return nil }
            return CapturedResponse(status: status, headers: headers, body: Array(body.readableBytesView))
        }
    }

    /// The route's id and its `compare` rules: all of the route a comparison reads. (The whole
    /// `Route` is a score of reference-counted fields, copied here and released on the worker.)
    public var routeID: String
    public var compare: CompareSettings?
    public var tableVersion: String
    public var requestID: String
    public var method: String
    public var uri: String
    public var primary: Side
    public var candidate: Side
    /// A second answer from the primary upstream, when this request was a noise probe.
    public var noise: Side?
    /// Set when there is nothing to compare, with why (`body_too_large`, `candidate_timeout`, ...).
    public var skipReason: String?
    /// The two answers were the same byte for byte (``Side/isIdentical(to:)``), so they match
    /// with nothing to compare, and their captures were dropped on the event loop: freeing them
    /// there keeps the loop's allocator caches warm, instead of draining them into the worker's.
    public var identical = false
}

/// Takes shadow jobs from the event loops without ever blocking them.
public protocol ShadowSink: Sendable {
    /// Queues a job; false when the queue is full (the job is dropped and counted).
    func submit(_ job: ShadowJob) -> Bool
}
