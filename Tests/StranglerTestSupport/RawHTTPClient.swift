import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import StranglerAdmin
import StranglerControl
import StranglerProxy

/// A byte-level HTTP/1.1 client for live tests: sends exactly the bytes given and parses exactly
/// the bytes received, so framing mistakes (a stray chunk terminator, a short body) show.
package final class RawConnection: Sendable {
    package struct Response: Sendable, HeaderLookup {
        package var status: Int
        package var headers: [(String, String)]
        package var body: [UInt8]

        package var text: String { String(decoding: body, as: UTF8.self) }

        package func json() -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        }
    }

    package struct ClosedEarly: Error, CustomStringConvertible {
        package var received: [UInt8]
        package var description: String {
            "connection closed after \(received.count) bytes: \(String(decoding: received.prefix(300), as: UTF8.self))"
        }
    }

    package struct TimedOut: Error {}

    private final class Collector: ChannelInboundHandler, Sendable {
        package typealias InboundIn = ByteBuffer
        /// `changes` counts arrivals, so a reader can wait for "anything after what I saw"
        /// without missing bytes that land between its check and its wait.
        package let state = NIOLockedValueBox<(bytes: [UInt8], closed: Bool, changes: Int, waiters: [CheckedContinuation<Void, Never>])>(
            ([], false, 0, [])
        )
        /// Errors the connection reported (a reset shows as ECONNRESET here).
        package let errors = NIOLockedValueBox<[String]>([])

        package func errorCaught(context: ChannelHandlerContext, error: Error) {
            errors.withLockedValue { $0.append("\(error)") }
            context.close(promise: nil)
        }

        package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                state.bytes += bytes
                state.changes += 1
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }

        package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // The server shut its side: everything it will send has arrived. The client may still
            // be sending (a staged close lets it finish).
            if case ChannelEvent.inputClosed = event { markClosed() }
            context.fireUserInboundEventTriggered(event)
        }

        package func channelInactive(context: ChannelHandlerContext) {
            markClosed()
        }

        private func markClosed() {
            let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                state.closed = true
                state.changes += 1
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }

        /// Returns once anything arrived after change number `seen`, or at the latest after a
        /// wake-up from `eventLoop` (so the caller can check its deadline).
        package func waitForChange(after seen: Int, eventLoop: EventLoop) async {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if state.closed || state.changes != seen { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow {
                    continuation.resume()
                } else {
                    eventLoop.scheduleTask(in: .milliseconds(200)) { self.wakeAll() }
                }
            }
        }

        package func wakeAll() {
            let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }
    }

    package static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: Channel
    private let collector: Collector

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    package static func connect(port: Int) async throws -> RawConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: group)
            // A server's half-close (FIN) is reported rather than turned into a full close, so
            // that a request can still be sent whole after the answer came (a staged close).
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, collector: collector)
    }

    package func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    package func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    package func close() async {
        try? await channel.close()
    }

    package var isClosed: Bool { collector.state.withLockedValue { $0.closed } }

    /// Errors the connection saw, such as a reset; empty after a clean close.
    package var errors: [String] { collector.errors.withLockedValue { $0 } }

    /// Waits (at most `seconds`) for the server to close the connection; returns whether it did.
    package func waitUntilClosed(seconds: Double = 10) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !isClosed, Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return isClosed
    }

    /// Reads one response. `noBody`: the request was HEAD (or the status has no body).
    package func readResponse(noBody: Bool = false, seconds: Double = 15) async throws -> Response {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (bytes, closed, changes) = collector.state.withLockedValue { ($0.bytes, $0.closed, $0.changes) }
            if let (response, used) = Self.parse(bytes, noBody: noBody, closed: closed) {
                collector.state.withLockedValue { $0.bytes.removeFirst(used) }
                return response
            }
            if closed { throw ClosedEarly(received: bytes) }
            if Date() > deadline { throw TimedOut() }
            await collector.waitForChange(after: changes, eventLoop: channel.eventLoop)
        }
    }

    /// The raw bytes received, once they contain `marker` (for checks on framing itself).
    package func readRaw(until marker: String, seconds: Double = 15) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let (bytes, closed, changes) = collector.state.withLockedValue { ($0.bytes, $0.closed, $0.changes) }
            let text = String(decoding: bytes, as: UTF8.self)
            if text.contains(marker) { return text }
            if closed { throw ClosedEarly(received: bytes) }
            if Date() > deadline { throw TimedOut() }
            await collector.waitForChange(after: changes, eventLoop: channel.eventLoop)
        }
    }

    /// Bytes received and not yet consumed by `readResponse`.
    package var unreadBytes: [UInt8] { collector.state.withLockedValue { $0.bytes } }

    /// Parses one complete response at the start of `bytes`; nil when more bytes are needed.
    package static func parse(_ bytes: [UInt8], noBody: Bool, closed: Bool) -> (Response, Int)? {
        let crlfcrlf: [UInt8] = [13, 10, 13, 10]
        guard let headEnd = bytes.firstRange(of: crlfcrlf) else { return nil }
        let headText = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let status = Int(statusLine.split(separator: " ")[1]) ?? 0
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let response = Response(status: status, headers: headers, body: [])
        var index = headEnd.upperBound
        if (100..<200).contains(status) {
            return parse(Array(bytes[index...]), noBody: noBody, closed: closed).map { ($0.0, $0.1 + index) }
        }
        if noBody || status == 204 || status == 304 { return (response, index) }
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            guard bytes.count - index >= length else { return nil }
            var complete = response
            complete.body = Array(bytes[index..<(index + length)])
            return (complete, index + length)
        }
        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            var body: [UInt8] = []
            while true {
                guard let lineEnd = bytes[index...].firstRange(of: [13, 10] as [UInt8]) else { return nil }
                let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
                index = lineEnd.upperBound
                if size == 0 {
                    // Trailers end with an empty line.
                    guard let end = bytes[index...].firstRange(of: [13, 10] as [UInt8]) else { return nil }
                    var trailerEnd = end
                    while trailerEnd.lowerBound != index {
                        index = trailerEnd.upperBound
                        guard let next = bytes[index...].firstRange(of: [13, 10] as [UInt8]) else { return nil }
                        trailerEnd = next
                    }
                    var complete = response
                    complete.body = body
                    return (complete, trailerEnd.upperBound)
                }
                guard bytes.count >= index + size + 2 else { return nil }
                body += bytes[index..<(index + size)]
                index += size + 2
            }
        }
        // No framing: the body runs to the close.
        guard closed else { return nil }
        var complete = response
        complete.body = Array(bytes[index...])
        return (complete, bytes.count)
    }
}

extension RawConnection {
    /// One request on a fresh connection: send, read, close.
    package static func exchange(port: Int, _ request: String, noBody: Bool = false) async throws -> Response {
        let connection = try await connect(port: port)
        defer { Task { await connection.close() } }
        try await connection.send(request)
        return try await connection.readResponse(noBody: noBody)
    }

    /// A plain GET with Host, on a fresh connection.
    package static func get(port: Int, _ target: String, headers: [String] = []) async throws -> Response {
        let extra = headers.map { $0 + "\r\n" }.joined()
        return try await exchange(port: port, "GET \(target) HTTP/1.1\r\nHost: shop.example\r\n\(extra)\r\n")
    }
}

/// Case-insensitive header lookup over an ordered list of name/value pairs.
package protocol HeaderLookup {
    var headers: [(String, String)] { get }
}

extension HeaderLookup {
    /// The first value of `name`.
    package func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// Every value of `name`, in order.
    package func headers(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}
