import NIOCore
import NIOHTTP1

/// A response head as an upstream sent it: its bytes, and where the status, reason and each
/// header line sit in them.
///
/// Forwarding copies the header lines it keeps straight from these bytes (no `String` per name
/// and value, no `HTTPHeaders`); the shadow path asks for ``headers`` only when it needs them.
struct UpstreamResponseHead: ParsedHTTPHead {
    /// The head from the status line through the blank line.
    let bytes: ByteBuffer
    let version: HTTPVersion
    let statusCode: Int
    /// The reason phrase's offsets in ``bytes`` (may be empty).
    let reason: Range<Int>
    let fields: [HTTPHeadField]
    /// The declared body length, when the body is framed by `Content-Length`.
    let contentLength: Int?
    /// Whether the body is chunked (`Transfer-Encoding: chunked`).
    let isChunked: Bool
    /// Whether the body runs until the upstream closes the connection.
    let isCloseDelimited: Bool
    /// Whether the upstream keeps the connection open after this response.
    let isKeepAlive: Bool
    /// Names listed in `Connection` besides `close` and `keep-alive`: hop-by-hop for this
    /// message (RFC 9110 §7.6.1). Lowercase; empty in the usual case.
    let connectionListed: [String]

    static var what: String { "response head" }
    static var ignoresLeadingEmptyLines: Bool { false }

    /// Parses a complete head (status line through the blank line). `bodyless`: the request was
    /// HEAD, so the response has no body whatever its headers say. Interim (1xx) responses are
    /// skipped; a 101 is refused, as the proxy does not switch protocols.
    static func parse(
        _ bytes: ByteBuffer,
        expecting bodyless: Bool,
        fieldStorage: inout [HTTPHeadField]
    ) throws -> (head: UpstreamResponseHead, framing: HTTPBodyFraming)? {
        try bytes.withUnsafeReadableBytes { raw throws -> (head: UpstreamResponseHead, framing: HTTPBodyFraming)? in
            // "HTTP/1.x SP 3DIGIT [SP reason] CRLF"
            guard raw.count >= 14, raw[0] == 0x48, raw[1] == 0x54, raw[2] == 0x54, raw[3] == 0x50, raw[4] == 0x2F, raw[5] == 0x31,
                raw[6] == 0x2E, raw[7] == 0x30 || raw[7] == 0x31, raw[8] == 0x20
            else { throw HTTPParseFailure("the response does not start with an HTTP/1.0 or HTTP/1.1 status line") }
            let minor = Int(raw[7] - 0x30)
            var code = 0
            for index in 9..<12 {
                guard raw[index] >= 0x30, raw[index] <= 0x39 else { throw HTTPParseFailure("the status code is not three digits") }
                code = code * 10 + Int(raw[index] - 0x30)
            }
            guard code >= 100 else { throw HTTPParseFailure("the status code \(code) is out of range") }
            if code == 101 { throw HTTPParseFailure("the upstream switched protocols (101), which is not supported") }
            // HTTP/1.0 has no interim responses (RFC 9110 §15.2); llhttp takes one for the final
            // answer, so the two would frame what follows differently.
            if code < 200, minor == 0 { throw HTTPParseFailure("an interim (1xx) response in HTTP/1.0") }
            var index = 12
            var reasonStart = 12
            if raw[index] == 0x20 {
                index += 1
                reasonStart = index
                while raw[index] != 0x0D {
                    let byte = raw[index]
                    guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else {
                        throw HTTPParseFailure("the reason phrase has a control byte")
                    }
                    index += 1
                }
            }
            guard raw[index] == 0x0D, raw[index + 1] == 0x0A else { throw HTTPParseFailure("the status line does not end with CRLF") }
            let reason = reasonStart..<index
            index += 2

            // The framing: Content-Length, chunked, or neither (the body runs to the close).
            // Both at once, or another transfer coding, is refused (``HeadFieldSection``): RFC
            // 9112 §6.3 lets Transfer-Encoding win, but llhttp and nginx refuse such a
            // response, and the proxy decodes no coding but chunked.
            let section = try HeadFieldSection(raw, from: index, storage: &fieldStorage) { _ in }
            if code < 200 {
                // 100, 103: an interim response, read as strictly as any head; the final one
                // follows. One that says `Connection: close` is refused: llhttp takes the
                // connection as closing after it, and would refuse the final response.
                if section.close { throw HTTPParseFailure("an interim (1xx) response says Connection: close") }
                // Its field array goes back for the next head to reuse.
                fieldStorage = section.fields
                return nil
            }
            let contentLength = section.contentLength
            let hasBody = !(bodyless || code == 204 || code == 304)
            let closeDelimited = hasBody && !section.isChunked && contentLength == nil
            let persistent = section.isPersistent(minor: minor)
            let head = UpstreamResponseHead(
                bytes: bytes,
                version: HTTPVersion(major: 1, minor: minor),
                statusCode: code,
                reason: reason,
                fields: section.fields,
                contentLength: contentLength,
                isChunked: hasBody && section.isChunked,
                isCloseDelimited: closeDelimited,
                isKeepAlive: persistent && !closeDelimited,
                connectionListed: section.connectionListed
            )
            let framing: HTTPBodyFraming =
                !hasBody ? .none : head.isChunked ? .chunked : closeDelimited ? .untilClose : .length(contentLength ?? 0)
            return (head, framing)
        }
    }
}
