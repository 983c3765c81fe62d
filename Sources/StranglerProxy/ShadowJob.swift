import NIOCore
import StranglerCore

/// Everything one shadowed request produced, handed off the event loop for comparison.
public struct ShadowJob: Sendable {
    /// One side's captured answer.
    public struct Side: Sendable {
        public var upstream: String
        public var status: Int?
        public var headers: [(name: String, value: String)] = []
        /// The body as received, in compact copies (see ``append(_:)``).
        public var body: [ByteBuffer] = []
        public var milliseconds: Double?

        /// Keeps a copy of a body part. A slice would keep alive the whole read buffer it came
        /// from (up to 64 KiB) for as long as the job waits in the comparison queue: under load
        /// that was hundreds of MiB for bodies of a few hundred bytes.
        mutating func append(_ buffer: ByteBuffer) {
            var copy = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
            copy.writeImmutableBuffer(buffer)
            body.append(copy)
        }

        /// The side as the comparator takes it.
        func captured() -> CapturedResponse? {
            guard let status else { return nil }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(body.reduce(0) { $0 + $1.readableBytes })
            for buffer in body { bytes += buffer.readableBytesView }
            return CapturedResponse(status: status, headers: headers, body: bytes)
        }
    }

    public var route: Route
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
}

/// Takes shadow jobs from the event loops without ever blocking them.
public protocol ShadowSink: Sendable {
    /// Queues a job; false when the queue is full (the job is dropped and counted).
    func submit(_ job: ShadowJob) -> Bool
}
