import NIOCore

/// One header line of a parsed head: the offsets (from the start of the head's bytes) of the
/// line including its CRLF, of the name, and of the value without surrounding whitespace.
struct HTTPHeadField {
    var line: Range<Int>
    var name: Range<Int>
    var value: Range<Int>
    var kind: ProxyHeaderName
}

/// The byte-level syntax both heads share (RFC 9110 §5, RFC 9112 §5): header lines, tokens,
/// numbers. Strict where lenience would let two parsers disagree about a message: CRLF only,
/// no obs-fold, no whitespace before the colon, no control bytes in values.
enum HTTPHeadSyntax {
    /// Parses the header line at `index` ("name: value" CRLF) and moves past it.
    static func parseField(_ raw: UnsafeRawBufferPointer, from index: inout Int) throws -> HTTPHeadField {
        let start = index
        var cursor = index
        while cursor < raw.count, isTokenByte(raw[cursor]) { cursor += 1 }
        guard cursor > start, cursor < raw.count, raw[cursor] == UInt8(ascii: ":") else {
            if raw[start] == 0x20 || raw[start] == 0x09 {
                throw HTTPParseFailure("a header line is folded (obs-fold), which is not accepted")
            }
            throw HTTPParseFailure("a header line is malformed (a name of token characters, then a colon)")
        }
        let name = start..<cursor
        cursor += 1
        while cursor < raw.count, raw[cursor] == 0x20 || raw[cursor] == 0x09 { cursor += 1 }
        let valueStart = cursor
        // Visible bytes, spaces and tabs up to the CR; one comparison for the usual byte, and
        // the trailing whitespace trimmed once at the end rather than tracked per byte.
        while cursor < raw.count {
            let byte = raw[cursor]
            if byte >= 0x20 && byte != 0x7F || byte == 0x09 {
                cursor += 1
                continue
            }
            guard byte == 0x0D else { throw HTTPParseFailure("a header value has a control byte") }
            break
        }
        var valueEnd = cursor
        while valueEnd > valueStart, raw[valueEnd - 1] == 0x20 || raw[valueEnd - 1] == 0x09 { valueEnd -= 1 }
        guard cursor + 1 < raw.count, raw[cursor + 1] == 0x0A else {
            throw HTTPParseFailure("a header line does not end with CRLF")
        }
        index = cursor + 2
        let kind = ProxyHeaderName(UnsafeRawBufferPointer(rebasing: raw[name]).assumingMemoryBound(to: UInt8.self))
        return .init(line: start..<index, name: name, value: valueStart..<valueEnd, kind: kind)
    }

    /// tchar (RFC 9110 §5.6.2): letters, digits and !#$%&'*+-.^_`|~
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        // One bit per byte value below 128, from the list above: a shift and a mask per byte.
        let word = byte < 64 ? tokenBitsLow : byte < 128 ? tokenBitsHigh : 0
        return word >> UInt64(byte & 63) & 1 == 1
    }

    /// Bits 0–63 set for the tchar bytes below 64: ! # $ % & ' * + - . and the digits.
    private static let tokenBitsLow: UInt64 = 0x03FF_6CFA_0000_0000
    /// Bits set for the tchar bytes 64–127 (bit = byte - 64): the letters and ^ _ ` | ~.
    private static let tokenBitsHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    /// A non-negative decimal of at most 18 digits, nothing else (no sign, no list).
    static func decimal(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let byte = raw[index]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// A `Content-Length` value: one number, sent once. RFC 9112 §6.3 would allow the same
    /// number repeated, but llhttp refuses that, and a message two parsers frame differently
    /// is a smuggling risk, so the proxy refuses it too.
    static func contentLength(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>, after earlier: Int?) throws -> Int {
        guard let length = decimal(raw, value) else {
            throw HTTPParseFailure("the Content-Length is not a number")
        }
        if let earlier {
            throw HTTPParseFailure(earlier != length ? "conflicting Content-Length values" : "Content-Length is repeated; send it once")
        }
        return length
    }

    /// Whether a `Host` value is an authority without userinfo (RFC 9110 §7.2, RFC 3986 §3.2):
    /// a registered name (unreserved bytes, sub-delims and %XX escapes), an IPv4 address, or an
    /// IP literal in brackets, then optionally a colon and digits. Everything else (a space, a
    /// slash, `@`, a backslash, a byte over 0x7F) could make two readers of the name pick
    /// different hosts, or let it leak into a path an upstream builds from it. An empty value
    /// is valid (RFC 9112 §3.2).
    static func isValidHost(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var index = range.lowerBound
        let end = range.upperBound
        if index < end, raw[index] == UInt8(ascii: "[") {
            // IPv6 or IPvFuture: both are spelled with these bytes (RFC 3986 §3.2.2).
            index += 1
            let start = index
            while index < end, raw[index] != UInt8(ascii: "]") {
                guard isRegisteredNameByte(raw[index]) || raw[index] == UInt8(ascii: ":") else { return false }
                index += 1
            }
            guard index < end, index > start else { return false }
            index += 1
        } else {
            while index < end, raw[index] != UInt8(ascii: ":") {
                if raw[index] == UInt8(ascii: "%") {
                    guard index + 2 < end, hexValue(raw[index + 1]) != nil, hexValue(raw[index + 2]) != nil else { return false }
                    index += 3
                    continue
                }
                guard isRegisteredNameByte(raw[index]) else { return false }
                index += 1
            }
        }
        if index == end { return true }
        guard raw[index] == UInt8(ascii: ":") else { return false }
        index += 1
        while index < end {
            guard raw[index] >= 0x30, raw[index] <= 0x39 else { return false }
            index += 1
        }
        return true
    }

    /// unreserved and sub-delims (RFC 3986 §2): letters, digits, -._~ and !$&'()*+,;=
    private static func isRegisteredNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            true
        default:
            false
        }
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Whether the value is `lowercase`, ignoring ASCII case.
    static func matches(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for (offset, index) in range.enumerated() where lowercased(raw[index]) != expected[offset] {
            return false
        }
        return true
    }

    /// An ASCII letter in lowercase; every other byte as it is. (OR-ing 0x20 into any byte
    /// would also make CR equal `-`.)
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Whether two byte ranges are equal, ignoring ASCII case only (two host names, say).
    static func equalIgnoringCase(
        _ left: UnsafeRawBufferPointer,
        _ leftRange: Range<Int>,
        _ right: UnsafeRawBufferPointer,
        _ rightRange: Range<Int>
    ) -> Bool {
        guard leftRange.count == rightRange.count else { return false }
        for offset in 0..<leftRange.count where lowercased(left[leftRange.lowerBound + offset]) != lowercased(right[rightRange.lowerBound + offset]) {
            return false
        }
        return true
    }

    /// Whether a header name (as sent) is `lowercase`, ignoring ASCII case only.
    static func name(_ bytes: UnsafeRawBufferPointer, is lowercase: String) -> Bool {
        bytes.count == lowercase.utf8.count
            && zip(bytes, lowercase.utf8).allSatisfy { lowercased($0) == $1 }
    }

    /// Whether a header name (as sent) is the lower-case name `lowercase`, ignoring ASCII case.
    static func name(_ bytes: UnsafeRawBufferPointer, isLowercase lowercase: UnsafeRawBufferPointer) -> Bool {
        bytes.count == lowercase.count
            && zip(bytes, lowercase).allSatisfy { lowercased($0) == $1 }
    }

    /// The comma-separated tokens of a value, trimmed and lowercased.
    static func tokens(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> [String] {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self).split(separator: ",").map {
            $0.trimmingCharacters(in: " \t").lowercased()
        }.filter { !$0.isEmpty }
    }

    /// `Connection`'s options (RFC 9110 §7.6.1): `close`, `keep-alive`, and the other names it
    /// lists, which are hop-by-hop for this message. The usual values cost no allocation.
    static func connectionOptions(
        _ raw: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        close: inout Bool,
        keepAlive: inout Bool,
        listed: inout [String]
    ) {
        if matches(raw, range, "keep-alive") {
            keepAlive = true
        } else if matches(raw, range, "close") {
            close = true
        } else {
            for token in tokens(raw, range) {
                switch token {
                case "close": close = true
                case "keep-alive": keepAlive = true
                default: listed.append(token)
                }
            }
        }
    }
}

/// The header section of a head, read line by line with the rules both heads share: the
/// framing (one `Content-Length` with one number, or one `Transfer-Encoding: chunked`, never
/// both) and `Connection` (close, keep-alive, and the names it lists). Every other field goes
/// to the head's own rules on the way.
///
/// The framing rules are those of llhttp (NIOHTTP1's parser) or stricter, so that no message
/// is framed here in a way another parser would frame differently: a repeated
/// `Content-Length`, a transfer coding other than `chunked` (the proxy decodes none), and a
/// tab after either value are refused as well.
struct HeadFieldSection {
    var fields: [HTTPHeadField] = []
    var contentLength: Int?
    /// Whether the body is chunked (`Transfer-Encoding: chunked`).
    var isChunked = false
    var close = false
    var keepAlive = false
    var connectionListed: [String] = []

    /// Reads the header lines from `index` to the blank line that ends `raw`. The fields go
    /// into `storage`'s array, emptied: the parser hands back the last head's, and when that
    /// head is gone its capacity is reused rather than allocated again.
    init(_ raw: UnsafeRawBufferPointer, from index: Int, storage: inout [HTTPHeadField], other: (HTTPHeadField) throws -> Void) throws {
        var index = index
        // Taken, not copied, so that the array is uniquely held and `removeAll` keeps its buffer.
        swap(&fields, &storage)
        fields.removeAll(keepingCapacity: true)
        fields.reserveCapacity(12)
        while index < raw.count - 2 {
            let field = try HTTPHeadSyntax.parseField(raw, from: &index)
            switch field.kind {
            case .contentLength:
                try Self.checkNoTabAfter(field, in: raw)
                contentLength = try HTTPHeadSyntax.contentLength(raw, field.value, after: contentLength)
            case .transferEncoding:
                try Self.checkNoTabAfter(field, in: raw)
                guard !isChunked, HTTPHeadSyntax.matches(raw, field.value, "chunked") else {
                    throw HTTPParseFailure("a Transfer-Encoding other than chunked, or more than one, is not supported")
                }
                isChunked = true
            case .connection:
                HTTPHeadSyntax.connectionOptions(raw, field.value, close: &close, keepAlive: &keepAlive, listed: &connectionListed)
            default:
                try other(field)
            }
            fields.append(field)
        }
        if isChunked, contentLength != nil {
            throw HTTPParseFailure("both Content-Length and Transfer-Encoding; the framing is ambiguous")
        }
    }

    /// Refuses a framing value followed by a tab: RFC 9110 lets optional whitespace be one, but
    /// llhttp reads `chunked<TAB>` as another coding and `5<TAB>` as no number, so a parser
    /// behind or in front of the proxy may frame the message differently.
    private static func checkNoTabAfter(_ field: HTTPHeadField, in raw: UnsafeRawBufferPointer) throws {
        for index in field.value.upperBound..<(field.line.upperBound - 2) where raw[index] == 0x09 {
            throw HTTPParseFailure("a tab after a Content-Length or Transfer-Encoding value")
        }
    }

    /// Whether the connection stays open after this message, by its version and `Connection`.
    func isPersistent(minor: Int) -> Bool {
        minor == 1 ? !close : keepAlive && !close
    }
}

/// Why bytes are not a valid HTTP/1.x message. The connection they came on can't carry
/// another message: where this one ends is unknown.
struct HTTPParseFailure: Error, CustomStringConvertible {
    /// What kind of refusal it is, which decides the status a client gets
    /// (``ProxyError/init(rejecting:maxHeaderBytes:)``).
    enum Kind {
        /// Malformed or ambiguous: 400.
        case malformed
        /// The head (or trailer section) is longer than the parser's limit: 431.
        case tooLarge
        /// A well-formed request whose method the proxy does not serve (CONNECT): 405.
        case methodNotAllowed
    }

    let reason: String
    let kind: Kind

    init(_ reason: String, tooLarge: Bool = false) {
        self.init(reason, kind: tooLarge ? .tooLarge : .malformed)
    }

    init(_ reason: String, kind: Kind) {
        self.reason = reason
        self.kind = kind
    }

    /// The head (or trailer section) is longer than the parser's limit.
    var isTooLarge: Bool { kind == .tooLarge }

    var description: String { reason }
}

/// A head whose bytes the parser keeps, with the offsets of its header lines.
protocol ParsedHTTPHead {
    /// What the parser must know of the exchange to frame the body (a HEAD request's response
    /// has none whatever its headers say).
    associatedtype Expectation
    /// The head from its first line through the blank line.
    var bytes: ByteBuffer { get }
    var fields: [HTTPHeadField] { get }
    /// Names listed in `Connection` besides `close` and `keep-alive`, lowercase.
    var connectionListed: [String] { get }
    /// Names the head in errors: "request head", "response head".
    static var what: String { get }
    /// Whether empty lines before the head are skipped (requests) or an error (responses).
    static var ignoresLeadingEmptyLines: Bool { get }
    /// Checks the head's first line (with its CRLF) while the rest of the head has not arrived,
    /// so that a line no valid head can start with is refused at once: an HTTP/0.9 request
    /// ends at its request line, and would otherwise wait for a blank line that never comes.
    static func checkFirstLine(_ line: UnsafeRawBufferPointer) throws
    /// Parses a complete head. Nil for an interim message the parser skips (a 1xx response).
    /// `fieldStorage`: an array whose capacity the head's ``fields`` may take over (see
    /// ``HeadFieldSection``).
    static func parse(
        _ bytes: ByteBuffer,
        expecting: Expectation,
        fieldStorage: inout [HTTPHeadField]
    ) throws -> (head: Self, framing: HTTPBodyFraming)?
}

extension ParsedHTTPHead {
    static func checkFirstLine(_ line: UnsafeRawBufferPointer) throws {}

    /// The header lines as name/value pairs, in order. Allocates; for the shadow path and tests.
    var headers: [(String, String)] {
        fields.map { (string(at: $0.name), string(at: $0.value)) }
    }

    func string(at range: Range<Int>) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }

    /// The first value of the header `name` (ASCII case-insensitive), if present. A name with
    /// an underscore is never found: such headers are not forwarded (``ProxyHeaderName/underscored``),
    /// so nothing may be decided by one either.
    func firstValue(named name: String) -> String? {
        let wanted = name.lowercased()
        return bytes.withUnsafeReadableBytes { raw -> String? in
            for field in fields
            where field.kind != .underscored && HTTPHeadSyntax.name(UnsafeRawBufferPointer(rebasing: raw[field.name]), is: wanted) {
                return String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.value]), as: UTF8.self)
            }
            return nil
        }
    }

    /// Whether the field is one a `Connection` header of this message named.
    func isConnectionListed(_ field: HTTPHeadField) -> Bool {
        guard !connectionListed.isEmpty else { return false }
        let name = string(at: field.name).lowercased()
        return connectionListed.contains(name)
    }
}

/// How a message's body is delimited (RFC 9112 §6.3).
enum HTTPBodyFraming {
    case none
    case length(Int)
    case chunked
    case untilClose
}

/// Copies the header lines a rewrite keeps from a head's bytes, one write per run of adjacent
/// lines: forwarding usually keeps nearly every line, so a head goes across in two or three
/// copies rather than one per line.
struct HeadLineCopier {
    private var start = 0
    private var end = 0

    /// Keeps `line` (offsets in `raw`, lines in ascending order).
    @inline(__always)
    mutating func keep(_ line: Range<Int>, from raw: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        if line.lowerBound != end {
            flush(raw, into: &out)
            start = line.lowerBound
        }
        end = line.upperBound
    }

    /// Writes the run kept so far; call once after the last line.
    mutating func flush(_ raw: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        if end > start { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<end])) }
        start = end
    }
}
