import NIOCore
import NIOHTTP1
import StranglerCore

/// A request as it goes to an upstream: method, target, the header lines after the proxy's
/// rewrite, and how its body is framed.
///
/// It is kept as the bytes of the whole head as most upstreams get it (request line, header
/// lines, blank line): the client's kept lines copied from its head (``ClientRequestHead``),
/// then the proxy's own. An upstream with no base path gets those bytes as they are, when the
/// client sent `Host`; others get a copy with their base path and address
/// (``encoded(for:allocator:)``). The shadow copy and the noise probe are copies of it with the
/// proxy's marker appended (``appendHeader(_:_:)``), and a dry run's idempotency key set
/// (``setHeader(_:_:)``).
struct OutboundRequest {
    var method: HTTPMethod
    /// The request target as the client sent it.
    var target: ByteBuffer
    /// The head: request line, header lines, blank line.
    private(set) var head: ByteBuffer
    /// Where the header lines start in ``head``.
    private var linesStart: Int
    /// Whether the client sent `Host`; if not, each upstream gets its own address.
    var hasHost: Bool
    /// Whether the body goes in chunked framing (`Transfer-Encoding: chunked` and no length).
    var isChunked: Bool

    /// - Parameters:
    ///   - head: the request line (`HTTP/1.1`, no base path), the header lines and the blank line.
    ///   - linesStart: where the header lines start in `head`.
    init(method: HTTPMethod, target: ByteBuffer, head: ByteBuffer, linesStart: Int, hasHost: Bool, isChunked: Bool) {
        self.method = method
        self.target = target
        self.head = head
        self.linesStart = linesStart
        self.hasHost = hasHost
        self.isChunked = isChunked
    }

    /// A request from its header lines (each with its CRLF).
    init(method: HTTPMethod, target: ByteBuffer, lines: ByteBuffer, hasHost: Bool, isChunked: Bool) {
        var head = ByteBuffer()
        head.reserveCapacity(24 + target.readableBytes + lines.readableBytes)
        Self.writeRequestLine(method: method, basePath: "", target: target, into: &head)
        let linesStart = head.readableBytes
        head.writeImmutableBuffer(lines)
        head.writeStaticString("\r\n")
        self.init(method: method, target: target, head: head, linesStart: linesStart, hasHost: hasHost, isChunked: isChunked)
    }

    /// The header lines, each with its CRLF.
    var lines: ByteBuffer {
        head.getSlice(at: head.readerIndex + linesStart, length: head.readableBytes - linesStart - 2)!
    }

    /// Sets `name` to `value`, replacing any lines of that name (ASCII case-insensitive): the
    /// dry run's idempotency key, which a client may have sent too.
    mutating func setHeader(_ name: String, _ value: String) {
        removeHeader(name)
        appendHeader(name, value)
    }

    /// Drops the lines named `name` (ASCII case-insensitive). The head is copied only when it has
    /// one, and then in runs of kept bytes.
    mutating func removeHeader(_ name: String) {
        let lowercaseName = name.lowercased()
        let kept = head.withUnsafeReadableBytes { raw -> ByteBuffer? in
            let linesEnd = raw.count - 2
            var copy: ByteBuffer?
            var keptFrom = 0
            var line = linesStart
            while line < linesEnd {
                var next = line
                while next < linesEnd, raw[next] != UInt8(ascii: "\n") { next += 1 }
                next = min(next + 1, linesEnd)
                var colon = line
                while colon < next, raw[colon] != UInt8(ascii: ":") { colon += 1 }
                if colon < next, HTTPHeadSyntax.name(UnsafeRawBufferPointer(rebasing: raw[line..<colon]), is: lowercaseName) {
                    if copy == nil { copy = ByteBufferAllocator().buffer(capacity: raw.count) }
                    copy!.writeBytes(UnsafeRawBufferPointer(rebasing: raw[keptFrom..<line]))
                    keptFrom = next
                }
                line = next
            }
            copy?.writeBytes(UnsafeRawBufferPointer(rebasing: raw[keptFrom..<raw.count]))
            return copy
        }
        if let kept { head = kept }
    }

    /// Adds a header line after the others, with one copy of the head: for a header the head is
    /// known not to have (the shadow marker, which ``ProxyHandler`` never forwards from a client).
    mutating func appendHeader(_ name: String, _ value: String) {
        var copy = ByteBufferAllocator().buffer(capacity: head.readableBytes + name.utf8.count + value.utf8.count + 4)
        copy.writeImmutableBuffer(head.getSlice(at: head.readerIndex, length: head.readableBytes - 2)!)
        copy.writeString(name)
        copy.writeStaticString(": ")
        copy.writeString(value)
        copy.writeStaticString("\r\n\r\n")
        head = copy
    }

    /// The header lines as name/value pairs, in order; for tests and diagnostics.
    var headers: [(String, String)] {
        let text = String(buffer: lines)
        return text.split(separator: "\r\n", omittingEmptySubsequences: true).compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].trimmingCharacters(in: " \t")))
        }
    }

    /// The head as `upstream` gets it: its URL's base path before the client's target, and its
    /// address as `Host` when the client sent none. Per attempt, so a fallback or a shadow copy
    /// to another upstream gets that upstream's; the usual case is the stored bytes, uncopied.
    func encoded(for upstream: Upstream, allocator: ByteBufferAllocator) -> ByteBuffer {
        if upstream.basePath.isEmpty && hasHost { return head }
        let size = 24 + target.readableBytes + upstream.basePath.utf8.count + head.readableBytes + (hasHost ? 0 : 64)
        var buffer = allocator.buffer(capacity: size)
        Self.writeRequestLine(method: method, basePath: upstream.basePath, target: target, into: &buffer)
        if !hasHost {
            buffer.writeStaticString("Host: ")
            buffer.writeString(upstream.authority)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeImmutableBuffer(head.getSlice(at: head.readerIndex + linesStart, length: head.readableBytes - linesStart)!)
        return buffer
    }

    /// `METHOD base-path+target HTTP/1.1` and CRLF. With a base path, an absolute-form target
    /// goes as its path and query under the base path (`http://x/a?b` to `/base/a?b`): the base
    /// path can only stand before a path. `*` (OPTIONS) goes as it is.
    static func writeRequestLine(method: HTTPMethod, basePath: String, target: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString(method.rawValue)
        buffer.writeStaticString(" ")
        if basePath.isEmpty || target.readableBytesView.first == UInt8(ascii: "*") {
            buffer.writeImmutableBuffer(target)
        } else {
            buffer.writeString(basePath)
            buffer.writeImmutableBuffer(Self.pathAndQuery(of: target))
        }
        buffer.writeStaticString(" HTTP/1.1\r\n")
    }

    /// The path and query of a target: an origin-form target whole, the part of an
    /// absolute-form one after its authority (`http://x/a?b` gives `/a?b`, `http://x?b` gives `?b`).
    static func pathAndQuery(of target: ByteBuffer) -> ByteBuffer {
        let bytes = target.readableBytesView
        guard let first = bytes.first, first != UInt8(ascii: "/") else { return target }
        // The scheme's "://", then the authority up to the first "/" or "?".
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon + 2 < bytes.endIndex else { return target }
        var index = colon + 3
        while index < bytes.endIndex, bytes[index] != UInt8(ascii: "/"), bytes[index] != UInt8(ascii: "?") { index += 1 }
        return target.getSlice(at: index, length: bytes.endIndex - index) ?? ByteBuffer()
    }
}
