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
    /// smuggling): a request line ``RequestLine`` refuses, more than one `Host`, framing that
    /// ``HeadFieldSection`` refuses (both `Content-Length` and `Transfer-Encoding`, repeated or
    /// non-numeric lengths, a transfer coding other than `chunked`), and anything the shared
    /// header syntax refuses (``HTTPHeadSyntax``). Refused because RFC 9112 says so: an
    /// HTTP/1.1 request without `Host`, and a `Host` that is not a host and port (§3.2).
    /// CONNECT is refused with its own kind (405): the proxy opens no tunnels, and another
    /// parser would read what follows its head as tunnel bytes rather than a request.
    static func parse(
        _ bytes: ByteBuffer,
        expecting: Void,
        fieldStorage: inout [HTTPHeadField]
    ) throws -> (head: ClientRequestHead, framing: HTTPBodyFraming)? {
        try bytes.withUnsafeReadableBytes { raw throws -> (head: ClientRequestHead, framing: HTTPBodyFraming)? in
            let line = try RequestLine(raw)
            let minor = line.minor

            var hosts = 0
            let section = try HeadFieldSection(raw, from: line.end, storage: &fieldStorage) { field in
                guard field.kind == .host else { return }
                hosts += 1
                guard hosts == 1 else { throw HTTPParseFailure("more than one Host header") }
                guard HTTPHeadSyntax.isValidHost(raw, field.value) else {
                    throw HTTPParseFailure("the Host header is not a host name or address with an optional port")
                }
            }
            // An absolute-form target names its host, which an upstream goes by instead of
            // Host (RFC 9112 §3.2.2), while the proxy routes and sets X-Forwarded-Host by Host:
            // the two must agree, or the proxy and the upstream would serve different hosts.
            if let authority = RequestLine.absoluteAuthority(raw, target: line.target),
                let host = section.fields.first(where: { $0.kind == .host })?.value,
                !HTTPHeadSyntax.equalIgnoringCase(raw, authority, raw, host)
            {
                throw HTTPParseFailure("the absolute-form target names another host than the Host header")
            }
            let contentLength = section.contentLength
            let transferEncoding = section.isChunked
            // HTTP/1.0 clients may leave Host out (nginx serves them too); each upstream then
            // gets its own address (``OutboundRequest``).
            if minor == 1, hosts == 0 {
                throw HTTPParseFailure("an HTTP/1.1 request without a Host header")
            }
            // A chunked HTTP/1.0 request is read, but its framing is suspect: the connection
            // closes after it (RFC 9112 §6.1).
            let persistent = section.isPersistent(minor: minor) && !(minor == 0 && transferEncoding)
            let head = ClientRequestHead(
                bytes: bytes,
                method: line.method,
                target: line.target,
                requestLine: 0..<line.end,
                version: HTTPVersion(major: 1, minor: minor),
                fields: section.fields,
                contentLength: contentLength,
                isChunked: transferEncoding,
                isKeepAlive: persistent,
                connectionListed: section.connectionListed
            )
            let framing: HTTPBodyFraming = transferEncoding ? .chunked : .length(contentLength ?? 0)
            return (head, framing)
        }
    }

    /// The authority of an absolute-form target, as offsets into the head's bytes `raw`; nil
    /// for the other forms.
    static func absoluteAuthority(_ raw: UnsafeRawBufferPointer, target: Range<Int>) -> Range<Int>? {
        RequestLine.absoluteAuthority(raw, target: target)
    }

    /// The request line on its own, so that an HTTP/0.9 request (which has no blank line to end
    /// a head) is refused as soon as its line is in.
    static func checkFirstLine(_ line: UnsafeRawBufferPointer) throws {
        _ = try RequestLine(line)
    }

    /// The method, without allocating for the common ones; nil for a method the proxy does not
    /// forward (``RequestLine/knownMethods``). Methods are case-sensitive.
    fileprivate static func method(_ name: UnsafeRawBufferPointer) -> HTTPMethod? {
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
        guard RequestLine.knownMethods.contains(where: { equals($0) }) else { return nil }
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

    /// The methods forwarded besides the common seven: those of the IANA method registry that
    /// llhttp (NIOHTTP1's parser, and Node's) reads as HTTP. Another token is refused, as llhttp
    /// refuses it: a method one parser reads and the other does not is where junk bytes after
    /// a message start being taken for a request. CONNECT is known but not served (405), and
    /// PRI only starts the HTTP/2 preface.
    static let knownMethods: [StaticString] = [
        "TRACE", "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL",
        "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR", "LINK",
        "UNLINK", "SOURCE", "QUERY",
    ]

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
        if name.elementsEqual("PRI".utf8) {
            throw HTTPParseFailure("PRI is the HTTP/2 connection preface's method; this port speaks HTTP/1.0 and HTTP/1.1 only")
        }
        guard let method = ClientRequestHead.method(name) else {
            throw HTTPParseFailure("the method is not one this proxy forwards (methods are case-sensitive; see the IANA method registry)")
        }
        self.method = method
        index += 1
        let targetStart = index
        // Visible ASCII (RFC 3986). Unencoded UTF-8 is refused as well: llhttp refuses it, and
        // a target one parser reads and another does not is a target they route differently.
        while index < raw.count, raw[index] > 0x20, raw[index] < 0x7F { index += 1 }
        guard index > targetStart, index < raw.count, raw[index] == 0x20 else {
            if index > targetStart, index < raw.count, raw[index] == 0x0D {
                throw HTTPParseFailure("the request line has no HTTP version (an HTTP/0.9 request); only HTTP/1.0 and HTTP/1.1 are served")
            }
            if index < raw.count, raw[index] > 0x7F {
                throw HTTPParseFailure("the request target has a byte over 0x7F; percent-encode it")
            }
            throw HTTPParseFailure("the request target is missing, or has a space or a control byte in it")
        }
        target = targetStart..<index
        try Self.checkForm(of: UnsafeRawBufferPointer(rebasing: raw[target]), method: method)
        index += 1
        guard index + 10 <= raw.count, raw[index] == 0x48, raw[index + 1] == 0x54, raw[index + 2] == 0x54, raw[index + 3] == 0x50,
            raw[index + 4] == 0x2F, raw[index + 5] == 0x31, raw[index + 6] == 0x2E, raw[index + 7] == 0x30 || raw[index + 7] == 0x31,
            raw[index + 8] == 0x0D, raw[index + 9] == 0x0A
        else { throw HTTPParseFailure("the request line does not end with HTTP/1.0 or HTTP/1.1 and CRLF") }
        minor = Int(raw[index + 7] - 0x30)
        end = index + 10
    }

    /// The authority of an absolute-form target (`http://authority/...`), as offsets into
    /// `raw`; nil for the other forms. The target's form was checked by ``RequestLine``.
    fileprivate static func absoluteAuthority(_ raw: UnsafeRawBufferPointer, target: Range<Int>) -> Range<Int>? {
        let first = raw[target.lowerBound]
        guard first != UInt8(ascii: "/"), first != UInt8(ascii: "*") else { return nil }
        var index = target.lowerBound
        while index + 2 < target.upperBound, !(raw[index] == UInt8(ascii: ":") && raw[index + 1] == UInt8(ascii: "/")) { index += 1 }
        let start = index + 3
        var end = start
        while end < target.upperBound, raw[end] != UInt8(ascii: "/"), raw[end] != UInt8(ascii: "?") { end += 1 }
        return start < end ? start..<end : nil
    }

    /// The request target's form (RFC 9112 §3.2): a path (origin-form), an absolute `http` or
    /// `https` URL without userinfo (absolute-form), or `*` for OPTIONS (asterisk-form). The
    /// authority-form belongs to CONNECT, which is refused before this. Anything else is a
    /// target upstreams would each make something different of.
    private static func checkForm(of target: UnsafeRawBufferPointer, method: HTTPMethod) throws {
        if target[0] == UInt8(ascii: "/") { return }
        if target.count == 1, target[0] == UInt8(ascii: "*") {
            guard method == .OPTIONS else { throw HTTPParseFailure("the request target * is only for OPTIONS") }
            return
        }
        // scheme "://" authority, then the path and query, if any.
        var index = 0
        while index < target.count, HTTPHeadSyntax.lowercased(target[index]) >= UInt8(ascii: "a"),
            HTTPHeadSyntax.lowercased(target[index]) <= UInt8(ascii: "z")
        {
            index += 1
        }
        let scheme = UnsafeRawBufferPointer(rebasing: target[0..<index])
        guard HTTPHeadSyntax.name(scheme, is: "http") || HTTPHeadSyntax.name(scheme, is: "https"),
            target.count >= index + 3, target[index] == UInt8(ascii: ":"), target[index + 1] == UInt8(ascii: "/"),
            target[index + 2] == UInt8(ascii: "/")
        else {
            throw HTTPParseFailure("the request target is not a path, an absolute http(s) URL, or * for OPTIONS")
        }
        index += 3
        let authorityStart = index
        while index < target.count, target[index] != UInt8(ascii: "/"), target[index] != UInt8(ascii: "?") { index += 1 }
        guard index > authorityStart, HTTPHeadSyntax.isValidHost(target, authorityStart..<index) else {
            throw HTTPParseFailure("the request target's authority is not a host name or address with an optional port")
        }
    }
}
