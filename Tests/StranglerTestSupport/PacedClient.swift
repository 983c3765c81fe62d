import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StranglerAdmin
import StranglerControl
import StranglerProxy

/// A client that takes a response at a set pace (a slow mobile link), or stops taking it, so
/// that the proxy's writes back up. Reads are issued by hand (`autoRead` off), each of at most
/// `readSize` bytes, into a small receive buffer.
package final class PacedReader: Sendable {
    private final class Collector: ChannelInboundHandler, Sendable {
        package typealias InboundIn = ByteBuffer
        package let state = NIOLockedValueBox<(bytes: [UInt8], closed: Bool, errors: [String])>(([], false, []))

        package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            state.withLockedValue { $0.bytes += buffer.readableBytesView }
        }

        package func channelInactive(context: ChannelHandlerContext) {
            state.withLockedValue { $0.closed = true }
        }

        package func errorCaught(context: ChannelHandlerContext, error: Error) {
            state.withLockedValue { $0.errors.append("\(error)") }
            context.close(promise: nil)
        }
    }

    private let channel: Channel
    private let collector: Collector

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    package static func connect(port: Int, readSize: Int) async throws -> PacedReader {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: RawConnection.group)
            .channelOption(.autoRead, value: false)
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: readSize))
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(readSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return PacedReader(channel: channel, collector: collector)
    }

    package func send(_ text: String) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: text))
    }

    package var received: [UInt8] { collector.state.withLockedValue { $0.bytes } }
    package var isClosed: Bool { collector.state.withLockedValue { $0.closed } }
    package var errors: [String] { collector.state.withLockedValue { $0.errors } }

    /// Reads once every `interval` until the response (framed by Content-Length) is whole or
    /// the connection closes; gives up after `limit` reads.
    package func readPaced(every interval: Duration, limit: Int = 100_000) async throws {
        for _ in 0..<limit {
            if collector.state.withLockedValue({ $0.closed || Self.isComplete($0.bytes) }) { return }
            channel.read()
            try await Task.sleep(for: interval)
        }
    }

    /// Reads until the response's head has arrived.
    package func readUntilHead(seconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !isClosed, Date() < deadline {
            if collector.state.withLockedValue({ Self.split($0.bytes) != nil }) { return }
            channel.read()
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Reads as fast as it can until the connection closes or `seconds` pass.
    ///
    /// Reads are then issued by the event loop as data comes (`autoRead` on), not one per pass
    /// of this loop: a loop that reads 16 KB and sleeps drains a few megabytes in seconds on an
    /// idle machine and in minutes on a loaded one. The deadline only guards against a hang.
    package func drain(seconds: Double = 120) async {
        try? await channel.setOption(.autoRead, value: true)
        channel.read()
        let deadline = Date().addingTimeInterval(seconds)
        while !isClosed, Date() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    package func close() async {
        try? await channel.close()
    }

    /// The response's status, head length and body length so far.
    package static func split(_ bytes: [UInt8]) -> (status: Int, headLength: Int, contentLength: Int)? {
        guard let end = bytes.firstRange(of: [13, 10, 13, 10]) else { return nil }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).lowercased()
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        let length =
            head.components(separatedBy: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? -1
        return (status, end.upperBound, length)
    }

    package static func isComplete(_ bytes: [UInt8]) -> Bool {
        guard let parts = split(bytes), parts.contentLength >= 0 else { return false }
        return bytes.count >= parts.headLength + parts.contentLength
    }
}
