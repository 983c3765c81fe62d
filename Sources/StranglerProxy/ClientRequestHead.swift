import NIOCore
import NIOHTTP1

/// A request head as the client sent it: its bytes, its method, target and version, and where
/// each header line sits in the bytes.
///
/// The proxy copies the header lines it forwards straight from these bytes (see
/// ``OutboundRequest``), so a request costs no `String` per header name and value, no
/// `HTTPHeaders`, and no request encoder.
struct ClientRequestHead: ParsedHTTPHead {
    /// The head from the request line through the blank line.
    let bytes: ByteBuffer
    let method: HTTPMethod
    /// The request target's offsets in ``bytes``.
    let target: Range<Int>
    /// The request line's offsets in ``bytes``, with its CRLF.
    let requestLine: Range<Int>
    let version: HTTPVersion
    let fields: [HTTPHeadField]
    /// The declared body length, when the body is framed by `Content-Length`.
    let contentLength: Int?
    /// Whether the body is chunked.
    let isChunked: Bool
    /// Whether the client keeps the connection open after this exchange.
    let isKeepAlive: Bool
    /// Names listed in `Connection` besides `close` and `keep-alive`, lowercase.
    let connectionListed: [String]

    static var what: String { "request head" }
    static var ignoresLeadingEmptyLines: Bool { true }

    /// The request target as a string, for logs, canary parameters and shadow records. Made on
    /// each call: routing and forwarding read the bytes, and a target longer than 15 bytes
    /// would cost an allocation per request.
    var uri: String { string(at: target) }

    /// The request target, byte for byte (a slice of ``bytes``, not a copy).
    var targetBytes: ByteBuffer {
        bytes.getSlice(at: bytes.readerIndex + target.lowerBound, length: target.count)!
    }

    /// Parses a complete head (request line through the blank line).
    ///
    /// Refused, so that nothing after them is read as a request of its own (request
    /// smuggling): both `Content-Length` and `Transfer-Encoding`, conflicting or non-numeric
    /// lengths, a transfer coding other than `chunked`, more than one `Host`, and anything the
    /// shared header syntax refuses (``HTTPHeadSyntax``). Refused because RFC 9112 says so: an
    /// HTTP/1.1 request without `Host`, and a `Host` that is not a host and port (§3.2).
    /// CONNECT is refused with its own kind (405): the proxy opens no tunnels, and another
    /// parser would read what follows its head as tunnel bytes rather than a request.
    static func parse(
        _ bytes: ByteBuffer, expecting: Void, fieldStorage: inout [HTTPHeadField]
    ) throws -> (head: ClientRequestHead, framing: HTTPBodyFraming)? {
        try bytes.withUnsafeReadableBytes { raw throws -> (head: ClientRequestHead, framing: HTTPBodyFraming)? in
            let line = try RequestLine(raw)
            let minor = line.minor

            var transferEncoding = false
            var hosts = 0
            let section = try HeadFieldSection(raw, from: line.end, storage: &fieldStorage) { field in
                switch field.kind {
                case .transferEncoding:
                    guard !transferEncoding, HTTPHeadSyntax.matches(raw, field.value, "chunked") else {
                        throw HTTPParseFailure("a Transfer-Encoding other than chunked is not supported; send the body with Content-Length")
                    }
                    transferEncoding = true
                case .host:
                    hosts += 1
                    guard hosts == 1 else { throw HTTPParseFailure("more than one Host header") }
                    guard HTTPHeadSyntax.isValidHost(raw, field.value) else {
                        throw HTTPParseFailure("the Host header is not a host name or address with an optional port")
                    }
                default:
                    break
                }
            }
            let contentLength = section.contentLength
            if transferEncoding, contentLength != nil {
                throw HTTPParseFailure("both Content-Length and Transfer-Encoding; the framing is ambiguous")
            }
            // HTTP/1.0 clients may leave Host out (nginx serves them too); each upstream then
            // gets its own address (``OutboundRequest``).
            if minor == 1, hosts == 0 {
                throw HTTPParseFailure("an HTTP/1.1 request without a Host header")
            }
            // A chunked HTTP/1.0 request is read, but its framing is suspect: the connection
            // closes after it (RFC 9112 §6.1).
            let persistent = section.isPersistent(minor: minor) && !(minor == 0 && transferEncoding)
            let head = ClientRequestHead(
                bytes: bytes, method: line.method, target: line.target, requestLine: 0..<line.end,
                version: HTTPVersion(major: 1, minor: minor), fields: section.fields, contentLength: contentLength,
                isChunked: transferEncoding, isKeepAlive: persistent, connectionListed: section.connectionListed
            )
            let framing: HTTPBodyFraming = transferEncoding ? .chunked : .length(contentLength ?? 0)
            return (head, framing)
        }
    }

    /// The request line on its own, so that an HTTP/0.9 request (which has no blank line to end
    /// a head) is refused as soon as its line is in.
    static func checkFirstLine(_ line: UnsafeRawBufferPointer) throws {
        _ = try RequestLine(line)
    }

    /// The method, without allocating for the common ones. Methods are case-sensitive.
    fileprivate static func method(_ name: UnsafeRawBufferPointer) -> HTTPMethod {
        func equals(_ expected: StaticString) -> Bool {
            name.elementsEqual(UnsafeRawBufferPointer(start: expected.utf8Start, count: expected.utf8CodeUnitCount))
        }
        switch name.count {
        case 3:
            if equals("GET") { return .GET }
            if equals("PUT") { return .PUT }
        case 4:
            if equals("POST") { return .POST }
            if equals("HEAD") { return .HEAD }
        case 5:
            if equals("PATCH") { return .PATCH }
        case 6:
            if equals("DELETE") { return .DELETE }
        case 7:
            if equals("OPTIONS") { return .OPTIONS }
        default:
            break
        }
        return HTTPMethod(rawValue: String(decoding: name, as: UTF8.self))
    }
}

/// A request line, `method SP request-target SP HTTP/1.x CRLF` (RFC 9112 §3), read from the
/// start of a head.
private struct RequestLine {
    let method: HTTPMethod
    /// The request target's offsets.
    let target: Range<Int>
    let minor: Int
    /// Where the line ends, after its CRLF.
    let end: Int

    init(_ raw: UnsafeRawBufferPointer) throws {
        var index = 0
        while index < raw.count, HTTPHeadSyntax.isTokenByte(raw[index]) { index += 1 }
        guard index > 0, index < raw.count, raw[index] == 0x20 else {
            throw HTTPParseFailure("the request line does not start with a method and a space")
        }
        let name = UnsafeRawBufferPointer(rebasing: raw[0..<index])
        if name.elementsEqual("CONNECT".utf8) {
            throw HTTPParseFailure("the CONNECT method is not supported: this proxy opens no tunnels", kind: .methodNotAllowed)
        }
        method = ClientRequestHead.method(name)
        index += 1
        let targetStart = index
        // Visible bytes; bytes over 0x7F pass as clients send them (unencoded UTF-8).
        while index < raw.count, raw[index] > 0x20, raw[index] != 0x7F { index += 1 }
        guard index > targetStart, index < raw.count, raw[index] == 0x20 else {
            if index > targetStart, index < raw.count, raw[index] == 0x0D {
                throw HTTPParseFailure("the request line has no HTTP version (an HTTP/0.9 request); only HTTP/1.0 and HTTP/1.1 are served")
            }
            throw HTTPParseFailure("the request target is missing, or has a space or a control byte in it")
        }
        target = targetStart..<index
        index += 1
        guard index + 10 <= raw.count, raw[index] == 0x48, raw[index + 1] == 0x54, raw[index + 2] == 0x54, raw[index + 3] == 0x50,
            raw[index + 4] == 0x2F, raw[index + 5] == 0x31, raw[index + 6] == 0x2E, raw[index + 7] == 0x30 || raw[index + 7] == 0x31,
            raw[index + 8] == 0x0D, raw[index + 9] == 0x0A
        else {
            if UnsafeRawBufferPointer(rebasing: raw[0..<min(raw.count, 16)]).elementsEqual("PRI * HTTP/2.0\r\n".utf8) {
                throw HTTPParseFailure("the HTTP/2 connection preface (PRI * HTTP/2.0); this port speaks HTTP/1.0 and HTTP/1.1 only")
            }
            throw HTTPParseFailure("the request line does not end with HTTP/1.0 or HTTP/1.1 and CRLF")
        }
        minor = Int(raw[index + 7] - 0x30)
        end = index + 10
    }
}
