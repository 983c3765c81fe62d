import NIOCore
import NIOHTTP1

/// Reads an upstream's HTTP/1.1 responses from the connection's bytes (RFC 9112), one exchange
/// at a time, without building `HTTPHeaders` or `String`s.
///
/// NIO's response decoder materialises every header name and value as a `String` and the
/// encoder on the client side serialises them again; a proxy only needs to know the status and
/// the framing, and to copy the lines it keeps. Body bytes are handed on as slices of the
/// buffers read from the socket. Chunked bodies are de-chunked (the client side frames them
/// again), so the shadow path sees the same body bytes whatever the framing.
///
/// It is strict where lenience would let the two sides of the proxy disagree on where a
/// message ends: CRLF line endings only, no obs-fold, no control bytes in fields, one
/// consistent `Content-Length`, and `Transfer-Encoding` taking precedence over it.
struct UpstreamResponseParser {
    enum Event {
        case head(UpstreamResponseHead)
        case body(ByteBuffer)
        /// The response ended; `trailers` are a chunked body's trailer lines (each with CRLF).
        case end(trailers: ByteBuffer?)
    }

    /// Why the bytes are not a valid response; the connection can't be used any more.
    struct Failure: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    private enum State {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// The response is complete; `.end` is the next event.
        case ending(trailers: ByteBuffer?)
        /// No exchange, or the last one's response ended.
        case done
    }

    private var state = State.done
    /// Bytes of an unfinished head, chunk-size line or trailer section, kept between reads.
    private var carried: ByteBuffer?
    /// How much of `carried` was already searched for the end of a head or trailers.
    private var scanned = 0
    private var bodyless = false

    /// The longest head (or trailer section) accepted, as NIO's decoder's default.
    static let maxHeadBytes = 80 * 1024
    static let maxChunkSizeLine = 1024

    /// Starts the next exchange. `bodyless` for a HEAD request: its response has no body
    /// whatever its headers say.
    mutating func expectResponse(bodyless: Bool) {
        state = .head
        self.bodyless = bodyless
        carried = nil
        scanned = 0
    }

    /// Whether the last response ended (or none was expected).
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// The next event from what `buffer` holds, or nil when more bytes are needed (or no
    /// response is expected). Call until nil; after an `.end` it returns nil and leaves whatever
    /// follows in `buffer` (a well-behaved upstream sends nothing before the next request).
    /// One event per call, so the caller acts on each with the parser at rest.
    mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        if case .ending(let trailers) = state {
            state = .done
            return .end(trailers: trailers)
        }
        if var previous = carried {
            carried = nil
            previous.writeBuffer(&buffer)
            buffer = previous
        }
        while buffer.readableBytes > 0 {
            switch state {
            case .done, .ending:
                return nil
            case .head:
                guard let end = try find(terminator: buffer, limit: Self.maxHeadBytes, what: "response head") else {
                    keep(&buffer)
                    return nil
                }
                scanned = 0
                let bytes = buffer.readSlice(length: end)!
                let head = try Self.parseHead(bytes, bodyless: bodyless)
                if head.statusCode < 200 {
                    if head.statusCode == 101 { throw Failure(reason: "the upstream switched protocols (101), which is not supported") }
                    continue  // 100, 103: interim responses; the final one follows.
                }
                if bodyless || head.statusCode == 204 || head.statusCode == 304 {
                    state = .ending(trailers: nil)
                } else if head.isChunked {
                    state = .chunkSize
                } else if head.isCloseDelimited {
                    state = .untilClose
                } else if let length = head.contentLength, length > 0 {
                    state = .fixed(remaining: length)
                } else {
                    state = .ending(trailers: nil)
                }
                return .head(head)
            case .fixed(let remaining):
                let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                state = remaining == slice.readableBytes ? .ending(trailers: nil) : .fixed(remaining: remaining - slice.readableBytes)
                return .body(slice)
            case .untilClose:
                return .body(buffer.readSlice(length: buffer.readableBytes)!)
            case .chunkSize:
                guard let size = try readChunkSize(&buffer) else {
                    keep(&buffer)
                    return nil
                }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
                state = remaining == slice.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - slice.readableBytes)
                return .body(slice)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else {
                    keep(&buffer)
                    return nil
                }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw Failure(reason: "a chunk's data is not followed by CRLF") }
                state = .chunkSize
            case .trailers:
                // Either an empty line right away, or trailer lines up to an empty line.
                if buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
                    buffer.moveReaderIndex(forwardBy: 2)
                    state = .done
                    return .end(trailers: nil)
                }
                guard buffer.readableBytes >= 2, let end = try find(terminator: buffer, limit: Self.maxHeadBytes, what: "trailer section")
                else {
                    keep(&buffer)
                    return nil
                }
                scanned = 0
                var lines = buffer.readSlice(length: end)!
                try lines.withUnsafeReadableBytes { raw in
                    var offset = 0
                    while offset < raw.count - 2 { _ = try Self.parseField(raw, from: &offset) }
                }
                lines.moveWriterIndex(to: lines.writerIndex - 2)
                state = .done
                return .end(trailers: lines)
            }
        }
        return nil
    }

    /// The connection closed. A close-delimited body ends here (`.end`); anything else
    /// unfinished is an error; nil when no response was under way.
    mutating func connectionClosed() throws -> Event? {
        switch state {
        case .done:
            return nil
        case .ending(let trailers):
            state = .done
            return .end(trailers: trailers)
        case .untilClose:
            state = .done
            return .end(trailers: nil)
        case .head where carried == nil:
            throw Failure(reason: "the upstream closed the connection before answering")
        default:
            throw Failure(reason: "the upstream closed the connection in the middle of a response")
        }
    }

    private mutating func keep(_ buffer: inout ByteBuffer) {
        carried = buffer
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }

    /// The length up to and including the first CRLFCRLF, if `buffer` holds one.
    private mutating func find(terminator buffer: ByteBuffer, limit: Int, what: String) throws -> Int? {
        let found = buffer.withUnsafeReadableBytes { raw -> Int? in
            var index = max(3, scanned)
            while index < raw.count {
                // Skip ahead until a LF; most bytes are not one.
                if raw[index] == 0x0A, raw[index - 1] == 0x0D, raw[index - 2] == 0x0A, raw[index - 3] == 0x0D {
                    return index + 1
                }
                index += 1
            }
            return nil
        }
        if let found {
            guard found <= limit else { throw Failure(reason: "the upstream's \(what) is longer than \(limit) bytes") }
            return found
        }
        guard buffer.readableBytes <= limit else { throw Failure(reason: "the upstream's \(what) is longer than \(limit) bytes") }
        scanned = max(3, buffer.readableBytes)
        return nil
    }

    /// A chunk-size line's size (extensions ignored), or nil when the line is not all here.
    private func readChunkSize(_ buffer: inout ByteBuffer) throws -> Int? {
        let parsed = try buffer.withUnsafeReadableBytes { raw throws -> (size: Int, length: Int)? in
            var size = 0
            var digits = 0
            var index = 0
            while index < raw.count, let digit = Self.hexValue(raw[index]) {
                guard digits < 15 else { throw Failure(reason: "a chunk size is too large") }
                size = size << 4 | digit
                digits += 1
                index += 1
            }
            if index == raw.count { return nil }
            guard digits > 0 else { throw Failure(reason: "a chunk size is not hexadecimal") }
            // Extensions (";name=value") and whitespace before them are skipped up to CRLF.
            while index < raw.count, raw[index] != 0x0D {
                let byte = raw[index]
                guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else { throw Failure(reason: "a chunk-size line has a control byte") }
                index += 1
                guard index <= Self.maxChunkSizeLine else { throw Failure(reason: "a chunk-size line is too long") }
            }
            guard index + 1 < raw.count else { return nil }
            guard raw[index + 1] == 0x0A else { throw Failure(reason: "a chunk-size line does not end with CRLF") }
            return (size, index + 2)
        }
        guard let parsed else {
            guard buffer.readableBytes <= Self.maxChunkSizeLine else { throw Failure(reason: "a chunk-size line is too long") }
            return nil
        }
        buffer.moveReaderIndex(forwardBy: parsed.length)
        return parsed.size
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    // MARK: - Heads

    /// Parses a complete head (status line through the blank line).
    static func parseHead(_ bytes: ByteBuffer, bodyless: Bool) throws -> UpstreamResponseHead {
        try bytes.withUnsafeReadableBytes { raw throws -> UpstreamResponseHead in
            // "HTTP/1.x SP 3DIGIT [SP reason] CRLF"
            guard raw.count >= 14, raw[0] == 0x48, raw[1] == 0x54, raw[2] == 0x54, raw[3] == 0x50, raw[4] == 0x2F, raw[5] == 0x31,
                raw[6] == 0x2E, raw[7] == 0x30 || raw[7] == 0x31, raw[8] == 0x20
            else { throw Failure(reason: "the upstream's response does not start with an HTTP/1.0 or HTTP/1.1 status line") }
            let minor = Int(raw[7] - 0x30)
            var code = 0
            for index in 9..<12 {
                guard raw[index] >= 0x30, raw[index] <= 0x39 else { throw Failure(reason: "the upstream's status code is not three digits") }
                code = code * 10 + Int(raw[index] - 0x30)
            }
            guard code >= 100 else { throw Failure(reason: "the upstream's status code \(code) is out of range") }
            var index = 12
            var reasonStart = 12
            if raw[index] == 0x20 {
                index += 1
                reasonStart = index
                while raw[index] != 0x0D {
                    let byte = raw[index]
                    guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else {
                        throw Failure(reason: "the upstream's reason phrase has a control byte")
                    }
                    index += 1
                }
            }
            guard raw[index] == 0x0D, raw[index + 1] == 0x0A else { throw Failure(reason: "the upstream's status line does not end with CRLF") }
            let reason = reasonStart..<index
            index += 2

            var fields: [UpstreamResponseHead.Field] = []
            fields.reserveCapacity(12)
            var contentLength: Int?
            var transferEncoding = false
            var chunked = false
            var close = false
            var keepAlive = false
            var listed: [String] = []
            while index < raw.count - 2 {
                let field = try parseField(raw, from: &index)
                switch field.kind {
                case .contentLength:
                    guard let length = decimal(raw, field.value) else {
                        throw Failure(reason: "the upstream's Content-Length is not a number")
                    }
                    if let contentLength, contentLength != length {
                        throw Failure(reason: "the upstream sent conflicting Content-Length values")
                    }
                    contentLength = length
                case .transferEncoding:
                    transferEncoding = true
                    chunked = matches(raw, field.value, "chunked") || lastToken(raw, field.value) == "chunked"
                case .connection:
                    // The usual values, without allocating.
                    if matches(raw, field.value, "keep-alive") {
                        keepAlive = true
                    } else if matches(raw, field.value, "close") {
                        close = true
                    } else {
                        for token in tokens(raw, field.value) {
                        switch token {
                        case "close": close = true
                        case "keep-alive": keepAlive = true
                        default: listed.append(token)
                        }
                        }
                    }
                default:
                    break
                }
                fields.append(field)
            }
            // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); a coding other than
            // chunked last means the body runs to the close.
            let hasBody = !(bodyless || code < 200 || code == 204 || code == 304)
            let closeDelimited = hasBody && ((transferEncoding && !chunked) || (!transferEncoding && contentLength == nil))
            let bothFramings = transferEncoding && contentLength != nil
            if transferEncoding { contentLength = nil }
            let persistent = minor == 1 ? !close : keepAlive && !close
            return UpstreamResponseHead(
                bytes: bytes, version: HTTPVersion(major: 1, minor: minor), statusCode: code, reason: reason, fields: fields,
                contentLength: contentLength, isChunked: hasBody && chunked, isCloseDelimited: closeDelimited,
                // Both framings at once is a sign of a confused upstream: don't reuse the connection.
                isKeepAlive: persistent && !closeDelimited && !bothFramings,
                connectionListed: listed
            )
        }
    }

    /// Parses the header line at `index` ("name: value" CRLF) and moves past it.
    static func parseField(_ raw: UnsafeRawBufferPointer, from index: inout Int) throws -> UpstreamResponseHead.Field {
        let start = index
        var cursor = index
        while cursor < raw.count, isTokenByte(raw[cursor]) { cursor += 1 }
        guard cursor > start, cursor < raw.count, raw[cursor] == UInt8(ascii: ":") else {
            if raw[start] == 0x20 || raw[start] == 0x09 {
                throw Failure(reason: "the upstream folded a header line (obs-fold), which is not accepted")
            }
            throw Failure(reason: "the upstream sent a malformed header line")
        }
        let name = start..<cursor
        cursor += 1
        while cursor < raw.count, raw[cursor] == 0x20 || raw[cursor] == 0x09 { cursor += 1 }
        let valueStart = cursor
        var valueEnd = cursor
        while cursor < raw.count, raw[cursor] != 0x0D {
            let byte = raw[cursor]
            guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else {
                throw Failure(reason: "the upstream sent a control byte in a header value")
            }
            cursor += 1
            if byte != 0x20 && byte != 0x09 { valueEnd = cursor }
        }
        guard cursor + 1 < raw.count, raw[cursor + 1] == 0x0A else {
            throw Failure(reason: "the upstream sent a header line that does not end with CRLF")
        }
        index = cursor + 2
        let kind = ProxyHeaderName(UnsafeRawBufferPointer(rebasing: raw[name]).assumingMemoryBound(to: UInt8.self))
        return .init(line: start..<index, name: name, value: valueStart..<valueEnd, kind: kind)
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        // tchar (RFC 9110 §5.6.2): letters, digits and !#$%&'*+-.^_`|~
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func decimal(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let byte = raw[index]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// Whether the value is `lowercase`, ignoring ASCII case.
    private static func matches(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for (offset, index) in range.enumerated() where raw[index] | 0x20 != expected[offset] | 0x20 {
            return false
        }
        return true
    }

    /// The comma-separated tokens of a value, trimmed and lowercased.
    private static func tokens(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> [String] {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self).split(separator: ",").map {
            $0.trimmingCharacters(in: " \t").lowercased()
        }.filter { !$0.isEmpty }
    }

    private static func lastToken(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> String? {
        tokens(raw, range).last
    }
}
