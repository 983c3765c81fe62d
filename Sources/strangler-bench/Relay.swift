import NIOCore
import NIOPosix

// The floor of any SwiftNIO data plane: a TCP relay that copies bytes between a client
// connection and its own upstream connection, with no HTTP parsing, no header rewriting and no
// routing. bench/run measures it beside nginx ("nio-relay"): whatever it costs per request is
// what SwiftNIO's event loop, channel pipeline and ByteBuffers cost before StranglerFig does
// anything, so it bounds how close a proxy built on SwiftNIO can get to nginx.
//
//   strangler-bench relay --listen-port 18007 --upstream-port 18001

/// One side of a relayed connection pair; writes what it reads to its partner's channel, and
/// stops reading while the partner can't take more (the pattern of swift-nio-examples'
/// connect-proxy).
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (RelayHandler, RelayHandler) {
        let first = RelayHandler()
        let second = RelayHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, let partnerContext = partner.context, !partnerContext.channel.isWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }
}

/// Runs the relay on one event loop until the process is killed.
func runRelay(listenPort: Int, upstreamPort: Int) throws -> Never {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server = try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { client in
            // The client's bytes start flowing once its upstream connection is up and glued.
            ClientBootstrap(group: client.eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: "127.0.0.1", port: upstreamPort)
                .flatMapThrowing { upstream in
                    // Both channels are on the client's loop, so both pipelines can be set up here.
                    let (clientSide, upstreamSide) = RelayHandler.pair()
                    try client.pipeline.syncOperations.addHandler(clientSide)
                    try upstream.pipeline.syncOperations.addHandler(upstreamSide)
                }
        }
        .bind(host: "127.0.0.1", port: listenPort)
        .wait()
    print("relaying 127.0.0.1:\(listenPort) -> 127.0.0.1:\(upstreamPort)")
    try server.closeFuture.wait()
    exit(0)
}
