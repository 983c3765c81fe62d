import NIOCore
import NIOHTTP1

/// Receives one upstream exchange's response. The proxy handler of the client connection that
/// currently holds the upstream connection is its delegate.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamDidReceiveHead(_ head: HTTPResponseHead)
    func upstreamDidReceiveBody(_ buffer: ByteBuffer)
    func upstreamDidReceiveEnd(_ trailers: HTTPHeaders?)
    func upstreamDidFail(_ error: Error)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// One pooled HTTP/1.1 connection to an upstream, owned by one event loop.
///
/// The handler sits at the end of the client pipeline (`addHTTPClientHandlers` + this). It relays
/// response parts to the current delegate and can hold back reads for backpressure.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The pool this connection returns to. Strong, so a retired pool lives until its last
    /// connection has closed; the cycle is broken in `channelInactive`.
    var pool: UpstreamPool?
    /// The exchange using this connection, if any.
    weak var delegate: UpstreamResponseDelegate?
    private(set) var context: ChannelHandlerContext?
    /// Number of exchanges this connection carried; > 0 means a reused connection that the
    /// upstream may have closed while idle.
    var exchanges = 0
    /// When the connection went idle, for the idle timeout.
    var idleSince: NIODeadline = .now()
    /// Whether the connection is still usable.
    private(set) var isActive = true

    private var readsPaused = false
    private var pendingRead = false

    var channel: Channel? { context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        pool?.connectionClosed(self)
        pool = nil
        if let delegate {
            self.delegate = nil
            delegate.upstreamDidFail(ProxyError.upstreamClosed("the upstream closed the connection"))
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else { return }
        switch unwrapInboundIn(data) {
        case .head(let head): delegate.upstreamDidReceiveHead(head)
        case .body(let buffer): delegate.upstreamDidReceiveBody(buffer)
        case .end(let trailers):
            self.delegate = nil
            delegate.upstreamDidReceiveEnd(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        isActive = false
        if let delegate {
            self.delegate = nil
            delegate.upstreamDidFail(error)
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    /// Stops reading from the upstream until ``resumeReads()``; used while the client is not writable.
    func pauseReads() { readsPaused = true }

    /// Resumes reading, issuing any read that was held back.
    func resumeReads() {
        guard readsPaused else { return }
        readsPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Closes the connection; it will not be reused.
    func close() {
        isActive = false
        delegate = nil
        context?.close(promise: nil)
    }
}
