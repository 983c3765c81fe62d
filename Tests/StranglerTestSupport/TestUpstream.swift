import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import StranglerAdmin
import StranglerControl
import StranglerProxy

/// A scriptable upstream for live tests. It parses requests with NIO's decoder but writes raw
/// bytes, so it can misbehave on purpose (truncate, hang, send hop-by-hop headers).
///
/// Behaviour by the path's last segment (any prefix before it is ignored):
/// - `/echo...` (and anything unknown): 200 with a JSON description of the request it got
/// - `/status/N`: status N (no body for 204/304)
/// - `/cookies`: three separate `Set-Cookie` headers
/// - `/redirect`: 302 with a `Location`
/// - `/hop`: a response full of hop-by-hop headers
/// - `/chunked`: a chunked body
/// - `/bad-chunk`: a chunked head followed by a chunk size that is not hex
/// - `/truncated`: `Content-Length: 100`, 10 bytes, then close
/// - `/nolength`: a body framed by closing the connection
/// - `/noisy`: a body with a field that changes on every call
/// - `/hang`: never answers
/// - `/stall-body`: head and part of the body, then silence
/// - `/big?bytes=N`: N bytes of a repeating pattern
/// - `/head`: a HEAD-style answer with the length a GET would have
package final class TestUpstream: Sendable {
    package struct SeenRequest: Sendable, HeaderLookup {
        package var method: String
        package var uri: String
        package var headers: [(String, String)]
        package var body: [UInt8]
        /// The common name of the certificate the client presented over TLS; nil without TLS
        /// or without a client certificate.
        package var clientCertificateCommonName: String? = nil
    }

    package let name: String
    package let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let state = NIOLockedValueBox(State())
    /// When set, every request is answered with this status (a failing service).
    package let forcedStatus = NIOLockedValueBox<Int?>(nil)
    /// When set, no request is answered (a hung service).
    package let hangs = NIOLockedValueBox(false)
    /// Connections whose `/held` request waits for ``releaseHeld()``.
    private let held = NIOLockedValueBox<[Channel]>([])

    package struct State {
        package var requests: [SeenRequest] = []
        package var accepted = 0
        package var closed = 0
        package var served = 0
    }

    package var port: Int { channel.localAddress!.port! }
    package var requests: [SeenRequest] { state.withLockedValue { $0.requests } }
    package var acceptedConnections: Int { state.withLockedValue { $0.accepted } }
    package var closedConnections: Int { state.withLockedValue { $0.closed } }

    /// Starts the upstream on a free loopback port.
    /// - Parameter tls: when set, the upstream speaks TLS with this context (see
    ///   ``TLSFixtures/serverContext(_:requireClientCertificate:)``); plain HTTP when nil.
    package init(name: String, tls: NIOSSLContext? = nil) async throws {
        self.name = name
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let box = NIOLockedValueBox<TestUpstream?>(nil)
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A stray connection to a reused port can arrive before the bind has returned
                    // and `self` is set: it is refused, not a crash of the whole test process.
                    guard let upstream = box.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try channel.pipeline.syncOperations.addHandler(TestUpstreamHandler(upstream: upstream))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.withLockedValue { $0 = self }
    }

    package func record(_ request: SeenRequest) {
        state.withLockedValue { $0.requests.append(request) }
    }

    package func connectionOpened() { state.withLockedValue { $0.accepted += 1 } }

    /// A counter for `/noisy`.
    package func nextServed() -> Int {
        state.withLockedValue {
            $0.served += 1
            return $0.served
        }
    }
    package func connectionClosed() { state.withLockedValue { $0.closed += 1 } }

    /// Answers every `/held` request so far: a test decides when, instead of a timer racing
    /// the machine's speed.
    package func releaseHeld() {
        let body = "{\"upstream\":\"\(name)\",\"held\":true}"
        for channel in held.withLockedValue({ list in
            defer { list = [] }
            return list
        }) {
            channel.writeAndFlush(
                channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"),
                promise: nil
            )
        }
    }

    package func hold(_ channel: Channel) { held.withLockedValue { $0.append(channel) } }

    /// The bytes of `/big`: 0, 1, ... 250, repeated. One period is written, then the bytes
    /// written so far are copied onto the end until there are enough: a few large copies. Byte
    /// by byte, a debug build took about a second per megabyte, which on a busy machine once
    /// outlasted a test's upstream timeout before the head was even sent.
    package static func writePattern(count: Int, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeBytes(pattern[0..<min(count, pattern.count)])
        while buffer.writerIndex - start < count {
            let written = buffer.writerIndex - start
            // Copying a whole number of periods keeps the pattern's phase.
            let periods = written / pattern.count * pattern.count
            let copy = buffer.getSlice(at: start, length: min(periods, count - written))!
            buffer.writeImmutableBuffer(copy)
        }
    }

    /// `/big`'s body of `count` bytes, made once per size and shared: a large body costs its
    /// first request the copies and page faults, and later ones nothing. A test can call this
    /// before its request, so that the upstream answers at once however busy the machine is.
    package static func bigBody(count: Int) -> ByteBuffer {
        bodies.withLockedValue { cache in
            if let body = cache[count] { return body }
            var body = ByteBuffer()
            body.reserveCapacity(count)
            writePattern(count: count, into: &body)
            cache[count] = body
            return body
        }
    }

    private static let bodies = NIOLockedValueBox<[Int: ByteBuffer]>([:])

    package static let pattern: [UInt8] = (0..<251).map { UInt8($0) }

    /// The first `count` bytes of `/big`'s body, for comparing what a client received.
    package static func patternBytes(count: Int) -> [UInt8] {
        Array(bigBody(count: count).readableBytesView)
    }

    package func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

package final class TestUpstreamHandler: ChannelInboundHandler {
    package typealias InboundIn = HTTPServerRequestPart
    package typealias OutboundOut = ByteBuffer

    private let upstream: TestUpstream
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    package init(upstream: TestUpstream) {
        self.upstream = upstream
    }

    package func channelActive(context: ChannelHandlerContext) {
        upstream.connectionOpened()
        context.fireChannelActive()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        upstream.connectionClosed()
        context.fireChannelInactive()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let seen = TestUpstream.SeenRequest(
                method: head.method.rawValue,
                uri: head.uri,
                headers: head.headers.map { ($0.name, $0.value) },
                body: body,
                clientCertificateCommonName: clientCertificateCommonName(context: context)
            )
            upstream.record(seen)
            respond(to: seen, context: context)
        }
    }

    /// The common name of the client's certificate, read from the TLS handler when there is one.
    private func clientCertificateCommonName(context: ChannelHandlerContext) -> String? {
        guard let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() else { return nil }
        return certificate.subjectName.first { $0.type == .commonName }?.value
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
    }

    private func simple(_ status: String, body: String, extra: String = "", context: ChannelHandlerContext) {
        write(
            "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nX-Upstream-Name: \(upstream.name)\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)",
            context: context
        )
    }

    private func respond(to request: TestUpstream.SeenRequest, context: ChannelHandlerContext) {
        let fullPath = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        // Behaviour is chosen by the last segment, so a route prefix (/svc/slow, /inv/big) works.
        let path =
            fullPath.contains("/status/")
            ? String(fullPath[fullPath.range(of: "/status/")!.lowerBound...])
            : "/" + (fullPath.split(separator: "/").last.map(String.init) ?? "")
        if upstream.hangs.withLockedValue({ $0 }) { return }
        if let forced = upstream.forcedStatus.withLockedValue({ $0 }) {
            simple("\(forced) Forced", body: "{\"forced\":\(forced),\"upstream\":\"\(upstream.name)\"}", context: context)
            return
        }
        switch path {
        case _ where path.hasPrefix("/status/"):
            let code = Int(path.dropFirst("/status/".count)) ?? 500
            if code == 204 || code == 304 {
                write("HTTP/1.1 \(code) No Body\r\nX-Upstream-Name: \(upstream.name)\r\nETag: \"v1\"\r\n\r\n", context: context)
            } else {
                simple("\(code) Status", body: "{\"status\":\(code)}", context: context)
            }
        case "/cookies":
            simple(
                "200 OK",
                body: "{}",
                extra: "Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; HttpOnly\r\nSet-Cookie: c=3, d=4; Expires=Wed, 21 Oct 2015 07:28:00 GMT\r\n",
                context: context
            )
        case "/redirect":
            simple("302 Found", body: "{}", extra: "Location: http://example.invalid/elsewhere\r\n", context: context)
        case "/hop":
            simple(
                "200 OK",
                body: "{\"hop\":true}",
                extra:
                    "Connection: X-Hop-Custom\r\nX-Hop-Custom: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nTrailer: X-Checksum\r\nX-End-To-End: kept\r\n",
                context: context
            )
        case "/chunked":
            write(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Upstream-Name: \(upstream.name)\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                context: context
            )
        case "/trailers":
            write(
                "HTTP/1.1 299 Custom Reason\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 42\r\n\r\n",
                context: context
            )
        case "/bad-chunk":
            // A head, then a chunk size that is not hex, in one write.
            write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", context: context)
        case "/conflicting-length":
            write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", context: context)
        case "/truncated":
            write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", context: context)
            context.close(promise: nil)
        case "/nolength":
            // Old-style framing: no length, the body ends when the connection closes.
            write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close body", context: context)
            context.close(promise: nil)
        case "/noisy":
            // A field that differs on every call, like a legacy "servedAt".
            let served = upstream.nextServed()
            simple("200 OK", body: "{\"upstream\":\"\(upstream.name)\",\"servedAt\":\(served),\"stable\":1}", context: context)
        case "/hang":
            break
        case "/held":
            upstream.hold(context.channel)
        case "/slow":
            // Answers after a pause, to keep a request in flight across a reload.
            let milliseconds = request.uri.split(separator: "=").last.flatMap { Int64($0) } ?? 300
            let name = upstream.name
            let channel = context.channel
            context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) {
                let body = "{\"upstream\":\"\(name)\",\"slow\":true}"
                channel.writeAndFlush(
                    channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"),
                    promise: nil
                )
            }
        case "/stall-body":
            write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", context: context)
        case "/big":
            let count = request.uri.split(separator: "=").last.flatMap { Int($0) } ?? 1024
            context.write(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(count)\r\n\r\n")), promise: nil)
            context.writeAndFlush(wrapOutboundOut(TestUpstream.bigBody(count: count)), promise: nil)
        case "/head":
            write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n", context: context)
        default:
            let document: [String: Any] = [
                "upstream": upstream.name, "method": request.method, "uri": request.uri,
                "headers": request.headers.map { [$0.0, $0.1] }, "bodyLength": request.body.count,
                "body": String(decoding: request.body, as: UTF8.self),
            ]
            let json = String(decoding: try! JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), as: UTF8.self)
            if request.method == "HEAD" {
                write("HTTP/1.1 200 OK\r\nContent-Length: \(json.utf8.count)\r\n\r\n", context: context)
            } else {
                simple("200 OK", body: json, context: context)
            }
        }
    }
}
