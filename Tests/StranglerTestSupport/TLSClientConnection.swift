import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// An HTTPS client connection on NIO and NIOSSL that sends raw request bytes and reads raw
/// responses, one after another on the same connection (keep-alive), and tells what the
/// handshake gave: the server's certificate and the negotiated application protocol.
///
/// ``connect(port:context:serverHostname:)`` returns once the handshake is done, or throws the
/// handshake's error (an untrusted certificate, no client certificate where one is required).
package final class TLSClientConnection: Sendable {
    package static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private let channel: Channel
    private let collector: Collector

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects to `127.0.0.1:port` and completes the handshake, verifying `serverHostname`
    /// (the default `localhost` is in the fixtures' server certificate).
    package static func connect(port: Int, context: NIOSSLContext, serverHostname: String? = "localhost") async throws -> TLSClientConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let connection = TLSClientConnection(channel: channel, collector: collector)
        do {
            try await connection.waitForHandshake()
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// The application protocol the server picked with ALPN, if any.
    package var negotiatedProtocol: String? { collector.state.withLockedValue { $0.negotiatedProtocol } }

    /// The certificate the server presented.
    package func peerCertificate() async throws -> NIOSSLCertificate? {
        try await channel.nioSSL_peerCertificate().get()
    }

    package func send(_ text: String) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: text))
    }

    /// Reads one response (``RawConnection/parse(_:noBody:closed:)`` frames it).
    package func readResponse(noBody: Bool = false, seconds: Double = 30) async throws -> RawConnection.Response {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (bytes, closed) = collector.state.withLockedValue { ($0.bytes, $0.closed) }
            if let (response, used) = RawConnection.parse(bytes, noBody: noBody, closed: closed) {
                collector.state.withLockedValue { $0.bytes.removeFirst(used) }
                return response
            }
            if closed { throw RawConnection.ClosedEarly(received: bytes) }
            if Date() > deadline { throw RawConnection.TimedOut() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Sends `request` and reads its response.
    package func exchange(_ request: String, noBody: Bool = false) async throws -> RawConnection.Response {
        try await send(request)
        return try await readResponse(noBody: noBody)
    }

    /// Whether the server has ended the connection (close_notify or the TCP connection's end).
    package var isClosed: Bool { collector.state.withLockedValue { $0.closed } }

    /// Errors the connection reported, in order.
    package var errors: [String] { collector.state.withLockedValue { $0.errors.map { "\($0)" } } }

    /// Waits (at most `seconds`) for the server to end the connection; returns whether it did.
    package func waitUntilClosed(seconds: Double = 30) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !isClosed, Date() < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return isClosed
    }

    package func close() async {
        try? await channel.close()
    }

    private func waitForHandshake() async throws {
        while true {
            let (done, error, closed) = collector.state.withLockedValue { ($0.handshakeDone, $0.errors.first, $0.closed) }
            if done { return }
            if let error { throw error }
            if closed { throw RawConnection.ClosedEarly(received: []) }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer

        struct State {
            var bytes: [UInt8] = []
            var closed = false
            var handshakeDone = false
            var negotiatedProtocol: String?
            var errors: [any Error] = []
        }

        let state = NIOLockedValueBox(State())

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            state.withLockedValue { $0.bytes += buffer.readableBytesView }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
                state.withLockedValue {
                    $0.handshakeDone = true
                    $0.negotiatedProtocol = negotiated
                }
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            state.withLockedValue { $0.errors.append(error) }
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLockedValue { $0.closed = true }
        }
    }
}
