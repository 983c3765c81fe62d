import NIOCore
import NIOHTTP1

/// A response head as an upstream sent it: its bytes, and where the status, reason and each
/// header line sit in them.
///
/// Forwarding copies the header lines it keeps straight from these bytes (no `String` per name
/// and value, no `HTTPHeaders`); the shadow path asks for ``headers`` only when it needs them.
struct UpstreamResponseHead {
    /// One header line: the offsets (from the start of ``bytes``) of the line including its
    /// CRLF, of the name, and of the value without surrounding whitespace.
    struct Field {
        var line: Range<Int>
        var name: Range<Int>
        var value: Range<Int>
        var kind: ProxyHeaderName
    }

    /// The head from the status line through the blank line.
    let bytes: ByteBuffer
    let version: HTTPVersion
    let statusCode: Int
    /// The reason phrase's offsets in ``bytes`` (may be empty).
    let reason: Range<Int>
    let fields: [Field]
    /// The declared body length, when the body is framed by `Content-Length`.
    let contentLength: Int?
    /// Whether the body is chunked (`Transfer-Encoding` ending in `chunked`).
    let isChunked: Bool
    /// Whether the body runs until the upstream closes the connection.
    let isCloseDelimited: Bool
    /// Whether the upstream keeps the connection open after this response.
    let isKeepAlive: Bool
    /// Names listed in `Connection` besides `close` and `keep-alive`: hop-by-hop for this
    /// message (RFC 9110 §7.6.1). Lowercase; empty in the usual case.
    let connectionListed: [String]

    /// The header lines as name/value pairs, in order. Allocates; for the shadow path and tests.
    var headers: [(String, String)] {
        fields.map { (string(at: $0.name), string(at: $0.value)) }
    }

    func string(at range: Range<Int>) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }

    /// Whether the field is one a `Connection` header of this message named.
    func isConnectionListed(_ field: Field) -> Bool {
        guard !connectionListed.isEmpty else { return false }
        let name = string(at: field.name).lowercased()
        return connectionListed.contains(name)
    }
}
