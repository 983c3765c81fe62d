import NIOCore
import StranglerCore

/// Everything one shadowed request produced, handed off the event loop for comparison.
public struct ShadowJob: Sendable {
    /// One side's captured answer.
    ///
    /// The header lines a comparison reads and the body are kept in one buffer: the headers
    /// first, each as a length-prefixed name and value, then the body bytes. On the event loop
    /// that is one allocation per answer, sized from the head (the headers' bytes and the
    /// declared length), where name and value strings were three or more; the strings are made
    /// on the comparison worker (``headers``), and only for answers that are not identical.
    public struct Side: Sendable {
        /// The name of the upstream that answered.
        public var upstream: String
        /// The answer's status code; nil when no response head arrived (a timeout, a failure).
        public var status: Int?
        /// How long the answer took, in milliseconds; nil when it did not complete.
        public var milliseconds: Double?
        /// The header block, then the body.
        private var capture = ByteBuffer()
        /// Bytes of the header block at the start of ``capture``.
        private var headerBytes = 0
        /// Whether a captured header is `Content-Encoding` (the body must be decoded to compare).
        private var hasContentEncoding = false

        /// Creates a side from an answer already taken apart (comparisons run on their own, as
        /// in tests); the data plane fills a side as the answer streams in instead.
        /// - Parameters:
        ///   - upstream: The name of the upstream that answered.
        ///   - status: Its status code, if a head arrived.
        ///   - headers: The header lines a comparison reads, in the order received.
        ///   - body: The body as received (still content-coded, if it was).
        ///   - milliseconds: How long the answer took.
        public init(
            upstream: String,
            status: Int? = nil,
            headers: [(name: String, value: String)] = [],
            body: ByteBuffer = ByteBuffer(),
            milliseconds: Double? = nil
        ) {
            self.upstream = upstream
            self.status = status
            self.milliseconds = milliseconds
            // An empty side (as every call starts) touches no buffer: the setters allocate.
            if !headers.isEmpty { self.headers = headers }
            if body.readableBytes > 0 { self.body = body }
        }

        /// The captured header lines, as name/value pairs in the order received.
        public var headers: [(name: String, value: String)] {
            get {
                var block = capture.getSlice(at: capture.readerIndex, length: headerBytes) ?? ByteBuffer()
                var pairs: [(name: String, value: String)] = []
                while let nameLength = block.readInteger(as: UInt32.self), let name = block.readString(length: Int(nameLength)),
                    let valueLength = block.readInteger(as: UInt32.self), let value = block.readString(length: Int(valueLength))
                {
                    pairs.append((name, value))
                }
                return pairs
            }
            set {
                let body = self.body
                var block = ByteBuffer()
                hasContentEncoding = false
                for (name, value) in newValue {
                    Self.writeHeader(name: Array(name.utf8), value: Array(value.utf8), into: &block)
                    if name.lowercased() == "content-encoding" { hasContentEncoding = true }
                }
                headerBytes = block.readableBytes
                block.writeImmutableBuffer(body)
                capture = block
            }
        }

        /// The body as received.
        public var body: ByteBuffer {
            get { capture.getSlice(at: capture.readerIndex + headerBytes, length: capture.readableBytes - headerBytes) ?? ByteBuffer() }
            set {
                capture.moveWriterIndex(to: capture.readerIndex + headerBytes)
                capture.writeImmutableBuffer(newValue)
            }
        }

        private static func writeHeader(name: some Collection<UInt8>, value: some Collection<UInt8>, into buffer: inout ByteBuffer) {
            // Four bytes each: a head's size is configurable, so a line may outgrow two.
            buffer.writeInteger(UInt32(truncatingIfNeeded: name.count))
            buffer.writeBytes(name)
            buffer.writeInteger(UInt32(truncatingIfNeeded: value.count))
            buffer.writeBytes(value)
        }

        /// Captures the status and the header lines a comparison reads: `Content-Type` and
        /// `Content-Encoding` (how to read the body) and `names` (the route's `compare.headers`,
        /// lowercase). Room for the body is reserved with them, up to `bodyLimit`, when the head
        /// declares its length.
        mutating func captureHead(_ head: UpstreamResponseHead, comparing names: [String], bodyLimit: Int) {
            status = head.statusCode
            // Sized once, in one pass: the whole head and the declared body. The compared lines
            // are part of the head; the status line and the lines' colons and CRLFs make up for
            // the lengths' eight bytes per line, except in a head of little but compared lines,
            // when the buffer grows.
            var block = ByteBufferAllocator().buffer(capacity: head.bytes.readableBytes + min(head.contentLength ?? 0, bodyLimit))
            head.bytes.withUnsafeReadableBytes { raw in
                for field in head.fields where Self.isCompared(field, in: raw, names: names) {
                    if field.kind == .contentEncoding { hasContentEncoding = true }
                    Self.writeHeader(
                        name: UnsafeRawBufferPointer(rebasing: raw[field.name]),
                        value: UnsafeRawBufferPointer(rebasing: raw[field.value]),
                        into: &block
                    )
                }
            }
            headerBytes = block.readableBytes
            capture = block
        }

        private static func isCompared(_ field: HTTPHeadField, in raw: UnsafeRawBufferPointer, names: [String]) -> Bool {
            if field.kind == .contentType || field.kind == .contentEncoding { return true }
            guard !names.isEmpty else { return false }
            let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
            return names.contains { HTTPHeadSyntax.name(name, is: $0) }
        }

        /// Keeps a copy of a body part. A slice would keep alive the whole read buffer it came
        /// from (up to 64 KiB) for as long as the job waits in the comparison queue: under load
        /// that was hundreds of MiB for bodies of a few hundred bytes. Parts go into one buffer,
        /// which ``captureHead(_:comparing:bodyLimit:)`` sized from the declared length; without
        /// one it is sized by the first part, and most bodies come in one read.
        mutating func append(_ buffer: ByteBuffer) {
            if capture.capacity == 0 {
                capture = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
            }
            capture.writeImmutableBuffer(buffer)
        }

        /// Drops what was captured of the headers and the body; the status and timing stay.
        mutating func dropCapture() {
            capture = ByteBuffer()
            headerBytes = 0
            hasContentEncoding = false
        }

        /// Whether `other` is the same answer byte for byte: status, the captured headers in
        /// order, and the body, with no content coding. The comparator would find no difference
        /// between such answers (it compares statuses, listed headers and decoded bodies).
        func isIdentical(to other: Side) -> Bool {
            guard let status, status == other.status, !hasContentEncoding, !other.hasContentEncoding else { return false }
            return headerBytes == other.headerBytes && capture == other.capture
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
    /// The route's `compare` rules; nil compares with the defaults.
    public var compare: CompareSettings?
    /// The version (content hash) of the route table the request was routed by.
    public var tableVersion: String
    /// The request's `X-Request-Id`.
    public var requestID: String
    /// The request method.
    public var method: String
    /// The request target as the client sent it.
    public var uri: String
    /// The answer from the upstream that served the client.
    public var primary: Side
    /// The answer from the upstream that got the copy.
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
