import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS
import StranglerCore

/// Receives one upstream exchange's response. The proxy handler of the client connection that
/// currently holds the upstream connection is its delegate.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamDidReceiveHead(_ head: UpstreamResponseHead)
    func upstreamDidReceiveBody(_ buffer: ByteBuffer)
    /// `trailers`: a chunked response's trailer lines, each with its CRLF.
    func upstreamDidReceiveEnd(_ trailers: ByteBuffer?)
    func upstreamDidFail(_ error: Error)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// One pooled HTTP/1.1 connection to an upstream, owned by one event loop.
///
/// The handler is the whole pipeline: it writes requests as bytes (``OutboundRequest``), reads
/// responses itself (``UpstreamResponseParser``), relays them to the current delegate, and can
/// hold back reads for backpressure.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The pool this connection returns to. Strong, so a retired pool lives until its last
    /// connection has closed; the cycle is broken in `channelInactive`.
    var pool: UpstreamPool?
    /// The exchange using this connection, if any. Strong (a weak reference costs an atomic
    /// load per response part): every end of an exchange clears it (the response's end, a
    /// failure, `close()`, the pool taking the connection back), which breaks the cycle.
    var delegate: UpstreamResponseDelegate?
    private(set) var context: ChannelHandlerContext?
    /// Number of exchanges this connection carried; > 0 means a reused connection that the
    /// upstream may have closed while idle.
    var exchanges = 0
    /// When the connection went idle, for the idle timeout.
    var idleSince: NIODeadline = .now()
    /// Whether the connection is still usable.
    private(set) var isActive = true

    /// The channel's writability as its last change said (NIO reports each change synchronously).
    private(set) var isWritable = true
    /// Reads are held back for backpressure.
    private(set) var readsPaused = false
    private var pendingRead = false
    private var parser = UpstreamResponseParser()
    /// Whether the current request's body goes in chunked framing.
    private var requestChunked = false
    /// Set while a TLS handshake is under way: called once, with nil when it completes or with
    /// the error that ended it. The pool hands the connection out only after it.
    private var handshakeWaiter: ((Error?) -> Void)?
    /// The TLS peer closed without close_notify: the close ends framed messages as over TCP, but
    /// cannot prove a body framed by the close complete.
    private var closedWithoutNotify = false

    var channel: Channel? { context?.channel }

    /// Whether the last response was read to its end, so another exchange can start.
    var isBetweenExchanges: Bool { parser.isDone }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler; keeping it here would keep both alive after the close.
        self.context = nil
    }

    /// Starts an exchange: `delegate` gets the next response. `bodyless` for a HEAD request.
    func begin(_ delegate: UpstreamResponseDelegate, bodyless: Bool) {
        self.delegate = delegate
        parser.expectResponse(bodyless: bodyless)
    }

    /// Calls `waiter` once the TLS handshake has completed (nil) or failed (the error).
    func awaitHandshake(_ waiter: @escaping (Error?) -> Void) {
        handshakeWaiter = waiter
    }

    /// Ends the wait for the handshake with `error`, and the connection with it.
    func abandonHandshake(_ error: Error) {
        guard handshakeWaiter != nil else { return }
        finishHandshake(error)
        isActive = false
        context?.close(promise: nil)
    }

    private func finishHandshake(_ error: Error?) {
        guard let waiter = handshakeWaiter else { return }
        handshakeWaiter = nil
        waiter(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if handshakeWaiter != nil, let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            finishHandshake(nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        finishHandshake(NIOSSLError.uncleanShutdown)
        pool?.connectionClosed(self)
        pool = nil
        if delegate != nil {
            // A body that runs to the close ends here; anything else unfinished failed.
            let failure: String
            let started = parser.hasStartedMessage
            do {
                if let event = try parser.connectionClosed() {
                    guard closedWithoutNotify else {
                        dispatch(event)
                        context.fireChannelInactive()
                        return
                    }
                    // Over TLS, close_notify is what proves a body framed by the close complete;
                    // without it a forged or lost FIN would pass a cut body off as whole.
                    failure = "the upstream's TLS connection ended without close_notify in the middle of a body framed by the close"
                } else {
                    failure = "the upstream closed the connection"
                }
            } catch {
                failure =
                    started
                    ? "the upstream closed the connection in the middle of its response" : "the upstream closed the connection before answering"
            }
            if let delegate {
                self.delegate = nil
                delegate.upstreamDidFail(ProxyError.upstreamClosed(failure))
            }
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        do {
            // The parser is at rest while each event is handled: a delegate may start the next
            // exchange on this connection from `upstreamDidReceiveEnd`.
            while let event = try parser.next(&buffer) {
                if case .end = event {
                    // Bytes after the response's end (a body on a HEAD, 204 or 304 answer): the
                    // connection is out of step. It must not go back to the pool when the exchange
                    // ends, where the next exchange (a pipelined request, a waiter) would take it
                    // and send its request into the close below.
                    if buffer.readableBytes > 0 { isActive = false }
                    dispatch(event)
                    break
                }
                dispatch(event)
            }
        } catch {
            fail(ProxyError.invalidResponse("the upstream's response is not valid HTTP/1.1: \(error)"), context: context)
            return
        }
        if buffer.readableBytes > 0 {
            // Bytes nobody asked for (after a response, or while idle): the upstream is out of
            // step with this connection, so it can't carry another exchange.
            fail(ProxyError.invalidResponse("the upstream sent bytes beyond its response"), context: context)
        }
    }

    private func dispatch(_ event: UpstreamResponseParser.Event) {
        guard let delegate else { return }
        switch event {
        case .head(let head): delegate.upstreamDidReceiveHead(head)
        case .body(let buffer): delegate.upstreamDidReceiveBody(buffer)
        case .end(let trailers):
            self.delegate = nil
            delegate.upstreamDidReceiveEnd(trailers)
        }
    }

    /// The connection can't be used any more: the exchange on it (if any) fails with `error`.
    private func fail(_ error: Error, context: ChannelHandlerContext) {
        isActive = false
        if let delegate {
            self.delegate = nil
            delegate.upstreamDidFail(error)
        }
        context.close(promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        delegate?.upstreamWritabilityChanged(isWritable: isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if handshakeWaiter != nil {
            finishHandshake(error)
        } else if let tls = error as? NIOSSLError, case .uncleanShutdown = tls {
            // A TLS upstream that closes without close_notify, as many servers do after a
            // response: the close that follows ends the exchange as it does over plain TCP (a
            // framed body cut short still fails there, and so does a body framed by the close).
            closedWithoutNotify = true
            return
        } else if error is BoringSSLError, let upstream = pool?.upstream {
            // With TLS 1.3 the server judges the client's certificate after the client's side of
            // the handshake is done, so a refusal arrives as an alert on the first read: it is
            // still a TLS failure, and the upstream's application never saw the request.
            fail(
                ProxyError.upstreamTLS(UpstreamTLSFailure.classify(error, expectedName: nil), upstream: upstream, afterHandshake: true),
                context: context
            )
            return
        }
        fail(error, context: context)
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

    /// Writes a request's head for `upstream`; its body follows with ``writeRequestBody(_:)``.
    func writeRequest(_ request: OutboundRequest, for upstream: Upstream) {
        guard let context else { return }
        requestChunked = request.isChunked
        // The channel's allocator is the default one; asking the channel for it costs a lookup.
        context.write(wrapOutboundOut(request.encoded(for: upstream, allocator: ByteBufferAllocator())), promise: nil)
    }

    /// Writes a part of the request body, framed as the head said.
    func writeRequestBody(_ buffer: ByteBuffer) {
        guard let context, buffer.readableBytes > 0 else { return }
        if requestChunked {
            context.writeChunk(buffer)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// Ends the request body: the last chunk when chunked, nothing otherwise. Returns whether
    /// it wrote anything (and so whether a flush is due).
    @discardableResult
    func writeRequestEnd() -> Bool {
        guard let context, requestChunked else { return false }
        context.write(wrapOutboundOut(ChannelHandlerContext.lastChunk), promise: nil)
        return true
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
