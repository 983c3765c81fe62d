import NIOCore
import NIOHTTP1
import StranglerCore

/// A request as it goes to an upstream: method, target, the header lines after the proxy's
/// rewrite, and how its body is framed.
///
/// The header lines are bytes already: the client's lines the proxy keeps, copied from its
/// head (``ClientRequestHead``), then the proxy's own. Encoding for an upstream
/// (``encoded(for:allocator:)``) adds the request line and, for a client that sent no `Host`,
/// that upstream's address. The shadow copy and the noise probe are copies of it with a
/// header or two set (``setHeader(_:_:)``).
struct OutboundRequest {
    var method: HTTPMethod
    /// The request target as the client sent it.
    var target: ByteBuffer
    /// Header lines, each with its CRLF; no blank line after them.
    var lines: ByteBuffer
    /// Whether the client sent `Host`; if not, each upstream gets its own address.
    var hasHost: Bool
    /// Whether the body goes in chunked framing (`Transfer-Encoding: chunked` and no length).
    var isChunked: Bool

    init(method: HTTPMethod, target: ByteBuffer, lines: ByteBuffer, hasHost: Bool, isChunked: Bool) {
        self.method = method
        self.target = target
        self.lines = lines
        self.hasHost = hasHost
        self.isChunked = isChunked
    }

    /// Sets `name` to `value`, replacing any lines of that name (ASCII case-insensitive): the
    /// shadow copy's marker and idempotency key. Copies the lines; not for the hot path.
    mutating func setHeader(_ name: String, _ value: String) {
        let prefix = Array((name.lowercased() + ":").utf8)
        var kept = ByteBuffer()
        kept.reserveCapacity(lines.readableBytes + name.utf8.count + value.utf8.count + 4)
        lines.withUnsafeReadableBytes { raw in
            var start = 0
            while start < raw.count {
                var end = start
                while end + 1 < raw.count, !(raw[end] == 0x0D && raw[end + 1] == 0x0A) { end += 1 }
                end = min(end + 2, raw.count)
                let line = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                let named = line.count >= prefix.count && zip(line, prefix).allSatisfy { $0 | 0x20 == $1 | 0x20 }
                if !named { kept.writeBytes(line) }
                start = end
            }
        }
        kept.writeString(name)
        kept.writeStaticString(": ")
        kept.writeString(value)
        kept.writeStaticString("\r\n")
        lines = kept
    }

    /// The header lines as name/value pairs, in order; for tests and diagnostics.
    var headers: [(String, String)] {
        let text = String(buffer: lines)
        return text.split(separator: "\r\n", omittingEmptySubsequences: true).compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].trimmingCharacters(in: " \t")))
        }
    }

    /// The request line and header lines as `upstream` gets them: its URL's base path before the
    /// client's target, and its address as `Host` when the client sent none. Encoded per
    /// attempt, so a fallback or a shadow copy to another upstream gets that upstream's.
    func encoded(for upstream: Upstream, allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = 24 + target.readableBytes + upstream.basePath.utf8.count + lines.readableBytes + (hasHost ? 0 : 64)
        var buffer = allocator.buffer(capacity: size)
        buffer.writeString(method.rawValue)
        buffer.writeStaticString(" ")
        if !upstream.basePath.isEmpty { buffer.writeString(upstream.basePath) }
        buffer.writeImmutableBuffer(target)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        if !hasHost {
            buffer.writeStaticString("Host: ")
            buffer.writeString(upstream.authority)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeImmutableBuffer(lines)
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
