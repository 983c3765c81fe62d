import NIOCore
import NIOHTTP1
import StranglerCore

/// A request as it goes to an upstream: method, target, the header lines after the proxy's
/// rewrite, and how its body is framed.
///
/// It is serialised straight into the bytes an upstream connection writes (``encoded(for:allocator:)``),
/// with no `HTTPHeaders` and no NIO request encoder in between. The shadow copy and the noise
/// probe are copies of it with a header or two set (``setHeader(_:_:)``).
struct OutboundRequest {
    var method: HTTPMethod
    var uri: String
    var headers: [(String, String)]
    /// Whether the client sent `Host`; if not, each upstream gets its own address.
    var hasHost: Bool
    /// Whether the body goes in chunked framing (`Transfer-Encoding: chunked` and no length).
    var isChunked: Bool

    init(method: HTTPMethod, uri: String, headers: [(String, String)], hasHost: Bool, isChunked: Bool) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.hasHost = hasHost
        self.isChunked = isChunked
    }

    /// Sets `name` to `value`, replacing any lines of that name (ASCII case-insensitive): the
    /// shadow copy's marker and idempotency key.
    mutating func setHeader(_ name: String, _ value: String) {
        let lowercased = name.lowercased()
        headers.removeAll { $0.0.lowercased() == lowercased }
        headers.append((name, value))
    }

    /// The request line and header lines as `upstream` gets them: its URL's base path before the
    /// client's target, and its address as `Host` when the client sent none. Encoded per
    /// attempt, so a fallback or a shadow copy to another upstream gets that upstream's.
    func encoded(for upstream: Upstream, allocator: ByteBufferAllocator) -> ByteBuffer {
        var size = uri.utf8.count + upstream.basePath.utf8.count + 32
        for (name, value) in headers { size += name.utf8.count + value.utf8.count + 4 }
        var buffer = allocator.buffer(capacity: size + (hasHost ? 0 : 64))
        buffer.writeString(method.rawValue)
        buffer.writeStaticString(" ")
        if !upstream.basePath.isEmpty { buffer.writeString(upstream.basePath) }
        buffer.writeString(uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        if !hasHost {
            buffer.writeStaticString("Host: ")
            buffer.writeString(upstream.authority)
            buffer.writeStaticString("\r\n")
        }
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
