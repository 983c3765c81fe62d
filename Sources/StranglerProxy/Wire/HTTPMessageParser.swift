import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads HTTP/1.x messages from a connection's bytes (RFC 9112), one at a time, without
/// building `HTTPHeaders` or a `String` per name and value.
///
/// A proxy only needs a head's framing and a few of its fields, and copies the lines it keeps;
/// so the head is handed on as its bytes plus the offsets of each line (``ParsedHTTPHead``), and
/// body bytes as slices of the buffers read from the socket. Chunked bodies are de-chunked (the
/// other side frames them again), so the shadow path sees the same body bytes whatever the
/// framing. One parser reads client requests (``ClientRequestHead``) and upstream responses
/// (``UpstreamResponseHead``); each head type decides its own framing.
///
/// It is strict where lenience would let the two sides of the proxy disagree on where a
/// message ends: CRLF line endings only, no obs-fold, no control bytes in fields, one
/// consistent `Content-Length`, and malformed chunk framing refused.
struct HTTPMessageParser<Head: ParsedHTTPHead> {
    enum Event {
        case head(Head)
        case body(ByteBuffer)
        /// The message ended; `trailers` are a chunked body's trailer lines (each with CRLF).
        case end(trailers: ByteBuffer?)
    }

    private enum State {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// The message is complete; `.end` is the next event.
        case ending(trailers: ByteBuffer?)
        /// No message expected, or the last one ended.
        case done
    }

    private var state = State.done
    /// Bytes of an unfinished head, chunk-size line or trailer section, kept between reads.
    private var carried: ByteBuffer?
    /// How much of `carried` was already searched for the end of a head or trailers.
    private var scanned = 0
    /// Whether the unfinished head's first line was checked on its own (``ParsedHTTPHead/checkFirstLine(_:)``).
    private var firstLineChecked = false
    private var expectation: Head.Expectation?
    /// The last head's field array, shared with that head. Once the head is gone it is held
    /// here alone, and the next head's fields reuse its capacity instead of allocating.
    private var fieldStorage: [HTTPHeadField] = []
    /// The longest head (or trailer section) accepted.
    let maxHeadBytes: Int

    static var maxChunkSizeLine: Int { 1024 }

    init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Starts reading the next message.
    mutating func expectMessage(_ expectation: Head.Expectation) {
        state = .head
        self.expectation = expectation
        carried = nil
        scanned = 0
        firstLineChecked = false
    }

    /// Whether the last message ended (or none was expected).
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Whether a message has begun: part of its head (or more) has been read.
    var hasStartedMessage: Bool {
        switch state {
        case .done: false
        case .head: carried != nil
        default: true
        }
    }

    /// The next event from what `buffer` holds, or nil when more bytes are needed (or no
    /// message is expected). Call until nil; after an `.end` it returns nil and leaves whatever
    /// follows in `buffer` until ``expectMessage(_:)``. One event per call, so the caller acts
    /// on each with the parser at rest.
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
                if Head.ignoresLeadingEmptyLines {
                    // RFC 9112 §2.2: an empty line before a request line (a client's stray CRLF
                    // after a body) is skipped.
                    while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
                        buffer.moveReaderIndex(forwardBy: 2)
                    }
                    if buffer.readableBytes == 0 { return nil }
                }
                guard let end = try find(terminator: buffer, what: Head.what) else {
                    try checkFirstLine(buffer)
                    keep(&buffer)
                    return nil
                }
                scanned = 0
                firstLineChecked = false
                let bytes = buffer.readSlice(length: end)!
                guard let expectation, let (head, framing) = try Head.parse(bytes, expecting: expectation, fieldStorage: &fieldStorage)
                else {
                    continue  // an interim message; the final one follows
                }
                fieldStorage = head.fields
                switch framing {
                case .none: state = .ending(trailers: nil)
                case .length(let length): state = length > 0 ? .fixed(remaining: length) : .ending(trailers: nil)
                case .chunked: state = .chunkSize
                case .untilClose: state = .untilClose
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
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw HTTPParseFailure("a chunk's data is not followed by CRLF") }
                state = .chunkSize
            case .trailers:
                // Either an empty line right away, or trailer lines up to an empty line.
                if buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
                    buffer.moveReaderIndex(forwardBy: 2)
                    state = .done
                    return .end(trailers: nil)
                }
                guard buffer.readableBytes >= 2, let end = try find(terminator: buffer, what: "trailer section") else {
                    keep(&buffer)
                    return nil
                }
                scanned = 0
                var lines = buffer.readSlice(length: end)!
                try lines.withUnsafeReadableBytes { raw in
                    var offset = 0
                    while offset < raw.count - 2 {
                        // Framing belongs to the head (RFC 9110 §6.5.1); llhttp refuses it here.
                        let kind = try HTTPHeadSyntax.parseField(raw, from: &offset).kind
                        if kind == .contentLength || kind == .transferEncoding {
                            throw HTTPParseFailure("a trailer section has a Content-Length or Transfer-Encoding")
                        }
                    }
                }
                lines.moveWriterIndex(to: lines.writerIndex - 2)
                state = .done
                return .end(trailers: lines)
            }
        }
        return nil
    }

    /// The connection closed. A close-delimited body ends here (`.end`); anything else
    /// unfinished is an error; nil when no message was under way.
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
            throw HTTPParseFailure("the connection closed before the \(Head.what) began")
        default:
            throw HTTPParseFailure("the connection closed in the middle of the message")
        }
    }

    /// Checks the first line of a head that is not all here yet, once that line is. A complete
    /// head goes straight to ``ParsedHTTPHead/parse(_:expecting:fieldStorage:)``, so the usual
    /// request pays nothing for this.
    private mutating func checkFirstLine(_ buffer: ByteBuffer) throws {
        guard !firstLineChecked else { return }
        try buffer.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress, let hit = memchr(base, 0x0A, raw.count) else { return }
            firstLineChecked = true
            // `find` has already refused a bare LF, so the line ends with CRLF.
            try Head.checkFirstLine(UnsafeRawBufferPointer(rebasing: raw[0...base.distance(to: UnsafeRawPointer(hit))]))
        }
    }

    private mutating func keep(_ buffer: inout ByteBuffer) {
        carried = buffer
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }

    /// The length up to and including the first CRLFCRLF, if `buffer` holds one. A bare LF is
    /// an error here rather than at the end of the head, which would never come.
    private mutating func find(terminator buffer: ByteBuffer, what: String) throws -> Int? {
        let found = try buffer.withUnsafeReadableBytes { raw throws -> Int? in
            guard let base = raw.baseAddress else { return nil }
            var index = scanned
            // From LF to LF with memchr: a head is a few lines of tens of bytes each, and a
            // byte-by-byte loop cost more than the rest of finding its end.
            while index < raw.count, let hit = memchr(base + index, 0x0A, raw.count - index) {
                index = base.distance(to: UnsafeRawPointer(hit))
                guard index > 0, raw[index - 1] == 0x0D else {
                    throw HTTPParseFailure("a line of the \(what) ends with a bare LF; lines end with CRLF")
                }
                if index >= 3, raw[index - 2] == 0x0A { return index + 1 }
                index += 1
            }
            return nil
        }
        if let found {
            guard found <= maxHeadBytes else { throw HTTPParseFailure("the \(what) is longer than \(maxHeadBytes) bytes", tooLarge: true) }
            return found
        }
        guard buffer.readableBytes <= maxHeadBytes else {
            throw HTTPParseFailure("the \(what) is longer than \(maxHeadBytes) bytes", tooLarge: true)
        }
        scanned = buffer.readableBytes
        return nil
    }

    /// A chunk-size line's size (extensions checked, then ignored), or nil when the line is not
    /// all here.
    ///
    /// The line is `1*HEXDIG *( ";" token [ "=" ( token / quoted-string ) ] ) CRLF` (RFC 9112
    /// §7.1.1) with no whitespace anywhere: RFC 9112 allows some around the semicolons, but
    /// llhttp refuses it, and a chunk boundary two parsers see differently is a smuggling risk.
    private func readChunkSize(_ buffer: inout ByteBuffer) throws -> Int? {
        let parsed = try buffer.withUnsafeReadableBytes { raw throws -> (size: Int, length: Int)? in
            var size = 0
            var digits = 0
            var index = 0
            while index < raw.count, let digit = HTTPHeadSyntax.hexValue(raw[index]) {
                guard digits < 15 else { throw HTTPParseFailure("a chunk size is too large") }
                size = size << 4 | digit
                digits += 1
                index += 1
            }
            if index == raw.count { return nil }
            guard digits > 0 else { throw HTTPParseFailure("a chunk size is not hexadecimal") }
            var extensions = ChunkExtensionReader()
            while index < raw.count, raw[index] != 0x0D {
                try extensions.read(raw[index])
                index += 1
                guard index <= Self.maxChunkSizeLine else { throw HTTPParseFailure("a chunk-size line is too long") }
            }
            guard index + 1 < raw.count else { return nil }
            guard extensions.isComplete else { throw HTTPParseFailure("a chunk extension is cut short before the line's end") }
            guard raw[index + 1] == 0x0A else { throw HTTPParseFailure("a chunk-size line does not end with CRLF") }
            return (size, index + 2)
        }
        guard let parsed else {
            guard buffer.readableBytes <= Self.maxChunkSizeLine else { throw HTTPParseFailure("a chunk-size line is too long") }
            return nil
        }
        buffer.moveReaderIndex(forwardBy: parsed.length)
        return parsed.size
    }
}

/// Checks the chunk extensions after a chunk size, a byte at a time:
/// `*( ";" token [ "=" ( token / quoted-string ) ] )`, nothing else.
private struct ChunkExtensionReader {
    private enum State {
        /// After the size, or after a complete extension.
        case between
        /// After a semicolon: a name must follow.
        case nameStart
        case name
        /// After `=`: a token or a quoted string must follow.
        case valueStart
        case token
        case quoted
        /// After a backslash in a quoted string.
        case escaped
    }

    private var state = State.between

    /// Whether the line may end here.
    var isComplete: Bool {
        switch state {
        case .between, .name, .token: true
        default: false
        }
    }

    mutating func read(_ byte: UInt8) throws {
        switch state {
        case .between, .name, .token:
            if byte == UInt8(ascii: ";") {
                state = .nameStart
            } else if state == .name, byte == UInt8(ascii: "=") {
                state = .valueStart
            } else if state != .between, HTTPHeadSyntax.isTokenByte(byte) {
                break
            } else {
                throw HTTPParseFailure(
                    byte == 0x20 || byte == 0x09
                        ? "a chunk-size line has whitespace in it" : "a chunk-size line has a byte that is not part of a size or extension"
                )
            }
        case .nameStart:
            guard HTTPHeadSyntax.isTokenByte(byte) else { throw HTTPParseFailure("a chunk extension has no name") }
            state = .name
        case .valueStart:
            if byte == UInt8(ascii: "\"") {
                state = .quoted
            } else {
                guard HTTPHeadSyntax.isTokenByte(byte) else { throw HTTPParseFailure("a chunk extension's value is not a token or a quoted string") }
                state = .token
            }
        case .quoted:
            // qdtext (RFC 9110 §5.6.4), without the bytes over 0x7F.
            if byte == UInt8(ascii: "\"") {
                state = .between
            } else if byte == UInt8(ascii: "\\") {
                state = .escaped
            } else if !(byte == 0x09 || (byte >= 0x20 && byte < 0x7F)) {
                throw HTTPParseFailure("a chunk extension's quoted value has a control byte")
            }
        case .escaped:
            guard byte == 0x09 || (byte >= 0x20 && byte < 0x7F) else { throw HTTPParseFailure("a chunk extension's quoted value has a control byte") }
            state = .quoted
        }
    }
}

/// Reads an upstream's responses; ``UpstreamConnection`` starts one per request it sends.
typealias UpstreamResponseParser = HTTPMessageParser<UpstreamResponseHead>

extension HTTPMessageParser where Head == UpstreamResponseHead {
    /// The longest response head accepted, as NIO's decoder's default.
    static var maxResponseHeadBytes: Int { 80 * 1024 }

    init() {
        self.init(maxHeadBytes: Self.maxResponseHeadBytes)
    }

    /// Starts the next exchange. `bodyless` for a HEAD request: its response has no body
    /// whatever its headers say.
    mutating func expectResponse(bodyless: Bool) {
        expectMessage(bodyless)
    }
}

/// Reads a client connection's requests, one after another.
typealias ClientRequestParser = HTTPMessageParser<ClientRequestHead>
